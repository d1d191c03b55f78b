/* The one gzip writer (common/gzip.h). */
#include "common/gzip.h"

#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "hotspan/error.h"

int hs_gzip_append(hs_buf *out, const void *in, size_t n, int level) {
  const uint8_t *data = in;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* windowBits 15 + 16 selects the gzip wrapper. */
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return HOTSPAN_ENOMEM;
  int rc = HOTSPAN_OK;
  zs.next_in = (Bytef *)(uintptr_t)data;
  size_t left = n;
  unsigned char chunk[65536];
  int flush;
  do {
    uInt take = left > (1u << 30) ? (1u << 30) : (uInt)left;
    zs.next_in = (Bytef *)(uintptr_t)(data + (n - left));
    zs.avail_in = take;
    left -= take;
    flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    do {
      zs.next_out = chunk;
      zs.avail_out = sizeof chunk;
      int zr = deflate(&zs, flush);
      if (zr == Z_STREAM_ERROR) {
        rc = HOTSPAN_ENOMEM;
        break;
      }
      size_t have = sizeof chunk - zs.avail_out;
      if (have > out->max - out->len) {
        out->failed = 1;
        rc = HOTSPAN_ETOOBIG;
        break;
      }
      hs_buf_append(out, chunk, have);
      if (hs_buf_failed(out)) {
        rc = HOTSPAN_ENOMEM;
        break;
      }
    } while (zs.avail_out == 0);
  } while (rc == HOTSPAN_OK && flush != Z_FINISH);
  deflateEnd(&zs);
  return rc;
}
