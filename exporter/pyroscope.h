/* Grafana Pyroscope ingestion: one POST <server>/ingest per profile, the
 * gzip-compressed pprof as the raw request body (format=pprof: Pyroscope
 * reads the body as pprof; multipart is only for requests without a
 * format), metadata in the query:
 *
 *   /ingest?name=<app>.<cpu|wall>{k=v,...}&from=<unix s>&until=<unix s>
 *          &format=pprof&spyName=hotspan&sampleRate=<hz>
 *
 * The name's tags become series labels; the pprof's sample labels
 * ("span_id" as 16 hex digits, "trace_id", "trace endpoint", ...) stay on
 * the samples, and Pyroscope's span profiles select by "span_id".
 *
 * Pure functions; thread-safe; not async-signal-safe. */
#ifndef HS_EXPORTER_PYROSCOPE_H
#define HS_EXPORTER_PYROSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "exporter/profile_tags.h"

#define HS_PYROSCOPE_SPY_NAME "hotspan"

/* Appends s percent-encoded (every byte except A-Z a-z 0-9 - . _ ~ as
 * %XX) to b. */
void hs_pct_encode(hs_buf *b, const char *s);

/* Appends the unencoded series name: app (with '{', '}', ',', '=' and
 * bytes <= 0x20 replaced by '_'; "hotspan" if empty), '.', type_suffix,
 * then "{k=v,...}" if there are tags. Keys keep only [A-Za-z0-9_.] (others
 * become '_'; a key that starts with a digit gets a leading '_'); values
 * lose ',', '{', '}', '=' and control bytes (to '_'). Tags with an empty
 * key or value are left out. */
void hs_pyroscope_name(hs_buf *b, const char *app, const char *type_suffix,
                       const hs_profile_tag *tags, size_t ntags);

/* Appends the whole request URL: server (trailing '/' removed) +
 * "/ingest?..." with the encoded name. from = start rounded down to the
 * second, until = end rounded up, and at least from + 1. sample_rate in
 * Hz (0: left out). Returns 0, or -1 if server or type_suffix is NULL or
 * server is empty. */
int hs_pyroscope_url(hs_buf *b, const char *server, const char *app,
                     const char *type_suffix, const hs_profile_tag *tags,
                     size_t ntags, uint64_t start_ns, uint64_t end_ns,
                     unsigned sample_rate);

/* "Authorization: Basic <base64(user:password)>" into out (cap bytes).
 * Returns 0, or -1 if it does not fit. */
int hs_basic_auth_header(const char *user, const char *password, char *out,
                         size_t cap);

#endif
