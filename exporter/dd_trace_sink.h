/* Datadog Agent trace sink: encodes kept chunks as msgpack (/v0.4/traces,
 * exporter/dd_msgpack.h) and hands payloads to the transport
 * (exporter/transport.h), which sends them from its own thread. The
 * agent's answers (rate_by_service) feed the tracer's sampler.
 *
 * When a payload is sent: as soon as it holds flush_bytes (default
 * 1 MiB), when its oldest trace is flush_age_ms old (default 1000; checked
 * on every writer tick, about every 200 ms), and on a forced flush
 * (hotspan_tracer_flush / hotspan_tracer_free). */
#ifndef HS_EXPORTER_DD_TRACE_SINK_H
#define HS_EXPORTER_DD_TRACE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "exporter/transport.h"
#include "tracer/internal.h"

#define HS_DD_DEFAULT_AGENT_URL "http://localhost:8126"
#define HS_DD_TRACES_PATH "/v0.4/traces"

typedef struct hs_dd_trace_options {
  /* http://host[:port], https://host[:port] or unix:///path/to.sock;
   * NULL = from the environment (exporter/agent_url.h). */
  const char *agent_url;
  size_t flush_bytes;  /* 0 = 1 MiB */
  int flush_age_ms;    /* 0 = 1000 */
  size_t max_payload;  /* hard cap of one payload; 0 = 16 MiB */
  size_t byte_budget;  /* transport queue budget; 0 = its default */
  int timeout_ms;      /* per request; 0 = transport default */
  int max_attempts;    /* 0 = transport default */
  int backoff_base_ms; /* 0 = transport default */
} hs_dd_trace_options;

typedef struct hs_dd_trace_sink_stats {
  hs_target_stats target;       /* the transport's counters */
  uint64_t payloads_built;      /* handed to the transport */
  uint64_t payloads_refused;    /* the transport refused (budget full) */
  uint64_t chunks_dropped;      /* did not fit max_payload: never sent */
  uint64_t spans_dropped;       /* spans of those chunks */
  uint64_t agent_rates_updates; /* agent answers that set the rates */
  uint64_t agent_rates_errors;  /* agent answers that could not be read */
} hs_dd_trace_sink_stats;

/* Creates the sink for tracer t (whose settings and sampler it uses; the
 * sink must be added to t with hs_tracer_add_sink, which then owns it).
 * o may be NULL (defaults). Returns NULL and logs on a bad URL or out of
 * memory. */
hs_sink *hs_dd_trace_sink_new(hotspan_tracer *t, const hs_dd_trace_options *o);

/* Counters of a sink made by hs_dd_trace_sink_new. Thread-safe. */
void hs_dd_trace_sink_get_stats(hs_sink *sink, hs_dd_trace_sink_stats *out);

#endif
