/* Hex digits: reading one, writing a 64-bit value. Async-signal-safe. */
#ifndef HS_COMMON_HEX_H
#define HS_COMMON_HEX_H

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

/* Writes v as 16 lowercase hex digits at dst (no NUL). */
static inline void hs_hex16(char *dst, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--) {
    dst[i] = digits[v & 0xf];
    v >>= 4;
  }
}

#endif
