/* Correlation queries over the store interface and their JSON writers. */
#include "backend/query_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"

#define DEFAULT_TRACE_LIMIT 100

void hs_query_seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int hs_query_oom(char *err, size_t errlen) {
  hs_query_seterr(err, errlen, "out of memory");
  return HS_STORE_ERR;
}

static char *dup(const char *s) {
  return strdup(s ? s : "");
}

/* Grows *v (elements of size sz) to hold n + 1. */
static int grow(void **v, size_t *cap, size_t n, size_t sz) {
  if (n < *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*v, nc * sz);
  if (!p)
    return -1;
  *v = p;
  *cap = nc;
  return 0;
}

/* ----------------------------------------------------------------- ids */

int hs_query_parse_id(const char *s, uint64_t *hi, uint64_t *lo) {
  if (!s || !*s)
    return -1;
  size_t n = strlen(s);
  int hex = 0;
  const char *d = s;
  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    hex = 1;
    d = s + 2;
  } else if (n == 16 || n == 32) {
    hex = 1;
  } else {
    for (size_t i = 0; i < n; i++)
      if (!isdigit((unsigned char)s[i]))
        hex = 1;
  }
  uint64_t h = 0, l = 0;
  if (hex) {
    size_t nd = strlen(d);
    if (!nd || nd > 32)
      return -1;
    for (size_t i = 0; i < nd; i++) {
      int v = hs_hexval((unsigned char)d[i]);
      if (v < 0)
        return -1;
      h = (h << 4) | (l >> 60);
      l = (l << 4) | (uint64_t)v;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      /* (h:l) * 10 + digit, refusing overflow past 128 bits. */
      unsigned __int128 v = ((unsigned __int128)h << 64) | l;
      unsigned __int128 max = ~(unsigned __int128)0;
      unsigned dg = (unsigned)(s[i] - '0');
      if (v > (max - dg) / 10)
        return -1;
      v = v * 10 + dg;
      h = (uint64_t)(v >> 64);
      l = (uint64_t)v;
    }
  }
  *hi = h;
  *lo = l;
  return 0;
}

/* -------------------------------------------------------------- JSON */

static void json_key(hs_buf *b, const char *k) {
  hs_json_str(b, k);
  hs_buf_putc(b, ':');
}

static void json_hex64(hs_buf *b, uint64_t v) {
  hs_buf_putc(b, '"');
  hs_json_hex64(b, v);
  hs_buf_putc(b, '"');
}

static void json_trace_id(hs_buf *b, uint64_t hi, uint64_t lo) {
  hs_buf_putc(b, '"');
  hs_json_hex64(b, hi);
  hs_json_hex64(b, lo);
  hs_buf_putc(b, '"');
}

/* ---------------------------------------------------------- endpoints */

int64_t hs_query_percentile(const int64_t *sorted, size_t n, double p) {
  if (!n || p <= 0)
    return n ? sorted[0] : 0;
  double r = p / 100.0 * (double)n;
  size_t rank = (size_t)r;
  if ((double)rank < r)
    rank++;
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return sorted[rank - 1];
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct lat_acc {
  int64_t *d;
  size_t n, cap;
  int64_t errors;
} lat_acc;

static void lat_finish(lat_acc *a, hs_query_latency *l) {
  if (a->n > 1)
    qsort(a->d, a->n, sizeof *a->d, cmp_i64);
  l->requests = (int64_t)a->n;
  l->errors = a->errors;
  l->p50_ns = hs_query_percentile(a->d, a->n, 50);
  l->p95_ns = hs_query_percentile(a->d, a->n, 95);
  l->p99_ns = hs_query_percentile(a->d, a->n, 99);
  l->max_ns = a->n ? a->d[a->n - 1] : 0;
}

typedef struct ep_group {
  char *service, *endpoint;
  lat_acc acc;
} ep_group;

typedef struct svc_collect {
  hs_kvmap idx;
  ep_group *g;
  size_t n, cap;
  int oom;
} svc_collect;

static int services_cb(void *arg, const hs_store_trace *t) {
  svc_collect *c = arg;
  size_t sl = strlen(t->service), el = strlen(t->endpoint);
  char *key = malloc(sl + el + 2);
  if (!key) {
    c->oom = 1;
    return 1;
  }
  memcpy(key, t->service, sl + 1);
  memcpy(key + sl + 1, t->endpoint, el + 1);
  int added;
  hs_kv_slot *slot =
      hs_kvmap_put(&c->idx, key, sl + el + 1, (int64_t)c->n, &added);
  free(key);
  if (!slot || (added && grow((void **)&c->g, &c->cap, c->n, sizeof *c->g))) {
    c->oom = 1;
    return 1;
  }
  if (added) {
    ep_group *g = &c->g[c->n++];
    memset(g, 0, sizeof *g);
    g->service = dup(t->service);
    g->endpoint = dup(t->endpoint);
    if (!g->service || !g->endpoint) {
      c->oom = 1;
      return 1;
    }
  }
  lat_acc *a = &c->g[slot->val].acc;
  if (grow((void **)&a->d, &a->cap, a->n, sizeof *a->d)) {
    c->oom = 1;
    return 1;
  }
  a->d[a->n++] = t->duration_ns;
  a->errors += t->error ? 1 : 0;
  return 0;
}

static int cmp_group(const void *a, const void *b) {
  const ep_group *x = a, *y = b;
  int c = strcmp(x->service, y->service);
  return c ? c : strcmp(x->endpoint, y->endpoint);
}

int hs_query_services_query(hs_store *s, int64_t from_ns, int64_t to_ns,
                            hs_query_services *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->from_ns = from_ns;
  out->to_ns = to_ns;
  svc_collect c;
  memset(&c, 0, sizeof c);
  hs_store_trace_filter f;
  memset(&f, 0, sizeof f);
  f.from_ns = from_ns;
  f.to_ns = to_ns;
  int rc = hs_store_traces(s, &f, services_cb, &c, err, errlen);
  if (c.oom)
    rc = hs_query_oom(err, errlen);
  if (rc == HS_STORE_OK && c.n) {
    qsort(c.g, c.n, sizeof *c.g, cmp_group);
    for (size_t i = 0; i < c.n && rc == HS_STORE_OK;) {
      size_t j = i;
      lat_acc all;
      memset(&all, 0, sizeof all);
      while (j < c.n && !strcmp(c.g[j].service, c.g[i].service)) {
        for (size_t k = 0; k < c.g[j].acc.n; k++) {
          if (grow((void **)&all.d, &all.cap, all.n, sizeof *all.d)) {
            rc = hs_query_oom(err, errlen);
            break;
          }
          all.d[all.n++] = c.g[j].acc.d[k];
        }
        all.errors += c.g[j].acc.errors;
        j++;
      }
      hs_query_service_stat *sv = NULL;
      if (rc == HS_STORE_OK) {
        hs_query_service_stat *ns =
            realloc(out->services, (out->nservices + 1) * sizeof *ns);
        if (!ns) {
          rc = hs_query_oom(err, errlen);
        } else {
          out->services = ns;
          sv = &ns[out->nservices++];
          memset(sv, 0, sizeof *sv);
          sv->endpoints = calloc(j - i, sizeof *sv->endpoints);
          if (!sv->endpoints)
            rc = hs_query_oom(err, errlen);
        }
      }
      if (rc == HS_STORE_OK) {
        sv->service = c.g[i].service;
        c.g[i].service = NULL;
        lat_finish(&all, &sv->lat);
        for (size_t k = i; k < j; k++) {
          hs_query_endpoint_stat *e = &sv->endpoints[sv->nendpoints++];
          e->endpoint = c.g[k].endpoint;
          c.g[k].endpoint = NULL;
          lat_finish(&c.g[k].acc, &e->lat);
        }
      }
      free(all.d);
      i = j;
    }
  }
  for (size_t i = 0; i < c.n; i++) {
    free(c.g[i].service);
    free(c.g[i].endpoint);
    free(c.g[i].acc.d);
  }
  free(c.g);
  hs_kvmap_free(&c.idx);
  if (rc != HS_STORE_OK)
    hs_query_services_free(out);
  return rc;
}

void hs_query_services_free(hs_query_services *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->nservices; i++) {
    free(r->services[i].service);
    for (size_t k = 0; k < r->services[i].nendpoints; k++)
      free(r->services[i].endpoints[k].endpoint);
    free(r->services[i].endpoints);
  }
  free(r->services);
  memset(r, 0, sizeof *r);
}

static void latency_json(hs_buf *b, const hs_query_latency *l) {
  hs_buf_printf(b,
                "\"requests\":%lld,\"errors\":%lld,\"p50_ns\":%lld,"
                "\"p95_ns\":%lld,\"p99_ns\":%lld,\"max_ns\":%lld",
                (long long)l->requests, (long long)l->errors,
                (long long)l->p50_ns, (long long)l->p95_ns,
                (long long)l->p99_ns, (long long)l->max_ns);
}

void hs_query_services_json(const hs_query_services *r, hs_buf *b) {
  hs_buf_printf(b, "{\"from_ns\":%lld,\"to_ns\":%lld,\"services\":[",
                (long long)r->from_ns, (long long)r->to_ns);
  for (size_t i = 0; i < r->nservices; i++) {
    const hs_query_service_stat *sv = &r->services[i];
    hs_buf_puts(b, i ? ",{" : "{");
    json_key(b, "service");
    hs_json_str(b, sv->service);
    hs_buf_putc(b, ',');
    latency_json(b, &sv->lat);
    hs_buf_puts(b, ",\"endpoints\":[");
    for (size_t k = 0; k < sv->nendpoints; k++) {
      hs_buf_puts(b, k ? ",{" : "{");
      json_key(b, "endpoint");
      hs_json_str(b, sv->endpoints[k].endpoint);
      hs_buf_putc(b, ',');
      latency_json(b, &sv->endpoints[k].lat);
      hs_buf_putc(b, '}');
    }
    hs_buf_puts(b, "]}");
  }
  hs_buf_puts(b, "]}");
}

/* ------------------------------------------------------------- traces */

static int copy_trace(hs_query_trace_row *d, const hs_store_trace *t) {
  d->trace_id_high = t->trace_id_high;
  d->trace_id_low = t->trace_id_low;
  d->root_span_id = t->root_span_id;
  d->root_known = t->root_known;
  d->start_ns = t->start_ns;
  d->duration_ns = t->duration_ns;
  d->error = t->error;
  d->span_count = t->span_count;
  d->service = dup(t->service);
  d->endpoint = dup(t->endpoint);
  return d->service && d->endpoint ? 0 : -1;
}

static void free_trace_row(hs_query_trace_row *r) {
  free(r->service);
  free(r->endpoint);
  r->service = r->endpoint = NULL;
}

typedef struct traces_collect {
  hs_query_traces *out;
  size_t cap;
  int oom;
} traces_collect;

static int traces_cb(void *arg, const hs_store_trace *t) {
  traces_collect *c = arg;
  if (grow((void **)&c->out->rows, &c->cap, c->out->n, sizeof *c->out->rows)) {
    c->oom = 1;
    return 1;
  }
  hs_query_trace_row *r = &c->out->rows[c->out->n++];
  memset(r, 0, sizeof *r);
  if (copy_trace(r, t) < 0) {
    c->oom = 1;
    return 1;
  }
  return 0;
}

int hs_query_traces_query(hs_store *s, const hs_store_trace_filter *f,
                          hs_query_traces *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  hs_store_trace_filter q;
  memset(&q, 0, sizeof q);
  if (f)
    q = *f;
  q.by_duration = 1;
  if (q.limit <= 0)
    q.limit = DEFAULT_TRACE_LIMIT;
  traces_collect c = {out, 0, 0};
  int rc = hs_store_traces(s, &q, traces_cb, &c, err, errlen);
  if (c.oom)
    rc = hs_query_oom(err, errlen);
  if (rc != HS_STORE_OK)
    hs_query_traces_free(out);
  return rc;
}

void hs_query_traces_free(hs_query_traces *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    free_trace_row(&r->rows[i]);
  free(r->rows);
  memset(r, 0, sizeof *r);
}

static void trace_row_json(hs_buf *b, const hs_query_trace_row *t) {
  hs_buf_putc(b, '{');
  json_key(b, "trace_id");
  json_trace_id(b, t->trace_id_high, t->trace_id_low);
  hs_buf_putc(b, ',');
  json_key(b, "root_span_id");
  json_hex64(b, t->root_span_id);
  hs_buf_printf(b, ",\"root_known\":%s,", t->root_known ? "true" : "false");
  json_key(b, "service");
  hs_json_str(b, t->service);
  hs_buf_putc(b, ',');
  json_key(b, "endpoint");
  hs_json_str(b, t->endpoint);
  hs_buf_printf(b,
                ",\"start_ns\":%lld,\"duration_ns\":%lld,\"error\":%s,"
                "\"span_count\":%lld}",
                (long long)t->start_ns, (long long)t->duration_ns,
                t->error ? "true" : "false", (long long)t->span_count);
}

void hs_query_traces_json(const hs_query_traces *r, hs_buf *b) {
  hs_buf_puts(b, "{\"traces\":[");
  for (size_t i = 0; i < r->n; i++) {
    if (i)
      hs_buf_putc(b, ',');
    trace_row_json(b, &r->rows[i]);
  }
  hs_buf_puts(b, "]}");
}

void hs_query_span_clear(hs_query_span *sp) {
  free(sp->service);
  free(sp->name);
  free(sp->resource);
  free(sp->type);
  free(sp->attrs_json);
  free(sp->events_json);
  free(sp->links_json);
  free(sp->resource_json);
  memset(sp, 0, sizeof *sp);
}

int hs_query_span_copy(hs_query_span *d, const hs_store_span *p) {
  memset(d, 0, sizeof *d);
  d->trace_id_high = p->trace_id_high;
  d->trace_id_low = p->trace_id_low;
  d->span_id = p->span_id;
  d->parent_id = p->parent_id;
  d->kind = p->kind;
  d->error = p->error;
  d->start_ns = p->start_ns;
  d->duration_ns = p->duration_ns;
  d->service = dup(p->service);
  d->name = dup(p->name);
  d->resource = dup(p->resource);
  d->type = dup(p->type);
  d->attrs_json = dup(p->attrs_json);
  d->events_json = p->events_json ? dup(p->events_json) : NULL;
  d->links_json = p->links_json ? dup(p->links_json) : NULL;
  d->resource_json = p->resource_json ? dup(p->resource_json) : NULL;
  d->dropped_events = p->dropped_events;
  d->dropped_links = p->dropped_links;
  if (!d->service || !d->name || !d->resource || !d->type || !d->attrs_json ||
      (p->events_json && !d->events_json) ||
      (p->links_json && !d->links_json) ||
      (p->resource_json && !d->resource_json)) {
    hs_query_span_clear(d);
    return -1;
  }
  return 0;
}

typedef struct spans_collect {
  hs_query_span *v;
  size_t n, cap;
  int oom;
} spans_collect;

static int spans_cb(void *arg, const hs_store_span *p) {
  spans_collect *c = arg;
  if (grow((void **)&c->v, &c->cap, c->n, sizeof *c->v) ||
      hs_query_span_copy(&c->v[c->n], p) < 0) {
    c->oom = 1;
    return 1;
  }
  c->n++;
  return 0;
}

static void spans_collect_free(spans_collect *c) {
  for (size_t i = 0; i < c->n; i++)
    hs_query_span_clear(&c->v[i]);
  free(c->v);
  memset(c, 0, sizeof *c);
}

static int trace_row_cb(void *arg, const hs_store_trace *t) {
  return copy_trace(arg, t) < 0 ? HS_STORE_ERR : 0;
}

/* Depth-first order of spans (already sorted by start): each span's
 * children follow it. Spans whose parent is absent are roots. */
static int tree_order(hs_query_span *in, size_t n, hs_query_span **out) {
  hs_kvmap idx;
  hs_kvmap_init(&idx);
  size_t *first = malloc((n + 1) * sizeof *first); /* first child */
  size_t *next = malloc((n + 1) * sizeof *next);   /* next sibling */
  size_t *last = malloc((n + 1) * sizeof *last);   /* last child */
  size_t *stack = malloc((n + 1) * sizeof *stack);
  int *depth = malloc((n + 1) * sizeof *depth);
  hs_query_span *res = malloc((n + 1) * sizeof *res);
  int rc = -1;
  if (!first || !next || !last || !stack || !depth || !res)
    goto out;
  const size_t none = (size_t)-1;
  /* Node n is a virtual root above every real root. */
  for (size_t i = 0; i <= n; i++)
    first[i] = next[i] = last[i] = none;
  for (size_t i = 0; i < n; i++)
    if (!hs_kvmap_put(&idx, &in[i].span_id, sizeof in[i].span_id, (int64_t)i,
                      NULL))
      goto out;
  for (size_t i = 0; i < n; i++) {
    size_t p = n;
    hs_kv_slot *sl = NULL;
    if (in[i].parent_id && in[i].parent_id != in[i].span_id)
      sl = hs_kvmap_get(&idx, &in[i].parent_id, sizeof in[i].parent_id);
    if (sl && (size_t)sl->val != i)
      p = (size_t)sl->val;
    if (last[p] == none)
      first[p] = i;
    else
      next[last[p]] = i;
    last[p] = i;
  }
  /* Iterative DFS; a cycle of parent ids (bad data) leaves its spans
   * unreached: they are appended as roots. */
  size_t m = 0, sp = 0;
  char *seen = calloc(n + 1, 1);
  if (!seen)
    goto out;
  stack[sp++] = n;
  depth[n] = -1;
  size_t *cur = malloc((n + 1) * sizeof *cur);
  if (!cur) {
    free(seen);
    goto out;
  }
  cur[n] = first[n];
  while (sp) {
    size_t top = stack[sp - 1];
    size_t c = cur[top];
    if (c == none) {
      sp--;
      continue;
    }
    cur[top] = next[c];
    if (seen[c])
      continue;
    seen[c] = 1;
    res[m] = in[c];
    res[m].depth = depth[top] + 1;
    depth[c] = res[m].depth;
    m++;
    cur[c] = first[c];
    stack[sp++] = c;
  }
  for (size_t i = 0; i < n; i++)
    if (!seen[i]) {
      res[m] = in[i];
      res[m++].depth = 0;
    }
  free(seen);
  free(cur);
  *out = res;
  res = NULL;
  rc = 0;
out:
  hs_kvmap_free(&idx);
  free(first);
  free(next);
  free(last);
  free(stack);
  free(depth);
  free(res);
  return rc;
}

int hs_query_trace_query(hs_store *s, uint64_t hi, uint64_t lo,
                         hs_query_trace *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int rc =
      hs_store_get_trace(s, hi, lo, trace_row_cb, &out->trace, err, errlen);
  if (rc == HS_STORE_NOTFOUND) {
    hs_query_seterr(err, errlen, "trace %016llx%016llx not found",
                    (unsigned long long)hi, (unsigned long long)lo);
    return rc;
  }
  if (rc != HS_STORE_OK) {
    if (rc > 0)
      rc = hs_query_oom(err, errlen);
    hs_query_trace_free(out);
    return rc;
  }
  spans_collect c;
  memset(&c, 0, sizeof c);
  rc = hs_store_trace_spans(s, hi, lo, spans_cb, &c, err, errlen);
  if (c.oom)
    rc = hs_query_oom(err, errlen);
  if (rc == HS_STORE_NOTFOUND) /* a trace row without spans: empty */
    rc = HS_STORE_OK;
  if (rc == HS_STORE_OK && c.n) {
    if (tree_order(c.v, c.n, &out->spans) < 0) {
      rc = hs_query_oom(err, errlen);
    } else {
      out->n = c.n;
      free(c.v); /* the strings moved to out->spans */
      memset(&c, 0, sizeof c);
    }
  }
  spans_collect_free(&c);
  if (rc != HS_STORE_OK)
    hs_query_trace_free(out);
  return rc;
}

void hs_query_trace_free(hs_query_trace *r) {
  if (!r)
    return;
  free_trace_row(&r->trace);
  for (size_t i = 0; i < r->n; i++)
    hs_query_span_clear(&r->spans[i]);
  free(r->spans);
  memset(r, 0, sizeof *r);
}

static void span_json(hs_buf *b, const hs_query_span *p) {
  hs_buf_putc(b, '{');
  json_key(b, "trace_id");
  json_trace_id(b, p->trace_id_high, p->trace_id_low);
  hs_buf_putc(b, ',');
  json_key(b, "span_id");
  json_hex64(b, p->span_id);
  hs_buf_putc(b, ',');
  json_key(b, "parent_id");
  json_hex64(b, p->parent_id);
  hs_buf_putc(b, ',');
  json_key(b, "service");
  hs_json_str(b, p->service);
  hs_buf_putc(b, ',');
  json_key(b, "name");
  hs_json_str(b, p->name);
  hs_buf_putc(b, ',');
  json_key(b, "resource");
  hs_json_str(b, p->resource);
  hs_buf_putc(b, ',');
  json_key(b, "type");
  hs_json_str(b, p->type);
  hs_buf_printf(b,
                ",\"kind\":%d,\"start_ns\":%lld,\"duration_ns\":%lld,"
                "\"error\":%s,\"depth\":%d,\"attrs\":",
                p->kind, (long long)p->start_ns, (long long)p->duration_ns,
                p->error ? "true" : "false", p->depth);
  /* attrs_json, events_json and links_json are the store's own JSON. */
  hs_buf_puts(b, p->attrs_json && *p->attrs_json ? p->attrs_json : "{}");
  hs_buf_puts(b, ",\"events\":");
  hs_buf_puts(b, p->events_json && *p->events_json ? p->events_json : "[]");
  hs_buf_printf(
      b, ",\"dropped_events\":%lld,\"links\":", (long long)p->dropped_events);
  hs_buf_puts(b, p->links_json && *p->links_json ? p->links_json : "[]");
  hs_buf_printf(b, ",\"dropped_links\":%lld,\"resource_attrs\":",
                (long long)p->dropped_links);
  hs_buf_puts(b,
              p->resource_json && *p->resource_json ? p->resource_json : "{}");
  hs_buf_putc(b, '}');
}

void hs_query_trace_json(const hs_query_trace *r, hs_buf *b) {
  hs_buf_puts(b, "{\"trace\":");
  trace_row_json(b, &r->trace);
  hs_buf_puts(b, ",\"spans\":[");
  for (size_t i = 0; i < r->n; i++) {
    if (i)
      hs_buf_putc(b, ',');
    span_json(b, &r->spans[i]);
  }
  hs_buf_puts(b, "]}");
}
