/* hotspan — tracer, spans and the per-thread active context.
 *
 * Ownership in one paragraph: a hotspan_tracer is created by
 * hotspan_tracer_new() and destroyed by hotspan_tracer_free(), which flushes
 * what is buffered. A span returned by hotspan_span_start() belongs to the
 * caller until hotspan_span_finish(); after that the tracer owns it and the
 * pointer must not be used again. Every string argument is copied at call
 * time unless the comment says otherwise. Every function taking a span or
 * tracer accepts NULL and then does nothing (returning HOTSPAN_EINVAL where it
 * returns a status), so that code instrumented with a failed tracer keeps
 * running.
 *
 * Thread safety: unless stated otherwise, functions are thread-safe for
 * different spans; one span must not be modified from two threads at once.
 * No function here is async-signal-safe except where stated.
 */
#ifndef HOTSPAN_TRACER_H
#define HOTSPAN_TRACER_H

#include <stddef.h>
#include <stdint.h>

#include "hotspan/error.h"
#include "hotspan/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hotspan_tracer hotspan_tracer;
typedef struct hotspan_span hotspan_span;

/* Span kinds; numbers follow OTLP's Span.SpanKind. */
typedef enum hotspan_span_kind {
  HOTSPAN_KIND_UNSPECIFIED = 0,
  HOTSPAN_KIND_INTERNAL = 1,
  HOTSPAN_KIND_SERVER = 2,
  HOTSPAN_KIND_CLIENT = 3,
  HOTSPAN_KIND_PRODUCER = 4,
  HOTSPAN_KIND_CONSUMER = 5
} hotspan_span_kind;

/* Sampling priorities, as Datadog defines them. */
#define HOTSPAN_PRIORITY_USER_REJECT (-1)
#define HOTSPAN_PRIORITY_AUTO_REJECT 0
#define HOTSPAN_PRIORITY_AUTO_KEEP 1
#define HOTSPAN_PRIORITY_USER_KEEP 2
/* No decision made or received yet. */
#define HOTSPAN_PRIORITY_UNSET (-128)

/* ---------------------------------------------------------------------- */
/* Trace context (a value: plain bytes, no pointers, copy it freely).      */
/* ---------------------------------------------------------------------- */

#define HOTSPAN_ORIGIN_MAX 64
#define HOTSPAN_PROPAGATED_TAGS_MAX 512
#define HOTSPAN_TRACESTATE_MAX 512

/* hotspan_context.remote */
#define HOTSPAN_CONTEXT_UNKNOWN 0
#define HOTSPAN_CONTEXT_LOCAL 1
#define HOTSPAN_CONTEXT_REMOTE 2

typedef struct hotspan_context {
  uint64_t trace_id_high; /* upper 64 bits of the 128-bit trace id */
  uint64_t trace_id_low;  /* lower 64 bits; never 0 in a valid context */
  uint64_t span_id;       /* the span to use as parent; never 0 if valid */
  int sampling_priority;  /* HOTSPAN_PRIORITY_*, UNSET if none was given */
  uint8_t trace_flags;    /* W3C trace-flags byte (bit 0 = sampled) */
  /* Where the context comes from: HOTSPAN_CONTEXT_REMOTE when
   * hotspan_extract read it from another process's headers,
   * HOTSPAN_CONTEXT_LOCAL when hotspan_span_context took it from a span of
   * this process, HOTSPAN_CONTEXT_UNKNOWN (0, what a zeroed context holds)
   * otherwise. Exported with links (OTLP Span.Link flags). */
  uint8_t remote;
  /* Datadog origin ("synthetics", "rum", ...); "" if none. */
  char origin[HOTSPAN_ORIGIN_MAX];
  /* Trace-level propagated tags in x-datadog-tags form, e.g.
   * "_dd.p.dm=-4,_dd.p.usr.id=42" (without _dd.p.tid, which lives in
   * trace_id_high); "" if none. */
  char propagated_tags[HOTSPAN_PROPAGATED_TAGS_MAX];
  /* W3C tracestate members of other vendors, comma separated, in their
   * original order, without the "dd=" member; "" if none. */
  char tracestate_other[HOTSPAN_TRACESTATE_MAX];
  /* The Datadog parent id last seen in tracestate ("p:" member, 16 hex
   * digits), "" if none; kept to report `_dd.parent_id`. */
  char last_dd_parent_id[17];
} hotspan_context;

/* ---------------------------------------------------------------------- */
/* Configuration                                                           */
/* ---------------------------------------------------------------------- */

/* Tracer configuration. Call hotspan_config_init() first; then set only what
 * the code wants to force. A field left at its "unset" value (NULL, or a
 * negative number where stated) is taken from the environment
 * (HOTSPAN_* first, then DD_* / OTEL_*), then from the default. The full
 * list of settings and variables is in docs/configuration.md.
 * Strings are copied by hotspan_tracer_new(). */
typedef struct hotspan_config {
  uint32_t struct_size; /* set by hotspan_config_init; do not change */
  const char *service;  /* default: program name */
  const char *env;      /* default: none */
  const char *version;  /* default: none */
  /* Global tags added to every span, "k1:v1,k2:v2" (DD_TAGS form). Merged
   * with the environment's tags; keys given here win. */
  const char *tags;
  /* Trace sample rate 0..1, applied as a catch-all sampling rule (and so
   * subject to rate_limit); negative = unset: traces no rule matches are
   * kept, without the limiter. */
  double sample_rate;
  /* Sampling rules as JSON, e.g.
   * [{"service":"web","name":"http.*","resource":"GET /a*","sample_rate":0.1}].
   */
  const char *sampling_rules;
  /* Kept traces per second allowed by the rate limiter; negative = unset
   * (default 100); 0 = no limit. */
  double rate_limit;
  /* Comma-separated propagation style lists: "datadog", "tracecontext",
   * "b3multi", "b3" (single header), "none". NULL = unset. */
  const char *propagation_style_extract;
  const char *propagation_style_inject;
  /* Directory for the file sink (traces.jsonl); NULL = unset (no file sink
   * unless HOTSPAN_OUTPUT_DIR is set). */
  const char *output_dir;
  /* A trace with at least this many finished spans is flushed in part before
   * its local root finishes; 0 = unset (default 1000). */
  uint32_t partial_flush_min_spans;
  /* Log level: 0 unset, 1 error, 2 warn, 3 info, 4 debug. The logger is
   * process-wide: a nonzero value applies to the whole process from
   * hotspan_tracer_new on. */
  int log_level;
  /* Nonzero: take no setting from the environment (for tests and for
   * programs that configure everything in code). The process-wide log level
   * still follows HOTSPAN_LOG_LEVEL / DD_TRACE_DEBUG unless log_level is
   * set. */
  int ignore_environment;
  /* Where traces are sent, a comma-separated list: "datadog" (Datadog
   * Agent protocol, msgpack), "otlp" (OTLP/HTTP protobuf), or "none".
   * NULL = unset: HOTSPAN_TRACES_EXPORTER, then OTEL_TRACES_EXPORTER; if
   * neither is set, "otlp" when an OTLP endpoint is configured, plus
   * "datadog" when an agent address is configured or no OTLP endpoint is.
   * The file sink (output_dir) is independent of this list. */
  const char *exporters;
  /* Datadog Agent URL: "http://host:port" or "unix:///path/to.sock".
   * NULL = unset: DD_TRACE_AGENT_URL, then DD_AGENT_HOST and
   * DD_TRACE_AGENT_PORT, then http://localhost:8126. */
  const char *agent_url;
  /* OTLP/HTTP traces URL, e.g. "http://collector:4318/v1/traces". NULL =
   * unset: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then
   * OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces", then
   * http://localhost:4318/v1/traces. */
  const char *otlp_endpoint;
} hotspan_config;

/* Fills cfg with "unset" values. Always succeeds for non-NULL cfg.
 * Thread-safe. */
HOTSPAN_API void hotspan_config_init(hotspan_config *cfg);

/* Creates a tracer from cfg (may be NULL: everything from the environment).
 * On success stores the tracer in *out and returns HOTSPAN_OK; logs the
 * effective configuration once as a JSON line on stderr (level info). An
 * output_dir that cannot be created is logged; the tracer then runs without
 * the file sink. On error *out is NULL. Errors: HOTSPAN_EINVAL (out NULL, or
 * cfg not prepared by hotspan_config_init), HOTSPAN_ECONFIG (a value in cfg
 * is invalid, including sampling rules; a bad environment value is logged
 * and ignored instead), HOTSPAN_ENOMEM, HOTSPAN_ESYS (the writer thread
 * could not be started). Thread-safe. */
HOTSPAN_API int hotspan_tracer_new(const hotspan_config *cfg,
                                   hotspan_tracer **out);

/* Flushes buffered traces (waiting at most 5 s; what is left then is
 * dropped), then frees the tracer and the spans it still holds of traces
 * whose local root finished. A trace whose local root never finished is
 * neither written nor freed. All spans of this tracer must be finished
 * before the call, and none may be active on any thread; using them
 * afterwards is undefined. NULL is a no-op. Must not run concurrently with
 * other calls on the same tracer or its spans. */
HOTSPAN_API void hotspan_tracer_free(hotspan_tracer *t);

/* Hands every complete trace buffered so far to the sinks and waits until
 * they have written it (bounded by timeout_ms; <= 0 = default, 5000 ms).
 * Returns HOTSPAN_OK, HOTSPAN_EIO if the wait timed out (the traces are
 * still written later), HOTSPAN_EINVAL if t is NULL. Thread-safe. */
HOTSPAN_API int hotspan_tracer_flush(hotspan_tracer *t, int timeout_ms);

/* ---------------------------------------------------------------------- */
/* Spans                                                                   */
/* ---------------------------------------------------------------------- */

/* How a new span finds its parent, in this order:
 *   1. parent != NULL: child of that local span (it must not be finished);
 *   2. remote_parent != NULL: child of an extracted context, in a new local
 *      trace (this process's part of the trace) that keeps its ids,
 *      sampling decision, origin and propagated tags;
 *   3. root == 0: child of the span active on this thread, if any;
 *   4. otherwise a new trace. */
typedef struct hotspan_span_options {
  uint32_t struct_size; /* set by hotspan_span_options_init */
  const hotspan_span *parent;
  const hotspan_context *remote_parent;
  int root;               /* nonzero: ignore the active span */
  const char *resource;   /* default: the operation name */
  const char *service;    /* default: the tracer's service */
  const char *type;       /* "web", "db", "cache", ...; default none */
  hotspan_span_kind kind; /* default UNSPECIFIED; out of range: ignored */
  /* Unix time in ns; 0 = now. A span started in the past should end with
   * hotspan_span_finish_at: hotspan_span_finish measures from the call. */
  uint64_t start_ns;
  /* Nonzero: make the span active on this thread now; hotspan_span_finish
   * then restores what was active before. */
  int activate;
} hotspan_span_options;

/* Fills opts with defaults. Thread-safe. */
HOTSPAN_API void hotspan_span_options_init(hotspan_span_options *opts);

/* Starts a span named name ("http.request") with opts (NULL = defaults).
 * Returns the span, or NULL when t or name is NULL or memory ran out (a
 * NULL span is accepted, and ignored, by every span function). In steady
 * state it does not call malloc. Thread-safe. */
HOTSPAN_API hotspan_span *hotspan_span_start(hotspan_tracer *t,
                                             const char *name,
                                             const hotspan_span_options *opts);

/* Finishes the span now, or at end_ns (Unix ns, not before the start).
 * hotspan_span_finish takes the duration from a monotonic clock, measured
 * from the hotspan_span_start call. If the span was activated on this thread
 * and is the active span, the previously active span becomes active again;
 * if it was entered (hotspan_enter), no span is active until hotspan_leave.
 * Finish activated spans innermost first. The span must not be active on
 * another thread. After this call the pointer is invalid. NULL is a no-op. */
HOTSPAN_API void hotspan_span_finish(hotspan_span *s);
HOTSPAN_API void hotspan_span_finish_at(hotspan_span *s, uint64_t end_ns);

/* Tags. key and value are copied. Setting a key twice keeps the last value.
 * Returns HOTSPAN_OK, HOTSPAN_EINVAL (NULL argument, empty key, or span
 * finished), HOTSPAN_ETOOBIG (key over 200 bytes or value over 25000 bytes:
 * the tag is not set), HOTSPAN_ENOMEM (out of memory, or 4096 keys already
 * set). */
HOTSPAN_API int hotspan_span_set_tag_str(hotspan_span *s, const char *key,
                                         const char *value);
HOTSPAN_API int hotspan_span_set_tag_int(hotspan_span *s, const char *key,
                                         int64_t value);
HOTSPAN_API int hotspan_span_set_tag_double(hotspan_span *s, const char *key,
                                            double value);
HOTSPAN_API int hotspan_span_set_tag_bool(hotspan_span *s, const char *key,
                                          int value);

/* Resource ("GET /users/:id"). Setting it on the local root span sets the
 * trace's endpoint, which the thread context record shows from then on.
 * Same errors as the tag setters. */
HOTSPAN_API int hotspan_span_set_resource(hotspan_span *s,
                                          const char *resource);
HOTSPAN_API int hotspan_span_set_service(hotspan_span *s, const char *service);
HOTSPAN_API int hotspan_span_set_type(hotspan_span *s, const char *type);
HOTSPAN_API int hotspan_span_set_kind(hotspan_span *s, hotspan_span_kind kind);

/* Marks the span as an error and records error.type, error.message and
 * error.stack tags (each may be NULL to leave it out). */
HOTSPAN_API int hotspan_span_set_error(hotspan_span *s, const char *type,
                                       const char *message, const char *stack);

/* Attributes of span events and links. */
typedef enum hotspan_attr_type {
  HOTSPAN_ATTR_STRING = 1,
  HOTSPAN_ATTR_INT = 2,
  HOTSPAN_ATTR_DOUBLE = 3,
  HOTSPAN_ATTR_BOOL = 4
} hotspan_attr_type;

typedef struct hotspan_attribute {
  const char *key; /* non-empty, at most 200 bytes */
  hotspan_attr_type type;
  union {
    const char *s; /* at most 25000 bytes */
    int64_t i;
    double d;
    int b;
  } value;
} hotspan_attribute;

/* Adds an event (a timestamped annotation, e.g. "exception" or "retry") to
 * an open span, with nattrs attributes (at most 128; attrs may be NULL if
 * nattrs is 0). time_unix_ns 0 means now. Everything is copied. Exported
 * as OTLP Span.events and as Datadog's span events. A span keeps at most
 * 128 events; later ones are counted as dropped (OTLP
 * dropped_events_count) and HOTSPAN_EFULL is returned. Returns
 * HOTSPAN_OK, HOTSPAN_EINVAL (span not open, NULL/empty name or key, bad
 * type), HOTSPAN_ETOOBIG (a string over its limit), HOTSPAN_EFULL,
 * HOTSPAN_ENOMEM. Same thread rules as the tag setters. */
HOTSPAN_API int hotspan_span_add_event(hotspan_span *s, const char *name,
                                       uint64_t time_unix_ns,
                                       const hotspan_attribute *attrs,
                                       size_t nattrs);

/* Links an open span to another span's context (a batch item, a message
 * that caused this work, a retried request), with attributes as for
 * events. ctx must be valid (nonzero trace_id_low and span_id); its
 * trace_flags and tracestate_other travel with the link. At most 128
 * links per span. Exported as OTLP Span.links and Datadog
 * "_dd.span_links". Returns as hotspan_span_add_event. */
HOTSPAN_API int hotspan_span_add_link(hotspan_span *s,
                                      const hotspan_context *ctx,
                                      const hotspan_attribute *attrs,
                                      size_t nattrs);

/* Manual sampling decision for the whole local trace: USER_KEEP or
 * USER_REJECT (the AUTO_* values are accepted too; anything else is
 * HOTSPAN_EINVAL). Wins over every automatic decision; decision maker
 * "-4". Parts of the trace already handed on keep their earlier fate. */
HOTSPAN_API int hotspan_span_set_sampling_priority(hotspan_span *s,
                                                   int priority);

/* Sets the trace's endpoint from any span of the trace (the local root's
 * resource is changed too). Same errors as the tag setters. */
HOTSPAN_API int hotspan_span_set_endpoint(hotspan_span *s,
                                          const char *endpoint);

/* Ids. Return 0 for NULL. Thread-safe, and safe on a span being modified. */
HOTSPAN_API uint64_t hotspan_span_id(const hotspan_span *s);
HOTSPAN_API uint64_t hotspan_span_trace_id_low(const hotspan_span *s);
HOTSPAN_API uint64_t hotspan_span_trace_id_high(const hotspan_span *s);
HOTSPAN_API uint64_t hotspan_span_local_root_id(const hotspan_span *s);

/* Writes the span's context (ids, current sampling priority, origin,
 * propagated tags, other vendors' tracestate) into *out, for a child in
 * another process or a later remote_parent. Unlike hotspan_inject it does
 * not make the sampling decision: sampling_priority is UNSET until one is
 * made. last_dd_parent_id is left empty. Returns HOTSPAN_OK or
 * HOTSPAN_EINVAL. Thread-safe. */
HOTSPAN_API int hotspan_span_context(const hotspan_span *s,
                                     hotspan_context *out);

/* ---------------------------------------------------------------------- */
/* Active span of the calling thread                                       */
/* ---------------------------------------------------------------------- */

/* Scoped activation (stack discipline): activate makes s the active span of
 * this thread and remembers the previous one in s; deactivate restores it.
 * Calls must nest. A span may be active on one thread at a time. Returns
 * HOTSPAN_OK, HOTSPAN_EINVAL (NULL), HOTSPAN_ESTATE (activate of a span
 * already activated or finished; deactivate of a span that is not the
 * active one or was entered rather than activated: nothing changes). */
HOTSPAN_API int hotspan_span_activate(hotspan_span *s);
HOTSPAN_API int hotspan_span_deactivate(hotspan_span *s);

/* Event-driven servers: on entry to a callback that serves a request, make
 * the request's span current and keep what hotspan_enter returns; on exit
 * pass it to hotspan_leave. Allocation-free (after the first call on a
 * thread, which allocates its state), lock-free, a few stores; s may
 * be NULL (no span current). The same span may be entered repeatedly and on
 * different threads over time, but finished only when no thread is inside
 * it (except the calling one, which is handled). */
HOTSPAN_API hotspan_span *hotspan_enter(hotspan_span *s);
HOTSPAN_API void hotspan_leave(hotspan_span *previous);

/* The active span of the calling thread, or NULL. */
HOTSPAN_API hotspan_span *hotspan_active_span(void);

/* ---------------------------------------------------------------------- */
/* Stats                                                                   */
/* ---------------------------------------------------------------------- */

/* Versioned counters: only grows at the end; struct_size tells the caller
 * how much the library filled. */
typedef struct hotspan_tracer_stats {
  uint32_t struct_size;
  /* Created and finished spans are counted per local trace and added here
   * when the trace hands spans on (root finish, partial flush, a span
   * finishing after its root, tracer free). */
  uint64_t spans_created;
  uint64_t spans_finished;
  uint64_t spans_dropped;        /* finished spans of dropped traces + lost */
  uint64_t spans_unfinished;     /* still open when their local root ended */
  uint64_t traces_kept;          /* local roots finished, decision keep */
  uint64_t traces_dropped;       /* local roots finished, decision drop */
  uint64_t traces_rate_limited;  /* kept by rule/rate but over the limit */
  uint64_t chunks_partial;       /* partial flushes of long traces */
  uint64_t chunks_queue_dropped; /* chunks dropped because the queue was full */
  uint64_t extract_errors;       /* malformed incoming contexts rejected */
} hotspan_tracer_stats;

/* Copies the counters into *out (set out->struct_size = sizeof *out first).
 * Returns HOTSPAN_OK or HOTSPAN_EINVAL. Thread-safe. */
HOTSPAN_API int hotspan_tracer_get_stats(hotspan_tracer *t,
                                         hotspan_tracer_stats *out);

/* Delivery counters of one exporter (traces: "datadog-traces",
 * "otlp-traces"; profiles: "datadog-profiles", "pyroscope"). Items are
 * spans for trace exporters and profiles for profile exporters. Counters
 * are monotonic since the exporter started (or since fork, in a child).
 * Versioned like hotspan_tracer_stats. */
typedef struct hotspan_exporter_stats {
  uint32_t struct_size;
  char name[32];
  char url[256];             /* where it sends */
  uint64_t payloads_sent;    /* requests answered 2xx */
  uint64_t items_sent;       /* items in those requests */
  uint64_t bytes_sent;       /* request body bytes of those requests */
  uint64_t retries;          /* attempts after the first */
  uint64_t dropped_budget;   /* payloads dropped: byte budget full */
  uint64_t dropped_attempts; /* payloads dropped after the last retry */
  uint64_t dropped_rejected; /* payloads refused by the backend (4xx) */
  uint64_t dropped_shutdown; /* payloads unsent at shutdown or timeout */
  uint64_t dropped_encode;   /* items that could not be encoded */
  uint64_t items_dropped;    /* items in every dropped payload + encode */
  uint64_t items_rejected;   /* items a 2xx answer reported as rejected
                                (OTLP partial_success) */
  uint64_t bytes_queued;     /* now: waiting or in flight */
  uint64_t bytes_budget;     /* the byte budget */
  int64_t last_status;       /* last HTTP status, 0 if none yet */
  char last_error[128];      /* last failure, "" if none */
} hotspan_exporter_stats;

/* Copies the counters of the tracer's exporter number index (0, 1, ... in
 * the order they were configured; set out->struct_size first). Returns
 * HOTSPAN_OK, or HOTSPAN_EINVAL for NULL arguments or an index past the
 * last exporter (iterate from 0 until then). Thread-safe. */
HOTSPAN_API int hotspan_tracer_get_exporter_stats(hotspan_tracer *t,
                                                  size_t index,
                                                  hotspan_exporter_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* HOTSPAN_TRACER_H */
