/* Shared pieces of the agent's protocol decoders: the per-request arena
 * that owns everything a decoded batch points to, the decoders' result
 * codes and their resource limits.
 *
 * Every decoder turns request bytes into an hs_ing_batch (see
 * backend/model.h) whose pointers all live in one hs_agent_decoded's
 * arena, so the whole batch is released with one hs_agent_decoded_free.
 * Decoders are strict: anything malformed is an error with a one-line
 * message, never a crash, and the memory a hostile payload can make them
 * use is capped (hs_agent_limits). No shared state: different requests may
 * be decoded on different threads at once. */
#ifndef HS_AGENT_INGEST_H
#define HS_AGENT_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "backend/model.h"

/* Decoder results. The HTTP layer maps them to 400, 413 and 500. */
enum {
  HS_AGENT_OK = 0,
  HS_AGENT_EINVAL = -1,  /* malformed or unsupported payload */
  HS_AGENT_ETOOBIG = -2, /* payload decodes past a limit */
  HS_AGENT_ENOMEM = -3   /* malloc failed below the limits */
};

typedef struct hs_agent_limits {
  /* Decompressed size of one body or one profile attachment; 0 = 64 MiB. */
  size_t max_inflated;
  /* Memory one request may use for decoding (parse trees plus the arena
   * holding the batch); 0 = 256 MiB. */
  size_t max_memory;
} hs_agent_limits;

#define HS_AGENT_DEFAULT_MAX_INFLATED ((size_t)64 << 20)
#define HS_AGENT_DEFAULT_MAX_MEMORY ((size_t)256 << 20)

/* Fills 0 fields of *out (a copy of *in, or defaults when in is NULL). */
void hs_agent_limits_resolve(const hs_agent_limits *in, hs_agent_limits *out);

/* Bump allocator: chunks freed all at once (by hs_agent_decoded_free,
 * which owns the arena). Allocation fails (NULL, and `failed` set) once
 * the total would pass max. Not thread-safe. */
typedef struct hs_agent_arena {
  struct hs_agent_chunk *head;
  size_t total; /* bytes of all chunks */
  size_t max;
  int failed; /* HS_AGENT_ETOOBIG or HS_AGENT_ENOMEM after a failure */
} hs_agent_arena;

/* Zeroed array of n elements of size sz (overflow-checked), or NULL. */
void *hs_agent_arena_array(hs_agent_arena *a, size_t n, size_t sz);
/* Copy of n bytes of s as a NUL-terminated string in which embedded NULs
 * and invalid UTF-8 bytes are replaced by U+FFFD; NULL if out of memory. */
char *hs_agent_arena_utf8(hs_agent_arena *a, const char *s, size_t n);

/* Adds the string attribute key=val (both copied into the arena) to span
 * s unless it has one with that key already: for values that OTLP carries
 * on the resource (service.version) but the store reads from the root
 * span. Returns 0, or -1 when the arena is out of memory. */
struct hs_ing_span;
int hs_agent_span_default_attr(hs_agent_arena *a, struct hs_ing_span *s,
                               const char *key, const char *val, size_t vlen);

/* A decoded request: the batch and the arena it lives in. Owned by the
 * caller (usually on the stack): init, decode into it, hand &batch to the
 * store, free. */
typedef struct hs_agent_decoded {
  hs_ing_batch batch;
  hs_agent_arena arena;
} hs_agent_decoded;

void hs_agent_decoded_init(hs_agent_decoded *d, const hs_agent_limits *lim);
void hs_agent_decoded_free(hs_agent_decoded *d);

/* Writes a formatted message into err (if errlen > 0) and returns code. */
int hs_agent_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
