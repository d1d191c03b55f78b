/* The /api/v1 query endpoints: parameter parsing and validation, then one
 * correlation engine query and its JSON writer (or the folded / pprof
 * exporters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/api.h"
#include "backend/query.h"
#include "common/hex.h"

#define HOUR_NS (INT64_C(3600) * 1000000000)
#define PARAM_MAX 1024

int hs_agent_query_param(const char *query, const char *name, char *out,
                         size_t outlen) {
  if (!query || !outlen)
    return 0;
  size_t nl = strlen(name);
  const char *p = query;
  while (*p) {
    const char *end = strchr(p, '&');
    if (!end)
      end = p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    const char *kend = eq ? eq : end;
    if ((size_t)(kend - p) == nl && memcmp(p, name, nl) == 0) {
      size_t o = 0;
      for (const char *v = eq ? eq + 1 : end; v < end; v++) {
        int ch = (unsigned char)*v;
        if (ch == '+') {
          ch = ' ';
        } else if (ch == '%') {
          int h1 = v + 1 < end ? hs_hexval((unsigned char)v[1]) : -1;
          int h2 = v + 2 < end ? hs_hexval((unsigned char)v[2]) : -1;
          if (h1 < 0 || h2 < 0 || (h1 == 0 && h2 == 0))
            return -1;
          ch = h1 * 16 + h2;
          v += 2;
        }
        if (o + 1 >= outlen)
          return -1;
        out[o++] = (char)ch;
      }
      out[o] = 0;
      return 1;
    }
    p = *end ? end + 1 : end;
  }
  return 0;
}

/* --------------------------------------------------------- parameters */

typedef struct q {
  const hs_agent_http_request *req;
  hs_agent_http_response *res;
  int failed;
} q;

static void param_error(q *c, const char *name, const char *why) {
  if (c->failed)
    return;
  c->failed = 1;
  char msg[200];
  snprintf(msg, sizeof(msg), "parameter %s: %s", name, why);
  hs_agent_http_error(c->res, 400, msg);
}

/* String parameter into buf; NULL when absent (error if required). */
static const char *p_str(q *c, const char *name, char *buf, size_t len,
                         int required) {
  int rc = hs_agent_query_param(c->req->query, name, buf, len);
  if (rc < 0) {
    param_error(c, name, "malformed or too long");
    return NULL;
  }
  if (rc == 0 || !buf[0]) {
    if (required)
      param_error(c, name, "required");
    return NULL;
  }
  return buf;
}

/* Non-negative decimal integer; def when absent. */
static int64_t p_int(q *c, const char *name, int64_t def, int required) {
  char buf[32];
  if (!p_str(c, name, buf, sizeof(buf), required))
    return def;
  int64_t v = 0;
  for (const char *s = buf; *s; s++) {
    if (*s < '0' || *s > '9' || v > (INT64_MAX - (*s - '0')) / 10) {
      param_error(c, name, "must be a non-negative integer");
      return def;
    }
    v = v * 10 + (*s - '0');
  }
  return v;
}

static int p_bool(q *c, const char *name, int def) {
  char buf[8];
  if (!p_str(c, name, buf, sizeof(buf), 0))
    return def;
  if (strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0)
    return 1;
  if (strcmp(buf, "0") == 0 || strcmp(buf, "false") == 0)
    return 0;
  param_error(c, name, "must be 0 or 1");
  return def;
}

/* type: "cpu" → HS_PT_CPU, "wall" → HS_PT_WALL, "both" → 0 (when
 * allow_both). */
static int p_type(q *c, int def, int allow_both) {
  char buf[8];
  if (!p_str(c, "type", buf, sizeof(buf), 0))
    return def;
  if (strcmp(buf, "cpu") == 0)
    return HS_PT_CPU;
  if (strcmp(buf, "wall") == 0)
    return HS_PT_WALL;
  if (allow_both && strcmp(buf, "both") == 0)
    return 0;
  param_error(c, "type",
              allow_both ? "must be cpu, wall or both" : "must be cpu or wall");
  return def;
}

static int64_t now_ns(const hs_agent_api *a) {
  if (a->now_ns)
    return a->now_ns();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* from/to with the last hour as default. */
static void p_range(q *c, const hs_agent_api *a, int64_t *from, int64_t *to) {
  int64_t now = now_ns(a);
  *to = p_int(c, "to", now, 0);
  *from = p_int(c, "from", *to > HOUR_NS ? *to - HOUR_NS : 0, 0);
  if (!c->failed && *from > *to)
    param_error(c, "from", "must not be after to");
}

static void store_error(hs_agent_http_response *res, int rc, const char *err) {
  hs_agent_http_error(res, rc == HS_STORE_NOTFOUND ? 404 : 500,
                      err[0] ? err : "query failed");
}

/* ---------------------------------------------------------- handlers */

void hs_agent_api_services(void *arg, const hs_agent_http_request *req,
                           hs_agent_http_response *res) {
  hs_agent_api *a = arg;
  q c = {req, res, 0};
  int64_t from, to;
  p_range(&c, a, &from, &to);
  if (c.failed)
    return;
  hs_query_services r;
  char err[256] = "";
  int rc = hs_query_services_query(a->store, from, to, &r, err, sizeof(err));
  if (rc)
    store_error(res, rc, err);
  else
    hs_query_services_json(&r, &res->body);
  hs_query_services_free(&r);
}

void hs_agent_api_traces(void *arg, const hs_agent_http_request *req,
                         hs_agent_http_response *res) {
  hs_agent_api *a = arg;
  q c = {req, res, 0};
  char service[PARAM_MAX], endpoint[PARAM_MAX];
  hs_store_trace_filter f;
  memset(&f, 0, sizeof f);
  f.service = p_str(&c, "service", service, sizeof(service), 0);
  f.endpoint = p_str(&c, "endpoint", endpoint, sizeof(endpoint), 0);
  f.min_duration_ns = p_int(&c, "min_duration_ns", 0, 0);
  f.errors_only = p_bool(&c, "error", 0);
  p_range(&c, a, &f.from_ns, &f.to_ns);
  f.limit = p_int(&c, "limit", 100, 0);
  if (!c.failed && (f.limit < 1 || f.limit > 10000))
    param_error(&c, "limit", "must be between 1 and 10000");
  if (c.failed)
    return;
  f.by_duration = 1;
  hs_query_traces r;
  char err[256] = "";
  int rc = hs_query_traces_query(a->store, &f, &r, err, sizeof(err));
  if (rc)
    store_error(res, rc, err);
  else
    hs_query_traces_json(&r, &res->body);
  hs_query_traces_free(&r);
}

/* The path segment after prefix up to the next '/' (or the end) into out;
 * *rest gets what follows it. -1 when empty or too long. */
static int path_segment(const char *path, const char *prefix, char *out,
                        size_t outlen, const char **rest) {
  size_t pl = strlen(prefix);
  if (strncmp(path, prefix, pl) != 0)
    return -1;
  const char *s = path + pl, *e = strchr(s, '/');
  if (!e)
    e = s + strlen(s);
  if (e == s || (size_t)(e - s) >= outlen)
    return -1;
  memcpy(out, s, (size_t)(e - s));
  out[e - s] = 0;
  *rest = e;
  return 0;
}

void hs_agent_api_trace(void *arg, const hs_agent_http_request *req,
                        hs_agent_http_response *res) {
  hs_agent_api *a = arg;
  char id[64];
  const char *rest;
  uint64_t hi, lo;
  if (path_segment(req->path, "/api/v1/traces/", id, sizeof(id), &rest) ||
      *rest) {
    hs_agent_http_error(res, 404, "not found");
    return;
  }
  if (hs_query_parse_id(id, &hi, &lo)) {
    hs_agent_http_error(res, 400, "trace_id: not a decimal or hex trace id");
    return;
  }
  hs_query_trace r;
  char err[256] = "";
  int rc = hs_query_trace_query(a->store, hi, lo, &r, err, sizeof(err));
  if (rc)
    store_error(res, rc, err);
  else
    hs_query_trace_json(&r, &res->body);
  hs_query_trace_free(&r);
}

/* A profile left out of an answer: present, with no samples. */
static void blank_profile(hs_query_profile *p, int type) {
  memset(p, 0, sizeof(*p));
  p->type = type;
  p->flame.name = "root";
}

void hs_agent_api_spans(void *arg, const hs_agent_http_request *req,
                        hs_agent_http_response *res) {
  hs_agent_api *a = arg;
  char id[64];
  const char *rest;
  uint64_t hi, lo;
  if (path_segment(req->path, "/api/v1/spans/", id, sizeof(id), &rest) ||
      strcmp(rest, "/hotspots") != 0) {
    hs_agent_http_error(res, 404, "not found");
    return;
  }
  if (hs_query_parse_id(id, &hi, &lo) || hi != 0) {
    hs_agent_http_error(res, 400,
                        "span_id: not a decimal or hex 64-bit span id");
    return;
  }
  q c = {req, res, 0};
  hs_query_opts o;
  memset(&o, 0, sizeof o);
  int type = p_type(&c, 0, 1);
  o.with_children = p_bool(&c, "children", 0);
  o.lines = p_bool(&c, "lines", 0);
  int64_t limit = p_int(&c, "limit", 50, 0);
  if (!c.failed && (limit < 1 || limit > 10000))
    param_error(&c, "limit", "must be between 1 and 10000");
  if (c.failed)
    return;
  o.top = (size_t)limit;
  hs_query_hotspots r;
  char err[256] = "";
  int rc = hs_query_span_hotspots(a->store, lo, &o, &r, err, sizeof(err));
  if (rc) {
    store_error(res, rc, err);
  } else {
    /* type limits the profiles listed; the verdict still uses both. */
    hs_query_hotspots view = r;
    if (type == HS_PT_CPU)
      blank_profile(&view.wall, HS_PT_WALL);
    if (type == HS_PT_WALL)
      blank_profile(&view.cpu, HS_PT_CPU);
    hs_query_hotspots_json(&view, &res->body);
  }
  hs_query_hotspots_free(&r);
}

void hs_agent_api_profile(void *arg, const hs_agent_http_request *req,
                          hs_agent_http_response *res) {
  hs_agent_api *a = arg;
  q c = {req, res, 0};
  char service[PARAM_MAX], endpoint[PARAM_MAX], format[16];
  const char *svc = p_str(&c, "service", service, sizeof(service), 0);
  const char *ep = p_str(&c, "endpoint", endpoint, sizeof(endpoint), 1);
  int64_t from, to;
  p_range(&c, a, &from, &to);
  const char *fmt = p_str(&c, "format", format, sizeof(format), 0);
  if (!fmt)
    fmt = "json";
  int json = strcmp(fmt, "json") == 0;
  if (!c.failed && !json && strcmp(fmt, "folded") != 0 &&
      strcmp(fmt, "pprof") != 0)
    param_error(&c, "format", "must be json, folded or pprof");
  /* json lists both types unless one is asked for; the exports are of one
   * type, CPU unless wall is asked for. */
  int type = p_type(&c, json ? 0 : HS_PT_CPU, json);
  int per_request = p_bool(&c, "per_request", 1);
  int lines = p_bool(&c, "lines", 0);
  if (c.failed)
    return;
  char err[256] = "";
  int rc;
  if (json) {
    hs_query_opts o;
    memset(&o, 0, sizeof o);
    o.lines = lines;
    hs_query_endpoint_profile r;
    rc = hs_query_endpoint_profile_query(a->store, svc, ep, from, to, &o, &r,
                                         err, sizeof(err));
    if (rc) {
      store_error(res, rc, err);
    } else {
      hs_query_endpoint_profile view = r;
      view.no_per_request = !per_request;
      if (type == HS_PT_CPU)
        blank_profile(&view.wall, HS_PT_WALL);
      if (type == HS_PT_WALL)
        blank_profile(&view.cpu, HS_PT_CPU);
      hs_query_endpoint_profile_json(&view, &res->body);
    }
    hs_query_endpoint_profile_free(&r);
    return;
  }
  hs_query_selection sel;
  memset(&sel, 0, sizeof sel);
  sel.service = svc;
  sel.endpoint = ep;
  sel.from_ns = from;
  sel.to_ns = to;
  sel.type = type;
  sel.lines = lines;
  if (strcmp(fmt, "folded") == 0) {
    rc = hs_query_export_folded(a->store, &sel, &res->body, err, sizeof(err));
    res->content_type = "text/plain; charset=utf-8";
  } else {
    rc = hs_query_export_pprof(a->store, &sel, &res->body, err, sizeof(err));
    res->content_type = "application/octet-stream";
  }
  if (rc)
    store_error(res, rc, err);
}

/* One side's range of a version diff: both ends or neither (0, 0: all
 * stored data). */
static void p_side_range(q *c, const char *from_name, const char *to_name,
                         int64_t *from, int64_t *to) {
  int64_t none = -1;
  *from = p_int(c, from_name, none, 0);
  *to = p_int(c, to_name, none, 0);
  if (c->failed)
    return;
  if ((*from == none) != (*to == none)) {
    param_error(c, *from == none ? from_name : to_name,
                "required with its pair (a version diff takes a whole"
                " range or none)");
    return;
  }
  if (*from == none)
    *from = *to = 0;
  else if (*from > *to)
    param_error(c, from_name, "must not be after its _to");
}

void hs_agent_api_diff(void *arg, const hs_agent_http_request *req,
                       hs_agent_http_response *res) {
  hs_agent_api *a = arg;
  q c = {req, res, 0};
  char service[PARAM_MAX], endpoint[PARAM_MAX], bver[PARAM_MAX],
      aver[PARAM_MAX];
  const char *svc = p_str(&c, "service", service, sizeof(service), 0);
  const char *ep = p_str(&c, "endpoint", endpoint, sizeof(endpoint), 1);
  const char *bv = p_str(&c, "before_version", bver, sizeof(bver), 0);
  const char *av = p_str(&c, "after_version", aver, sizeof(aver), 0);
  if (!c.failed && !bv != !av)
    param_error(&c, bv ? "after_version" : "before_version",
                "required with its pair (a version diff compares two"
                " versions)");
  hs_query_diff_side bs = {0, 0, bv}, as = {0, 0, av};
  if (bv) {
    /* Versions: a range is optional (default: all stored data). */
    p_side_range(&c, "before_from", "before_to", &bs.from_ns, &bs.to_ns);
    p_side_range(&c, "after_from", "after_to", &as.from_ns, &as.to_ns);
  } else {
    bs.from_ns = p_int(&c, "before_from", 0, 1);
    bs.to_ns = p_int(&c, "before_to", 0, 1);
    as.from_ns = p_int(&c, "after_from", 0, 1);
    as.to_ns = p_int(&c, "after_to", 0, 1);
    if (!c.failed && bs.from_ns > bs.to_ns)
      param_error(&c, "before_from", "must not be after before_to");
    if (!c.failed && as.from_ns > as.to_ns)
      param_error(&c, "after_from", "must not be after after_to");
  }
  int type = p_type(&c, HS_PT_CPU, 0);
  int lines = p_bool(&c, "lines", 0);
  int64_t limit = p_int(&c, "limit", 50, 0);
  if (!c.failed && (limit < 1 || limit > 10000))
    param_error(&c, "limit", "must be between 1 and 10000");
  if (c.failed)
    return;
  hs_query_opts o;
  memset(&o, 0, sizeof o);
  o.lines = lines;
  o.top = (size_t)limit;
  hs_query_diff r;
  char err[256] = "";
  int rc = hs_query_endpoint_diff_sides(a->store, svc, ep, type, &bs, &as, &o,
                                        &r, err, sizeof(err));
  if (rc)
    store_error(res, rc, err);
  else
    hs_query_diff_json(&r, &res->body);
  hs_query_diff_free(&r);
}

void hs_agent_api_versions(void *arg, const hs_agent_http_request *req,
                           hs_agent_http_response *res) {
  hs_agent_api *a = arg;
  q c = {req, res, 0};
  char service[PARAM_MAX];
  const char *svc = p_str(&c, "service", service, sizeof(service), 0);
  if (c.failed)
    return;
  hs_query_versions r;
  char err[256] = "";
  int rc = hs_query_versions_query(a->store, svc, &r, err, sizeof(err));
  if (rc)
    store_error(res, rc, err);
  else
    hs_query_versions_json(&r, &res->body);
  hs_query_versions_free(&r);
}

/* The route handler: one query at a time on the API's store. */
static void locked_call(void *arg, const hs_agent_http_request *req,
                        hs_agent_http_response *res) {
  hs_agent_api_call *call = arg;
  pthread_mutex_lock(&call->api->mu);
  call->fn(call->api, req, res);
  pthread_mutex_unlock(&call->api->mu);
}

int hs_agent_api_install(hs_agent_server *s, hs_agent_api *api) {
  static const struct {
    const char *path;
    hs_agent_http_handler fn;
  } routes[HS_AGENT_API_ROUTES] = {
      {"/api/v1/services", hs_agent_api_services},
      {"/api/v1/traces", hs_agent_api_traces},
      {"/api/v1/traces/*", hs_agent_api_trace},
      {"/api/v1/spans/*", hs_agent_api_spans},
      {"/api/v1/profile", hs_agent_api_profile},
      {"/api/v1/diff", hs_agent_api_diff},
      {"/api/v1/versions", hs_agent_api_versions},
  };
  pthread_mutex_init(&api->mu, NULL);
  for (size_t i = 0; i < HS_AGENT_API_ROUTES; i++) {
    api->calls[i] = (hs_agent_api_call){api, routes[i].fn};
    if (hs_agent_server_route_worker(s, "GET", routes[i].path, locked_call,
                                     &api->calls[i]))
      return -1;
  }
  return 0;
}

void hs_agent_api_fini(hs_agent_api *api) {
  pthread_mutex_destroy(&api->mu);
}
