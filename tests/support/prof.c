#include "support/prof.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hotspan/error.h"
#include "hotspan/profiler.h"

static pthread_mutex_t pt_lock = PTHREAD_MUTEX_INITIALIZER;
pt_sample *pt_samples;
size_t pt_n;
static size_t pt_cap;

void pt_hook(const hs_sample *s, const char *name, void *arg) {
  (void)arg;
  pthread_mutex_lock(&pt_lock);
  if (pt_n == pt_cap) {
    size_t cap = pt_cap ? pt_cap * 2 : 1024;
    pt_sample *n = realloc(pt_samples, cap * sizeof *n);
    if (n == NULL) {
      pthread_mutex_unlock(&pt_lock);
      return;
    }
    pt_samples = n;
    pt_cap = cap;
  }
  pt_sample *d = &pt_samples[pt_n++];
  d->s.time_ns = s->time_ns;
  d->s.cpu_ns = s->cpu_ns;
  d->s.wall_ns = s->wall_ns;
  d->s.tid = s->tid;
  d->s.depth = s->depth;
  d->s.kind = s->kind;
  d->s.truncated = s->truncated;
  d->s.has_ctx = s->has_ctx;
  d->s.ctx = s->ctx;
  memcpy(d->pcs, s->pcs, s->depth * sizeof(uintptr_t));
  strncpy(d->thread_name, name ? name : "", sizeof d->thread_name - 1);
  d->thread_name[sizeof d->thread_name - 1] = '\0';
  pthread_mutex_unlock(&pt_lock);
}

void pt_reset(void) {
  pthread_mutex_lock(&pt_lock);
  pt_n = 0;
  pthread_mutex_unlock(&pt_lock);
}

void pt_free(void) {
  pthread_mutex_lock(&pt_lock);
  free(pt_samples);
  pt_samples = NULL;
  pt_n = pt_cap = 0;
  pthread_mutex_unlock(&pt_lock);
}

int pt_start(double cpu_hz, double wall_hz, int unwinder, uint32_t max_depth,
             int collect) {
  if (collect) {
    pt_reset();
    hs_prof_set_sample_hook(pt_hook, NULL);
  }
  hotspan_profiler_config c;
  hotspan_profiler_config_init(&c);
  c.ignore_environment = 1;
  c.cpu_enabled = cpu_hz > 0;
  c.wall_enabled = wall_hz > 0;
  if (cpu_hz > 0)
    c.cpu_hz = cpu_hz;
  if (wall_hz > 0)
    c.wall_hz = wall_hz;
  c.unwinder = (hotspan_profiler_unwinder)unwinder;
  if (max_depth > 0)
    c.max_depth = max_depth;
  return hotspan_profiler_start(&c);
}

void pt_stop(void) {
  assert_int_equal(hs_prof_engine_sync(5000), HOTSPAN_OK);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
  hs_prof_set_sample_hook(NULL, NULL);
}

int pt_teardown(void **state) {
  (void)state;
  hotspan_profiler_stop();
  hs_prof_set_sample_hook(NULL, NULL);
  return 0;
}

static Dwfl *pt_dwfl;

void pt_sym_open(void) {
  static const Dwfl_Callbacks cb = {
      .find_elf = dwfl_linux_proc_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
  };
  if (pt_dwfl != NULL)
    dwfl_end(pt_dwfl);
  pt_dwfl = dwfl_begin(&cb);
  dwfl_linux_proc_report(pt_dwfl, getpid());
  dwfl_report_end(pt_dwfl, NULL, NULL);
}

void pt_sym_close(void) {
  if (pt_dwfl != NULL)
    dwfl_end(pt_dwfl);
  pt_dwfl = NULL;
}

const char *pt_func(const uintptr_t *pcs, uint32_t i) {
  if (pt_dwfl == NULL)
    pt_sym_open();
  Dwarf_Addr a = pcs[i] - (i > 0 ? 1 : 0);
  Dwfl_Module *m = dwfl_addrmodule(pt_dwfl, a);
  const char *n = m ? dwfl_module_addrname(m, a) : NULL;
  return n ? n : "";
}

int pt_find(const pt_sample *p, const char *fn) {
  for (uint32_t i = 0; i < p->s.depth; i++)
    if (strcmp(pt_func(p->pcs, i), fn) == 0)
      return (int)i;
  return -1;
}

int pt_chain(const pt_sample *p, const char *const *names, int n) {
  int at = pt_find(p, names[0]);
  if (at < 0)
    return 0;
  for (int k = 1; k < n; k++)
    if ((uint32_t)(at + k) >= p->s.depth ||
        strcmp(pt_func(p->pcs, (uint32_t)(at + k)), names[k]) != 0)
      return 0;
  return 1;
}

uint64_t pt_thread_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t pt_mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

pid_t pt_gettid(void) {
  return (pid_t)syscall(SYS_gettid);
}

void pt_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Per thread: the burners run on many threads at once. */
static __thread volatile double burn_sink;

__attribute__((noinline)) void pt_burn_cpu(unsigned ms) {
  uint64_t until = pt_thread_cpu_ns() + (uint64_t)ms * 1000000u;
  double x = 0;
  while (pt_thread_cpu_ns() < until)
    for (int i = 0; i < 2000; i++)
      x += i * 0.5;
  burn_sink = x;
}
