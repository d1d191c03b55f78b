/* Transport: one process-wide background thread sends the HTTP requests of
 * every exporter (traces and profiles, Datadog, OTLP, Pyroscope) with
 * libcurl multi. Exporters hand it finished payloads; nothing here ever
 * blocks the caller on the network.
 *
 * A target is one destination (URL + fixed headers + policy) with its own
 * byte budget: queued payloads of a target never hold more than its budget;
 * a payload that does not fit is dropped and counted (never blocks, never
 * grows). Failed sends (connection errors, timeouts and the statuses the
 * target's policy lists as retryable) are retried with exponential backoff
 * and full jitter, honouring Retry-After; other 4xx are dropped at once;
 * after max_attempts a payload is dropped and counted.
 *
 * Fork: pthread_atfork handlers hold the transport's locks across fork();
 * the child starts with empty queues (the parent's payloads are the
 * parent's to send), reset counters' in-flight state, and starts a thread
 * of its own at its first send. The child never touches the parent's curl
 * handles (the parent's thread may have been inside libcurl at the fork).
 *
 * Thread safety: every function may be called from any thread, except
 * inside the on_response callback (runs on the transport thread) which
 * must not call back into the transport. None is async-signal-safe. */
#ifndef HS_EXPORTER_TRANSPORT_H
#define HS_EXPORTER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_target hs_target;

/* Retry policy: which HTTP statuses are retried (connection errors and
 * timeouts always are). */
enum hs_retry_policy {
  HS_RETRY_429_5XX = 0, /* Datadog, Pyroscope: 429 and every 5xx */
  HS_RETRY_OTLP = 1     /* OTLP/HTTP spec: 429, 502, 503, 504 only */
};

/* Called on the transport thread with the final answer for a payload that
 * got an HTTP response (any status; body may be NULL/0; at most 64 KiB of
 * it), e.g. to read Datadog's rate_by_service or OTLP's partial_success.
 * It runs before the payload counts as done: once hs_target_flush returned
 * HOTSPAN_OK, the callbacks of the flushed payloads have run. */
typedef void (*hs_target_response_fn)(void *arg, long status, const char *body,
                                      size_t len);

typedef struct hs_target_config {
  const char *name; /* for logs and stats, e.g. "datadog-traces" */
  /* http://host[:port]/path, https://..., or unix:///path/to.sock with the
   * request path in unix_path (default "/"). */
  const char *url;
  const char *unix_path;
  /* Fixed request headers, "Name: value", NULL-terminated; copied. */
  const char *const *headers;
  size_t byte_budget;     /* 0 = default 8 MiB */
  int connect_timeout_ms; /* 0 = default 2000 */
  int timeout_ms;         /* whole request; 0 = default 10000 */
  int max_attempts;       /* 0 = default 5 (first try included) */
  int backoff_base_ms;    /* 0 = default 250; doubles per attempt */
  int backoff_max_ms;     /* 0 = default 30000; Retry-After is capped here */
  int retry_policy;       /* enum hs_retry_policy */
  hs_target_response_fn on_response; /* may be NULL */
  void *response_arg;
} hs_target_config;

/* Counters of one target (monotonic since creation, or since fork in a
 * child). */
typedef struct hs_target_stats {
  uint64_t payloads_sent;    /* answered 2xx */
  uint64_t items_sent;       /* sum of items of those payloads */
  uint64_t bytes_sent;       /* body bytes of those payloads */
  uint64_t retries;          /* attempts after the first */
  uint64_t dropped_budget;   /* payloads dropped: byte budget full */
  uint64_t dropped_attempts; /* payloads dropped after max_attempts */
  uint64_t dropped_rejected; /* payloads answered a non-retryable 4xx */
  uint64_t dropped_shutdown; /* payloads still queued at free/timeout */
  uint64_t items_dropped;    /* items of every dropped payload */
  uint64_t bytes_queued;     /* right now, queued or in flight */
  long last_status;          /* last HTTP status, 0 if none */
  char last_error[128];      /* last failure, "" if none */
  uint64_t dropped_nomem;    /* payloads dropped: out of memory */
} hs_target_stats;

/* Creates a target (starts the transport thread if needed). Returns NULL
 * and logs on a bad URL or out of memory. */
hs_target *hs_target_new(const hs_target_config *cfg);

/* Queues one request: body (len bytes, ownership taken: freed with free()
 * whatever happens), extra headers for this request ("Name: value",
 * NULL-terminated, copied; may be NULL), items = spans or profiles inside
 * (for counters). Never blocks on I/O. Returns HOTSPAN_OK, or
 * HOTSPAN_EFULL when dropped for the byte budget, HOTSPAN_ENOMEM (dropped,
 * counted in dropped_nomem), HOTSPAN_ESTATE (the target is being freed),
 * HOTSPAN_EINVAL (NULL target, NULL body with len > 0, a header that is not
 * one "Name: value" line). */
int hs_target_send(hs_target *t, char *body, size_t len,
                   const char *const *headers, uint32_t items);

/* hs_target_send with a query string for this request, appended to the
 * target's URL after '?' (or '&' if it has a query): e.g. Pyroscope's
 * "name=app.cpu%7B%7D&from=1&until=2". It must be percent-encoded already;
 * a space, control byte, non-ASCII byte or '#' is HOTSPAN_EINVAL. NULL or
 * "" sends to the target's URL. */
int hs_target_send_query(hs_target *t, char *body, size_t len,
                         const char *const *headers, uint32_t items,
                         const char *query);

/* Waits until every payload queued before the call was sent or dropped,
 * at most timeout_ms. Returns HOTSPAN_OK or HOTSPAN_EIO (timed out). */
int hs_target_flush(hs_target *t, int timeout_ms);

/* For shutdown: like hs_target_flush, but payloads waiting for a retry
 * are tried once more at once, and a failed attempt is not retried (it is
 * dropped and counted in dropped_shutdown), so that a dead backend costs
 * one connection attempt, not the whole backoff schedule. The target
 * stays in this mode. */
int hs_target_drain(hs_target *t, int timeout_ms);

/* Flushes with timeout_ms, then removes the target: what is still queued
 * is dropped and counted. NULL-safe. The last target freed stops the
 * thread. */
void hs_target_free(hs_target *t, int timeout_ms);

void hs_target_get_stats(hs_target *t, hs_target_stats *out);
const char *hs_target_name(const hs_target *t);
/* The URL as configured (for stats and logs) and the byte budget. */
const char *hs_target_url(const hs_target *t);
size_t hs_target_budget(const hs_target *t);

/* Copies a target's counters into the public form (name, url, budget
 * included). */
struct hotspan_exporter_stats;
void hs_target_public_stats(hs_target *t, struct hotspan_exporter_stats *out);

#endif
