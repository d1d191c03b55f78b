/* The agent's protocol decoders: request bytes in, an hs_ing_batch out
 * (see agent/ingest.h for the arena, result codes and limits).
 *
 * Each function decodes into d (initialised by the caller with
 * hs_agent_decoded_init, freed by the caller with hs_agent_decoded_free,
 * also after an error), returns HS_AGENT_OK or a negative HS_AGENT_E* code
 * with a one-line message in err. lim may be NULL (defaults). They never
 * read past len, never crash on any input and are thread-safe (no shared
 * state). */
#ifndef HS_AGENT_DECODE_H
#define HS_AGENT_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/ingest.h"

/* Datadog Agent API v0.4 traces: a msgpack array of traces, each an array
 * of span maps. Appends the spans to d->batch. */
int hs_agent_decode_dd_msgpack(const uint8_t *data, size_t len,
                               const hs_agent_limits *lim, hs_agent_decoded *d,
                               char *err, size_t errlen);

/* Span events and links of a Datadog v0.4 span, which travel as JSON text
 * in its meta map ("events", "_dd.span_links"; the formats are in
 * agent/decode_dd_span_json.c). When key is one of those, the span has
 * none of that kind yet and text is such a list (at most 1 MiB), fills
 * sp->events or sp->links from the arena and returns 0: the meta entry
 * need not stay an attribute. Returns 1 when not (keep the entry), -1
 * when the arena is exhausted. */
int hs_agent_dd_span_json(hs_agent_arena *a, const char *key, size_t klen,
                          const char *text, size_t len, hs_ing_span *sp);

/* One pprof profile (perftools.profiles.Profile), plain or gzip/zstd
 * compressed. Appends CPU and wall samples to d->batch; a pprof sample
 * with both a CPU and a wall value gives two samples. Sets
 * d->batch.profile_start_ns/end_ns from time_nanos/duration_nanos when
 * they are still 0. */
int hs_agent_decode_pprof(const uint8_t *data, size_t len,
                          const hs_agent_limits *lim, hs_agent_decoded *d,
                          char *err, size_t errlen);

/* Datadog profile upload (POST /profiling/v1/input): multipart/form-data
 * with an "event" part (event.json) and one part per attachment.
 * content_type is the request's Content-Type (carries the boundary). */
int hs_agent_decode_dd_profile(const char *content_type, const uint8_t *data,
                               size_t len, const hs_agent_limits *lim,
                               hs_agent_decoded *d, char *err, size_t errlen);

/* Pyroscope ingest (POST /ingest?name=app.cpu{k=v}&from=&until=&format=
 * pprof): query is the raw query string (without '?'); the body is a pprof
 * profile, or multipart/form-data with a "profile" part when content_type
 * says so (content_type may be NULL). */
int hs_agent_decode_pyroscope(const char *query, const char *content_type,
                              const uint8_t *data, size_t len,
                              const hs_agent_limits *lim, hs_agent_decoded *d,
                              char *err, size_t errlen);

/* OTLP/HTTP traces: an ExportTraceServiceRequest in protobuf
 * (hs_agent_decode_otlp) or in the OTLP JSON encoding
 * (hs_agent_decode_otlp_json). Appends one span per OTLP span: service
 * from the resource's service.name ("unknown_service" when absent), name
 * the span name, resource the "resource.name" attribute or else the span
 * name, type the "span.type" attribute, start and duration from the
 * start/end times, error from status code 2 (ERROR), kind as sent, the
 * span's attributes as attrs, events and links (with the dropped counts)
 * in order. Ids must be 16 (trace) and 8 (span, parent, and a link's 16
 * and 8) bytes and not all zero. Nesting is capped (64 messages deep), and the
 * JSON text at max_memory / 50 bytes (ETOOBIG past it). */
int hs_agent_decode_otlp(const uint8_t *data, size_t len,
                         const hs_agent_limits *lim, hs_agent_decoded *d,
                         char *err, size_t errlen);
int hs_agent_decode_otlp_json(const uint8_t *data, size_t len,
                              const hs_agent_limits *lim, hs_agent_decoded *d,
                              char *err, size_t errlen);

/* Parses an RFC 3339 timestamp ("2024-05-01T12:00:00.5Z", offsets
 * allowed) into Unix nanoseconds; 0 ok, -1 malformed. */
int hs_agent_parse_rfc3339(const char *s, size_t len, int64_t *ns);

#endif
