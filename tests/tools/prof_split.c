/* A single-threaded program with a known CPU split between two functions,
 * for tests/scripts/test_profile_accuracy.sh: split_heavy() does 7 work
 * units and split_light() 3 per round (70/30 by work), each round with a
 * random number of units so that no round length runs in step with a
 * sampling period. The program measures the CPU time of every call with
 * CLOCK_THREAD_CPUTIME_ID (outside the two functions, which call nothing)
 * and prints the true split.
 *
 *   prof_split <cpu ms>
 *       works for <cpu ms> of CPU time, for an outside profiler (perf);
 *   prof_split --profile <dir> <samples> <max cpu ms>
 *       profiles itself through the public API (CPU only, 999 Hz) until
 *       the profiler has taken <samples> CPU samples, or <max cpu ms> of
 *       CPU time passed, and writes the profile into <dir>. Stopping on a
 *       sample count does not bias the split: when to stop does not depend
 *       on where the samples fell.
 *
 * Output, one line:
 *   heavy_ns=<n> light_ns=<n> heavy_pct=<share of heavy, 2 decimals>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hotspan/hotspan.h>

/* Work per unit: a multiply-add chain, about 0.1 ms. */
#define UNIT_ITERS 40000u

static volatile double sink_heavy, sink_light;
/* Read through a volatile so that the compiler cannot fold or specialise
 * the two functions on a constant argument. */
static volatile unsigned unit_iters = UNIT_ITERS;

static uint64_t cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The two functions differ in their constants so that the compiler cannot
 * merge them into one (identical code folding). Both are leaves. */
__attribute__((noinline)) void split_heavy(unsigned units) {
  unsigned n = units * unit_iters;
  double x = 1;
  for (unsigned i = 0; i < n; i++)
    x = x * 1.0000001 + 0.25;
  sink_heavy = x;
}

__attribute__((noinline)) void split_light(unsigned units) {
  unsigned n = units * unit_iters;
  double x = 2;
  for (unsigned i = 0; i < n; i++)
    x = x * 0.9999999 + 0.5;
  sink_light = x;
}

static uint64_t cpu_samples(void) {
  hotspan_profiler_stats st = {.struct_size = sizeof st};
  return hotspan_profiler_get_stats(&st) == HOTSPAN_OK ? st.samples_cpu : 0;
}

static int usage(void) {
  fprintf(stderr, "usage: prof_split <cpu ms>\n"
                  "       prof_split --profile <dir> <samples> <max cpu ms>\n");
  return 2;
}

int main(int argc, char **argv) {
  int profile = argc == 5 && strcmp(argv[1], "--profile") == 0;
  if (!profile && argc != 2)
    return usage();
  uint64_t budget = strtoull(argv[profile ? 4 : 1], NULL, 10) * 1000000ull;
  uint64_t want_samples = profile ? strtoull(argv[3], NULL, 10) : 0;
  if (budget == 0)
    return usage();
  if (profile) {
    hotspan_profiler_config cfg;
    hotspan_profiler_config_init(&cfg);
    cfg.ignore_environment = 1;
    cfg.cpu_hz = 999;
    cfg.wall_enabled = 0;
    cfg.output_dir = argv[2];
    int rc = hotspan_profiler_start(&cfg);
    if (rc != HOTSPAN_OK) {
      fprintf(stderr, "hotspan_profiler_start: %s\n", hotspan_strerror(rc));
      return 1;
    }
  }
  uint64_t heavy = 0, light = 0;
  uint32_t rnd = 2463534242u; /* xorshift32 */
  while (heavy + light < budget && (!profile || cpu_samples() < want_samples)) {
    rnd ^= rnd << 13;
    rnd ^= rnd >> 17;
    rnd ^= rnd << 5;
    unsigned k = 1 + rnd % 4;
    uint64_t t0 = cpu_ns();
    split_heavy(7 * k);
    uint64_t t1 = cpu_ns();
    split_light(3 * k);
    uint64_t t2 = cpu_ns();
    heavy += t1 - t0;
    light += t2 - t1;
  }
  if (profile) {
    int rc = hotspan_profiler_stop();
    if (rc != HOTSPAN_OK) {
      fprintf(stderr, "hotspan_profiler_stop: %s\n", hotspan_strerror(rc));
      return 1;
    }
  }
  printf("heavy_ns=%llu light_ns=%llu heavy_pct=%.2f\n",
         (unsigned long long)heavy, (unsigned long long)light,
         100.0 * (double)heavy / (double)(heavy + light));
  return 0;
}
