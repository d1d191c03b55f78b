/* Datadog Agent trace sink. Runs on the tracer's writer thread: write()
 * encodes each chunk into the current payload at once (so no chunk is
 * kept past write, as the sink contract asks), flush() hands the payload
 * to the transport by size, age or force. The transport thread calls
 * on_response with the agent's answer, which carries its sampling rates.
 */
#include "exporter/dd_trace_sink.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/token.h"
#include "exporter/dd_agent_url.h"
#include "exporter/dd_msgpack.h"
#include "hotspan/error.h"
#include "hotspan/version.h"

#define DEFAULT_FLUSH_BYTES ((size_t)1 << 20)
#define DEFAULT_FLUSH_AGE_MS 1000
#define DEFAULT_MAX_PAYLOAD ((size_t)16 << 20)

typedef struct dd_sink {
  hs_trace_sink base;
  hs_target *target;
  hs_trace_sink_host host; /* the tracer's settings; where rates go */
  hs_dd_encoder enc;
  size_t flush_bytes;
  uint64_t flush_age_ns;
  uint64_t oldest_mono; /* when the payload's first trace was added */
  _Atomic uint64_t chunks_dropped;
  _Atomic uint64_t spans_dropped;
  _Atomic uint64_t rates_errors;
} dd_sink;

/* ------------------------------------------------------------ sink */

static void send_payload(dd_sink *d) {
  if (d->enc.ntraces == 0)
    return;
  char *body = NULL;
  size_t len = 0;
  uint32_t ntraces = 0, nspans = 0;
  if (hs_dd_encoder_finish(&d->enc, &body, &len, &ntraces, &nspans) !=
      HOTSPAN_OK)
    return;
  char count[48];
  snprintf(count, sizeof count, "X-Datadog-Trace-Count: %u", ntraces);
  const char *const headers[] = {count, NULL};
  /* The transport owns body from here, whatever it answers, and counts
   * what it refuses. */
  (void)hs_target_send(d->target, body, len, headers, nspans);
}

static void dd_write(hs_trace_sink *self, const hs_chunk *c) {
  dd_sink *d = (dd_sink *)self;
  uint32_t before = d->enc.ntraces;
  if (hs_dd_encoder_add(&d->enc, c) != HOTSPAN_OK) {
    atomic_fetch_add_explicit(&d->chunks_dropped, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->spans_dropped, c->nspans,
                              memory_order_relaxed);
    if (atomic_load_explicit(&d->chunks_dropped, memory_order_relaxed) == 1)
      hs_log(HS_LOG_WARN,
             "datadog traces: a chunk of %u spans does not fit a payload; "
             "dropped",
             c->nspans);
    return;
  }
  if (before == 0)
    d->oldest_mono = hs_now_mono_ns();
  if (hs_dd_encoder_size(&d->enc) >= d->flush_bytes)
    send_payload(d);
}

static void dd_flush(hs_trace_sink *self, int force) {
  dd_sink *d = (dd_sink *)self;
  if (d->enc.ntraces == 0)
    return;
  if (force || hs_now_mono_ns() - d->oldest_mono >= d->flush_age_ns)
    send_payload(d);
}

static int dd_sync(hs_trace_sink *self, int timeout_ms, int final) {
  dd_sink *d = (dd_sink *)self;
  return final ? hs_target_drain(d->target, timeout_ms)
               : hs_target_flush(d->target, timeout_ms);
}

static void dd_destroy(hs_trace_sink *self) {
  dd_sink *d = (dd_sink *)self;
  /* The tracer synced before destroying sinks: whatever is still queued
   * is dropped (and counted) rather than waited for again. */
  hs_target_free(d->target, 0);
  hs_dd_encoder_free(&d->enc);
  free(d);
}

static void dd_stats(hs_trace_sink *self, hotspan_exporter_stats *out) {
  dd_sink *d = (dd_sink *)self;
  hs_target_public_stats(d->target, out);
  uint64_t spans =
      atomic_load_explicit(&d->spans_dropped, memory_order_relaxed);
  out->dropped_encode = spans;
  out->items_dropped += spans;
}

/* In a forked child: the parent's writer thread may have been inside the
 * encoder, so its buffer is left alone (the parent's data; a leak of one
 * payload per fork generation) and the child starts an empty one. The
 * transport resets the target itself. */
static void dd_after_fork_child(hs_trace_sink *self) {
  dd_sink *d = (dd_sink *)self;
  hs_dd_encoder_abandon(&d->enc);
  d->oldest_mono = 0;
  atomic_store(&d->chunks_dropped, 0);
  atomic_store(&d->spans_dropped, 0);
}

/* On the transport thread. */
static void on_response(void *arg, long status, const char *body, size_t len) {
  dd_sink *d = arg;
  if (status < 200 || status > 299 || body == NULL || len == 0)
    return;
  char err[256];
  if (d->host.set_agent_rates == NULL)
    return;
  if (d->host.set_agent_rates(d->host.arg, body, len, err, sizeof err) ==
      HOTSPAN_OK)
    return;
  /* One warning, then debug lines: a misbehaving agent answers every
   * payload the same way. */
  uint64_t n =
      atomic_fetch_add_explicit(&d->rates_errors, 1, memory_order_relaxed);
  hs_log(n == 0 ? HS_LOG_WARN : HS_LOG_DEBUG,
         "datadog traces: cannot read the agent's sampling rates: %s", err);
}

hs_trace_sink *hs_dd_trace_sink_new(const hs_trace_sink_host *h,
                                    const hs_dd_trace_options *o) {
  if (h == NULL || h->settings == NULL)
    return NULL;
  hs_dd_trace_options def;
  if (o == NULL) {
    memset(&def, 0, sizeof def);
    o = &def;
  }
  hs_agent_url au;
  if (o->agent_url != NULL) {
    char err[256];
    if (hs_agent_url_parse(o->agent_url, &au, err, sizeof err) != 0) {
      hs_log(HS_LOG_ERROR, "datadog traces: agent URL \"%.200s\": %s",
             o->agent_url, err);
      return NULL;
    }
  } else {
    hs_agent_url_from_env(&au);
  }
  char url[HS_AGENT_URL_MAX + sizeof HS_DD_TRACES_PATH];
  const char *unix_path = NULL;
  if (hs_agent_url_endpoint(&au, HS_DD_TRACES_PATH, url, sizeof url,
                            &unix_path) != 0) {
    hs_log(HS_LOG_ERROR, "datadog traces: agent URL too long");
    return NULL;
  }
  dd_sink *d = calloc(1, sizeof *d);
  if (d == NULL)
    return NULL;
  d->host = *h;
  d->flush_bytes = o->flush_bytes ? o->flush_bytes : DEFAULT_FLUSH_BYTES;
  /* A payload must be small next to the byte budget, or two of them in
   * flight would fill it while the backend is merely slow. */
  if (o->byte_budget > 0 && d->flush_bytes > o->byte_budget / 4)
    d->flush_bytes = o->byte_budget / 4;
  d->flush_age_ns =
      (uint64_t)(o->flush_age_ms > 0 ? o->flush_age_ms : DEFAULT_FLUSH_AGE_MS) *
      UINT64_C(1000000);
  hs_dd_encoder_init(&d->enc, h->settings,
                     o->max_payload ? o->max_payload : DEFAULT_MAX_PAYLOAD);

  /* The language version is the C standard the library was built with
   * (201112 for C11). Headers are copied by hs_target_new. */
  char lang_version[64];
  snprintf(lang_version, sizeof lang_version, "Datadog-Meta-Lang-Version: %ld",
           (long)__STDC_VERSION__);
  char auth[HS_TOKEN_HEADER_MAX];
  if (hs_token_header(auth, sizeof auth) < 0)
    hs_log(HS_LOG_WARN, "datadog traces: HOTSPAN_AGENT_TOKEN ignored: %s",
           hs_token_invalid(getenv("HOTSPAN_AGENT_TOKEN")));
  const char *const headers[] = {
      "Content-Type: application/msgpack",
      "Datadog-Meta-Lang: " HS_DD_LANGUAGE,
      lang_version,
      "Datadog-Meta-Tracer-Version: " HOTSPAN_VERSION_STRING,
      "Datadog-Client-Computed-Top-Level: yes",
      auth[0] ? auth : NULL,
      NULL};
  hs_target_config tc;
  memset(&tc, 0, sizeof tc);
  tc.name = "datadog-traces";
  tc.url = url;
  tc.unix_path = unix_path;
  tc.headers = headers;
  tc.byte_budget = o->byte_budget;
  tc.timeout_ms = o->timeout_ms;
  tc.max_attempts = o->max_attempts;
  tc.backoff_base_ms = o->backoff_base_ms;
  tc.retry_policy = HS_RETRY_429_5XX;
  tc.on_response = on_response;
  tc.response_arg = d;
  d->target = hs_target_new(&tc);
  if (d->target == NULL) {
    hs_dd_encoder_free(&d->enc);
    free(d);
    return NULL;
  }
  d->base.name = "datadog-traces";
  d->base.write = dd_write;
  d->base.flush = dd_flush;
  d->base.sync = dd_sync;
  d->base.stats = dd_stats;
  d->base.after_fork_child = dd_after_fork_child;
  d->base.destroy = dd_destroy;
  hs_log(HS_LOG_DEBUG, "datadog traces: sending to %s", url);
  return &d->base;
}
