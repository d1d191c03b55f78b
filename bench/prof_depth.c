/* The cost of one profiler sample at a given stack depth, per unwinder
 * (bench/profiler.sh; docs/PERFORMANCE.md, "Profiler").
 *
 * Built twice from this file: prof_depth_fp (-fno-omit-frame-pointer, the
 * project's default) and prof_depth_nofp (-fomit-frame-pointer, the
 * default of distribution builds). One thread recurses until the stack is
 * --depth frames deep, counted leaf to _start as libunwind sees them, and
 * burns a fixed number of iterations in the leaf, so that nearly every
 * sample is taken at that depth. The leaf is either frameless (--leaf bare:
 * what gcc 12 makes of a small hot loop even with -fno-omit-frame-pointer;
 * clang keeps the frame) or sets up a frame (--leaf framed).
 *
 * The program runs --segments segments, each with the profiler started
 * (CPU profile only, at --hz, wall profile off, the given unwinder, no
 * output) and stopped around the burn, and reports, as medians over the
 * segments:
 *   handler_ns   time in the signal handler per sample: the profiler's own
 *                counters (handler_ns_total / samples_cpu). They are read
 *                with the monotonic clock, so they include any preemption
 *                of the handler; the median over segments discards the
 *                segments where that happened much
 *   agg_ms_per_s CPU time of the profiler's aggregator thread (draining
 *                the ring, folding samples into the profile; nothing is
 *                encoded) per second of the sampled thread's CPU time
 * and the depth the profiler recorded (the most frequent one, from the
 * engine's sample hook) and which unwinder took the stacks.
 *
 * --kernel measures instead what a signal costs outside our handler: a
 * thread sends itself the signal with tgkill and an empty SA_SIGINFO
 * handler returns (system call, delivery, signal frame, sigreturn), in ns
 * per signal, the median of --segments batches.
 *
 * Output:
 *   result sample_cost unwinder=<u> leaf=<l> depth=<d> handler_ns=<x>
 *       handler_max_ns=<x> agg_ms_per_s=<x> samples=<n> recorded_depth=<n>
 *       at_depth=<fraction> unwind_fp=<n> unwind_libunwind=<n>
 *       incomplete=<n> truncated=<n> dropped=<n> timer_overruns=<n>
 *       cpu_s=<x> segments=<n>
 *   result signal_roundtrip ns=<x> batches=<n>
 *
 * --smoke runs two short segments and exits 1 if no sample was taken or
 * the forced unwinder did not take them; no timing assertion. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "bench_common.h"
#include "hotspan/hotspan.h"
#include "profiler/engine.h"

typedef struct opts {
  int depth;
  int unwinder;
  const char *unwinder_name;
  int framed_leaf;
  double hz;
  int segments;
  long iters;
  int kernel;
  int smoke;
  int verbose;
} opts;

/* ---------------------------------------------------------------- stack */

#define KEEP(x) __asm__ volatile("" : "+r"(x))

static int probe_depth; /* frames seen by libunwind in the leaf */

/* Counts the frames above the leaf as libunwind does in the handler. */
__attribute__((noinline)) static void probe(void) {
  void *pcs[512];
  /* unw_backtrace's frames start at its caller: this function, which
   * stands where the burning function is in a measured segment. */
  probe_depth = unw_backtrace(pcs, 512);
}

/* The frameless leaf: a loop that needs no stack. */
__attribute__((noinline)) static uint64_t burn_bare(uint64_t x, long n) {
  for (long i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

/* The same loop in a leaf that has a frame: a volatile local lives on the
 * stack, so a frame-pointer build sets up %rbp. */
__attribute__((noinline)) static uint64_t burn_framed(uint64_t x, long n) {
  volatile uint64_t slot = 0;
  for (long i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  slot = x;
  return slot;
}

__attribute__((noinline)) static uint64_t leaf(uint64_t x, long n, int framed,
                                               int do_probe) {
  if (do_probe) {
    probe();
    return x;
  }
  return framed ? burn_framed(x, n) : burn_bare(x, n);
}

__attribute__((noinline)) static uint64_t
recurse(int levels, uint64_t x, long n, int framed, int do_probe) {
  uint64_t v = levels > 0 ? recurse(levels - 1, x + 1, n, framed, do_probe)
                          : leaf(x, n, framed, do_probe);
  KEEP(v);
  return v;
}

/* ---------------------------------------------------------------- hook */

/* Recorded depths of CPU samples (the aggregator thread writes, main
 * reads after a sync). Samples outside the leaf (starting and stopping the
 * profiler, reading clocks) are shallower: the most frequent depth is the
 * leaf's. */
static _Atomic uint64_t depth_hist[HS_PROF_MAX_DEPTH_LIMIT + 1];

static void on_sample(const hs_sample *s, const char *thread_name, void *arg) {
  (void)thread_name;
  (void)arg;
  if (s->kind == HS_SAMPLE_CPU && s->depth <= HS_PROF_MAX_DEPTH_LIMIT)
    atomic_fetch_add(&depth_hist[s->depth], 1);
}

/* ---------------------------------------------------------------- timing */

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the profiler's aggregator thread ("hotspan-prof") in ns,
 * from schedstat; 0 if it is not found. */
static uint64_t aggregator_cpu_ns(void) {
  uint64_t total = 0;
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[64], name[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%.16s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    if (fgets(name, sizeof name, f) == NULL)
      name[0] = '\0';
    fclose(f);
    if (strncmp(name, "hotspan-prof", 12) != 0)
      continue;
    snprintf(path, sizeof path, "/proc/self/task/%.16s/schedstat", e->d_name);
    f = fopen(path, "r");
    unsigned long long ns = 0;
    if (f != NULL) {
      if (fscanf(f, "%llu", &ns) == 1)
        total += ns;
      fclose(f);
    }
  }
  closedir(d);
  return total;
}

/* ---------------------------------------------------------------- main */

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--depth N] [--unwinder fp|libunwind|auto]\n"
          "          [--leaf bare|framed] [--hz N] [--segments N]\n"
          "          [--iters N] [--kernel] [--verbose] [--smoke]\n"
          "  --depth N     frames on the stack at the leaf, leaf to _start\n"
          "                (default 32)\n"
          "  --unwinder U  the profiler's unwinder (default fp)\n"
          "  --leaf L      frameless or framed leaf (default framed)\n"
          "  --hz N        CPU samples per second, 1..1000 (default 1000)\n"
          "  --segments N  profiled segments (default 8)\n"
          "  --iters N     leaf iterations per segment (default 300000000)\n"
          "  --kernel      measure a signal to self with an empty handler\n"
          "  --verbose     one line per pair on stderr\n"
          "  --smoke       tiny run for CI; checks that samples were taken\n",
          prog);
  exit(2);
}

static long parse_num(const char *prog, const char *s, long min, long max) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
    usage(prog);
  return v;
}

static void parse_opts(int argc, char **argv, opts *o) {
  o->depth = 32;
  o->unwinder = HOTSPAN_UNWINDER_FP;
  o->unwinder_name = "fp";
  o->framed_leaf = 1;
  o->hz = 1000;
  o->segments = 8;
  o->iters = 300000000;
  o->kernel = 0;
  o->smoke = 0;
  o->verbose = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (strcmp(a, "--depth") == 0 && has) {
      o->depth = (int)parse_num(argv[0], argv[++i], 1, 500);
    } else if (strcmp(a, "--unwinder") == 0 && has) {
      o->unwinder_name = argv[++i];
      if (strcmp(o->unwinder_name, "fp") == 0)
        o->unwinder = HOTSPAN_UNWINDER_FP;
      else if (strcmp(o->unwinder_name, "libunwind") == 0)
        o->unwinder = HOTSPAN_UNWINDER_LIBUNWIND;
      else if (strcmp(o->unwinder_name, "auto") == 0)
        o->unwinder = HOTSPAN_UNWINDER_AUTO;
      else
        usage(argv[0]);
    } else if (strcmp(a, "--leaf") == 0 && has) {
      const char *l = argv[++i];
      if (strcmp(l, "bare") == 0)
        o->framed_leaf = 0;
      else if (strcmp(l, "framed") == 0)
        o->framed_leaf = 1;
      else
        usage(argv[0]);
    } else if (strcmp(a, "--hz") == 0 && has) {
      o->hz = (double)parse_num(argv[0], argv[++i], 1, 1000);
    } else if (strcmp(a, "--segments") == 0 && has) {
      o->segments = (int)parse_num(argv[0], argv[++i], 1, 1000);
    } else if (strcmp(a, "--kernel") == 0) {
      o->kernel = 1;
    } else if (strcmp(a, "--iters") == 0 && has) {
      o->iters = parse_num(argv[0], argv[++i], 1, 1L << 40);
    } else if (strcmp(a, "--verbose") == 0) {
      o->verbose = 1;
    } else if (strcmp(a, "--smoke") == 0) {
      o->smoke = 1;
      o->segments = 2;
      o->iters = 60000000;
    } else {
      usage(argv[0]);
    }
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  if (n == 0)
    return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---------------------------------------------------------------- kernel */

static void empty_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
}

static int run_kernel(const opts *o) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = empty_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) {
    perror("sigaction");
    return 1;
  }
  pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
  enum { N = 200000 };
  double *ns = calloc((size_t)o->segments, sizeof(double));
  if (ns == NULL)
    return 1;
  for (int i = 0; i < 2000; i++) /* warm-up */
    syscall(SYS_tgkill, pid, tid, SIGUSR1);
  for (int b = 0; b < o->segments; b++) {
    uint64_t t0 = thread_cpu_ns();
    for (int i = 0; i < N; i++)
      syscall(SYS_tgkill, pid, tid, SIGUSR1);
    ns[b] = (double)(thread_cpu_ns() - t0) / N;
  }
  printf("result signal_roundtrip ns=%.0f batches=%d\n",
         median(ns, o->segments), o->segments);
  free(ns);
  return 0;
}

/* ---------------------------------------------------------------- segments */

static volatile uint64_t sink;

typedef struct segment {
  uint64_t cpu_ns, agg_ns;
  hotspan_profiler_stats st;
} segment;

/* One profiled burn. Returns 0, or -1 if the profiler did not start. */
static int run_segment(const opts *o, int levels, segment *r) {
  hotspan_profiler_config cfg;
  hotspan_profiler_config_init(&cfg);
  cfg.cpu_hz = o->hz;
  cfg.wall_enabled = 0;
  cfg.unwinder = (hotspan_profiler_unwinder)o->unwinder;
  cfg.export_period_ms = 3600 * 1000; /* no period ends in a segment */
  cfg.ignore_environment = 1;
  int rc = hotspan_profiler_start(&cfg);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_profiler_start: %s\n", hotspan_strerror(rc));
    return -1;
  }
  uint64_t a0 = aggregator_cpu_ns();
  uint64_t t0 = thread_cpu_ns();
  sink += recurse(levels, sink | 1, o->iters, o->framed_leaf, 0);
  r->cpu_ns = thread_cpu_ns() - t0;
  /* Let the aggregator fold every sample, then read its CPU time. */
  if (hs_prof_engine_sync(5000) != HOTSPAN_OK)
    fprintf(stderr, "aggregator sync timed out\n");
  r->agg_ns = aggregator_cpu_ns() - a0;
  memset(&r->st, 0, sizeof r->st);
  r->st.struct_size = sizeof r->st;
  hotspan_profiler_get_stats(&r->st);
  hotspan_profiler_stop();
  return 0;
}

int main(int argc, char **argv) {
  opts o;
  parse_opts(argc, argv, &o);
  if (o.kernel)
    return run_kernel(&o);

  /* Depth without recursion, then as many levels as make up the rest. */
  recurse(0, 1, 0, o.framed_leaf, 1);
  int levels = o.depth - probe_depth;
  if (levels < 0) {
    fprintf(stderr, "--depth must be at least %d here\n", probe_depth);
    return 2;
  }
  hs_prof_set_sample_hook(on_sample, NULL);

  int n = o.segments, used = 0;
  double *handler = calloc((size_t)n, sizeof(double));
  double *agg = calloc((size_t)n, sizeof(double));
  if (handler == NULL || agg == NULL) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  uint64_t samples = 0, handler_max = 0, fp = 0, unw = 0, incomplete = 0,
           truncated = 0, dropped = 0, overruns = 0, cpu_ns = 0;
  /* Warm-up, unmeasured: page faults, caches, libunwind's cache. */
  segment warm;
  if (run_segment(&o, levels, &warm) != 0)
    return 1;
  memset(depth_hist, 0, sizeof depth_hist);
  for (int i = 0; i < n; i++) {
    segment r;
    if (run_segment(&o, levels, &r) != 0)
      return 1;
    const hotspan_profiler_stats *st = &r.st;
    uint64_t s = st->samples_cpu;
    if (s > 0) {
      handler[used] = (double)st->handler_ns_total / (double)s;
      agg[used] = (double)r.agg_ns / 1e3 / ((double)r.cpu_ns / 1e9);
      used++;
    }
    if (o.verbose)
      fprintf(stderr,
              "segment %d: %.1f ms CPU, %llu samples, %llu timer overruns, "
              "handler %.0f ns/sample (max %llu)\n",
              i, (double)r.cpu_ns / 1e6, (unsigned long long)s,
              (unsigned long long)st->timer_overruns,
              s ? (double)st->handler_ns_total / (double)s : 0.0,
              (unsigned long long)st->handler_ns_max);
    samples += s;
    cpu_ns += r.cpu_ns;
    if (st->handler_ns_max > handler_max)
      handler_max = st->handler_ns_max;
    fp += st->unwind_fp;
    unw += st->unwind_libunwind;
    incomplete += st->unwind_incomplete;
    truncated += st->stacks_truncated;
    overruns += st->timer_overruns;
    dropped += st->dropped_ring_full + st->dropped_reentrant +
               st->dropped_unwind + st->dropped_no_thread +
               st->dropped_aggregate;
  }
  uint64_t mode = 0, at_mode = 0, hooked = 0;
  for (int d = 0; d <= HS_PROF_MAX_DEPTH_LIMIT; d++) {
    uint64_t c = atomic_load(&depth_hist[d]);
    hooked += c;
    if (c > at_mode) {
      at_mode = c;
      mode = (uint64_t)d;
    }
  }
  printf("result sample_cost unwinder=%s leaf=%s depth=%d handler_ns=%.0f "
         "handler_max_ns=%llu agg_ms_per_s=%.3f samples=%llu "
         "recorded_depth=%llu at_depth=%.3f unwind_fp=%llu "
         "unwind_libunwind=%llu incomplete=%llu truncated=%llu dropped=%llu "
         "timer_overruns=%llu cpu_s=%.3f segments=%d\n",
         o.unwinder_name, o.framed_leaf ? "framed" : "bare", o.depth,
         median(handler, used), (unsigned long long)handler_max,
         median(agg, used) / 1e3, (unsigned long long)samples,
         (unsigned long long)mode,
         hooked ? (double)at_mode / (double)hooked : 0.0,
         (unsigned long long)fp, (unsigned long long)unw,
         (unsigned long long)incomplete, (unsigned long long)truncated,
         (unsigned long long)dropped, (unsigned long long)overruns,
         (double)cpu_ns / 1e9, n);
  free(handler);
  free(agg);

  if (o.smoke &&
      (samples == 0 || used < n ||
       (o.unwinder == HOTSPAN_UNWINDER_FP && fp != samples) ||
       (o.unwinder == HOTSPAN_UNWINDER_LIBUNWIND && unw != samples))) {
    fprintf(stderr, "smoke: expected samples taken by the %s unwinder\n",
            o.unwinder_name);
    return 1;
  }
  return 0;
}
