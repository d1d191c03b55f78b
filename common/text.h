/* Small text helpers without allocation or locale: decimal formatting and
 * bounded copies of NUL-terminated fields. Thread-safe. */
#ifndef HS_COMMON_TEXT_H
#define HS_COMMON_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Writes v in decimal plus NUL into dst (>= 21 bytes); returns the length.
 * Two digits per division: ids are up to 20 digits and are written on
 * every outgoing request. */
static inline size_t hs_fmt_u64(char *dst, uint64_t v) {
  static const char pairs[] = "00010203040506070809101112131415161718192021222"
                              "32425262728293031323334353637383940414243444546"
                              "47484950515253545556575859606162636465666768697"
                              "07172737475767778798081828384858687888990919293"
                              "949596979899";
  char tmp[20];
  size_t n = sizeof tmp;
  while (v >= 100) {
    unsigned r = (unsigned)(v % 100);
    v /= 100;
    tmp[--n] = pairs[2 * r + 1];
    tmp[--n] = pairs[2 * r];
  }
  if (v >= 10) {
    tmp[--n] = pairs[2 * v + 1];
    tmp[--n] = pairs[2 * v];
  } else {
    tmp[--n] = (char)('0' + v);
  }
  size_t len = sizeof tmp - n;
  memcpy(dst, tmp + n, len);
  dst[len] = '\0';
  return len;
}

/* Writes v in decimal plus NUL into dst (>= 12 bytes); returns the length. */
static inline size_t hs_fmt_int(char *dst, int v) {
  if (v < 0) {
    dst[0] = '-';
    return 1 + hs_fmt_u64(dst + 1, (uint64_t)(-(int64_t)v));
  }
  return hs_fmt_u64(dst, (uint64_t)v);
}

/* Copies the string src into dst of cap bytes, up to its NUL and at most
 * cap - 1 bytes, and terminates it: the trace context's buffers are 1.2 KB
 * in all and usually almost empty, so a copy per chunk stays cheap. */
static inline void hs_copy_field(char *dst, const char *src, size_t cap) {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

#endif
