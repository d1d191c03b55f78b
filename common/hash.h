/* The one hash of the project: 64-bit FNV-1a, for the hash tables of the
 * library (interned strings, stacks, endpoints, tracestate keys) and of
 * the backend (kvmap, stack ids). Not for anything an attacker may choose
 * to collide where that matters: tables using it bound their probing. */
#ifndef HS_COMMON_HASH_H
#define HS_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HS_FNV1A_OFFSET 14695981039346656037ull
#define HS_FNV1A_PRIME 1099511628211ull

static inline uint64_t hs_hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = HS_FNV1A_OFFSET;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= HS_FNV1A_PRIME;
  }
  return h;
}

#endif
