/* Hex digit value. Async-signal-safe. */
#ifndef HS_COMMON_HEX_H
#define HS_COMMON_HEX_H

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

#endif
