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
#include "tracer/trace_sink.h"

#define HS_DD_DEFAULT_AGENT_URL "http://localhost:8126"
#define HS_DD_TRACES_PATH "/v0.4/traces"

typedef struct hs_dd_trace_options {
  /* http://host[:port], https://host[:port] or unix:///path/to.sock;
   * NULL = from the environment (exporter/dd_agent_url.h). */
  const char *agent_url;
  size_t flush_bytes;  /* 0 = 1 MiB */
  int flush_age_ms;    /* 0 = 1000 */
  size_t max_payload;  /* hard cap of one payload; 0 = 16 MiB */
  size_t byte_budget;  /* transport queue budget; 0 = its default */
  int timeout_ms;      /* per request; 0 = transport default */
  int max_attempts;    /* 0 = transport default */
  int backoff_base_ms; /* 0 = transport default */
} hs_dd_trace_options;

/* Creates the sink for the tracer of h (whose settings it encodes and to
 * which it hands the agent's sampling rates; the sink is then added to
 * that tracer, which owns it). o may be NULL (defaults). Returns NULL and
 * logs on a bad URL or out of memory. */
hs_trace_sink *hs_dd_trace_sink_new(const hs_trace_sink_host *h,
                                    const hs_dd_trace_options *o);

#endif
