/* Capped gzip and zstd decompression. The output buffer grows by doubling
 * up to the cap; passing the cap is reported as ETOOBIG rather than
 * truncating, because a truncated profile would decode to wrong data. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "agent/compress.h"
#include "agent/ingest.h"

/* Compression detected from the first bytes (gzip 1f 8b, zstd 28 b5 2f
 * fd), or HS_AGENT_COMP_NONE. */
static int detect_compression(const uint8_t *p, size_t len) {
  if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
    return HS_AGENT_COMP_GZIP;
  if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
    return HS_AGENT_COMP_ZSTD;
  return HS_AGENT_COMP_NONE;
}

typedef struct outbuf {
  uint8_t *p;
  size_t len, cap, max;
} outbuf;

/* Makes at least some room after len (up to max + 1, so that one byte
 * past the cap can be detected). */
static int out_grow(outbuf *o) {
  size_t want = o->cap ? o->cap * 2 : 64 << 10;
  if (want > o->max + 1)
    want = o->max + 1;
  if (want <= o->cap)
    return HS_AGENT_ETOOBIG;
  uint8_t *np = realloc(o->p, want + 1);
  if (!np)
    return HS_AGENT_ENOMEM;
  o->p = np;
  o->cap = want;
  return HS_AGENT_OK;
}

static int gunzip(const uint8_t *in, size_t len, outbuf *o, char *err,
                  size_t errlen) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  if (inflateInit2(&z, 15 + 16) != Z_OK)
    return HS_AGENT_ENOMEM;
  int rc = HS_AGENT_OK;
  size_t pos = 0;
  for (;;) {
    /* zlib counts in uInt: feed at most 1 GiB at a time. */
    if (z.avail_in == 0 && pos < len) {
      size_t n = len - pos > (1u << 30) ? (1u << 30) : len - pos;
      z.next_in = (Bytef *)(uintptr_t)(in + pos);
      z.avail_in = (uInt)n;
      pos += n;
    }
    if (o->len == o->cap && (rc = out_grow(o)) != HS_AGENT_OK)
      break;
    z.next_out = o->p + o->len;
    z.avail_out = (uInt)(o->cap - o->len);
    int zr = inflate(&z, Z_NO_FLUSH);
    o->len = o->cap - z.avail_out;
    if (o->len > o->max) {
      rc = HS_AGENT_ETOOBIG;
      break;
    }
    if (zr == Z_STREAM_END) {
      /* Another member may follow (concatenated gzip files). */
      if (z.avail_in == 0 && pos == len)
        break;
      if (z.avail_in < 2 && pos < len) {
        rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "gzip: trailing bytes after the stream");
        break;
      }
      if (z.avail_in < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b) {
        rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "gzip: trailing bytes after the stream");
        break;
      }
      inflateReset(&z);
      continue;
    }
    if (zr == Z_BUF_ERROR && z.avail_in == 0 && pos == len) {
      rc =
          hs_agent_fail(err, errlen, HS_AGENT_EINVAL, "gzip: truncated stream");
      break;
    }
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL, "gzip: %s",
                         z.msg ? z.msg : "corrupt stream");
      break;
    }
  }
  inflateEnd(&z);
  return rc;
}

static int unzstd(const uint8_t *in, size_t len, outbuf *o, char *err,
                  size_t errlen) {
  ZSTD_DStream *d = ZSTD_createDStream();
  if (!d)
    return HS_AGENT_ENOMEM;
  /* Bound the decoder's own window allocation as well. */
  ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27);
  ZSTD_inBuffer ib = {in, len, 0};
  int rc = HS_AGENT_OK;
  size_t last = 1;
  for (;;) {
    if (o->len == o->cap && (rc = out_grow(o)) != HS_AGENT_OK)
      break;
    ZSTD_outBuffer ob = {o->p, o->cap, o->len};
    last = ZSTD_decompressStream(d, &ob, &ib);
    o->len = ob.pos;
    if (ZSTD_isError(last)) {
      rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL, "zstd: %s",
                         ZSTD_getErrorName(last));
      break;
    }
    if (o->len > o->max) {
      rc = HS_AGENT_ETOOBIG;
      break;
    }
    if (ib.pos == ib.size && ob.pos < ob.size) {
      /* All input consumed and the decoder did not fill the output: it is
       * done, or the frame is incomplete. */
      if (last != 0)
        rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "zstd: truncated frame");
      break;
    }
  }
  ZSTD_freeDStream(d);
  return rc;
}

int hs_agent_decompress(int format, const uint8_t *in, size_t len,
                        size_t max_out, uint8_t **out, size_t *outlen,
                        char *err, size_t errlen) {
  outbuf o = {NULL, 0, 0, max_out};
  *out = NULL;
  *outlen = 0;
  int rc;
  if (format == HS_AGENT_COMP_GZIP)
    rc = gunzip(in, len, &o, err, errlen);
  else if (format == HS_AGENT_COMP_ZSTD)
    rc = unzstd(in, len, &o, err, errlen);
  else
    rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                       "unknown compression format");
  if (rc == HS_AGENT_ETOOBIG)
    hs_agent_fail(err, errlen, rc, "decompressed data exceeds %zu bytes",
                  max_out);
  else if (rc == HS_AGENT_ENOMEM)
    hs_agent_fail(err, errlen, rc, "out of memory while decompressing");
  if (rc != HS_AGENT_OK) {
    free(o.p);
    return rc;
  }
  if (!o.p) {
    o.p = malloc(1);
    if (!o.p)
      return hs_agent_fail(err, errlen, HS_AGENT_ENOMEM, "out of memory");
  }
  o.p[o.len] = 0;
  *out = o.p;
  *outlen = o.len;
  return HS_AGENT_OK;
}

int hs_agent_maybe_decompress(const uint8_t *in, size_t len, size_t max_out,
                              const uint8_t **out, size_t *outlen,
                              uint8_t **owned, char *err, size_t errlen) {
  *owned = NULL;
  int fmt = detect_compression(in, len);
  if (fmt == HS_AGENT_COMP_NONE) {
    *out = in;
    *outlen = len;
    return HS_AGENT_OK;
  }
  uint8_t *p;
  size_t n;
  int rc = hs_agent_decompress(fmt, in, len, max_out, &p, &n, err, errlen);
  if (rc != HS_AGENT_OK)
    return rc;
  *owned = p;
  *out = p;
  *outlen = n;
  return HS_AGENT_OK;
}
