/* Endpoint registry: interns endpoint names ("GET /checkout") to small ids
 * so that the thread context record carries a number, not a string, and a
 * signal handler never touches a string that could be freed.
 *
 * Ids start at 1 and are never reused; names are never freed while the
 * process lives. The registry holds at most HS_ENDPOINT_MAX names; past that
 * every new name maps to HS_ENDPOINT_OVERFLOW, whose name is "other" (a
 * service with unbounded endpoint names is a bug upstream; it must not grow
 * our memory without bound). */
#ifndef HS_CONTEXT_ENDPOINTS_H
#define HS_CONTEXT_ENDPOINTS_H

#include <stddef.h>
#include <stdint.h>

#define HS_ENDPOINT_MAX 4096
#define HS_ENDPOINT_OVERFLOW 0xffffffffu

/* Id for name (copied on first sight); 0 for NULL or "". Thread-safe (a
 * mutex around a hash table); not async-signal-safe. */
uint32_t hs_endpoint_intern(const char *name, size_t len);

/* Name for id, or NULL for 0 / unknown ids. Lock-free; the string stays
 * valid for the life of the process. */
const char *hs_endpoint_name(uint32_t id);

/* Request counts per endpoint, for the profiles' endpoint_counts (Datadog
 * Endpoint Profiling divides a profile by the requests of each endpoint).
 *
 * hs_endpoint_count_request adds one request to id's counter: one relaxed
 * atomic add on the id's own slot, no lock, so every local root span can
 * call it when it finishes. 0 and unknown ids are ignored; the overflow id
 * counts under "other". Thread-safe; async-signal-safe. */
void hs_endpoint_count_request(uint32_t id);

/* Takes every nonzero counter and resets it to 0 (an atomic exchange per
 * slot, so a request counted meanwhile lands in this snapshot or the next,
 * never in neither). Calls fn(name, count, arg) for each, in id order;
 * names stay valid for the life of the process. Returns the number of
 * endpoints reported. Thread-safe (concurrent drains split the counts
 * between them); not async-signal-safe only because fn may not be. */
typedef void (*hs_endpoint_count_fn)(const char *name, uint64_t count,
                                     void *arg);
size_t hs_endpoint_counts_drain(hs_endpoint_count_fn fn, void *arg);

#endif
