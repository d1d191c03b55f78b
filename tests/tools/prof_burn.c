/* A program that knows nothing of hotspan, for the LD_PRELOAD tests:
 * two threads burn CPU in burn_alpha() and burn_beta() for a given CPU
 * time each; then, if asked, a third thread ends the process with exit()
 * while the others still run.
 *
 *   prof_burn <ms> [exit-from-thread]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile double sink_a, sink_b;
static unsigned burn_ms = 300;

static unsigned long long cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (unsigned long long)t.tv_sec * 1000000000u +
         (unsigned long long)t.tv_nsec;
}

__attribute__((noinline)) void burn_alpha(unsigned ms) {
  unsigned long long until = cpu_ns() + ms * 1000000ull;
  double x = 1;
  while (cpu_ns() < until)
    for (int i = 0; i < 100000; i++)
      x = x * 1.0000001 + 0.25;
  sink_a = x;
}

__attribute__((noinline)) void burn_beta(unsigned ms) {
  unsigned long long until = cpu_ns() + ms * 1000000ull;
  double x = 2;
  while (cpu_ns() < until)
    for (int i = 0; i < 100000; i++)
      x = x * 0.9999999 + 0.5;
  sink_b = x;
}

static void *alpha(void *arg) {
  (void)arg;
  burn_alpha(burn_ms);
  return NULL;
}

static void *beta(void *arg) {
  (void)arg;
  burn_beta(burn_ms);
  return NULL;
}

/* Sleeps the full time: a profiler's signals interrupt nanosleep (EINTR),
 * as any signal does. */
static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static void *exiter(void *arg) {
  (void)arg;
  sleep_ms(burn_ms + 200);
  exit(0); /* from a thread other than main, others still running */
}

int main(int argc, char **argv) {
  if (argc > 1)
    burn_ms = (unsigned)atoi(argv[1]);
  int exit_from_thread = argc > 2 && strcmp(argv[2], "exit-from-thread") == 0;
  pthread_t a, b, e;
  if (pthread_create(&a, NULL, alpha, NULL) != 0 ||
      pthread_create(&b, NULL, beta, NULL) != 0)
    return 1;
  if (exit_from_thread) {
    if (pthread_create(&e, NULL, exiter, NULL) != 0)
      return 1;
    for (;;) /* main keeps running; the exiter ends the process */
      pause();
  }
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  return 0;
}
