/* Seeds (common/random.h). */
#include "common/random.h"

#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/clock.h"

void hs_random_seed(void *out, size_t n) {
  unsigned char *b = out;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(b + got, n - got, GRND_NONBLOCK);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got < n)
    memset(b + got, 0, n - got);
  /* Mixed in even when getrandom worked: cheap, and it covers a kernel
   * without the call or without entropy yet. */
  uint64_t x = hs_now_mono_ns() ^ (hs_now_unix_ns() << 17) ^
               ((uint64_t)getpid() << 32) ^ (uint64_t)syscall(SYS_gettid) ^
               (uint64_t)(uintptr_t)&x;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t m = hs_splitmix64(&x);
    for (size_t k = 0; k < 8 && i + k < n; k++)
      b[i + k] ^= (unsigned char)(m >> (8 * k));
  }
}

uint64_t hs_random_seed64(void) {
  uint64_t v;
  do
    hs_random_seed(&v, sizeof v);
  while (v == 0);
  return v;
}
