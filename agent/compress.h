/* Decompression of request bodies and profile attachments with a hard cap
 * on the output size, so a small "bomb" cannot make the agent allocate
 * more than the cap. Thread-safe (no shared state). */
#ifndef HS_AGENT_COMPRESS_H
#define HS_AGENT_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* The compression formats (detected from the first bytes: gzip 1f 8b,
 * zstd 28 b5 2f fd). */
enum hs_agent_compression {
  HS_AGENT_COMP_NONE = 0,
  HS_AGENT_COMP_GZIP,
  HS_AGENT_COMP_ZSTD
};

/* Decompresses len bytes in the given format into a malloc'd buffer
 * (*out, *outlen; caller frees; one spare NUL byte after the data).
 * gzip input may be several concatenated members. Returns HS_AGENT_OK,
 * HS_AGENT_EINVAL (corrupt or truncated input: message in err),
 * HS_AGENT_ETOOBIG (output would pass max_out) or HS_AGENT_ENOMEM. */
int hs_agent_decompress(int format, const uint8_t *in, size_t len,
                        size_t max_out, uint8_t **out, size_t *outlen,
                        char *err, size_t errlen);

/* If the data starts with a gzip or zstd magic, decompresses it as above
 * and sets *owned to the new buffer (caller frees); otherwise points *out
 * at the input and sets *owned to NULL. */
int hs_agent_maybe_decompress(const uint8_t *in, size_t len, size_t max_out,
                              const uint8_t **out, size_t *outlen,
                              uint8_t **owned, char *err, size_t errlen);

#endif
