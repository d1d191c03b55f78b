#include "support/gzip.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

uint8_t *ts_gzip(const void *in, size_t n, int level, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  /* 31: a gzip header and trailer around the deflate stream. */
  assert_int_equal(
      deflateInit2(&z, level, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&z, (uLong)n) + 32;
  uint8_t *out = malloc(cap);
  assert_non_null(out);
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  *out_len = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

uint8_t *ts_gunzip(const void *in, size_t n, size_t *out_len) {
  const uint8_t *p = in;
  assert_true(n > 18);
  assert_int_equal(p[0], 0x1f); /* gzip magic */
  assert_int_equal(p[1], 0x8b);
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
  size_t cap = 1 << 16, len = 0;
  uint8_t *out = malloc(cap);
  assert_non_null(out);
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)n;
  int r;
  do {
    if (cap - len < 2) {
      cap *= 2;
      out = realloc(out, cap);
      assert_non_null(out);
    }
    z.next_out = out + len;
    z.avail_out = (uInt)(cap - len - 1);
    r = inflate(&z, Z_NO_FLUSH);
    assert_true(r == Z_OK || r == Z_STREAM_END);
    len = (size_t)(z.next_out - out);
  } while (r != Z_STREAM_END);
  assert_int_equal(z.avail_in, 0); /* one member, nothing after it */
  inflateEnd(&z);
  out[len] = 0;
  *out_len = len;
  return out;
}
