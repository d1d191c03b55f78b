/* The contract between the profiler's sampling engine (signal handler,
 * rings, aggregator thread) and its profile builder (aggregation,
 * symbolization, pprof encoding).
 *
 * A sample is written by a signal handler into preallocated ring memory and
 * read by the aggregator thread, which hands it to hs_profile_add(). */
#ifndef HS_PROFILER_SAMPLE_H
#define HS_PROFILER_SAMPLE_H

#include <stdint.h>

#include "context/thread_ctx.h"

#define HS_PROF_MAX_DEPTH_LIMIT 512 /* hard upper bound of max stack depth */
#define HS_PROF_DEFAULT_DEPTH 128

enum hs_sample_kind {
  HS_SAMPLE_CPU = 1, /* taken by a thread's CPU-time timer */
  HS_SAMPLE_WALL = 2 /* taken by the wall-clock sampler (tgkill) */
};

typedef struct hs_sample {
  uint64_t time_ns;  /* Unix time in ns when the sample was taken */
  uint64_t cpu_ns;   /* CPU time this sample stands for (0 for wall) */
  uint64_t wall_ns;  /* wall time this sample stands for (0 for cpu) */
  uint32_t tid;      /* kernel thread id */
  uint16_t depth;    /* number of entries in pcs */
  uint8_t kind;      /* enum hs_sample_kind */
  uint8_t truncated; /* nonzero: the stack was deeper than max depth */
  uint8_t has_ctx;   /* nonzero: ctx holds the active span */
  hs_ctx_value ctx;  /* trace id, span id, local root span id, endpoint id */
  /* Leaf first. pcs[0] is the interrupted instruction pointer; every other
   * entry is a return address (symbolize pcs[i] - 1 for i > 0). */
  uintptr_t pcs[];
} hs_sample;

#endif
