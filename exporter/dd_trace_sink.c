/* Datadog Agent trace sink. Runs on the tracer's writer thread: write()
 * encodes each chunk into the current payload at once (so no chunk is
 * kept past write, as the sink contract asks), flush() hands the payload
 * to the transport by size, age or force. The transport thread calls
 * on_response with the agent's answer, which carries its sampling rates.
 */
#include "exporter/dd_trace_sink.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/env.h"
#include "common/log.h"
#include "exporter/dd_msgpack.h"
#include "hotspan/error.h"
#include "hotspan/version.h"

#define DEFAULT_FLUSH_BYTES ((size_t)1 << 20)
#define DEFAULT_FLUSH_AGE_MS 1000
#define DEFAULT_MAX_PAYLOAD ((size_t)16 << 20)
#define URL_MAX 1024

typedef struct dd_sink {
  hs_sink base;
  hs_target *target;
  hs_sampler *sampler; /* the tracer's; outlives the sink */
  hs_dd_encoder enc;
  size_t flush_bytes;
  uint64_t flush_age_ns;
  uint64_t oldest_mono; /* when the payload's first trace was added */
  _Atomic uint64_t payloads_built;
  _Atomic uint64_t payloads_refused;
  _Atomic uint64_t chunks_dropped;
  _Atomic uint64_t spans_dropped;
  _Atomic uint64_t rates_updates;
  _Atomic uint64_t rates_errors;
} dd_sink;

/* ------------------------------------------------------------ URL */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int parse_port(const char *s, size_t n, unsigned *out) {
  if (n == 0 || n > 5)
    return -1;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535)
    return -1;
  *out = v;
  return 0;
}

static int bad_host_char(char c) {
  return (unsigned char)c <= ' ' || c == '/' || c == '@' || c == '?' ||
         c == '#' || c == '\\' || c == 0x7f;
}

static int put_url(char *out, size_t outlen, char *err, size_t errlen,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int put_url(char *out, size_t outlen, char *err, size_t errlen,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, outlen, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= outlen) {
    set_err(err, errlen, "agent URL longer than %zu bytes", outlen - 1);
    return HOTSPAN_ETOOBIG;
  }
  return HOTSPAN_OK;
}

/* http(s)://host[:port][/path]: host non-empty (an IPv6 address in
 * brackets), port 1..65535. The path is kept (a proxy may serve the agent
 * under one) without its trailing '/'. */
static int check_http(const char *url, size_t scheme_len, char *out,
                      size_t outlen, char *err, size_t errlen) {
  const char *h = url + scheme_len;
  const char *slash = strchr(h, '/');
  size_t hp = slash ? (size_t)(slash - h) : strlen(h);
  const char *hend = h + hp; /* end of host[:port] */
  const char *colon = NULL;
  if (hp > 0 && h[0] == '[') {
    const char *rb = memchr(h, ']', hp);
    if (rb == NULL || rb == h + 1) {
      set_err(err, errlen, "DD_TRACE_AGENT_URL \"%s\": bad IPv6 host", url);
      return HOTSPAN_ECONFIG;
    }
    if (rb + 1 < hend) {
      if (rb[1] != ':') {
        set_err(err, errlen, "DD_TRACE_AGENT_URL \"%s\": bad host", url);
        return HOTSPAN_ECONFIG;
      }
      colon = rb + 1;
    }
  } else {
    colon = memchr(h, ':', hp);
  }
  size_t host_len = colon ? (size_t)(colon - h) : hp;
  if (host_len == 0) {
    set_err(err, errlen, "DD_TRACE_AGENT_URL \"%s\": no host", url);
    return HOTSPAN_ECONFIG;
  }
  for (size_t i = 0; i < host_len; i++)
    if (bad_host_char(h[i]) || (h[0] != '[' && h[i] == ':')) {
      set_err(err, errlen,
              "DD_TRACE_AGENT_URL \"%s\": invalid character in the host", url);
      return HOTSPAN_ECONFIG;
    }
  unsigned port = 0;
  if (colon != NULL &&
      parse_port(colon + 1, (size_t)(hend - colon - 1), &port) != 0) {
    set_err(err, errlen,
            "DD_TRACE_AGENT_URL \"%s\": the port must be an integer from 1 "
            "to 65535",
            url);
    return HOTSPAN_ECONFIG;
  }
  size_t len = strlen(url);
  while (len > (size_t)(hend - url) && url[len - 1] == '/')
    len--;
  return put_url(out, outlen, err, errlen, "%.*s", (int)len, url);
}

int hs_dd_agent_url(const char *trace_agent_url, const char *agent_host,
                    const char *agent_port, char *out, size_t outlen, char *err,
                    size_t errlen) {
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (out == NULL || outlen == 0)
    return HOTSPAN_EINVAL;
  out[0] = '\0';
  if (trace_agent_url != NULL && trace_agent_url[0] != '\0') {
    const char *u = trace_agent_url;
    if (strncmp(u, "unix://", 7) == 0) {
      const char *path = u + 7;
      if (path[0] != '/' || path[1] == '\0') {
        set_err(err, errlen,
                "DD_TRACE_AGENT_URL \"%s\": a unix socket URL needs an "
                "absolute path (unix:///var/run/datadog/apm.socket)",
                u);
        return HOTSPAN_ECONFIG;
      }
      return put_url(out, outlen, err, errlen, "%s", u);
    }
    if (strncmp(u, "http://", 7) == 0)
      return check_http(u, 7, out, outlen, err, errlen);
    if (strncmp(u, "https://", 8) == 0)
      return check_http(u, 8, out, outlen, err, errlen);
    const char *sep = strstr(u, "://");
    if (sep != NULL)
      set_err(err, errlen,
              "DD_TRACE_AGENT_URL \"%s\": unknown scheme \"%.*s\" (use "
              "http://, https:// or unix://)",
              u, (int)(sep - u) > 32 ? 32 : (int)(sep - u), u);
    else
      set_err(err, errlen,
              "DD_TRACE_AGENT_URL \"%s\": not a URL (expected "
              "http://host:port or unix:///path)",
              u);
    return HOTSPAN_ECONFIG;
  }
  const char *host =
      (agent_host != NULL && agent_host[0] != '\0') ? agent_host : "localhost";
  unsigned port = 8126;
  if (agent_port != NULL && agent_port[0] != '\0' &&
      parse_port(agent_port, strlen(agent_port), &port) != 0) {
    set_err(err, errlen,
            "DD_TRACE_AGENT_PORT \"%s\": must be an integer from 1 to 65535",
            agent_port);
    return HOTSPAN_ECONFIG;
  }
  int v6 = strchr(host, ':') != NULL && host[0] != '[';
  for (const char *p = host; *p != '\0'; p++)
    if (bad_host_char(*p)) {
      set_err(err, errlen,
              "DD_AGENT_HOST \"%s\": invalid character in the host name", host);
      return HOTSPAN_ECONFIG;
    }
  return put_url(out, outlen, err, errlen,
                 v6 ? "http://[%s]:%u" : "http://%s:%u", host, port);
}

int hs_dd_agent_url_from_env(char *out, size_t outlen, char *err,
                             size_t errlen) {
  return hs_dd_agent_url(
      hs_env_get("DD_TRACE_AGENT_URL"), hs_env_get("DD_AGENT_HOST"),
      hs_env_get("DD_TRACE_AGENT_PORT"), out, outlen, err, errlen);
}

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
  atomic_fetch_add_explicit(&d->payloads_built, 1, memory_order_relaxed);
  /* The transport owns body from here, whatever it answers. */
  if (hs_target_send(d->target, body, len, headers, nspans) != HOTSPAN_OK)
    atomic_fetch_add_explicit(&d->payloads_refused, 1, memory_order_relaxed);
}

static void dd_write(hs_sink *self, const hs_chunk *c) {
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

static void dd_flush(hs_sink *self, int force) {
  dd_sink *d = (dd_sink *)self;
  if (d->enc.ntraces == 0)
    return;
  if (force || hs_now_mono_ns() - d->oldest_mono >= d->flush_age_ns)
    send_payload(d);
}

static int dd_sync(hs_sink *self, int timeout_ms) {
  dd_sink *d = (dd_sink *)self;
  return hs_target_flush(d->target, timeout_ms);
}

static void dd_destroy(hs_sink *self) {
  dd_sink *d = (dd_sink *)self;
  /* The tracer synced before destroying sinks: whatever is still queued
   * is dropped (and counted) rather than waited for again. */
  hs_target_free(d->target, 0);
  hs_dd_encoder_free(&d->enc);
  free(d);
}

/* On the transport thread. */
static void on_response(void *arg, long status, const char *body, size_t len) {
  dd_sink *d = arg;
  if (status < 200 || status > 299 || body == NULL || len == 0)
    return;
  char err[256];
  if (hs_sampler_set_agent_rates(d->sampler, body, len, err, sizeof err) ==
      HOTSPAN_OK) {
    atomic_fetch_add_explicit(&d->rates_updates, 1, memory_order_relaxed);
    return;
  }
  /* One warning, then debug lines: a misbehaving agent answers every
   * payload the same way. */
  uint64_t n =
      atomic_fetch_add_explicit(&d->rates_errors, 1, memory_order_relaxed);
  hs_log(n == 0 ? HS_LOG_WARN : HS_LOG_DEBUG,
         "datadog traces: cannot read the agent's sampling rates: %s", err);
}

hs_sink *hs_dd_trace_sink_new(hotspan_tracer *t, const hs_dd_trace_options *o) {
  if (t == NULL)
    return NULL;
  hs_dd_trace_options def;
  if (o == NULL) {
    memset(&def, 0, sizeof def);
    o = &def;
  }
  char base[URL_MAX], err[512];
  int rc = o->agent_url != NULL
               ? hs_dd_agent_url(o->agent_url, NULL, NULL, base, sizeof base,
                                 err, sizeof err)
               : hs_dd_agent_url_from_env(base, sizeof base, err, sizeof err);
  if (rc != HOTSPAN_OK) {
    hs_log(HS_LOG_ERROR, "datadog traces: %s", err);
    return NULL;
  }
  dd_sink *d = calloc(1, sizeof *d);
  if (d == NULL)
    return NULL;
  d->sampler = t->sampler;
  d->flush_bytes = o->flush_bytes ? o->flush_bytes : DEFAULT_FLUSH_BYTES;
  d->flush_age_ns =
      (uint64_t)(o->flush_age_ms > 0 ? o->flush_age_ms : DEFAULT_FLUSH_AGE_MS) *
      UINT64_C(1000000);
  hs_dd_encoder_init(&d->enc, &t->settings,
                     o->max_payload ? o->max_payload : DEFAULT_MAX_PAYLOAD);

  char url[URL_MAX + sizeof HS_DD_TRACES_PATH];
  int is_unix = strncmp(base, "unix://", 7) == 0;
  snprintf(url, sizeof url, "%s%s", base, is_unix ? "" : HS_DD_TRACES_PATH);
  /* The language version is the C standard the library was built with
   * (201112 for C11). Headers are copied by hs_target_new. */
  char lang_version[64];
  snprintf(lang_version, sizeof lang_version, "Datadog-Meta-Lang-Version: %ld",
           (long)__STDC_VERSION__);
  const char *const headers[] = {
      "Content-Type: application/msgpack",
      "Datadog-Meta-Lang: " HS_DD_LANGUAGE,
      lang_version,
      "Datadog-Meta-Tracer-Version: " HOTSPAN_VERSION_STRING,
      "Datadog-Client-Computed-Top-Level: yes",
      NULL};
  hs_target_config tc;
  memset(&tc, 0, sizeof tc);
  tc.name = "datadog-traces";
  tc.url = url;
  tc.unix_path = is_unix ? HS_DD_TRACES_PATH : NULL;
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
  d->base.destroy = dd_destroy;
  hs_log(HS_LOG_DEBUG, "datadog traces: sending to %s%s", base,
         HS_DD_TRACES_PATH);
  return &d->base;
}

void hs_dd_trace_sink_get_stats(hs_sink *sink, hs_dd_trace_sink_stats *out) {
  if (out == NULL)
    return;
  memset(out, 0, sizeof *out);
  if (sink == NULL)
    return;
  dd_sink *d = (dd_sink *)sink;
  hs_target_get_stats(d->target, &out->target);
  out->payloads_built =
      atomic_load_explicit(&d->payloads_built, memory_order_relaxed);
  out->payloads_refused =
      atomic_load_explicit(&d->payloads_refused, memory_order_relaxed);
  out->chunks_dropped =
      atomic_load_explicit(&d->chunks_dropped, memory_order_relaxed);
  out->spans_dropped =
      atomic_load_explicit(&d->spans_dropped, memory_order_relaxed);
  out->agent_rates_updates =
      atomic_load_explicit(&d->rates_updates, memory_order_relaxed);
  out->agent_rates_errors =
      atomic_load_explicit(&d->rates_errors, memory_order_relaxed);
}
