/* The one source of seeds: random bytes for ids, runtime ids, multipart
 * boundaries and the generators of the tracer, the profiler and the
 * transport. */
#ifndef HS_COMMON_RANDOM_H
#define HS_COMMON_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills out[0..n) from the kernel's random source without blocking, mixed
 * with the clocks, the pid, the tid and a stack address, so that the bytes
 * still differ between calls, threads and processes when the kernel has
 * no entropy yet (early boot) or no getrandom. Never fails; not for
 * signal handlers. */
void hs_random_seed(void *out, size_t n);

/* A non-zero 64-bit seed (hs_random_seed). */
uint64_t hs_random_seed64(void);

/* splitmix64: advances *x and returns the next output; a good mixer for
 * turning one seed into several. */
static inline uint64_t hs_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#endif
