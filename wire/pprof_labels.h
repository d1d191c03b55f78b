/* The names hotspan's pprof profiles use, shared by the producer
 * (profiler/profile.c), the agent's decoder (agent/decode_pprof.c) and the
 * backend's pprof export (backend/query_export.c), so that the two sides
 * can never spell them differently.
 *
 * Sample labels: the first three are Datadog's Code Hotspots and endpoint
 * labels (numeric span ids, the endpoint as a string); span_id and
 * trace_id (hex strings) are the form Grafana Pyroscope's span profiles
 * and OpenTelemetry use. */
#ifndef HS_WIRE_PPROF_LABELS_H
#define HS_WIRE_PPROF_LABELS_H

#define HS_PPROF_LABEL_SPAN_ID "span id"
#define HS_PPROF_LABEL_LOCAL_ROOT_SPAN_ID "local root span id"
#define HS_PPROF_LABEL_TRACE_ENDPOINT "trace endpoint"
#define HS_PPROF_LABEL_THREAD_ID "thread id"
#define HS_PPROF_LABEL_THREAD_NAME "thread name"
#define HS_PPROF_LABEL_SPAN_ID_HEX "span_id"
#define HS_PPROF_LABEL_TRACE_ID_HEX "trace_id"

/* Sample and period value types. */
#define HS_PPROF_TYPE_SAMPLES "samples"
#define HS_PPROF_UNIT_COUNT "count"
#define HS_PPROF_TYPE_CPU "cpu"
#define HS_PPROF_TYPE_WALL "wall"
#define HS_PPROF_UNIT_NANOSECONDS "nanoseconds"

/* Comments of a profile saying who made it ("service=checkout"); see
 * docs/profiling.md. */
#define HS_PPROF_COMMENT_SERVICE "service="
#define HS_PPROF_COMMENT_ENV "env="
#define HS_PPROF_COMMENT_VERSION "version="
#define HS_PPROF_COMMENT_RUNTIME_ID "runtime-id="

#endif
