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
#include "tracer/propagation_codec.h"
#include "tracer/sampler.h"

/* ------------------------------------------------------------ limits */
#define HS_TAG_KEY_MAX 200
#define HS_TAG_VALUE_MAX 25000
#define HS_SPAN_INLINE_TAGS 8
#define HS_SPAN_ARENA 320
#define HS_SPAN_MAX_TAGS 4096

/* ------------------------------------------------------------ spans */
enum hs_tag_type { HS_TAG_STR = 1, HS_TAG_INT, HS_TAG_DOUBLE, HS_TAG_BOOL };

typedef struct hs_tag {
  const char *key; /* in the span's arena */
  uint8_t type;    /* enum hs_tag_type */
  uint16_t klen;   /* strlen(key) (at most HS_TAG_KEY_MAX) */
  union {
    const char *s; /* in the span's arena */
    int64_t i;
    double d;
  } v;
} hs_tag;

/* Span events and links (OTLP Span.events / Span.links; Datadog meta
 * "events" and "_dd.span_links"). Kept in the span's arena, in the order
 * they were added. */
#define HS_SPAN_MAX_EVENTS 128
#define HS_SPAN_MAX_LINKS 128
#define HS_SPAN_MAX_ATTRS 128 /* per event or link */

typedef struct hs_span_event {
  struct hs_span_event *next;
  const char *name;
  uint64_t time_ns; /* Unix ns */
  hs_tag *attrs;    /* nattrs entries, in the arena */
  uint16_t nattrs;
} hs_span_event;

typedef struct hs_span_link {
  struct hs_span_link *next;
  uint64_t trace_id_high;
  uint64_t trace_id_low;
  uint64_t span_id;
  uint8_t trace_flags;    /* W3C flags byte of the linked context */
  uint8_t remote;         /* its hotspan_context.remote */
  const char *tracestate; /* W3C tracestate of the linked context; NULL */
  hs_tag *attrs;
  uint16_t nattrs;
} hs_span_link;

enum hs_span_state { HS_SPAN_FREE = 0, HS_SPAN_OPEN = 1, HS_SPAN_FINISHED = 2 };

typedef struct hs_arena_block {
  struct hs_arena_block *next;
  char data[];
} hs_arena_block;

typedef struct hs_trace hs_trace;

struct hotspan_span {
  hs_trace *trace;
  hotspan_span *next;      /* trace's finished list, or a free list */
  hotspan_span *open_prev; /* trace's list of open spans */
  hotspan_span *open_next;
  hotspan_span *prev_active; /* what was active before hotspan_span_activate */
  uint64_t span_id;
  uint64_t parent_id; /* 0 for a trace root */
  uint64_t start_ns;  /* Unix ns */
  uint64_t start_mono;
  uint64_t duration_ns;
  const char *name;
  const char *resource;
  const char *service; /* the tracer's string unless set per span */
  const char *type;    /* NULL if none */
  uint8_t kind;
  uint8_t error;
  _Atomic uint8_t state;
  uint8_t is_local_root;
  uint8_t start_explicit; /* start_ns given by the caller */
  uint8_t activated;      /* 1 while activated with hotspan_span_activate */
  uint16_t ntags;
  uint16_t cap_tags;
  hs_tag *tags;          /* inline_tags or heap */
  hs_span_event *events; /* first event, NULL if none */
  hs_span_event *events_tail;
  hs_span_link *links; /* first link, NULL if none */
  hs_span_link *links_tail;
  uint16_t nevents;
  uint16_t nlinks;
  uint16_t dropped_events; /* past HS_SPAN_MAX_EVENTS */
  uint16_t dropped_links;  /* past HS_SPAN_MAX_LINKS */
  hs_arena_block *blocks;  /* overflow of the arena */
  char *apos;
  char *aend;
  /* The fields above are written for every span; keeping them together
   * keeps the number of cache lines a span touches low. */
  hs_tag inline_tags[HS_SPAN_INLINE_TAGS];
  char arena[HS_SPAN_ARENA];
};

/* The part of a span that starting it, setting a few tags and encoding it
 * touch: its fields, the inline tags and the start of its arena. */
#define HS_SPAN_HOT_BYTES (offsetof(hotspan_span, arena) + 128)

/* Asks the CPU to start loading what an encoder will read of span s (a
 * hint; s may be NULL). A chunk waiting in the writer's queue has often
 * left every cache by the time it is written, and the spans of a chunk
 * are a linked list, so without this each one costs several memory
 * round trips in a row. */
static inline void hs_span_prefetch(const hotspan_span *s) {
  if (s == NULL)
    return;
  for (size_t off = 0; off < HS_SPAN_HOT_BYTES; off += 64)
    __builtin_prefetch((const char *)s + off, 0, 3);
}

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

/* Trace-level values a sink needs, copied under the trace mutex once per
 * chunk (the sampling decision and the extracted context may still change
 * while a sink encodes the chunk). */
typedef struct hs_trace_view {
  int priority;
  int mechanism;
  double rule_rate;
  double limit_rate;
  double agent_rate;
  uint8_t has_remote; /* the local root has a remote parent */
  uint32_t endpoint_id;
  char origin[HOTSPAN_ORIGIN_MAX];
  char propagated_tags[HOTSPAN_PROPAGATED_TAGS_MAX];
  char tracestate_other[HOTSPAN_TRACESTATE_MAX];
  char last_dd_parent_id[17];
} hs_trace_view;

/* Fills *out from tr (takes and releases tr->mu; copies strings only up to
 * their NUL). Thread-safe; never fails. Not for signal handlers. */
void hs_trace_snapshot(hs_trace *tr, hs_trace_view *out);

/* A batch of finished spans of one trace, handed to the sinks. */
typedef struct hs_chunk {
  hs_trace *trace;     /* holds a reference */
  hotspan_span *spans; /* linked by next */
  uint32_t nspans;
  uint8_t partial; /* the local root is not in this chunk */
  struct hs_chunk *next;
} hs_chunk;

/* ------------------------------------------------------------ sinks */

/* A sink receives kept chunks on the tracer's writer thread, one at a time
 * (never concurrently), and must not keep pointers into them after write
 * returns. flush (optional) is called on the writer thread after each
 * batch and on every writer tick (HS_WRITER_TICK_MS) with force 0, so a
 * sink can send by size or by age; with force 1 when hotspan_tracer_flush
 * or hotspan_tracer_free asks for everything buffered to be handed on.
 * sync (optional) is called from the thread calling hotspan_tracer_flush
 * or hotspan_tracer_free, after the forced flush: it waits at most
 * timeout_ms for what the sink handed on to be delivered (HOTSPAN_OK or
 * HOTSPAN_EIO). final is 1 at shutdown (tracer free, process exit): then
 * nothing is retried after a failure, so a dead backend does not hold the
 * exit for the whole retry schedule. destroy runs after the writer thread
 * stopped. */
typedef struct hs_sink {
  const char *name;
  void (*write)(struct hs_sink *self, const hs_chunk *chunk);
  void (*flush)(struct hs_sink *self, int force);
  int (*sync)(struct hs_sink *self, int timeout_ms, int final);
  /* Optional, for exporters: fills *out (a full-size struct, zeroed by the
   * caller). Called from any thread while the sink runs. */
  void (*stats)(struct hs_sink *self, hotspan_exporter_stats *out);
  /* Optional: called in a forked child (only one thread exists) before
   * anything else runs there. The parent's writer thread may have been
   * inside write or flush at the fork, so the sink must not touch what it
   * had buffered (leak it: it is the parent's data) and start empty. */
  void (*after_fork_child)(struct hs_sink *self);
  void (*destroy)(struct hs_sink *self);
  struct hs_sink *next;
} hs_sink;

/* Adds a sink; the tracer owns it from then on (destroy at free). Call
 * before spans are created. Returns HOTSPAN_OK or HOTSPAN_EINVAL. */
int hs_tracer_add_sink(hotspan_tracer *t, hs_sink *sink);

/* Sink that discards everything (benchmarks, tests). */
hs_sink *hs_sink_discard_new(void);

/* File sink: DIR/traces.jsonl, one JSON object per span. Creates DIR if
 * missing. Returns NULL and logs on failure. */
hs_sink *hs_sink_file_new(const char *dir);

/* Appends one span as a JSON object (no newline) — shared by the file sink
 * and the example program. */
struct hs_buf;
void hs_span_to_json(const hotspan_span *s, struct hs_buf *out);
/* A span's events as a JSON array of {"name","time_unix_nano",
 * "attributes":{...}} (attribute values with their types), and its links
 * as a JSON array of {"trace_id" (32 hex),"span_id" (16 hex),"tracestate"
 * (if any),"flags","attributes"}. dd_form 1 writes Datadog's
 * "_dd.span_links" form: attribute values as strings, flags with bit 31
 * set, attributes left out when empty. Empty lists give "[]". */
void hs_span_events_json(const hotspan_span *s, struct hs_buf *out);
void hs_span_links_json(const hotspan_span *s, struct hs_buf *out, int dd_form);

/* ------------------------------------------------------------ tracer */

#define HS_LIVE_SHARDS 16

typedef struct hs_tracer_settings {
  char *service;
  char *env;
  char *version;
  hs_kv *tags;
  size_t ntags;
  double sample_rate; /* <0 unset */
  char *sampling_rules;
  int rules_from_code; /* sampling_rules came from hotspan_config */
  double rate_limit;   /* <0 default */
  hs_prop_styles extract;
  hs_prop_styles inject;
  char *output_dir;
  /* Network exporters (HS_EXPORT_* bits), and the addresses given in code
   * (NULL: resolved from the environment by the exporter, when allowed). */
  unsigned exporters;
  char *agent_url;
  char *otlp_endpoint;
  int use_env; /* !ignore_environment */
  /* Delivery limits shared by this tracer's exporters (0 = the
   * transport's default). */
  uint64_t export_max_bytes;
  int export_timeout_ms;
  int shutdown_timeout_ms; /* hotspan_tracer_free: flush + delivery */
  uint32_t partial_flush_min_spans;
  int log_level;
  char runtime_id[37]; /* the process's (context/identity.h) */
} hs_tracer_settings;

#define HS_EXPORT_DATADOG 1u
#define HS_EXPORT_OTLP 2u

/* Parses an exporter list ("datadog,otlp", "none"; case-insensitive,
 * spaces allowed) into HS_EXPORT_* bits. Returns 0, or -1 for an unknown
 * or empty name (the first bad name is copied to bad). */
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
                          const hs_sink *sinks, struct hs_buf *out);

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
  hs_sampler *sampler;
  hs_sink *sinks;
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

/* Publishes the active span (or none) in the thread context record. */
void hs_publish_active(hs_tstate *ts);

/* Trace-level sampling decision, made once; returns the priority. */
int hs_trace_decide(hs_trace *tr);

#endif
