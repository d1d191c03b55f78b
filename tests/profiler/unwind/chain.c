/* A call chain chain_a -> chain_b -> chain_c that burns CPU in chain_c,
 * compiled at -O2 once with and once without frame pointers (see
 * CMakeLists.txt) to test the unwinders on both kinds of code. */
#include <time.h>

void chain_a(unsigned ms);
void chain_b(unsigned ms);
void chain_c(unsigned ms);

volatile double chain_sink;

static unsigned long long thread_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (unsigned long long)t.tv_sec * 1000000000u +
         (unsigned long long)t.tv_nsec;
}

/* Spends nearly all its time in its own arithmetic loop: the clock is read
 * rarely, so that most samples land in chain_c itself. */
__attribute__((noinline)) void chain_c(unsigned ms) {
  unsigned long long until = thread_cpu_ns() + ms * 1000000ull;
  double x = chain_sink;
  while (thread_cpu_ns() < until)
    for (int i = 0; i < 200000; i++)
      x = x * 1.0000001 + 0.5;
  chain_sink = x;
}

/* The statement after each call keeps it from becoming a tail call. */
__attribute__((noinline)) void chain_b(unsigned ms) {
  chain_c(ms);
  chain_sink += 1;
}

__attribute__((noinline)) void chain_a(unsigned ms) {
  chain_b(ms);
  chain_sink += 2;
}
