/* Endpoint registry: interns endpoint names ("GET /checkout") to small ids
 * so that the thread context record carries a number, not a string, and a
 * signal handler never touches a string that could be freed.
 *
 * Ids start at 1 and are never reused; names are never freed while the
 * process lives. The registry holds at most HS_ENDPOINT_MAX names; past that
 * every new name maps to HS_ENDPOINT_OVERFLOW, whose name is "other" (a
 * service with unbounded endpoint names is a bug upstream; it must not grow
 * our memory without bound). */
#ifndef HS_CORRELATION_ENDPOINTS_H
#define HS_CORRELATION_ENDPOINTS_H

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

#endif
