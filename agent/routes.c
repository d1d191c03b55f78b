/* Ingest endpoints: body decoding (Content-Encoding), content-type
 * checks, decoder dispatch and the store hand-off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/compress.h"
#include "agent/decode.h"
#include "agent/multipart.h"
#include "agent/routes.h"

#ifndef HS_AGENT_VERSION
#define HS_AGENT_VERSION "0.1.0"
#endif

/* Compares the media type of a Content-Type value (before any ';'),
 * case-insensitively. */
static int media_type_is(const char *ct, const char *want) {
  if (!ct)
    return 0;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  size_t n = strlen(want);
  if (strncasecmp(ct, want, n) != 0)
    return 0;
  ct += n;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  return *ct == 0 || *ct == ';';
}

static int status_of(int rc) {
  return rc == HS_AGENT_ETOOBIG ? 413 : rc == HS_AGENT_ENOMEM ? 500 : 400;
}

/* The body after Content-Encoding; *owned gets a buffer to free. 0 ok,
 * else an answer was written. */
static int request_body(const hs_agent_routes *r,
                        const hs_agent_http_request *req,
                        hs_agent_http_response *res, const uint8_t **body,
                        size_t *len, uint8_t **owned) {
  *owned = NULL;
  *body = req->body;
  *len = req->body_len;
  const char *ce = req->content_encoding;
  if (!ce || !*ce || strcasecmp(ce, "identity") == 0)
    return 0;
  int fmt;
  if (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0)
    fmt = HS_AGENT_COMP_GZIP;
  else if (strcasecmp(ce, "zstd") == 0)
    fmt = HS_AGENT_COMP_ZSTD;
  else {
    hs_agent_http_error(res, 415, "unsupported Content-Encoding");
    return -1;
  }
  hs_agent_limits l;
  hs_agent_limits_resolve(&r->limits, &l);
  char err[200];
  int rc = hs_agent_decompress(fmt, req->body, req->body_len, l.max_inflated,
                               owned, len, err, sizeof(err));
  if (rc) {
    hs_agent_http_error(res, status_of(rc), err);
    return -1;
  }
  *body = *owned;
  return 0;
}

/* HS_AGENT_EINVAL (with a message) if a sample's value is outside what
 * the store accepts (0 to HS_ING_MAX_VALUE, backend/model.h). */
static int check_values(const hs_ing_batch *b, char *err, size_t errlen) {
  for (size_t i = 0; i < b->nsamples; i++) {
    int64_t v = b->samples[i].value;
    if (v < 0 || v > HS_ING_MAX_VALUE) {
      snprintf(err, errlen,
               "sample %zu: value %lld out of range (0 to 2^50 nanoseconds)", i,
               (long long)v);
      return HS_AGENT_EINVAL;
    }
  }
  return HS_AGENT_OK;
}

/* Hands a decoded batch to the store and answers. */
static void store(const hs_agent_routes *r, hs_agent_decoded *d,
                  hs_agent_http_response *res, const char *ok_body) {
  char err[256] = "";
  if (r->store_batch &&
      r->store_batch(r->store_arg, &d->batch, err, sizeof(err)) != 0) {
    hs_agent_http_error(res, 500, err[0] ? err : "store failed");
    return;
  }
  res->status = 200;
  hs_buf_puts(&res->body, ok_body);
}

enum kind { K_TRACES, K_DD_PROFILE, K_PYROSCOPE, K_OTLP };

static void ingest(hs_agent_routes *r, const hs_agent_http_request *req,
                   hs_agent_http_response *res, enum kind k) {
  if (k == K_TRACES &&
      !media_type_is(req->content_type, "application/msgpack")) {
    hs_agent_http_error(res, 415, "Content-Type must be application/msgpack");
    return;
  }
  int otlp_json = media_type_is(req->content_type, "application/json");
  if (k == K_OTLP && !otlp_json &&
      !media_type_is(req->content_type, "application/x-protobuf")) {
    hs_agent_http_error(res, 415,
                        "Content-Type must be application/x-protobuf or "
                        "application/json");
    return;
  }
  /* text/plain is what a browser posts cross-origin without asking first
   * and no Pyroscope client sends (pprof comes as octet-stream, in a
   * multipart form, or as curl's default form type, which is therefore
   * kept: the Origin check in agent/trust.h is what turns browsers away).
   */
  if (k == K_PYROSCOPE && media_type_is(req->content_type, "text/plain")) {
    hs_agent_http_error(res, 415,
                        "Content-Type must be application/octet-stream or "
                        "multipart/form-data");
    return;
  }
  if (k == K_DD_PROFILE && !hs_agent_is_multipart(req->content_type)) {
    hs_agent_http_error(res, 415, "Content-Type must be multipart/form-data");
    return;
  }
  const uint8_t *body;
  size_t len;
  uint8_t *owned;
  if (request_body(r, req, res, &body, &len, &owned))
    return;
  hs_agent_decoded d;
  hs_agent_decoded_init(&d, &r->limits);
  char err[256];
  int rc;
  if (k == K_TRACES)
    rc =
        hs_agent_decode_dd_msgpack(body, len, &r->limits, &d, err, sizeof(err));
  else if (k == K_DD_PROFILE)
    rc = hs_agent_decode_dd_profile(req->content_type, body, len, &r->limits,
                                    &d, err, sizeof(err));
  else if (k == K_OTLP && otlp_json)
    rc = hs_agent_decode_otlp_json(body, len, &r->limits, &d, err, sizeof(err));
  else if (k == K_OTLP)
    rc = hs_agent_decode_otlp(body, len, &r->limits, &d, err, sizeof(err));
  else
    rc = hs_agent_decode_pyroscope(req->query, req->content_type, body, len,
                                   &r->limits, &d, err, sizeof(err));
  if (rc == HS_AGENT_OK)
    rc = check_values(&d.batch, err, sizeof(err));
  if (rc) {
    hs_agent_http_error(res, status_of(rc), err);
  } else if (k == K_OTLP) {
    /* An empty ExportTraceServiceResponse: no bytes in protobuf, {} in
     * JSON. */
    store(r, &d, res, otlp_json ? "{}" : "");
    if (res->status == 200 && !otlp_json)
      res->content_type = "application/x-protobuf";
  } else {
    store(r, &d, res, k == K_TRACES ? "{\"rate_by_service\":{}}" : "{}");
  }
  hs_agent_decoded_free(&d);
  free(owned);
}

static void h_traces(void *arg, const hs_agent_http_request *req,
                     hs_agent_http_response *res) {
  ingest(arg, req, res, K_TRACES);
}

static void h_dd_profile(void *arg, const hs_agent_http_request *req,
                         hs_agent_http_response *res) {
  ingest(arg, req, res, K_DD_PROFILE);
}

static void h_pyroscope(void *arg, const hs_agent_http_request *req,
                        hs_agent_http_response *res) {
  ingest(arg, req, res, K_PYROSCOPE);
}

static void h_otlp(void *arg, const hs_agent_http_request *req,
                   hs_agent_http_response *res) {
  ingest(arg, req, res, K_OTLP);
}

static const char *const endpoints[] = {"/v0.4/traces", "/profiling/v1/input",
                                        "/ingest", "/v1/traces", "/info"};

static void h_info(void *arg, const hs_agent_http_request *req,
                   hs_agent_http_response *res) {
  hs_agent_routes *r = arg;
  (void)req;
  hs_agent_limits l;
  hs_agent_limits_resolve(&r->limits, &l);
  hs_buf *b = &res->body;
  hs_buf_puts(b, "{\"version\":");
  hs_json_str(b, r->version ? r->version : HS_AGENT_VERSION);
  hs_buf_puts(b, ",\"agent\":\"hotspan-agent\",\"endpoints\":[");
  for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
    if (i)
      hs_buf_putc(b, ',');
    hs_json_str(b, endpoints[i]);
  }
  hs_buf_puts(b, "],\"client_drop_p0s\":false,\"feature_flags\":[],"
                 "\"config\":{\"max_inflated_bytes\":");
  hs_json_u64(b, l.max_inflated);
  hs_buf_puts(b, ",\"max_decode_memory_bytes\":");
  hs_json_u64(b, l.max_memory);
  hs_buf_puts(b, "}}");
}

int hs_agent_routes_install(hs_agent_server *s, hs_agent_routes *r) {
  if (hs_agent_server_route(s, "PUT", "/v0.4/traces", h_traces, r) ||
      hs_agent_server_route(s, "POST", "/v0.4/traces", h_traces, r) ||
      hs_agent_server_route(s, "POST", "/profiling/v1/input", h_dd_profile,
                            r) ||
      hs_agent_server_route(s, "POST", "/ingest", h_pyroscope, r) ||
      hs_agent_server_route(s, "POST", "/v1/traces", h_otlp, r) ||
      hs_agent_server_route(s, "GET", "/info", h_info, r))
    return -1;
  return 0;
}
