/* Support for the profiler tests: a sample collector (the engine's sample
 * hook), a symbolizer for the test process (elfutils' libdwfl, which sees
 * static functions too), starting and stopping the profiler with settings
 * that ignore the environment, clocks and CPU burners. */
#ifndef HS_TESTS_SUPPORT_PROF_H
#define HS_TESTS_SUPPORT_PROF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* The samples collected since the last pt_reset(); read them once the
 * profiler is stopped (pt_stop) or synced. */
extern pt_sample *pt_samples;
extern size_t pt_n;

/* The sample hook that collects (install with hs_prof_set_sample_hook). */
void pt_hook(const hs_sample *s, const char *name, void *arg);
void pt_reset(void);
void pt_free(void);

/* ---- running the profiler --------------------------------------------- */

/* Starts the profiler ignoring the environment: CPU at cpu_hz and wall at
 * wall_hz (0 turns that clock off), the given unwinder
 * (hotspan_profiler_unwinder) and max_depth (0: the default). With collect
 * set, the collector is reset and installed as the sample hook first.
 * Returns hotspan_profiler_start's status. */
int pt_start(double cpu_hz, double wall_hz, int unwinder, uint32_t max_depth,
             int collect);
/* Waits for the aggregator, stops the profiler (both asserted) and removes
 * the sample hook. */
void pt_stop(void);
/* A cmocka teardown that leaves no profiler running behind a failed test. */
int pt_teardown(void **state);

/* ---- symbols ---------------------------------------------------------- */

void pt_sym_open(void);
void pt_sym_close(void);
/* Function name at pcs[i] of a sample ("" if unknown). */
const char *pt_func(const uintptr_t *pcs, uint32_t i);
/* Index of the first frame whose function is named fn, or -1. */
int pt_find(const pt_sample *p, const char *fn);
/* Nonzero if the functions in names[] appear in this order (leaf side
 * first), consecutive in the stack. */
int pt_chain(const pt_sample *p, const char *const *names, int n);

/* ---- clocks and burners ----------------------------------------------- */

uint64_t pt_thread_cpu_ns(void);
uint64_t pt_mono_ns(void);
pid_t pt_gettid(void);
/* Sleeps ms of wall time even when signals interrupt nanosleep. */
void pt_sleep_ms(unsigned ms);
/* Burns CPU until the calling thread used ms of CPU time. Never inlined,
 * so samples show it under its own name. */
void pt_burn_cpu(unsigned ms);

#endif
