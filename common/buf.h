/* Growable byte buffer with a hard size cap, and JSON writing helpers on
 * top of it. Once an append would pass the cap (or malloc fails) the buffer
 * is marked failed and later appends are ignored: callers check
 * hs_buf_failed() once at the end instead of after every append. */
#ifndef HS_COMMON_BUF_H
#define HS_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct hs_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max; /* hard cap in bytes; 0 = 64 MiB */
  int failed;
} hs_buf;

void hs_buf_init(hs_buf *b, size_t max);
void hs_buf_free(hs_buf *b);
void hs_buf_reset(hs_buf *b); /* len = 0, failed = 0; keeps memory */
static inline int hs_buf_failed(const hs_buf *b) {
  return b->failed;
}
/* Makes room for n more bytes; 0 ok, -1 failed. */
int hs_buf_reserve(hs_buf *b, size_t n);
/* Appends n bytes. The common case (room left, under the cap) is inline:
 * encoders append a few bytes at a time, millions of times a second. */
void hs_buf_append_slow(hs_buf *b, const void *p, size_t n);
static inline void hs_buf_append(hs_buf *b, const void *p, size_t n) {
  size_t len = b->len;
  /* '<' keeps a byte for hs_buf_cstr's terminator, as hs_buf_reserve does */
  if (!b->failed && n != 0 && n < b->cap - len && n <= b->max - len) {
    memcpy(b->data + len, p, n);
    b->len = len + n;
    return;
  }
  hs_buf_append_slow(b, p, n);
}
void hs_buf_puts(hs_buf *b, const char *s);
static inline void hs_buf_putc(hs_buf *b, char c) {
  hs_buf_append(b, &c, 1);
}
void hs_buf_printf(hs_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* NUL-terminates without counting the NUL in len. */
const char *hs_buf_cstr(hs_buf *b);

/* JSON: a quoted, escaped string (NULL writes null); n bytes of s. Invalid
 * UTF-8 bytes are written as \u00XX of the byte so the output stays valid
 * JSON. */
void hs_json_str(hs_buf *b, const char *s);
void hs_json_strn(hs_buf *b, const char *s, size_t n);
void hs_json_u64(hs_buf *b, uint64_t v);
void hs_json_i64(hs_buf *b, int64_t v);
/* Finite doubles in shortest round-trip form; NaN/Inf as null. */
void hs_json_double(hs_buf *b, double v);
/* Lowercase hex, zero-padded to 16 digits. */
void hs_json_hex64(hs_buf *b, uint64_t v);

#endif
