/* Helpers shared by the profiler engine tests: a sample collector (the
 * engine's sample hook), a symbolizer for the test process (elfutils'
 * libdwfl, which sees static functions too), and CPU burners.
 * Header-only: each test executable is a single source file. */
#ifndef HS_TESTS_PROF_TEST_UTIL_H
#define HS_TESTS_PROF_TEST_UTIL_H

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "profiler/engine.h"
#include "profiler/sample.h"

/* ---- collected samples ---------------------------------------------- */

/* The fixed part of hs_sample (a struct with a flexible array member may
 * not be a member in ISO C). */
typedef struct pt_sample_head {
  uint64_t time_ns, cpu_ns, wall_ns;
  uint32_t tid;
  uint16_t depth;
  uint8_t kind, truncated, has_ctx;
  hs_ctx_value ctx;
} pt_sample_head;

typedef struct pt_sample {
  pt_sample_head s;
  uintptr_t pcs[HS_PROF_MAX_DEPTH_LIMIT];
  char thread_name[16];
} pt_sample;

static pthread_mutex_t pt_lock = PTHREAD_MUTEX_INITIALIZER;
static pt_sample *pt_samples;
static size_t pt_n, pt_cap;

static __attribute__((unused)) void pt_hook(const hs_sample *s,
                                            const char *name, void *arg) {
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

static __attribute__((unused)) void pt_reset(void) {
  pthread_mutex_lock(&pt_lock);
  pt_n = 0;
  pthread_mutex_unlock(&pt_lock);
}

static __attribute__((unused)) void pt_free(void) {
  pthread_mutex_lock(&pt_lock);
  free(pt_samples);
  pt_samples = NULL;
  pt_n = pt_cap = 0;
  pthread_mutex_unlock(&pt_lock);
}

/* ---- symbols ---------------------------------------------------------- */

static Dwfl *pt_dwfl;

static __attribute__((unused)) void pt_sym_open(void) {
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

static __attribute__((unused)) void pt_sym_close(void) {
  if (pt_dwfl != NULL)
    dwfl_end(pt_dwfl);
  pt_dwfl = NULL;
}

/* Function name at pcs[i] of a sample ("" if unknown). */
static const char *pt_func(const uintptr_t *pcs, uint32_t i) {
  if (pt_dwfl == NULL)
    pt_sym_open();
  Dwarf_Addr a = pcs[i] - (i > 0 ? 1 : 0);
  Dwfl_Module *m = dwfl_addrmodule(pt_dwfl, a);
  const char *n = m ? dwfl_module_addrname(m, a) : NULL;
  return n ? n : "";
}

/* Index of the first frame whose function is named fn, or -1. */
static __attribute__((unused)) int pt_find(const pt_sample *p, const char *fn) {
  for (uint32_t i = 0; i < p->s.depth; i++)
    if (strcmp(pt_func(p->pcs, i), fn) == 0)
      return (int)i;
  return -1;
}

/* Nonzero if the functions in names[] appear in this order (leaf side
 * first), consecutive in the stack. */
static __attribute__((unused)) int pt_chain(const pt_sample *p,
                                            const char *const *names, int n) {
  int at = pt_find(p, names[0]);
  if (at < 0)
    return 0;
  for (int k = 1; k < n; k++)
    if ((uint32_t)(at + k) >= p->s.depth ||
        strcmp(pt_func(p->pcs, (uint32_t)(at + k)), names[k]) != 0)
      return 0;
  return 1;
}

/* ---- burners ---------------------------------------------------------- */

static __attribute__((unused)) uint64_t pt_thread_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static __attribute__((unused)) uint64_t pt_mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static __attribute__((unused)) pid_t pt_gettid(void) {
  return (pid_t)syscall(SYS_gettid);
}

/* Sleeps ms of wall time even when signals interrupt nanosleep. */
static __attribute__((unused)) void pt_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

#endif
