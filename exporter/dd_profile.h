/* Datadog profile upload: the body of POST /profiling/v1/input as the
 * Datadog Agent takes it (and forwards to the profiling intake).
 *
 * multipart/form-data with a random boundary:
 *   part "event" (filename "event.json", application/json):
 *     {"attachments":[names], "tags_profiler":"k:v,...", "start":RFC 3339,
 *      "end":RFC 3339, "family":"native", "version":"4",
 *      "endpoint_counts":{"GET /a":12,...}}
 *   one part per attachment (name = filename = the attachment's name,
 *   application/octet-stream): gzip-compressed pprof bytes as given.
 *
 * Pure functions: no I/O, no globals (the boundary comes from getrandom or,
 * for tests, from the caller). Thread-safe; not async-signal-safe. */
#ifndef HS_EXPORTER_DD_PROFILE_H
#define HS_EXPORTER_DD_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "exporter/profile_tags.h"

#define HS_DD_PROFILE_PATH "/profiling/v1/input"
/* "family" of event.json: what Datadog's native profiler (ddprof) sends. */
#define HS_DD_PROFILE_FAMILY "native"
/* Longest tag ("key:value") kept whole; longer ones are cut (Datadog's own
 * limit for a tag is 200 characters). */
#define HS_DD_TAG_MAX 200

typedef struct hs_dd_attachment {
  const char *name; /* e.g. "cpu.pprof" */
  const uint8_t *data;
  size_t len;
} hs_dd_attachment;

typedef struct hs_dd_endpoint_count {
  const char *endpoint;
  uint64_t count;
} hs_dd_endpoint_count;

typedef struct hs_dd_profile_meta {
  /* Each of these is written as a tag when non-NULL and non-empty. */
  const char *service;
  const char *env;
  const char *version;
  const char *host;
  const char *runtime_id;
  const char *profiler_version;
  const hs_profile_tag *tags; /* more tags (DD_TAGS...), may be NULL */
  size_t ntags;
} hs_dd_profile_meta;

/* Formats unix_ns as RFC 3339 in UTC with microseconds
 * ("2025-03-14T09:26:53.000000Z") into out (at least 32 bytes). Returns
 * the length, or 0 if out is too small. */
size_t hs_rfc3339(uint64_t unix_ns, char *out, size_t cap);

/* Appends "key:value" to b (after a ',' when b is not empty), sanitized for
 * Datadog's tags format: ',' (the separator of tags_profiler), whitespace and
 * control bytes become '_', and the tag is cut at HS_DD_TAG_MAX bytes (never
 * inside a UTF-8 sequence). An empty key or value appends nothing and returns
 * 0; else returns 1. */
int hs_dd_tag_append(hs_buf *b, const char *key, const char *value);

/* Appends the tags_profiler string of m to b: service, env, version, host,
 * runtime-id, profiler_version, language:native, then m->tags. */
void hs_dd_tags_profiler(hs_buf *b, const hs_dd_profile_meta *m);

/* Appends the event.json object to b. */
void hs_dd_event_json(hs_buf *b, const hs_dd_profile_meta *m, uint64_t start_ns,
                      uint64_t end_ns, const hs_dd_attachment *att, size_t natt,
                      const hs_dd_endpoint_count *ec, size_t nec);

/* Builds the whole body into body (appended) and the request's
 * Content-Type value ("multipart/form-data; boundary=...") into
 * content_type (cap bytes, >= 96). boundary: NULL for a random one
 * (retried if it occurs in the data), or a fixed one for tests (1..70
 * characters of [0-9A-Za-z'()+_,-./:=?]). Returns HOTSPAN_OK,
 * HOTSPAN_EINVAL (no attachment, a NULL name, a bad boundary, cap too
 * small), HOTSPAN_ENOMEM or HOTSPAN_ETOOBIG (body's cap). */
int hs_dd_profile_build(const hs_dd_profile_meta *m, uint64_t start_ns,
                        uint64_t end_ns, const hs_dd_attachment *att,
                        size_t natt, const hs_dd_endpoint_count *ec, size_t nec,
                        const char *boundary, hs_buf *body, char *content_type,
                        size_t cap);

#endif
