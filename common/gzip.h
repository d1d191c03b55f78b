/* The one gzip writer: pprof profiles (a gzip member, as pprof files
 * are), OTLP request bodies (Content-Encoding: gzip) and the backend's
 * pprof exports. */
#ifndef HS_COMMON_GZIP_H
#define HS_COMMON_GZIP_H

#include <stddef.h>

#include "common/buf.h"

/* Appends in[0..n) compressed as one gzip member at zlib level (0..9, or
 * -1 for zlib's default) to out, in 64 KiB steps, so memory grows with the
 * compressed size only. Returns HOTSPAN_OK, HOTSPAN_ETOOBIG (out's cap
 * reached: out is marked failed) or HOTSPAN_ENOMEM. */
int hs_gzip_append(hs_buf *out, const void *in, size_t n, int level);

#endif
