/* The two backends of the query commands. Both produce the same document
 * for a query: the agent's JSON API answer (GET over HTTP with libcurl),
 * or the correlation engine's JSON writer run on a store file opened
 * read-only, which is what the agent itself runs to answer. The renderer
 * never knows which one answered. */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/query.h"
#include "backend/store.h"
#include "cli/cli.h"
#include "common/token.h"

#define HOUR_NS 3600000000000LL
/* Largest answer accepted from the agent: a big pprof or trace fits. */
#define MAX_RESPONSE (256u << 20)

__attribute__((format(printf, 3, 4))) static void
seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static const char *type_name(hs_cli_ptype t) {
  return t == HS_CLI_CPU ? "cpu" : t == HS_CLI_WALL ? "wall" : "both";
}

/* ------------------------------------------------------------ API path */

static void put_param(hs_buf *b, int *first, const char *key, const char *val) {
  hs_buf_putc(b, *first ? '?' : '&');
  *first = 0;
  hs_buf_puts(b, key);
  hs_buf_putc(b, '=');
  /* RFC 3986 unreserved characters stay; everything else is %XX. */
  for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
        *p == '~')
      hs_buf_putc(b, (char)*p);
    else
      hs_buf_printf(b, "%%%02X", *p);
  }
}

static void put_int(hs_buf *b, int *first, const char *key, int64_t v) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%" PRId64, v);
  put_param(b, first, key, tmp);
}

void hs_cli_api_path(const hs_cli_query *q, hs_buf *b) {
  int first = 1;
  switch (q->kind) {
  case HS_Q_SERVICES:
    hs_buf_puts(b, "/api/v1/services");
    break;
  case HS_Q_TRACES:
    hs_buf_puts(b, "/api/v1/traces");
    if (q->service)
      put_param(b, &first, "service", q->service);
    if (q->endpoint)
      put_param(b, &first, "endpoint", q->endpoint);
    if (q->min_duration_ns > 0)
      put_int(b, &first, "min_duration_ns", q->min_duration_ns);
    if (q->errors_only)
      put_param(b, &first, "error", "1");
    if (q->limit > 0)
      put_int(b, &first, "limit", q->limit);
    break;
  case HS_Q_TRACE:
    hs_buf_printf(b, "/api/v1/traces/%016" PRIx64 "%016" PRIx64, q->id_hi,
                  q->id_lo);
    return;
  case HS_Q_HOTSPOTS:
    hs_buf_printf(b, "/api/v1/spans/%016" PRIx64 "/hotspots", q->id_lo);
    put_param(b, &first, "type", type_name(q->type));
    put_param(b, &first, "children", q->children ? "1" : "0");
    put_param(b, &first, "lines", q->lines ? "1" : "0");
    if (q->limit > 0)
      put_int(b, &first, "limit", q->limit);
    return;
  case HS_Q_PROFILE:
    hs_buf_puts(b, "/api/v1/profile");
    if (q->service)
      put_param(b, &first, "service", q->service);
    if (q->endpoint)
      put_param(b, &first, "endpoint", q->endpoint);
    put_param(b, &first, "type", q->type == HS_CLI_WALL ? "wall" : "cpu");
    put_param(b, &first, "per_request", q->per_request ? "1" : "0");
    put_param(b, &first, "format",
              q->format == HS_CLI_FMT_PPROF    ? "pprof"
              : q->format == HS_CLI_FMT_FOLDED ? "folded"
                                               : "json");
    if (q->lines)
      put_param(b, &first, "lines", "1");
    if (q->limit > 0)
      put_int(b, &first, "limit", q->limit);
    break;
  case HS_Q_DIFF:
    hs_buf_puts(b, "/api/v1/diff");
    if (q->service)
      put_param(b, &first, "service", q->service);
    if (q->endpoint)
      put_param(b, &first, "endpoint", q->endpoint);
    if (!q->before_version || q->before_from || q->before_to) {
      put_int(b, &first, "before_from", q->before_from);
      put_int(b, &first, "before_to", q->before_to);
    }
    if (!q->after_version || q->after_from || q->after_to) {
      put_int(b, &first, "after_from", q->after_from);
      put_int(b, &first, "after_to", q->after_to);
    }
    if (q->before_version)
      put_param(b, &first, "before_version", q->before_version);
    if (q->after_version)
      put_param(b, &first, "after_version", q->after_version);
    put_param(b, &first, "type", q->type == HS_CLI_WALL ? "wall" : "cpu");
    if (q->limit > 0)
      put_int(b, &first, "limit", q->limit);
    return;
  case HS_Q_VERSIONS:
    hs_buf_puts(b, "/api/v1/versions");
    if (q->service)
      put_param(b, &first, "service", q->service);
    return;
  }
  if (q->from_ns)
    put_int(b, &first, "from", q->from_ns);
  if (q->to_ns)
    put_int(b, &first, "to", q->to_ns);
}

/* --------------------------------------------------------------- agent */

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  hs_buf *b = arg;
  size_t len = size * n;
  if (b->len + len > MAX_RESPONSE)
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
  hs_buf_append(b, p, len);
  return hs_buf_failed(b) ? 0 : len;
}

/* The "error" member of an API error document, else a short excerpt. */
static void api_error(const hs_buf *body, long status, char *err,
                      size_t errlen) {
  hs_json_doc *doc = NULL;
  char jerr[128];
  if (body->len > 0 && hs_json_parse(body->data, body->len, NULL, &doc, jerr,
                                     sizeof jerr, NULL) == 0) {
    const hs_json_value *e = hs_json_get(hs_json_root(doc), "error");
    if (e != NULL && e->type == HS_JSON_STRING) {
      seterr(err, errlen, "%s", e->u.string.ptr);
      hs_json_free(doc);
      return;
    }
  }
  hs_json_free(doc);
  seterr(err, errlen, "the agent answered HTTP %ld", status);
}

static int fetch_agent(const hs_cli_backend *be, const hs_cli_query *q,
                       hs_buf *out, char *err, size_t errlen) {
  static int curl_ready;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      seterr(err, errlen, "cannot initialise libcurl");
      return HS_CLI_BACKEND;
    }
    curl_ready = 1;
  }
  const char *base = be->agent_url ? be->agent_url : HS_CLI_DEFAULT_AGENT;
  size_t blen = strlen(base);
  while (blen > 0 && base[blen - 1] == '/')
    blen--;
  hs_buf url;
  hs_buf_init(&url, 0);
  hs_buf_append(&url, base, blen);
  hs_cli_api_path(q, &url);
  CURL *c = curl_easy_init();
  if (c == NULL || hs_buf_failed(&url)) {
    if (c)
      curl_easy_cleanup(c);
    hs_buf_free(&url);
    seterr(err, errlen, "out of memory");
    return HS_CLI_BACKEND;
  }
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, hs_buf_cstr(&url));
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   be->connect_timeout_ms > 0 ? be->connect_timeout_ms : 3000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   be->timeout_ms > 0 ? be->timeout_ms : 60000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "hotspan-cli");
  /* The agent's token, when it requires one (docs/security.md). */
  char auth[HS_TOKEN_HEADER_MAX];
  struct curl_slist *hdrs = NULL;
  if (hs_token_header(auth, sizeof auth) < 0) {
    curl_easy_cleanup(c);
    hs_buf_free(&url);
    seterr(err, errlen, "HOTSPAN_AGENT_TOKEN %s",
           hs_token_invalid(getenv("HOTSPAN_AGENT_TOKEN")));
    return HS_CLI_USAGE;
  }
  if (auth[0]) {
    hdrs = curl_slist_append(NULL, auth);
    if (hdrs == NULL) {
      curl_easy_cleanup(c);
      hs_buf_free(&url);
      seterr(err, errlen, "out of memory");
      return HS_CLI_BACKEND;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  }
  /* The agent serves plain HTTP; other schemes are a mistake. */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
  int ret = HS_CLI_OK;
  if (rc != CURLE_OK) {
    seterr(err, errlen,
           "cannot reach hotspan-agent at %.*s: %s (is the agent running? "
           "use --agent URL, or --db PATH to read a store file)",
           (int)blen, base, cerr[0] ? cerr : curl_easy_strerror(rc));
    ret = HS_CLI_BACKEND;
  } else if (status == 404) {
    api_error(out, status, err, errlen);
    ret = HS_CLI_NOTFOUND;
  } else if (status == 400) {
    api_error(out, status, err, errlen);
    ret = HS_CLI_USAGE;
  } else if (status != 200) {
    api_error(out, status, err, errlen);
    ret = HS_CLI_BACKEND;
  }
  hs_buf_free(&url);
  return ret;
}

/* --------------------------------------------------------------- store */

static int store_rc(int rc) {
  return rc == HS_STORE_OK         ? HS_CLI_OK
         : rc == HS_STORE_NOTFOUND ? HS_CLI_NOTFOUND
                                   : HS_CLI_BACKEND;
}

static int fetch_db(const hs_cli_backend *be, const hs_cli_query *q,
                    int64_t now_ns, hs_buf *out, char *err, size_t errlen) {
  hs_store_sqlite_opts so = {0};
  so.read_only = 1;
  hs_store *s = hs_store_open_sqlite(be->db_path, &so, err, errlen);
  if (s == NULL)
    return HS_CLI_BACKEND;
  /* The agent's defaults: the last hour. */
  int64_t from = q->from_ns ? q->from_ns : now_ns - HOUR_NS;
  int64_t to = q->to_ns ? q->to_ns : 0;
  hs_query_opts o = {0};
  o.lines = q->lines;
  o.with_children = q->children;
  o.top = q->limit > 0 ? (size_t)q->limit : 0;
  int rc = HS_STORE_ERR;
  switch (q->kind) {
  case HS_Q_SERVICES: {
    hs_query_services r;
    rc = hs_query_services_query(s, from, to, &r, err, errlen);
    if (rc == HS_STORE_OK)
      hs_query_services_json(&r, out);
    hs_query_services_free(&r);
    break;
  }
  case HS_Q_TRACES: {
    hs_store_trace_filter f = {0};
    f.service = q->service;
    f.endpoint = q->endpoint;
    f.min_duration_ns = q->min_duration_ns;
    f.errors_only = q->errors_only;
    f.from_ns = from;
    f.to_ns = to;
    f.limit = q->limit;
    f.by_duration = 1;
    hs_query_traces r;
    rc = hs_query_traces_query(s, &f, &r, err, errlen);
    if (rc == HS_STORE_OK)
      hs_query_traces_json(&r, out);
    hs_query_traces_free(&r);
    break;
  }
  case HS_Q_TRACE: {
    hs_query_trace r;
    rc = hs_query_trace_query(s, q->id_hi, q->id_lo, &r, err, errlen);
    if (rc == HS_STORE_OK)
      hs_query_trace_json(&r, out);
    hs_query_trace_free(&r);
    break;
  }
  case HS_Q_HOTSPOTS: {
    hs_query_hotspots r;
    rc = hs_query_span_hotspots(s, q->id_lo, &o, &r, err, errlen);
    if (rc == HS_STORE_OK)
      hs_query_hotspots_json(&r, out);
    hs_query_hotspots_free(&r);
    break;
  }
  case HS_Q_PROFILE: {
    if (q->format != HS_CLI_FMT_JSON) {
      hs_query_selection sel = {0};
      sel.service = q->service;
      sel.endpoint = q->endpoint;
      sel.from_ns = from;
      sel.to_ns = to;
      sel.type = q->type == HS_CLI_WALL ? HS_PT_WALL : HS_PT_CPU;
      sel.lines = q->lines;
      rc = q->format == HS_CLI_FMT_PPROF
               ? hs_query_export_pprof(s, &sel, out, err, errlen)
               : hs_query_export_folded(s, &sel, out, err, errlen);
      break;
    }
    hs_query_endpoint_profile r;
    rc = hs_query_endpoint_profile_query(s, q->service, q->endpoint, from, to,
                                         &o, &r, err, errlen);
    if (rc == HS_STORE_OK)
      hs_query_endpoint_profile_json(&r, out);
    hs_query_endpoint_profile_free(&r);
    break;
  }
  case HS_Q_DIFF: {
    hs_query_diff r;
    hs_query_diff_side bs = {q->before_from, q->before_to, q->before_version};
    hs_query_diff_side as = {q->after_from, q->after_to, q->after_version};
    rc = hs_query_endpoint_diff_sides(s, q->service, q->endpoint,
                                      q->type == HS_CLI_WALL ? HS_PT_WALL
                                                             : HS_PT_CPU,
                                      &bs, &as, &o, &r, err, errlen);
    if (rc == HS_STORE_OK)
      hs_query_diff_json(&r, out);
    hs_query_diff_free(&r);
    break;
  }
  case HS_Q_VERSIONS: {
    hs_query_versions r;
    rc = hs_query_versions_query(s, q->service, &r, err, errlen);
    if (rc == HS_STORE_OK)
      hs_query_versions_json(&r, out);
    hs_query_versions_free(&r);
    break;
  }
  }
  hs_store_close(s);
  if (rc == HS_STORE_OK && hs_buf_failed(out)) {
    seterr(err, errlen, "answer too large or out of memory");
    return HS_CLI_BACKEND;
  }
  return store_rc(rc);
}

int hs_cli_fetch(const hs_cli_backend *be, const hs_cli_query *q,
                 int64_t now_ns, hs_buf *out, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (be->db_path != NULL)
    return fetch_db(be, q, now_ns, out, err, errlen);
  return fetch_agent(be, q, out, err, errlen);
}
