/* Loads libhotspan.so with dlopen() into a process that is already running
 * several threads, then traces on those threads.
 *
 * This is how nginx (and any plugin host) loads hotspan: after startup,
 * with worker threads alive. A shared library's initial-exec TLS has to fit
 * in the surplus glibc reserved in each thread's static TLS block when the
 * thread was created; a library that uses too much fails to load with
 * "cannot allocate memory in static TLS block". And the per-thread context
 * record must work on threads that never saw the library at creation.
 *
 * The program is not linked against libhotspan: every function comes from
 * dlsym(), and the public header is included only for types and constants.
 *
 * Usage: test_dlopen_mt <path to libhotspan.so>
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotspan/hotspan.h"
#include "support/sanitizer.h"

/* Under ASan, leaks are checked before dlclose(): after it, the library's
 * frames in a leak report would show as "<unknown module>". */
#if UNDER_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#define N_THREADS 4
#define SPANS_PER_THREAD 200
#define SONAME "libhotspan.so.0"

/* The slice of the public API this test uses, resolved with dlsym. */
static struct {
  const char *(*version)(void);
  void (*config_init)(hotspan_config *);
  int (*tracer_new)(const hotspan_config *, hotspan_tracer **);
  void (*tracer_free)(hotspan_tracer *);
  void (*span_options_init)(hotspan_span_options *);
  hotspan_span *(*span_start)(hotspan_tracer *, const char *,
                              const hotspan_span_options *);
  void (*span_finish)(hotspan_span *);
  uint64_t (*span_id)(const hotspan_span *);
  uint64_t (*span_trace_id_low)(const hotspan_span *);
  uint64_t (*span_trace_id_high)(const hotspan_span *);
  hotspan_span *(*active_span)(void);
  void (*profiler_config_init)(hotspan_profiler_config *);
  int (*profiler_start)(const hotspan_profiler_config *);
  int (*profiler_stop)(void);
  int (*profiler_get_stats)(hotspan_profiler_stats *);
} api;

static void *lib;
static hotspan_tracer *tracer;

/* 0: threads spin, waiting for the library; 1: trace now. */
static atomic_int phase;
static atomic_int running;

typedef struct {
  int index;
  uint64_t busy; /* work done while waiting, so the thread really runs */
  char error[256];
} worker;

#define FAIL(w, ...)                                                           \
  do {                                                                         \
    snprintf((w)->error, sizeof(w)->error, __VA_ARGS__);                       \
    return NULL;                                                               \
  } while (0)

static uint64_t be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Checks the OTEP 4947 thread context record this thread publishes through
 * the exported TLS pointer otel_thread_ctx_v1 (trace_id u8[16] @0, span_id
 * u8[8] @16, valid u8 @24, big-endian ids). dlsym of a TLS symbol returns
 * the calling thread's instance. NULL expected: no span active. */
static const char *check_record(const hotspan_span *expected) {
  uint8_t *const *slot = dlsym(lib, "otel_thread_ctx_v1");
  if (slot == NULL)
    return "otel_thread_ctx_v1 not found";
  const uint8_t *rec = *slot;
  if (expected == NULL)
    return (rec == NULL || rec[24] == 0) ? NULL : "record valid, no span";
  if (rec == NULL)
    return "no thread context record while a span is active";
  if (rec[24] != 1)
    return "record not valid while a span is active";
  if (be64(rec + 16) != api.span_id(expected))
    return "record span_id differs from the active span";
  if (be64(rec) != api.span_trace_id_high(expected) ||
      be64(rec + 8) != api.span_trace_id_low(expected))
    return "record trace_id differs from the active span's trace";
  return NULL;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  atomic_fetch_add(&running, 1);
  /* Run (not block) until the main thread has loaded the library. */
  while (atomic_load(&phase) == 0) {
    for (int i = 0; i < 1000; i++)
      w->busy = w->busy * 6364136223846793005u + 1442695040888963407u;
    sched_yield();
  }

  hotspan_span_options opts;
  for (int i = 0; i < SPANS_PER_THREAD; i++) {
    api.span_options_init(&opts);
    opts.activate = 1;
    hotspan_span *root = api.span_start(tracer, "dlopen.request", &opts);
    if (root == NULL)
      FAIL(w, "span_start returned NULL");
    if (api.active_span() != root)
      FAIL(w, "activated root span is not the active span");
    const char *err = check_record(root);
    if (err)
      FAIL(w, "root: %s", err);

    api.span_options_init(&opts);
    opts.activate = 1; /* parent: the active span */
    hotspan_span *child = api.span_start(tracer, "dlopen.work", &opts);
    if (child == NULL)
      FAIL(w, "child span_start returned NULL");
    if (api.span_trace_id_low(child) != api.span_trace_id_low(root) ||
        api.span_id(child) == api.span_id(root))
      FAIL(w, "child is not in the active span's trace");
    if ((err = check_record(child)) != NULL)
      FAIL(w, "child: %s", err);
    api.span_finish(child);
    if (api.active_span() != root)
      FAIL(w, "finishing the child did not restore the root");
    if ((err = check_record(root)) != NULL)
      FAIL(w, "root after child: %s", err);
    api.span_finish(root);
    if (api.active_span() != NULL)
      FAIL(w, "a span is still active after finishing the root");
    if ((err = check_record(NULL)) != NULL)
      FAIL(w, "after finish: %s", err);
  }
  return NULL;
}

#define RESOLVE(field, name)                                                   \
  do {                                                                         \
    *(void **)&api.field = dlsym(lib, name);                                   \
    if (api.field == NULL) {                                                   \
      fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());                     \
      return 1;                                                                \
    }                                                                          \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <path to libhotspan.so>\n", argv[0]);
    return 2;
  }
  const char *path = argv[1];

  /* The point is loading late: make sure nothing loaded it already. */
  if (dlopen(path, RTLD_NOW | RTLD_NOLOAD) != NULL ||
      dlopen(SONAME, RTLD_NOW | RTLD_NOLOAD) != NULL) {
    fprintf(stderr, "libhotspan is already loaded at startup\n");
    return 1;
  }

  pthread_t threads[N_THREADS];
  worker workers[N_THREADS];
  memset(workers, 0, sizeof workers);
  for (int i = 0; i < N_THREADS; i++) {
    workers[i].index = i;
    if (pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }
  while (atomic_load(&running) < N_THREADS)
    sched_yield();

  lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    /* Typically "cannot allocate memory in static TLS block". */
    fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
    return 1;
  }
  RESOLVE(version, "hotspan_version");
  RESOLVE(config_init, "hotspan_config_init");
  RESOLVE(tracer_new, "hotspan_tracer_new");
  RESOLVE(tracer_free, "hotspan_tracer_free");
  RESOLVE(span_options_init, "hotspan_span_options_init");
  RESOLVE(span_start, "hotspan_span_start");
  RESOLVE(span_finish, "hotspan_span_finish");
  RESOLVE(span_id, "hotspan_span_id");
  RESOLVE(span_trace_id_low, "hotspan_span_trace_id_low");
  RESOLVE(span_trace_id_high, "hotspan_span_trace_id_high");
  RESOLVE(active_span, "hotspan_active_span");
  printf("loaded hotspan %s with %d threads running\n", api.version(),
         N_THREADS);

  hotspan_config cfg;
  api.config_init(&cfg);
  cfg.service = "dlopen-test";
  cfg.ignore_environment = 1;
  cfg.exporters = "none"; /* no network in this test */
  int rc = api.tracer_new(&cfg, &tracer);
  if (rc != HOTSPAN_OK || tracer == NULL) {
    fprintf(stderr, "hotspan_tracer_new failed: %d\n", rc);
    return 1;
  }

  /* Profiler: started while the threads spin, so it must find them in
   * /proc/self/task (they were created before the library was loaded, so
   * its pthread_create wrapper never saw them) and sample them. */
  RESOLVE(profiler_config_init, "hotspan_profiler_config_init");
  RESOLVE(profiler_start, "hotspan_profiler_start");
  RESOLVE(profiler_stop, "hotspan_profiler_stop");
  RESOLVE(profiler_get_stats, "hotspan_profiler_get_stats");
  hotspan_profiler_config pcfg;
  api.profiler_config_init(&pcfg);
  pcfg.ignore_environment = 1;
  pcfg.cpu_hz = 199;
  pcfg.wall_hz = 97;
  rc = api.profiler_start(&pcfg);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_profiler_start failed: %d\n", rc);
    return 1;
  }
  hotspan_profiler_stats pst;
  for (int tries = 0; tries < 1000; tries++) { /* at most ~10 s */
    memset(&pst, 0, sizeof pst);
    pst.struct_size = sizeof pst;
    api.profiler_get_stats(&pst);
    if (pst.samples_cpu >= 4 * N_THREADS && pst.samples_wall >= N_THREADS)
      break;
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  printf("profiler: %llu threads registered, %llu CPU and %llu wall "
         "samples\n",
         (unsigned long long)pst.threads_registered,
         (unsigned long long)pst.samples_cpu,
         (unsigned long long)pst.samples_wall);
  if (pst.threads_registered < N_THREADS + 1 ||
      pst.samples_cpu < 4 * N_THREADS || pst.samples_wall < N_THREADS) {
    fprintf(stderr, "profiler did not sample the running threads\n");
    return 1;
  }

  atomic_store(&phase, 1);
  int failed = 0;
  for (int i = 0; i < N_THREADS; i++) {
    pthread_join(threads[i], NULL);
    if (workers[i].error[0] != '\0') {
      fprintf(stderr, "thread %d: %s\n", i, workers[i].error);
      failed = 1;
    }
  }

  if (api.profiler_stop() != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_profiler_stop failed\n");
    failed = 1;
  }
  api.tracer_free(tracer);
#if UNDER_ASAN
  /* Everything the library allocated for the tracer and for the (joined)
   * threads is freed by now; reports and exits on a leak. */
  __lsan_do_leak_check();
#endif
  /* Unloading must be possible once the tracer is gone (no thread of the
   * library may still run its code). */
  if (dlclose(lib) != 0) {
    fprintf(stderr, "dlclose: %s\n", dlerror());
    failed = 1;
  }
  if (!failed)
    printf("%d threads x %d spans traced after a late dlopen\n", N_THREADS,
           SPANS_PER_THREAD);
  return failed;
}
