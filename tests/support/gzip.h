/* gzip for tests, with zlib (not hotspan's writer, so a test of hotspan's
 * gzip or of a decoder does not check hotspan against itself). Both fail
 * the test (cmocka) when zlib does. */
#ifndef HS_TESTS_SUPPORT_GZIP_H
#define HS_TESTS_SUPPORT_GZIP_H

#include <stddef.h>
#include <stdint.h>

/* The gzip stream of in[0..n) at the given level (1-9), malloc'd. */
uint8_t *ts_gzip(const void *in, size_t n, int level, size_t *out_len);
/* The content of one complete gzip stream, malloc'd (with a terminating
 * NUL byte not counted in *out_len). Asserts the magic bytes, that the
 * stream ends and that nothing follows it. */
uint8_t *ts_gunzip(const void *in, size_t n, size_t *out_len);

#endif
