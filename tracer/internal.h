/* Tracer core internals: spans, local traces, chunks, sinks, per-thread
 * state. Shared by the tracer sources, the exporters and unit tests. */
#ifndef HS_TRACER_INTERNAL_H
#define HS_TRACER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fork.h"
#include "context/identity.h"
#include "context/thread_ctx.h"
#include "hotspan/propagation.h"
#include "hotspan/tracer.h"
#include "tracer/build.h"
#include "tracer/propagation_codec.h"
#include "tracer/sampler.h"
#include "tracer/trace_sink.h"

/* ------------------------------------------------------------ traces */

/* The part of a trace living in this process. Reference counted: one
 * reference per span not yet released, one per chunk in flight. */
struct hs_trace {
  pthread_mutex_t mu;
  _Atomic uint32_t refs;
  hotspan_tracer *tracer;
  uint64_t id_high;
  uint64_t id_low;
  uint64_t local_root_id;
  hotspan_span *local_root; /* NULL once it finished */
  _Atomic uint32_t endpoint_id;
  /* Sampling, under mu. */
  int priority; /* HOTSPAN_PRIORITY_*; UNSET until decided */
  /* W3C sampled flag for the thread context record: 1 while undecided or
   * kept. Written under mu with the priority, read without the lock by
   * the thread publishing its active span. */
  _Atomic uint8_t sampled_flag;
  int mechanism;
  int decided;
  double rule_rate;
  double limit_rate;
  double agent_rate; /* the agent's rate that decided; <0 none */
  /* Span bookkeeping, under mu. */
  hotspan_span *open_head; /* open spans, for reclaim and counting */
  uint32_t nopen;
  hotspan_span *finished; /* finished, not yet flushed, newest first */
  uint32_t nfinished;
  /* Spans created and finished in this trace since its last chunk; added
   * to the tracer's counters with each chunk (and at release), instead of
   * two shared atomic increments per span. Under mu. */
  uint32_t n_created;
  uint32_t n_finished;
  uint8_t root_finished;
  uint8_t has_remote;
  hs_trace *orphan_next; /* tracer's list of traces with spans left open */
  /* Every live trace is on one of its tracer's shard lists (under the
   * shard's mutex), so that hotspan_tracer_free can flush and reclaim
   * traces whose root never finished. */
  hs_trace *live_prev;
  hs_trace *live_next;
  uint8_t live_shard;
  /* From an extracted context (has_remote), copied at root start. The
   * large buffers come last, so that starting a trace writes only the
   * first cache lines of the object (HS_TRACE_HOT_BYTES);
   * tracestate_other is set only for a remote parent and read only when
   * has_remote is 1. */
  char origin[HOTSPAN_ORIGIN_MAX];
  char last_dd_parent_id[17];
  char propagated_tags[HOTSPAN_PROPAGATED_TAGS_MAX];
  char tracestate_other[HOTSPAN_TRACESTATE_MAX];
};

/* The part of an hs_trace that starting a local trace writes. */
#define HS_TRACE_HOT_BYTES (offsetof(hs_trace, propagated_tags) + 1)

/* ------------------------------------------------------------ sinks */

/* Sink that discards everything (benchmarks, tests). */
hs_trace_sink *hs_sink_discard_new(void);

/* ------------------------------------------------------------ tracer */

#define HS_LIVE_SHARDS 16

/* Parses an exporter list ("datadog,otlp", "dd", "none"; the rules of
 * hs_parse_name_list) into HS_EXPORT_* bits. Returns 0, or -1 for an
 * unknown name or an empty list (the first bad name is copied to bad). */
int hs_parse_exporters(const char *list, unsigned *out, char *bad,
                       size_t badlen);

/* Builds the effective settings from cfg and the environment (precedence:
 * code > HOTSPAN_* > DD_* / OTEL_* > defaults). Returns HOTSPAN_OK,
 * HOTSPAN_ECONFIG (bad value in cfg; message in err), HOTSPAN_ENOMEM. */
int hs_settings_load(const hotspan_config *cfg, hs_tracer_settings *out,
                     char *err, size_t errlen);
void hs_settings_free(hs_tracer_settings *s);
/* The effective configuration as one JSON object (for the start-up log). */
void hs_settings_describe(const hs_tracer_settings *s, const hs_sampler *smp,
                          const hs_trace_sink *sinks, struct hs_buf *out);

typedef struct hs_counters {
  _Atomic uint64_t spans_created;
  _Atomic uint64_t spans_finished;
  _Atomic uint64_t spans_dropped;
  _Atomic uint64_t spans_unfinished;
  _Atomic uint64_t traces_kept;
  _Atomic uint64_t traces_dropped;
  _Atomic uint64_t traces_rate_limited;
  _Atomic uint64_t chunks_partial;
  _Atomic uint64_t chunks_queue_dropped;
  _Atomic uint64_t extract_errors;
} hs_counters;

/* The writer: a bounded queue of chunks drained by one background thread
 * that calls the sinks. Application threads only take a short mutex. */
typedef struct hs_writer {
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* wakes the writer thread */
  pthread_cond_t done_cv; /* wakes flushers */
  hs_chunk *head;
  hs_chunk *tail;
  uint64_t queued_spans;
  uint64_t max_spans;    /* bound of queued_spans; past it chunks are dropped */
  uint64_t enqueued_seq; /* chunks ever enqueued */
  uint64_t written_seq;  /* chunks the thread finished with */
  uint64_t flush_req;    /* forced sink flushes asked for */
  uint64_t flush_done;   /* forced sink flushes done */
  int stop;
  int running;
  pthread_t thread;
  _Atomic unsigned fork_gen; /* hs_fork_generation() of the thread */
} hs_writer;

struct hotspan_tracer {
  hs_tracer_settings settings;
  hs_trace_sink_host host; /* what its sinks see of it */
  hs_sampler *sampler;
  hs_trace_sink *sinks;
  hs_writer writer;
  hs_counters counters;
  pthread_mutex_t orphans_mu;
  hs_trace *orphans; /* traces whose root finished with spans still open */
  struct {
    pthread_mutex_t mu;
    hs_trace *head;
  } live[HS_LIVE_SHARDS];
  hotspan_tracer *next_tracer; /* global list, for fork handling */
};

/* Queue a kept chunk (takes ownership). Never blocks on I/O. */
void hs_writer_enqueue(hotspan_tracer *t, hs_chunk *c);
int hs_writer_start(hotspan_tracer *t);
/* Waits until everything enqueued before the call was written. */
int hs_writer_flush(hotspan_tracer *t, int timeout_ms);
void hs_writer_stop(hotspan_tracer *t, int timeout_ms);

/* ------------------------------------------------------------ memory */

/* Spans and traces come from process-wide pools with per-thread caches, so
 * that steady-state span creation does not call malloc. */
hotspan_span *hs_span_alloc(void);
void hs_span_release(hotspan_span *s); /* frees tag memory, back to pool */
hs_trace *hs_trace_alloc(void);
void hs_trace_unref(hs_trace *tr);
void hs_trace_unref_n(hs_trace *tr, uint32_t n);
/* Live-trace registry of a tracer (tracer/trace.c). */
void hs_trace_register(hotspan_tracer *t, hs_trace *tr);
void hs_trace_unregister(hs_trace *tr);
/* Records a priority and decision maker (mechanism < 0: decided upstream)
 * and updates sampled_flag. Under tr->mu. */
void hs_trace_set_priority_locked(hs_trace *tr, int priority, int mechanism);
static inline void hs_trace_ref(hs_trace *tr) {
  atomic_fetch_add_explicit(&tr->refs, 1, memory_order_relaxed);
}
/* Chunks come from a pool too: one per flushed trace. */
hs_chunk *hs_chunk_alloc(void);
/* Releases every span of a chunk and the chunk's trace reference. */
void hs_chunk_free(hs_chunk *c);

/* ------------------------------------------------------------ threads */

/* Per-thread state of the tracer. */
typedef struct hs_tstate {
  hs_thread_ctx *rec;   /* published thread context record */
  hotspan_span *active; /* active span or NULL */
  uint64_t rng[2];      /* xoroshiro128+ state */
  unsigned rng_fork_gen;
  /* CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed every second, so that a
   * span start costs one clock read instead of two. */
  uint64_t rt_offset;
  uint64_t rt_offset_mono;
  struct hs_cache *caches; /* one per pool (tracer/pool.c) */
} hs_tstate;

/* The calling thread's state, created on first use; NULL if out of memory.
 * Not for signal handlers. */
hs_tstate *hs_tstate_get(void);

/* Ids: 64-bit random, never 0; span ids have the top bit clear. */
uint64_t hs_random64(hs_tstate *ts);
uint64_t hs_new_span_id(hs_tstate *ts);

/* Unix time in ns for the monotonic time mono (from the thread's cached
 * offset between the two clocks, refreshed once a second). */
uint64_t hs_unix_from_mono(hs_tstate *ts, uint64_t mono);

#endif
