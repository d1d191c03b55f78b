/* hotspan — context propagation across processes (HTTP headers, message
 * metadata), through caller-supplied carrier callbacks.
 *
 * Supported styles: "datadog" (x-datadog-*), "tracecontext" (W3C
 * traceparent + tracestate), "b3multi" (x-b3-*), "b3" (single b3 header).
 * Which styles are read and written is tracer configuration
 * (docs/configuration.md). Header names are matched case-insensitively.
 */
#ifndef HOTSPAN_PROPAGATION_H
#define HOTSPAN_PROPAGATION_H

#include <stddef.h>

#include "hotspan/tracer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called once per header by a carrier's foreach; name and value are not
 * NUL-terminated and are only read during the call. Return 0 to go on,
 * nonzero to stop early. */
typedef int (*hotspan_header_visit_fn)(void *visit_arg, const char *name,
                                       size_t name_len, const char *value,
                                       size_t value_len);

/* A readable carrier: foreach calls visit for every header it holds
 * (duplicates included, so that they can be detected) and returns 0, or
 * nonzero if it cannot be read. */
typedef struct hotspan_carrier_reader {
  int (*foreach)(void *carrier, hotspan_header_visit_fn visit, void *visit_arg);
} hotspan_carrier_reader;

/* A writable carrier: set stores one header (name is lowercase ASCII,
 * both NUL-terminated, only valid during the call; copy them) and returns
 * 0, or nonzero on failure. */
typedef struct hotspan_carrier_writer {
  int (*set)(void *carrier, const char *name, const char *value);
} hotspan_carrier_writer;

/* Reads a trace context from the carrier with the tracer's extract styles,
 * first valid style first; W3C tracestate is merged when its trace id
 * matches. Malformed values of a style are ignored (logged at debug and
 * counted in extract_errors) and the next style is tried.
 * Returns HOTSPAN_OK with *out filled, HOTSPAN_ENOCTX (no usable context:
 * start a new trace), HOTSPAN_EINVAL (NULL argument), HOTSPAN_EIO (the
 * carrier's foreach failed). Thread-safe. */
HOTSPAN_API int hotspan_extract(hotspan_tracer *t,
                                const hotspan_carrier_reader *reader,
                                void *carrier, hotspan_context *out);

/* Writes the context of span s with the tracer's inject styles. Makes the
 * trace's sampling decision first if none was made, so that it travels
 * downstream. Returns HOTSPAN_OK, HOTSPAN_EINVAL, or HOTSPAN_EIO if the
 * writer failed (headers already written stay written). Thread-safe for
 * different spans. */
HOTSPAN_API int hotspan_inject(hotspan_tracer *t, hotspan_span *s,
                               const hotspan_carrier_writer *writer,
                               void *carrier);

/* Convenience carrier: an array of n {name, value} NUL-terminated string
 * pairs, as in pairs[2*i], pairs[2*i+1]; pairs with a NULL name or value are
 * skipped, and pairs may be NULL when n is 0. Same results as
 * hotspan_extract (HOTSPAN_EINVAL also for pairs NULL with n > 0). */
HOTSPAN_API int hotspan_extract_pairs(hotspan_tracer *t,
                                      const char *const *pairs, size_t n,
                                      hotspan_context *out);

#ifdef __cplusplus
}
#endif
#endif /* HOTSPAN_PROPAGATION_H */
