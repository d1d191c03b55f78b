/* The neutral data model between the agent's protocol decoders and the
 * store: decoded spans and profile samples, whatever protocol they came
 * in (Datadog msgpack, OTLP protobuf/JSON, Datadog profile uploads,
 * Pyroscope pprof). Decoders fill these from a per-request arena; every
 * pointer is borrowed and valid until the decoder's batch is freed; the
 * store copies what it keeps. Strings are NUL-terminated UTF-8 (decoders
 * replace invalid bytes), NULL when absent. */
#ifndef HS_BACKEND_MODEL_H
#define HS_BACKEND_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_ing_kv {
  const char *key;
  const char *str; /* string value, or NULL for a number */
  double num;      /* numeric value when str is NULL */
} hs_ing_kv;

/* A span event (OTLP Span.Event): a timestamped, named annotation such as
 * an exception. */
typedef struct hs_ing_event {
  int64_t time_ns; /* Unix ns; 0 if not given */
  const char *name;
  hs_ing_kv *attrs;
  uint32_t nattrs;
} hs_ing_event;

/* A span link (OTLP Span.Link): another span this one relates to. */
typedef struct hs_ing_link {
  uint64_t trace_id_high, trace_id_low, span_id;
  const char *tracestate; /* NULL if none */
  uint32_t flags;         /* OTLP Span.Link.flags as sent */
  hs_ing_kv *attrs;
  uint32_t nattrs;
} hs_ing_link;

typedef struct hs_ing_span {
  uint64_t trace_id_high; /* 0 if the sender had 64-bit ids only */
  uint64_t trace_id_low;
  uint64_t span_id;
  uint64_t parent_id; /* 0 for a root */
  const char *service;
  const char *name;     /* operation name */
  const char *resource; /* Datadog resource; OTLP: the span name */
  const char *type;     /* "web", "db", ... or NULL */
  int64_t start_ns;     /* Unix ns */
  int64_t duration_ns;
  int32_t error;    /* 0 or 1 */
  uint8_t kind;     /* OTLP numbering: 0 unspecified, 1 internal, 2 server... */
  hs_ing_kv *attrs; /* meta and metrics / attributes, in order */
  uint32_t nattrs;
  hs_ing_event *events; /* in order; OTLP only */
  uint32_t nevents;
  uint32_t dropped_events; /* the sender's count of events it dropped */
  hs_ing_link *links;      /* in order; OTLP only */
  uint32_t nlinks;
  uint32_t dropped_links;
  /* The sender's resource attributes (OTLP Resource: environment, host,
   * process, SDK), shared by the spans of one resource; OTLP only. */
  const hs_ing_kv *resource_attrs;
  uint32_t nresource_attrs;
} hs_ing_span;

/* Stacks are kept to HS_ING_MAX_FRAMES frames: a longer one keeps its
 * HS_ING_MAX_FRAMES - 1 frames nearest the leaf and ends in the frame
 * HS_ING_TRUNCATED_FRAME in place of its outermost callers (as pprof
 * tools cut deep stacks). The store cuts at ingest and again when reading
 * a stack, so neither a hostile upload nor a database written before the
 * cap can make a query's flame graph deeper than that. */
#define HS_ING_MAX_FRAMES 1024
#define HS_ING_TRUNCATED_FRAME "[truncated stack]"

/* The largest sample value accepted (2^50 ns: 13 days of CPU or wall time
 * in one pprof row); the agent refuses a batch with a negative or larger
 * value, so sums over many rows stay far from overflowing (and saturate
 * if they ever would). */
#define HS_ING_MAX_VALUE (INT64_C(1) << 50)

/* One frame of a stack. */
typedef struct hs_ing_frame {
  const char *function; /* never NULL: "??" or "0x..." when unknown */
  const char *file;     /* NULL if unknown */
  int64_t line;         /* 0 if unknown */
  const char *mapping;  /* binary or library, NULL if unknown */
} hs_ing_frame;

enum hs_profile_type { HS_PT_CPU = 1, HS_PT_WALL = 2 };

/* One pprof sample, with the labels the correlation engine joins on. */
typedef struct hs_ing_sample {
  int64_t time_ns;  /* sample time if known, else the profile's start */
  uint8_t type;     /* enum hs_profile_type */
  int64_t value;    /* nanoseconds of CPU or wall time */
  uint64_t span_id; /* 0: no span active */
  uint64_t local_root_span_id; /* 0: unknown */
  uint64_t trace_id_high;      /* 0: unknown */
  uint64_t trace_id_low;
  const char *endpoint; /* "trace endpoint" label, or NULL */
  uint64_t thread_id;
  const char *thread_name;
  const hs_ing_frame *frames; /* leaf first */
  uint32_t nframes;
} hs_ing_sample;

/* What one request decoded to. */
typedef struct hs_ing_batch {
  hs_ing_span *spans;
  size_t nspans;
  hs_ing_sample *samples;
  size_t nsamples;
  /* The profile's service, env, version, host (Datadog event.json tags or
   * Pyroscope name/labels), NULL if unknown. */
  const char *service;
  const char *env;
  const char *version;
  int64_t profile_start_ns;
  int64_t profile_end_ns;
} hs_ing_batch;

#endif
