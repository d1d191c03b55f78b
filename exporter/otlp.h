/* OTLP/HTTP protobuf traces: the encoder from tracer chunks to
 * ExportTraceServiceRequest bytes, gzip, and the configuration helpers
 * (endpoint, headers, compression, timeout from OTEL_EXPORTER_OTLP_*).
 *
 * The encoder copies what it needs out of each chunk into a per-payload
 * arena (the sink must not keep pointers into a chunk after write), builds
 * the protobuf-c message structs there, and packs the whole request once.
 * The arena is kept between payloads: in the steady state encoding does
 * not call malloc except for the packed body handed to the transport.
 *
 * Thread safety: an encoder is used by one thread at a time (the tracer's
 * writer thread); the pure parsing helpers are reentrant. Nothing here is
 * async-signal-safe. */
#ifndef HS_EXPORTER_OTLP_H
#define HS_EXPORTER_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "tracer/trace_sink.h"

/* ------------------------------------------------------------ resource */

/* Resource attributes of a tracer's spans: an array of hs_tag (string,
 * int, double or bool values), owning its strings. */
typedef struct hs_otlp_resource {
  hs_tag *attrs;
  size_t nattrs;
  size_t cap;
} hs_otlp_resource;

/* process.command_line is cut at this many bytes (argv can be huge). */
#define HS_OTLP_CMDLINE_MAX 1024

/* Builds the standard resource of st: service.name, service.version,
 * deployment.environment and deployment.environment.name, telemetry.sdk.*,
 * process.pid, process.executable.name/.path, process.command_line
 * (bounded), host.name, then st's global tags (a tag whose key is already
 * present is skipped). Attributes whose value is unknown are left out.
 * Returns HOTSPAN_OK or HOTSPAN_ENOMEM (r is then empty). */
int hs_otlp_resource_init(hs_otlp_resource *r, const hs_tracer_settings *st);
/* Appends one attribute (strings copied). HOTSPAN_OK or HOTSPAN_ENOMEM. */
int hs_otlp_resource_add_str(hs_otlp_resource *r, const char *key,
                             const char *value);
int hs_otlp_resource_add_int(hs_otlp_resource *r, const char *key,
                             int64_t value);
/* Frees the attributes; r may be zeroed or NULL. */
void hs_otlp_resource_free(hs_otlp_resource *r);

/* ------------------------------------------------------------ encoder */

typedef struct hs_otlp_encoder hs_otlp_encoder;

/* Creates an encoder. res is copied. service is the tracer's service:
 * spans whose service differs go into a ResourceSpans of their own, with
 * the same attributes except service.name. scope_version names the
 * InstrumentationScope "hotspan" version. Returns NULL when out of
 * memory. */
hs_otlp_encoder *hs_otlp_encoder_new(const hs_otlp_resource *res,
                                     const char *service,
                                     const char *scope_version);
/* NULL-safe. */
void hs_otlp_encoder_free(hs_otlp_encoder *e);

/* Adds every span of c (copied; c may be released afterwards). Takes the
 * trace's mutex briefly for its sampling state. Returns HOTSPAN_OK or
 * HOTSPAN_ENOMEM (the spans of c added so far stay; later ones are
 * counted by the caller as dropped). */
int hs_otlp_encoder_add_chunk(hs_otlp_encoder *e, const hs_chunk *c);

/* Spans added since the last finish/reset. */
uint32_t hs_otlp_encoder_spans(const hs_otlp_encoder *e);
/* Encoded size of the pending spans (used to cut payloads by size); the
 * request adds the resource and scope, a few hundred bytes per service. */
size_t hs_otlp_encoder_bytes(const hs_otlp_encoder *e);

/* Packs the pending spans as one ExportTraceServiceRequest into a malloc'd
 * buffer (*out, *len; the caller frees it, or hands it to the transport)
 * and resets the encoder. With no pending span, *out is NULL and *len 0.
 * Returns HOTSPAN_OK or HOTSPAN_ENOMEM (the payload is lost; the encoder
 * is reset). */
int hs_otlp_encoder_finish(hs_otlp_encoder *e, uint8_t **out, size_t *len);

/* ------------------------------------------------------------ helpers */

/* Writes a 128-bit id as 16 bytes big-endian (high 64 bits first), and a
 * 64-bit id as 8 bytes big-endian, as OTLP wants them. */
void hs_otlp_trace_id_bytes(uint64_t high, uint64_t low, uint8_t out[16]);
void hs_otlp_span_id_bytes(uint64_t id, uint8_t out[8]);

/* gzip (RFC 1952 wrapper, zlib level) of in[0..len) into a malloc'd
 * buffer (common/gzip.h). Returns HOTSPAN_OK, HOTSPAN_ENOMEM or
 * HOTSPAN_ETOOBIG. */
int hs_otlp_gzip(const uint8_t *in, size_t len, int level, uint8_t **out,
                 size_t *outlen);

/* Reads an ExportTraceServiceResponse body: fills *rejected
 * (partial_success.rejected_spans, 0 if absent; negative values are
 * stored as 0) and msg (partial_success.error_message, cut to msglen, ""
 * if absent; msg may be NULL). Returns 2 when the body parses and carries
 * a partial_success, 1 when it parses without one (an empty body is a
 * valid empty message), 0 when it is not a valid message (garbage,
 * truncated). */
int hs_otlp_decode_response(const uint8_t *body, size_t len, int64_t *rejected,
                            char *msg, size_t msglen);

/* ------------------------------------------------------------ config */

#define HS_OTLP_DEFAULT_ENDPOINT "http://localhost:4318/v1/traces"
#define HS_OTLP_DEFAULT_TIMEOUT_MS 10000
#define HS_OTLP_MAX_HEADERS 64

/* Endpoint of the traces signal: traces_ep (OTEL_EXPORTER_OTLP_TRACES_
 * ENDPOINT) used as is; else base_ep (OTEL_EXPORTER_OTLP_ENDPOINT) +
 * "/v1/traces" (one slash, whatever base_ep ends with); else the default.
 * NULL or empty means unset. The URL must start with http:// or https://
 * and have a host. Returns HOTSPAN_OK, or HOTSPAN_ECONFIG with a message
 * in err (bad scheme, no host, CR/LF/space in it, too long for out). */
int hs_otlp_resolve_endpoint(const char *traces_ep, const char *base_ep,
                             char *out, size_t outlen, char *err,
                             size_t errlen);

/* Request headers as "Name: value" lines (owned). */
typedef struct hs_otlp_headers {
  char *lines[HS_OTLP_MAX_HEADERS + 1]; /* NULL-terminated */
  size_t n;
} hs_otlp_headers;

/* Parses "k1=v1,k2=v2" (W3C baggage-like, as OTEL_EXPORTER_OTLP_HEADERS):
 * keys and values trimmed of spaces and tabs, values percent-decoded; a
 * key is an HTTP token. Entries are added to h; an entry with a name
 * already in h (case-insensitive) replaces it, so parsing the generic
 * variable first and the traces one second gives the traces one
 * precedence. Empty entries (",,") are ignored. A malformed entry (no
 * '=', empty or non-token key, bad %XX, a decoded CR, LF or NUL, too many
 * headers) is skipped, and the function returns HOTSPAN_ECONFIG with err
 * naming the malformed entries; the valid ones are still added. Returns
 * HOTSPAN_OK, HOTSPAN_ECONFIG, or HOTSPAN_ENOMEM. */
int hs_otlp_parse_headers(const char *s, hs_otlp_headers *h, char *err,
                          size_t errlen);
void hs_otlp_headers_free(hs_otlp_headers *h);

/* "gzip" → 1, "none" → 0 (case-insensitive, trimmed). Else
 * HOTSPAN_ECONFIG with a message. */
int hs_otlp_parse_compression(const char *s, int *gzip, char *err,
                              size_t errlen);
/* Milliseconds, an integer in 1..3600000 (trimmed). Else
 * HOTSPAN_ECONFIG with a message. */
int hs_otlp_parse_timeout(const char *s, int *ms, char *err, size_t errlen);

/* Effective exporter configuration. */
typedef struct hs_otlp_config {
  char endpoint[2048];
  hs_otlp_headers headers;
  int gzip;
  int timeout_ms;
} hs_otlp_config;

/* Reads OTEL_EXPORTER_OTLP[_TRACES]_{ENDPOINT,HEADERS,COMPRESSION,TIMEOUT}
 * (the _TRACES variable wins; headers are merged, _TRACES entries winning).
 * A bad value is logged (naming the variable) and replaced by the default
 * (malformed header entries are left out). Returns HOTSPAN_OK, or
 * HOTSPAN_ENOMEM. Free with hs_otlp_config_free. */
int hs_otlp_config_from_env(hs_otlp_config *c);
void hs_otlp_config_free(hs_otlp_config *c);

/* ------------------------------------------------------------ sink */

/* Sends a finished body (takes ownership: free() it whatever happens).
 * Returns HOTSPAN_OK or an error (counted as a dropped payload). The
 * default is hs_target_send on the sink's target; tests replace it. */
typedef int (*hs_otlp_send_fn)(void *arg, char *body, size_t len,
                               uint32_t spans);

/* Batching thresholds: a payload is sent when it holds this many spans or
 * this much memory, when its oldest span waited HS_OTLP_MAX_AGE_MS (the
 * writer's 200 ms tick checks), or on a forced flush. */
#define HS_OTLP_BATCH_SPANS 4096
#define HS_OTLP_BATCH_BYTES ((size_t)4 << 20)
#define HS_OTLP_MAX_AGE_MS 1000

typedef struct hs_otlp_trace_options {
  const char *endpoint; /* NULL: from the environment / default */
  /* Extra "Name: value" lines, NULL-terminated, added after the
   * environment's headers; NULL for none. */
  const char *const *headers;
  int compression;      /* -1: from the environment, 0 none, 1 gzip */
  int timeout_ms;       /* 0: from the environment / default */
  size_t byte_budget;   /* transport budget; 0 = its default */
  uint32_t batch_spans; /* 0 = HS_OTLP_BATCH_SPANS */
  size_t batch_bytes;   /* 0 = HS_OTLP_BATCH_BYTES */
  hs_otlp_send_fn send; /* NULL: the transport (tests set it) */
  void *send_arg;
} hs_otlp_trace_options;

/* Counters of an OTLP trace sink (monotonic). */
typedef struct hs_otlp_trace_stats {
  uint64_t payloads;             /* bodies handed to the transport */
  uint64_t spans_encoded;        /* spans in those bodies */
  uint64_t spans_dropped;        /* lost: out of memory, or send refused */
  uint64_t payloads_failed;      /* sends refused (budget full, ...) */
  uint64_t rejected_spans;       /* partial_success.rejected_spans, summed */
  uint64_t partial_success;      /* responses carrying a partial_success */
  uint64_t responses_unreadable; /* 2xx bodies that did not parse */
} hs_otlp_trace_stats;

/* Response handler of the sink (runs on the transport thread): on a 2xx
 * response decodes the body, adds rejected spans, logs error_message (at
 * most once per 60 s); an unparsable body is counted. arg is the sink. */
void hs_otlp_on_response(void *arg, long status, const char *body, size_t len);

/* Creates the sink for the tracer of h (its settings give the resource).
 * o may be NULL. The endpoint comes from o, else the tracer's
 * otlp_endpoint setting, else the environment (read only if the tracer
 * does not ignore it), else the default;
 * headers, compression and timeout from o, else the environment. Returns NULL
 * and logs when the configuration is invalid (bad endpoint given in o) or out
 * of memory. The tracer it is added to owns it. */
hs_trace_sink *hs_otlp_trace_sink_new(const hs_trace_sink_host *h,
                                      const hs_otlp_trace_options *o);

/* Counters; sink must come from hs_otlp_trace_sink_new. Thread-safe. */
void hs_otlp_trace_sink_stats(hs_trace_sink *sink, hs_otlp_trace_stats *out);

#endif
