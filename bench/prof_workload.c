/* A CPU-bound program that works inside real tracer spans, for the
 * profiler's overhead and memory benchmarks (bench/profiler.sh).
 *
 * It does a fixed amount of work and reports the CPU time it took, so that
 * runs with the profiler off and on (turned on from the environment, as a
 * user would: HOTSPAN_PROFILING_ENABLED=true, or gperftools' CPUPROFILE)
 * can be compared. Each of --threads busy threads serves --requests
 * requests; a request is a root span (one of 8 endpoints, made active), a
 * descent through 14..34 nested calls (the depth varies from request to
 * request), then three child spans ("parse", "db.query", "render"), each
 * made active around a few more nested functions that burn a fixed number
 * of iterations. Sampled stacks are therefore 20 to 45 frames deep, and
 * nearly every sample falls inside a span.
 *
 * --idle N adds N threads that block on a condition variable for the whole
 * run (a server's idle pool); the memory figures are read while they are
 * still alive.
 *
 * Output (one line each, key=value):
 *   result workload cpu_s= user_s= sys_s= wall_s= worker_cpu_s= requests=
 *       CPU time of the whole process (getrusage RUSAGE_SELF: every thread,
 *       the profiler's included) from its start to the end of the work;
 *       worker_cpu_s: the busy threads' own CPU time, which includes the
 *       signal handler and the kernel's delivery of the signal
 *   info threads <name>_cpu_s=...   CPU time of the threads still alive at
 *       the end (the profiler's aggregator hotspan-prof and wall sampler
 *       hotspan-wall, the tracer's writer, main), from schedstat
 *   info mem vmrss_kb= vmhwm_kb= rssanon_kb= rssfile_kb=
 *   info hotspan running= samples_cpu= ... (the profiler's counters)
 *   info gperftools enabled= samples=  (when built with gperftools)
 *   check: checksum=  (a function of the work only: equal in every run)
 *
 * --expect-profiling exits 1 unless hotspan's profiler ran and took CPU
 * samples (the smoke test's check); it makes no timing assertion. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_common.h"
#include "hotspan/hotspan.h"

#ifdef BENCH_HAVE_GPERFTOOLS
#include <gperftools/profiler.h>
#endif

typedef struct opts {
  int threads;
  long requests;
  long work; /* iterations per request */
  int idle;
  int expect_profiling;
} opts;

static hotspan_tracer *tracer;

/* ---------------------------------------------------------------- work */

/* Keeps a value alive across a call so that no call becomes a tail call
 * (every level must stay on the stack). */
#define KEEP(x) __asm__ volatile("" : "+r"(x))

typedef struct req {
  uint64_t x;
  unsigned char buf[256];
} req;

__attribute__((noinline)) static uint64_t mix_round(uint64_t x, long n) {
  for (long i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x += (uint64_t)i;
  }
  return x;
}

__attribute__((noinline)) static uint64_t checksum_bytes(const req *r, long n) {
  uint64_t h = r->x;
  for (long i = 0; i < n; i++)
    h = (h ^ r->buf[i & 255]) * 0x100000001b3ull;
  return h;
}

__attribute__((noinline)) static void fill_bytes(req *r, long n) {
  uint64_t x = r->x | 1;
  for (long i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    r->buf[i & 255] = (unsigned char)(x >> 56);
  }
  r->x ^= x;
}

__attribute__((noinline)) static uint64_t tokenize(req *r, long n) {
  uint64_t v = checksum_bytes(r, n);
  KEEP(v);
  return v;
}

__attribute__((noinline)) static uint64_t parse(req *r, long n) {
  uint64_t v = tokenize(r, n);
  KEEP(v);
  return v;
}

__attribute__((noinline)) static uint64_t plan_step(uint64_t x, long n) {
  uint64_t v = mix_round(x, n);
  KEEP(v);
  return v;
}

__attribute__((noinline)) static uint64_t execute(uint64_t x, long n) {
  uint64_t a = plan_step(x, n / 2);
  uint64_t b = mix_round(a, n - n / 2);
  KEEP(b);
  return b;
}

__attribute__((noinline)) static uint64_t query(uint64_t x, long n) {
  uint64_t v = execute(x, n);
  KEEP(v);
  return v;
}

__attribute__((noinline)) static void render(req *r, long n) {
  fill_bytes(r, n);
  KEEP(r->x);
}

static hotspan_span *child(const char *name) {
  hotspan_span_options so;
  hotspan_span_options_init(&so);
  so.activate = 1;
  return hotspan_span_start(tracer, name, &so);
}

/* The request's handler proper, at the bottom of the descent: parse (1/4
 * of the work), query (1/2), render (1/4), each in its own span. */
__attribute__((noinline)) static uint64_t handle(req *r, long work) {
  hotspan_span *s = child("parse");
  r->x ^= parse(r, work / 4);
  hotspan_span_finish(s);

  s = child("db.query");
  hotspan_span_set_tag_str(s, "db.system", "postgresql");
  r->x = query(r->x, work / 2);
  hotspan_span_finish(s);

  s = child("render");
  render(r, work - work / 4 - work / 2);
  hotspan_span_finish(s);
  return r->x;
}

/* Middleware layers: one frame each. */
__attribute__((noinline)) static uint64_t descend(req *r, int levels,
                                                  long work) {
  uint64_t v = levels > 0 ? descend(r, levels - 1, work) : handle(r, work);
  KEEP(v);
  return v;
}

static const char *const endpoints[8] = {
    "GET /users/:id", "POST /checkout", "GET /cart",   "GET /search",
    "PUT /users/:id", "GET /items/:id", "POST /login", "GET /health"};

__attribute__((noinline)) static uint64_t serve(req *r, long i, long work) {
  hotspan_span_options so;
  hotspan_span_options_init(&so);
  so.root = 1;
  so.activate = 1;
  so.resource = endpoints[i & 7];
  so.kind = HOTSPAN_KIND_SERVER;
  hotspan_span *root = hotspan_span_start(tracer, "http.request", &so);
  hotspan_span_set_tag_str(root, "http.method", "GET");
  /* 14..34 middleware frames: the same sequence in every run. */
  int levels = 14 + (int)((i * 7) % 21);
  uint64_t v = descend(r, levels, work);
  hotspan_span_finish(root);
  return v;
}

/* ---------------------------------------------------------------- threads */

typedef struct worker {
  pthread_t th;
  int index;
  long requests, work;
  uint64_t checksum;
  double cpu_s;
} worker;

static void *worker_main(void *p) {
  worker *w = p;
  req r;
  memset(&r, 0, sizeof r);
  r.x = 0x9e3779b97f4a7c15ull * (uint64_t)(w->index + 1);
  uint64_t sum = 0;
  for (long i = 0; i < w->requests; i++)
    sum += serve(&r, i, w->work);
  w->checksum = sum;
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  w->cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  return NULL;
}

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int idle_release;

static void *idle_main(void *p) {
  (void)p;
  pthread_mutex_lock(&idle_lock);
  while (!idle_release) /* wall samples may wake the wait */
    pthread_cond_wait(&idle_cond, &idle_lock);
  pthread_mutex_unlock(&idle_lock);
  return NULL;
}

/* ---------------------------------------------------------------- report */

static double tv_s(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* CPU time of the threads still alive, summed by name (schedstat's first
 * field: time on the CPU in ns). */
static void report_threads(void) {
  enum { MAXN = 16 };
  char names[MAXN][16];
  double cpu[MAXN];
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[64], name[16] = "";
    unsigned long long ns = 0;
    snprintf(path, sizeof path, "/proc/self/task/%.16s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    if (fgets(name, sizeof name, f) == NULL)
      name[0] = '\0';
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    for (char *c = name; *c; c++)
      if (*c == ' ' || *c == '=')
        *c = '_';
    snprintf(path, sizeof path, "/proc/self/task/%.16s/schedstat", e->d_name);
    f = fopen(path, "r");
    if (f == NULL)
      continue;
    if (fscanf(f, "%llu", &ns) != 1)
      ns = 0;
    fclose(f);
    int i = 0;
    while (i < n && strcmp(names[i], name) != 0)
      i++;
    if (i == n) {
      if (n == MAXN)
        continue;
      snprintf(names[n], sizeof names[n], "%s", name);
      cpu[n++] = 0;
    }
    cpu[i] += (double)ns / 1e9;
  }
  closedir(d);
  printf("info threads");
  for (int i = 0; i < n; i++)
    printf(" %s_cpu_s=%.4f", names[i], cpu[i]);
  printf("\n");
}

static long status_kb(const char *status, const char *key) {
  const char *p = strstr(status, key);
  return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void report_memory(void) {
  char buf[8192];
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  printf("info mem vmrss_kb=%ld vmhwm_kb=%ld rssanon_kb=%ld rssfile_kb=%ld\n",
         status_kb(buf, "VmRSS:"), status_kb(buf, "VmHWM:"),
         status_kb(buf, "RssAnon:"), status_kb(buf, "RssFile:"));
}

static hotspan_profiler_stats report_profiler(void) {
  hotspan_profiler_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  hotspan_profiler_get_stats(&st);
  printf("info hotspan running=%d samples_cpu=%llu samples_wall=%llu "
         "unwind_fp=%llu unwind_libunwind=%llu handler_ns_total=%llu "
         "handler_ns_max=%llu dropped=%llu profiles_written=%llu "
         "threads_registered=%llu\n",
         hotspan_profiler_running(), (unsigned long long)st.samples_cpu,
         (unsigned long long)st.samples_wall, (unsigned long long)st.unwind_fp,
         (unsigned long long)st.unwind_libunwind,
         (unsigned long long)st.handler_ns_total,
         (unsigned long long)st.handler_ns_max,
         (unsigned long long)(st.dropped_ring_full + st.dropped_reentrant +
                              st.dropped_unwind + st.dropped_no_thread +
                              st.dropped_aggregate),
         (unsigned long long)st.profiles_written,
         (unsigned long long)st.threads_registered);
  return st;
}

/* ---------------------------------------------------------------- main */

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--threads N] [--requests N] [--work N] [--idle N]\n"
          "          [--expect-profiling] [--smoke]\n"
          "  --threads N   busy threads (default 4)\n"
          "  --requests N  requests per busy thread (default 4000)\n"
          "  --work N      iterations per request (default 200000)\n"
          "  --idle N      threads blocked for the whole run (default 0)\n"
          "  --expect-profiling  exit 1 unless hotspan's profiler ran and\n"
          "                took CPU samples\n"
          "  --smoke       tiny run for CI (2 threads, 0.3 s of CPU)\n",
          prog);
  exit(2);
}

static long parse_num(const char *prog, const char *s, long min) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min)
    usage(prog);
  return v;
}

static void parse_opts(int argc, char **argv, opts *o) {
  o->threads = 4;
  o->requests = 4000;
  o->work = 200000;
  o->idle = 0;
  o->expect_profiling = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (strcmp(a, "--threads") == 0 && has)
      o->threads = (int)parse_num(argv[0], argv[++i], 1);
    else if (strcmp(a, "--requests") == 0 && has)
      o->requests = parse_num(argv[0], argv[++i], 1);
    else if (strcmp(a, "--work") == 0 && has)
      o->work = parse_num(argv[0], argv[++i], 4);
    else if (strcmp(a, "--idle") == 0 && has)
      o->idle = (int)parse_num(argv[0], argv[++i], 0);
    else if (strcmp(a, "--expect-profiling") == 0)
      o->expect_profiling = 1;
    else if (strcmp(a, "--smoke") == 0) {
      o->threads = 2;
      o->requests = 500;
      o->work = 200000;
    } else
      usage(argv[0]);
  }
  if (o->threads > 1024 || o->idle > 4096)
    usage(argv[0]);
}

int main(int argc, char **argv) {
  opts o;
  parse_opts(argc, argv, &o);

  /* The tracer takes nothing from the environment: HOTSPAN_OUTPUT_DIR,
   * set for the profiler, would otherwise add a trace file sink to the
   * runs with profiling on only. Finished traces go through the tracer's
   * whole pipeline up to the writer thread, which has no sink. */
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "prof-workload";
  cfg.log_level = 1;
  cfg.ignore_environment = 1;
  int rc = hotspan_tracer_new(&cfg, &tracer);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_tracer_new: %s\n", hotspan_strerror(rc));
    return 1;
  }

  pthread_t *idle = calloc((size_t)o.idle + 1, sizeof *idle);
  worker *w = calloc((size_t)o.threads, sizeof *w);
  if (idle == NULL || w == NULL) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  for (int i = 0; i < o.idle; i++)
    if (pthread_create(&idle[i], NULL, idle_main, NULL) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }

  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < o.threads; i++) {
    w[i].index = i;
    w[i].requests = o.requests;
    w[i].work = o.work;
    if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }
  uint64_t checksum = 0;
  double worker_cpu = 0;
  for (int i = 0; i < o.threads; i++) {
    pthread_join(w[i].th, NULL);
    checksum += w[i].checksum;
    worker_cpu += w[i].cpu_s;
  }
  uint64_t t1 = bench_now_ns();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);

  printf("result workload cpu_s=%.4f user_s=%.4f sys_s=%.4f wall_s=%.4f "
         "worker_cpu_s=%.4f requests=%ld\n",
         tv_s(ru.ru_utime) + tv_s(ru.ru_stime), tv_s(ru.ru_utime),
         tv_s(ru.ru_stime), (double)(t1 - t0) / 1e9, worker_cpu,
         o.requests * o.threads);
  report_threads();
  report_memory();
  hotspan_profiler_stats st = report_profiler();
#ifdef BENCH_HAVE_GPERFTOOLS
  struct ProfilerState ps;
  memset(&ps, 0, sizeof ps);
  ProfilerGetCurrentState(&ps);
  printf("info gperftools enabled=%d samples=%d\n", ps.enabled,
         ps.samples_gathered);
#endif
  printf("check checksum=%016llx\n", (unsigned long long)checksum);
  fflush(stdout);

  pthread_mutex_lock(&idle_lock);
  idle_release = 1;
  pthread_cond_broadcast(&idle_cond);
  pthread_mutex_unlock(&idle_lock);
  for (int i = 0; i < o.idle; i++)
    pthread_join(idle[i], NULL);
  hotspan_tracer_free(tracer);
  free(idle);
  free(w);

  if (o.expect_profiling &&
      (!hotspan_profiler_running() || st.samples_cpu == 0 ||
       st.threads_registered < (uint64_t)o.threads)) {
    fprintf(stderr,
            "expected the profiler to run and sample every thread: "
            "running=%d samples_cpu=%llu threads_registered=%llu\n",
            hotspan_profiler_running(), (unsigned long long)st.samples_cpu,
            (unsigned long long)st.threads_registered);
    return 1;
  }
  return 0;
}
