/* The one hex codec: reading a digit or a 64-bit value, writing one.
 * Async-signal-safe. */
#ifndef HS_COMMON_HEX_H
#define HS_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Value of the hex digit c (either case), or -1 if c is not one. */
static inline int hs_hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Parses exactly n (1..16) hex digits of s into *out; with lower_only,
 * uppercase digits are refused (W3C and B3 specify lowercase). Returns 0,
 * or -1 (n out of range or a non-digit). */
static inline int hs_hex_parse_u64(const char *s, size_t n, int lower_only,
                                   uint64_t *out) {
  if (n == 0 || n > 16)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    int d = hs_hexval((unsigned char)s[i]);
    if (d < 0 || (lower_only && s[i] >= 'A' && s[i] <= 'F'))
      return -1;
    v = (v << 4) | (uint64_t)d;
  }
  *out = v;
  return 0;
}

/* Writes v as 16 lowercase hex digits at dst (no NUL). */
static inline void hs_hex16(char *dst, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--) {
    dst[i] = digits[v & 0xf];
    v >>= 4;
  }
}

#endif
