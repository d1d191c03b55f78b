/* OTLP/HTTP trace sink: batches the tracer's kept chunks into
 * ExportTraceServiceRequest payloads and hands them to the transport
 * (target "otlp-traces", OTLP retry policy).
 *
 * write and flush run on the tracer's writer thread, one at a time; the
 * response handler runs on the transport thread and touches only the
 * atomic counters and the log clock. A payload is cut when it reaches
 * batch_spans spans or batch_bytes of encoder memory, when its first span
 * waited HS_OTLP_MAX_AGE_MS (checked at each writer tick, ~200 ms), or at
 * a forced flush. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "exporter/otlp.h"
#include "exporter/transport.h"
#include "hotspan/error.h"
#include "hotspan/version.h"

#define GZIP_LEVEL 6
#define LOG_EVERY_NS (60ull * 1000000000ull)

typedef struct otlp_sink {
  hs_trace_sink base;
  hs_otlp_encoder *enc;
  hs_otlp_resource res; /* kept to build a fresh encoder after fork */
  const char *service;  /* the tracer's; outlives the sink */
  hs_target *target;
  hs_otlp_send_fn send;
  void *send_arg;
  int gzip;
  uint32_t batch_spans;
  size_t batch_bytes;
  uint64_t batch_start; /* monotonic ns of the pending payload's first span */
  _Atomic uint64_t payloads;
  _Atomic uint64_t spans_encoded;
  _Atomic uint64_t spans_dropped;
  _Atomic uint64_t spans_unencoded; /* part of spans_dropped */
  _Atomic uint64_t payloads_failed;
  _Atomic uint64_t rejected_spans;
  _Atomic uint64_t partial_success;
  _Atomic uint64_t responses_unreadable;
  _Atomic uint64_t last_log; /* monotonic ns of the last partial log */
} otlp_sink;

static int target_send(void *arg, char *body, size_t len, uint32_t spans) {
  return hs_target_send((hs_target *)arg, body, len, NULL, spans);
}

static void send_pending(otlp_sink *s) {
  uint32_t n = hs_otlp_encoder_spans(s->enc);
  if (n == 0)
    return;
  uint8_t *body = NULL;
  size_t len = 0;
  int rc = hs_otlp_encoder_finish(s->enc, &body, &len);
  s->batch_start = 0;
  if (rc == HOTSPAN_OK && s->gzip) {
    uint8_t *z = NULL;
    size_t zlen = 0;
    rc = hs_otlp_gzip(body, len, GZIP_LEVEL, &z, &zlen);
    free(body);
    body = z;
    len = zlen;
  }
  if (rc != HOTSPAN_OK) {
    atomic_fetch_add(&s->spans_dropped, n);
    atomic_fetch_add(&s->spans_unencoded, n);
    atomic_fetch_add(&s->payloads_failed, 1);
    hs_log(HS_LOG_WARN, "otlp: cannot encode %u spans: %s", n,
           hotspan_strerror(rc));
    return;
  }
  rc = s->send(s->send_arg, (char *)body, len, n);
  if (rc != HOTSPAN_OK) {
    atomic_fetch_add(&s->spans_dropped, n);
    atomic_fetch_add(&s->payloads_failed, 1);
    return;
  }
  atomic_fetch_add(&s->payloads, 1);
  atomic_fetch_add(&s->spans_encoded, n);
}

static void sink_write(hs_trace_sink *self, const hs_chunk *c) {
  otlp_sink *s = (otlp_sink *)self;
  if (s->enc == NULL) { /* out of memory after a fork */
    atomic_fetch_add(&s->spans_dropped, c->nspans);
    atomic_fetch_add(&s->spans_unencoded, c->nspans);
    return;
  }
  uint32_t before = hs_otlp_encoder_spans(s->enc);
  if (before == 0)
    s->batch_start = hs_now_mono_ns();
  if (hs_otlp_encoder_add_chunk(s->enc, c) != HOTSPAN_OK) {
    uint32_t added = hs_otlp_encoder_spans(s->enc) - before;
    atomic_fetch_add(&s->spans_dropped, c->nspans - added);
    atomic_fetch_add(&s->spans_unencoded, c->nspans - added);
    hs_log(HS_LOG_WARN, "otlp: out of memory; %u spans dropped",
           c->nspans - added);
  }
  if (hs_otlp_encoder_spans(s->enc) >= s->batch_spans ||
      hs_otlp_encoder_bytes(s->enc) >= s->batch_bytes)
    send_pending(s);
}

static void sink_flush(hs_trace_sink *self, int force) {
  otlp_sink *s = (otlp_sink *)self;
  if (s->enc == NULL || hs_otlp_encoder_spans(s->enc) == 0)
    return;
  if (force || hs_now_mono_ns() - s->batch_start >=
                   (uint64_t)HS_OTLP_MAX_AGE_MS * 1000000u)
    send_pending(s);
}

static int sink_sync(hs_trace_sink *self, int timeout_ms, int final) {
  otlp_sink *s = (otlp_sink *)self;
  if (s->target == NULL)
    return HOTSPAN_OK;
  return final ? hs_target_drain(s->target, timeout_ms)
               : hs_target_flush(s->target, timeout_ms);
}

static void sink_destroy(hs_trace_sink *self) {
  otlp_sink *s = (otlp_sink *)self;
  /* sync already waited for delivery; what is left is dropped now. */
  hs_target_free(s->target, 0);
  hs_otlp_encoder_free(s->enc);
  hs_otlp_resource_free(&s->res);
  free(s);
}

static void sink_stats(hs_trace_sink *self, hotspan_exporter_stats *out) {
  otlp_sink *s = (otlp_sink *)self;
  if (s->target != NULL)
    hs_target_public_stats(s->target, out);
  else
    snprintf(out->name, sizeof out->name, "otlp-traces");
  out->items_rejected = atomic_load(&s->rejected_spans);
  out->dropped_encode = atomic_load(&s->spans_unencoded);
  out->items_dropped += out->dropped_encode;
}

/* In a forked child: the parent's writer thread may have been inside the
 * encoder, so it is abandoned (not freed: the parent's data) for a new
 * one. The transport resets the target itself. */
static void sink_after_fork_child(hs_trace_sink *self) {
  otlp_sink *s = (otlp_sink *)self;
  s->enc = hs_otlp_encoder_new(&s->res, s->service, HOTSPAN_VERSION_STRING);
  s->batch_start = 0;
  atomic_store(&s->payloads, 0);
  atomic_store(&s->spans_encoded, 0);
  atomic_store(&s->spans_dropped, 0);
  atomic_store(&s->spans_unencoded, 0);
  atomic_store(&s->payloads_failed, 0);
  atomic_store(&s->rejected_spans, 0);
  atomic_store(&s->partial_success, 0);
  atomic_store(&s->responses_unreadable, 0);
}

void hs_otlp_on_response(void *arg, long status, const char *body, size_t len) {
  otlp_sink *s = arg;
  if (status < 200 || status > 299)
    return; /* the transport counts failures */
  int64_t rejected = 0;
  char msg[256];
  int rc = hs_otlp_decode_response((const uint8_t *)body, len, &rejected, msg,
                                   sizeof msg);
  if (rc == 0) {
    atomic_fetch_add(&s->responses_unreadable, 1);
    return;
  }
  if (rc == 1)
    return;
  atomic_fetch_add(&s->partial_success, 1);
  atomic_fetch_add(&s->rejected_spans, (uint64_t)rejected);
  if (rejected == 0 && msg[0] == '\0')
    return;
  /* A collector that rejects spans tends to reject every payload: one
   * line a minute is enough to notice. */
  uint64_t now = hs_now_mono_ns();
  uint64_t last = atomic_load(&s->last_log);
  if ((last == 0 || now - last >= LOG_EVERY_NS) &&
      atomic_compare_exchange_strong(&s->last_log, &last, now))
    hs_log(HS_LOG_WARN,
           "otlp: collector rejected %lld spans (partial success): %s",
           (long long)rejected, msg[0] ? msg : "(no message)");
}

void hs_otlp_trace_sink_stats(hs_trace_sink *sink, hs_otlp_trace_stats *out) {
  otlp_sink *s = (otlp_sink *)sink;
  out->payloads = atomic_load(&s->payloads);
  out->spans_encoded = atomic_load(&s->spans_encoded);
  out->spans_dropped = atomic_load(&s->spans_dropped);
  out->payloads_failed = atomic_load(&s->payloads_failed);
  out->rejected_spans = atomic_load(&s->rejected_spans);
  out->partial_success = atomic_load(&s->partial_success);
  out->responses_unreadable = atomic_load(&s->responses_unreadable);
}

/* Builds the target's fixed header lines into lines (NULL-terminated).
 * Returns 0, or -1 if a caller-given header holds CR or LF. */
static int build_headers(const hs_otlp_config *cfg, int gzip,
                         const char *const *extra, const char **lines,
                         size_t cap) {
  size_t n = 0;
  lines[n++] = "Content-Type: application/x-protobuf";
  if (gzip)
    lines[n++] = "Content-Encoding: gzip";
  for (size_t i = 0; i < cfg->headers.n && n + 1 < cap; i++)
    lines[n++] = cfg->headers.lines[i];
  for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < cap; i++) {
    if (strpbrk(extra[i], "\r\n") != NULL || strchr(extra[i], ':') == NULL)
      return -1;
    lines[n++] = extra[i];
  }
  lines[n] = NULL;
  return 0;
}

hs_trace_sink *hs_otlp_trace_sink_new(const hs_trace_sink_host *h,
                                      const hs_otlp_trace_options *o) {
  if (h == NULL || h->settings == NULL)
    return NULL;
  const hs_tracer_settings *st = h->settings;
  hs_otlp_trace_options defaults;
  if (o == NULL) {
    memset(&defaults, 0, sizeof defaults);
    defaults.compression = -1;
    o = &defaults;
  }
  /* Precedence: options, then the tracer's configuration in code, then
   * OTEL_EXPORTER_OTLP_* (unless the tracer ignores the environment),
   * then the defaults. */
  hs_otlp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (st->use_env) {
    if (hs_otlp_config_from_env(&cfg) != HOTSPAN_OK)
      return NULL;
  } else {
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "%s", HS_OTLP_DEFAULT_ENDPOINT);
    cfg.timeout_ms = HS_OTLP_DEFAULT_TIMEOUT_MS;
  }
  const char *endpoint = o->endpoint != NULL ? o->endpoint : st->otlp_endpoint;
  char err[256];
  if (endpoint != NULL && hs_otlp_resolve_endpoint(endpoint, NULL, cfg.endpoint,
                                                   sizeof cfg.endpoint, err,
                                                   sizeof err) != HOTSPAN_OK) {
    hs_log(HS_LOG_ERROR, "otlp: bad endpoint: %s", err);
    hs_otlp_config_free(&cfg);
    return NULL;
  }
  if (o->compression >= 0)
    cfg.gzip = o->compression != 0;
  if (o->timeout_ms > 0)
    cfg.timeout_ms = o->timeout_ms;

  otlp_sink *s = calloc(1, sizeof *s);
  if (s == NULL || hs_otlp_resource_init(&s->res, st) != HOTSPAN_OK) {
    free(s);
    hs_otlp_config_free(&cfg);
    return NULL;
  }
  s->service = st->service;
  s->enc = hs_otlp_encoder_new(&s->res, st->service, HOTSPAN_VERSION_STRING);
  s->gzip = cfg.gzip;
  s->batch_spans = o->batch_spans ? o->batch_spans : HS_OTLP_BATCH_SPANS;
  s->batch_bytes = o->batch_bytes ? o->batch_bytes : HS_OTLP_BATCH_BYTES;
  /* Encoder memory overestimates the body, so this keeps a payload well
   * under a quarter of the byte budget (see the Datadog sink). */
  if (o->byte_budget > 0 && s->batch_bytes > o->byte_budget / 4)
    s->batch_bytes = o->byte_budget / 4;
  if (s->enc == NULL)
    goto fail;
  if (o->send != NULL) {
    s->send = o->send;
    s->send_arg = o->send_arg;
  } else {
    const char *lines[HS_OTLP_MAX_HEADERS + 40];
    if (build_headers(&cfg, cfg.gzip, o->headers, lines,
                      sizeof lines / sizeof lines[0]) != 0) {
      hs_log(HS_LOG_ERROR,
             "otlp: a header line has no ':' or contains CR or LF");
      goto fail;
    }
    hs_target_config tc;
    memset(&tc, 0, sizeof tc);
    tc.name = "otlp-traces";
    tc.url = cfg.endpoint;
    tc.headers = lines;
    tc.byte_budget = o->byte_budget;
    tc.timeout_ms = cfg.timeout_ms;
    tc.retry_policy = HS_RETRY_OTLP;
    tc.on_response = hs_otlp_on_response;
    tc.response_arg = s;
    s->target = hs_target_new(&tc);
    if (s->target == NULL)
      goto fail;
    s->send = target_send;
    s->send_arg = s->target;
  }
  hs_log(HS_LOG_DEBUG, "otlp: traces to %s (compression %s, timeout %d ms)",
         cfg.endpoint, cfg.gzip ? "gzip" : "none", cfg.timeout_ms);
  hs_otlp_config_free(&cfg);
  s->base.name = "otlp-traces";
  s->base.write = sink_write;
  s->base.flush = sink_flush;
  s->base.sync = sink_sync;
  s->base.stats = sink_stats;
  s->base.after_fork_child = sink_after_fork_child;
  s->base.destroy = sink_destroy;
  return &s->base;
fail:
  hs_otlp_config_free(&cfg);
  hs_otlp_encoder_free(s->enc);
  hs_otlp_resource_free(&s->res);
  free(s);
  return NULL;
}
