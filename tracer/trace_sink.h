/* What a trace sink (an exporter) sees of the tracer: finished spans in
 * chunks, a snapshot of their trace's values, the tracer's effective
 * settings, and a way to hand the Datadog Agent's sampling rates back.
 * Exporters include this header, never tracer/internal.h.
 *
 * A sink is built by the wiring code (lib/) with the tracer's
 * hs_trace_sink_host and added to the tracer, which then calls it on its
 * writer thread. */
#ifndef HS_TRACER_TRACE_SINK_H
#define HS_TRACER_TRACE_SINK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "context/identity.h"
#include "hotspan/propagation.h"
#include "hotspan/tracer.h"
#include "tracer/propagation_codec.h"

/* A trace of this process; opaque to sinks (hs_trace_snapshot). */
typedef struct hs_trace hs_trace;

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

/* Trace-level values a sink needs, copied under the trace mutex once per
 * chunk (the sampling decision and the extracted context may still change
 * while a sink encodes the chunk). */
typedef struct hs_trace_view {
  uint64_t id_high; /* trace id, high 64 bits (0 for a 64-bit id) */
  uint64_t id_low;
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

/* ------------------------------------------------------------ settings */

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

#define HS_EXPORT_DATADOG 1u
#define HS_EXPORT_OTLP 2u

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
typedef struct hs_trace_sink {
  const char *name;
  void (*write)(struct hs_trace_sink *self, const hs_chunk *chunk);
  void (*flush)(struct hs_trace_sink *self, int force);
  int (*sync)(struct hs_trace_sink *self, int timeout_ms, int final);
  /* Optional, for exporters: fills *out (a full-size struct, zeroed by the
   * caller). Called from any thread while the sink runs. */
  void (*stats)(struct hs_trace_sink *self, hotspan_exporter_stats *out);
  /* Optional: called in a forked child (only one thread exists) before
   * anything else runs there. The parent's writer thread may have been
   * inside write or flush at the fork, so the sink must not touch what it
   * had buffered (leak it: it is the parent's data) and start empty. */
  void (*after_fork_child)(struct hs_trace_sink *self);
  void (*destroy)(struct hs_trace_sink *self);
  struct hs_trace_sink *next;
} hs_trace_sink;

/* What a sink may use of the tracer it is built for: its settings (valid
 * as long as the tracer) and, for the Datadog exporter, where the agent's
 * sampling rates go (the body of a /v0.4/traces answer; returns
 * HOTSPAN_OK, or an error with a message in err). Thread-safe. */
typedef struct hs_trace_sink_host {
  const hs_tracer_settings *settings;
  int (*set_agent_rates)(void *arg, const char *json, size_t len, char *err,
                         size_t errlen);
  void *arg;
} hs_trace_sink_host;

#endif
