/* Profiles from stored samples: a span's hotspots (with or without its
 * descendants), an endpoint's aggregate, the diff of two ranges or two
 * versions; each with its JSON writer. A profile is self and total time
 * per function name plus a flame tree, built from the stacks the
 * collector gathered (query_collect.c; the tree itself is in
 * query_flame.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/query_int.h"

#define DEFAULT_TOP 50

/* ---------------------------------------------------------- profiles */

/* Frees p's functions and flame tree; p keeps its type. */
static void profile_free(hs_query_profile *p) {
  for (size_t i = 0; i < p->nfuncs; i++)
    free(p->funcs[i].name);
  free(p->funcs);
  hs_query_flame_free(&p->flame);
  int type = p->type;
  memset(p, 0, sizeof *p);
  p->type = type;
}

/* Largest self first, then largest total, then by name. */
static int cmp_func(const void *a, const void *b) {
  const hs_query_func *x = a, *y = b;
  if (x->self != y->self)
    return x->self > y->self ? -1 : 1;
  if (x->total != y->total)
    return x->total > y->total ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Self and total per function name, all of them (top = 0) or the top
 * ones, and the flame tree, from the collected stacks of one type. */
static int build_profile(const hs_query_coll *c, int type, size_t top,
                         int flame, hs_query_profile *p) {
  memset(p, 0, sizeof *p);
  p->type = type;
  hs_kvmap idx;
  hs_kvmap_init(&idx);
  size_t cap = 0;
  int rc = -1;
  if (flame && !(p->flame.name = strdup("root")))
    goto out;
  for (size_t i = 0; i < c->n; i++) {
    const hs_query_stack *st = &c->v[i];
    if (st->type != type)
      continue;
    p->total = hs_query_sat_add(p->total, st->value);
    p->samples += st->count;
    for (size_t k = 0; k < st->nnames; k++) {
      const char *nm = st->names[k];
      /* Recursion: a function counts once per stack in its total. */
      int again = 0;
      for (size_t j = 0; j < k && !again; j++)
        again = !strcmp(st->names[j], nm);
      int added;
      hs_kv_slot *sl =
          hs_kvmap_put(&idx, nm, strlen(nm), (int64_t)p->nfuncs, &added);
      if (!sl)
        goto out;
      if (added) {
        if (p->nfuncs == cap) {
          size_t nc = cap ? cap * 2 : 64;
          hs_query_func *nv = realloc(p->funcs, nc * sizeof *nv);
          if (!nv)
            goto out;
          p->funcs = nv;
          cap = nc;
        }
        hs_query_func *f = &p->funcs[p->nfuncs];
        memset(f, 0, sizeof *f);
        if (!(f->name = strdup(nm)))
          goto out;
        p->nfuncs++;
      }
      hs_query_func *f = &p->funcs[sl->val];
      if (k == 0)
        f->self = hs_query_sat_add(f->self, st->value);
      if (!again)
        f->total = hs_query_sat_add(f->total, st->value);
    }
    if (flame && hs_query_flame_add(&p->flame, st) < 0)
      goto out;
  }
  for (size_t i = 0; i < p->nfuncs; i++) {
    hs_query_func *f = &p->funcs[i];
    f->self_pct = p->total ? 100.0 * (double)f->self / (double)p->total : 0;
    f->total_pct = p->total ? 100.0 * (double)f->total / (double)p->total : 0;
  }
  if (p->nfuncs > 1)
    qsort(p->funcs, p->nfuncs, sizeof *p->funcs, cmp_func);
  if (top && p->nfuncs > top) {
    for (size_t i = top; i < p->nfuncs; i++)
      free(p->funcs[i].name);
    p->nfuncs = top;
  }
  if (flame)
    hs_query_flame_sort(&p->flame);
  rc = 0;
out:
  hs_kvmap_free(&idx);
  if (rc < 0)
    profile_free(p);
  return rc;
}

/* requests > 0 adds per-request values. */
static void profile_json(hs_buf *b, const hs_query_profile *p,
                         int64_t requests) {
  hs_buf_printf(b, "{\"type\":\"%s\",\"total_ns\":%lld,\"samples\":%lld,",
                p->type == HS_PT_CPU ? "cpu" : "wall", (long long)p->total,
                (long long)p->samples);
  if (requests > 0) {
    hs_buf_puts(b, "\"total_per_request_ns\":");
    hs_json_double(b, (double)p->total / (double)requests);
    hs_buf_putc(b, ',');
  }
  hs_buf_puts(b, "\"functions\":[");
  for (size_t i = 0; i < p->nfuncs; i++) {
    const hs_query_func *f = &p->funcs[i];
    hs_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
    hs_json_str(b, f->name);
    hs_buf_printf(b, ",\"self_ns\":%lld,\"total_ns\":%lld,\"self_pct\":",
                  (long long)f->self, (long long)f->total);
    hs_json_double(b, f->self_pct);
    hs_buf_puts(b, ",\"total_pct\":");
    hs_json_double(b, f->total_pct);
    if (requests > 0) {
      hs_buf_puts(b, ",\"self_per_request_ns\":");
      hs_json_double(b, (double)f->self / (double)requests);
      hs_buf_puts(b, ",\"total_per_request_ns\":");
      hs_json_double(b, (double)f->total / (double)requests);
    }
    hs_buf_putc(b, '}');
  }
  hs_buf_puts(b, "],\"flame\":");
  hs_query_flame_json(b, &p->flame);
  hs_buf_putc(b, '}');
}

/* ---------------------------------------------------------- verdict */

/* The CPU-to-wall ratio in *ratio and what it says: "cpu-bound" at 0.5 or
 * more (or with no wall time), "waiting" at 0.1 or less, "mixed" between,
 * "no-samples" with neither. */
const char *hs_query_verdict(int64_t cpu_ns, int64_t wall_ns, double *ratio) {
  double r = 0;
  const char *v;
  if (cpu_ns <= 0 && wall_ns <= 0) {
    v = "no-samples";
  } else if (wall_ns <= 0) {
    r = INFINITY;
    v = "cpu-bound";
  } else {
    r = (double)cpu_ns / (double)wall_ns;
    v = r >= 0.5 ? "cpu-bound" : r <= 0.1 ? "waiting" : "mixed";
  }
  if (ratio)
    *ratio = r;
  return v;
}

/* ---------------------------------------------------------- span */

/* hs_store_find_span callback: copies the first row into span. */
typedef struct one_span {
  hs_query_span *span;
  int found, oom;
} one_span;

static int first_span_cb(void *arg, const hs_store_span *p) {
  one_span *o = arg;
  /* The same span id in two traces (64-bit collision): the first wins. */
  if (o->found)
    return 0;
  o->found = 1;
  if (hs_query_span_copy(o->span, p) < 0) {
    o->oom = 1;
    return 1;
  }
  return 0;
}

/* A trace's span ids with their parents, to walk a subtree. */
typedef struct link {
  uint64_t id, parent;
} link;

typedef struct links {
  link *v;
  size_t n, cap;
  int oom;
} links;

/* hs_store_trace_spans callback: appends (id, parent). */
static int link_cb(void *arg, const hs_store_span *p) {
  links *l = arg;
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    link *nv = realloc(l->v, nc * sizeof *nv);
    if (!nv) {
      l->oom = 1;
      return 1;
    }
    l->v = nv;
    l->cap = nc;
  }
  l->v[l->n].id = p->span_id;
  l->v[l->n++].parent = p->parent_id;
  return 0;
}

int hs_query_span_ids(hs_store *s, uint64_t span_id, int with_children,
                      hs_query_span *span, uint64_t **ids, size_t *n, char *err,
                      size_t errlen) {
  *ids = NULL;
  *n = 0;
  memset(span, 0, sizeof *span);
  one_span o = {span, 0, 0};
  int rc = hs_store_find_span(s, span_id, first_span_cb, &o, err, errlen);
  if (o.oom)
    rc = hs_query_oom(err, errlen);
  if (rc == HS_STORE_NOTFOUND)
    hs_query_seterr(err, errlen, "span %016llx not found",
                    (unsigned long long)span_id);
  if (rc != HS_STORE_OK) {
    hs_query_span_clear(span);
    return rc;
  }
  links l;
  memset(&l, 0, sizeof l);
  if (with_children) {
    rc = hs_store_trace_spans(s, span->trace_id_high, span->trace_id_low,
                              link_cb, &l, err, errlen);
    if (l.oom)
      rc = hs_query_oom(err, errlen);
  }
  uint64_t *v = NULL;
  size_t m = 0;
  if (rc == HS_STORE_OK) {
    v = malloc((l.n + 1) * sizeof *v);
    if (!v)
      rc = hs_query_oom(err, errlen);
  }
  if (rc == HS_STORE_OK) {
    /* Breadth-first over parent ids: v[0..m) is the subtree found so far;
     * each pass adds the spans whose parent is in it (ids within a trace
     * are unique, so each is added once). Quadratic in the trace's span
     * count, which is small (a trace is one request). */
    v[m++] = span_id;
    char *in = calloc(l.n + 1, 1);
    if (!in) {
      rc = hs_query_oom(err, errlen);
    } else {
      for (size_t scan = 0; scan < m; scan++)
        for (size_t i = 0; i < l.n; i++)
          if (!in[i] && l.v[i].parent == v[scan] && l.v[i].id != span_id &&
              l.v[i].id != l.v[i].parent) {
            in[i] = 1;
            v[m++] = l.v[i].id;
          }
      free(in);
    }
  }
  free(l.v);
  if (rc != HS_STORE_OK) {
    free(v);
    hs_query_span_clear(span);
    return rc;
  }
  *ids = v;
  *n = m;
  return HS_STORE_OK;
}

int hs_query_span_hotspots(hs_store *s, uint64_t span_id,
                           const hs_query_opts *o, hs_query_hotspots *out,
                           char *err, size_t errlen) {
  hs_query_opts opts;
  memset(&opts, 0, sizeof opts);
  if (o)
    opts = *o;
  size_t top = opts.top ? opts.top : DEFAULT_TOP;
  memset(out, 0, sizeof *out);
  out->cpu.type = HS_PT_CPU;
  out->wall.type = HS_PT_WALL;
  uint64_t *ids;
  size_t n;
  int rc = hs_query_span_ids(s, span_id, opts.with_children, &out->span, &ids,
                             &n, err, errlen);
  if (rc != HS_STORE_OK)
    return rc;
  out->with_children = opts.with_children;
  out->nspans = n;
  hs_query_coll c;
  hs_query_coll_init(&c, s, opts.lines);
  hs_store_sample_sel sel;
  memset(&sel, 0, sizeof sel);
  sel.span_ids = ids;
  sel.nspan_ids = n;
  rc = hs_query_coll_add(&c, &sel, err, errlen);
  if (rc == HS_STORE_OK)
    rc = hs_query_coll_resolve(&c, err, errlen);
  if (rc == HS_STORE_OK &&
      (build_profile(&c, HS_PT_CPU, top, 1, &out->cpu) < 0 ||
       build_profile(&c, HS_PT_WALL, top, 1, &out->wall) < 0))
    rc = hs_query_oom(err, errlen);
  hs_query_coll_free(&c);
  free(ids);
  if (rc != HS_STORE_OK) {
    hs_query_hotspots_free(out);
    return rc;
  }
  int64_t wall = out->wall.total;
  if (wall <= 0 && out->cpu.total > 0) {
    wall = out->span.duration_ns;
    out->wall_from_duration = 1;
  }
  out->verdict = hs_query_verdict(out->cpu.total, wall, &out->cpu_wall_ratio);
  return HS_STORE_OK;
}

void hs_query_hotspots_free(hs_query_hotspots *r) {
  if (!r)
    return;
  hs_query_span_clear(&r->span);
  profile_free(&r->cpu);
  profile_free(&r->wall);
  memset(r, 0, sizeof *r);
}

/* "key":"<hex>", 32 digits when wide, else 16. */
static void hexid(hs_buf *b, const char *key, uint64_t hi, uint64_t lo,
                  int wide) {
  hs_json_str(b, key);
  hs_buf_puts(b, ":\"");
  if (wide)
    hs_json_hex64(b, hi);
  hs_json_hex64(b, lo);
  hs_buf_putc(b, '"');
}

void hs_query_hotspots_json(const hs_query_hotspots *r, hs_buf *b) {
  hs_buf_putc(b, '{');
  hexid(b, "trace_id", r->span.trace_id_high, r->span.trace_id_low, 1);
  hs_buf_putc(b, ',');
  hexid(b, "span_id", 0, r->span.span_id, 0);
  hs_buf_puts(b, ",\"service\":");
  hs_json_str(b, r->span.service);
  hs_buf_puts(b, ",\"name\":");
  hs_json_str(b, r->span.name);
  hs_buf_puts(b, ",\"resource\":");
  hs_json_str(b, r->span.resource);
  hs_buf_printf(b,
                ",\"duration_ns\":%lld,\"with_children\":%s,\"spans\":%zu,"
                "\"verdict\":",
                (long long)r->span.duration_ns,
                r->with_children ? "true" : "false", r->nspans);
  hs_json_str(b, r->verdict ? r->verdict : "no-samples");
  hs_buf_puts(b, ",\"cpu_wall_ratio\":");
  hs_json_double(b, r->cpu_wall_ratio);
  hs_buf_printf(b, ",\"wall_basis\":\"%s\",\"cpu\":",
                r->wall_from_duration ? "duration" : "samples");
  profile_json(b, &r->cpu, 0);
  hs_buf_puts(b, ",\"wall\":");
  profile_json(b, &r->wall, 0);
  hs_buf_putc(b, '}');
}

/* ---------------------------------------------------------- endpoint */

/* Counts the traces a listing returns. */
typedef struct counter {
  int64_t n;
} counter;

static int count_cb(void *arg, const hs_store_trace *t) {
  (void)t;
  ((counter *)arg)->n++;
  return 0;
}

/* The number of requests (traces) of an endpoint in [from, to), of one
 * version when version is not NULL. */
static int endpoint_requests_v(hs_store *s, const char *service,
                               const char *endpoint, const char *version,
                               int64_t from, int64_t to, int64_t *n, char *err,
                               size_t errlen) {
  hs_store_trace_filter f;
  memset(&f, 0, sizeof f);
  f.service = service;
  f.version = version;
  f.endpoint = endpoint;
  f.from_ns = from;
  f.to_ns = to;
  counter c = {0};
  int rc = hs_store_traces(s, &f, count_cb, &c, err, errlen);
  *n = c.n;
  return rc;
}

static int endpoint_requests(hs_store *s, const char *service,
                             const char *endpoint, int64_t from, int64_t to,
                             int64_t *n, char *err, size_t errlen) {
  return endpoint_requests_v(s, service, endpoint, NULL, from, to, n, err,
                             errlen);
}

/* Collects and resolves the samples of an endpoint in [from, to) into c:
 * of one type (0: both) and one version (NULL: any). */
static int endpoint_coll_v(const char *service, const char *endpoint,
                           const char *version, int64_t from, int64_t to,
                           int type, hs_query_coll *c, char *err,
                           size_t errlen) {
  hs_store_sample_sel sel;
  memset(&sel, 0, sizeof sel);
  sel.service = service;
  sel.version = version;
  sel.endpoint = endpoint;
  sel.from_ns = from;
  sel.to_ns = to;
  sel.type = type;
  int rc = hs_query_coll_add(c, &sel, err, errlen);
  return rc == HS_STORE_OK ? hs_query_coll_resolve(c, err, errlen) : rc;
}

static int endpoint_coll(const char *service, const char *endpoint,
                         int64_t from, int64_t to, int type, hs_query_coll *c,
                         char *err, size_t errlen) {
  return endpoint_coll_v(service, endpoint, NULL, from, to, type, c, err,
                         errlen);
}

int hs_query_endpoint_profile_query(hs_store *s, const char *service,
                                    const char *endpoint, int64_t from_ns,
                                    int64_t to_ns, const hs_query_opts *o,
                                    hs_query_endpoint_profile *out, char *err,
                                    size_t errlen) {
  memset(out, 0, sizeof *out);
  out->cpu.type = HS_PT_CPU;
  out->wall.type = HS_PT_WALL;
  if (!endpoint) {
    hs_query_seterr(err, errlen, "no endpoint given");
    return HS_STORE_ERR;
  }
  size_t top = o && o->top ? o->top : DEFAULT_TOP;
  out->from_ns = from_ns;
  out->to_ns = to_ns;
  out->endpoint = strdup(endpoint);
  if (!out->endpoint || (service && !(out->service = strdup(service))))
    return hs_query_oom(err, errlen);
  int rc = endpoint_requests(s, service, endpoint, from_ns, to_ns,
                             &out->requests, err, errlen);
  hs_query_coll c;
  hs_query_coll_init(&c, s, o ? o->lines : 0);
  if (rc == HS_STORE_OK)
    rc = endpoint_coll(service, endpoint, from_ns, to_ns, 0, &c, err, errlen);
  if (rc == HS_STORE_OK &&
      (build_profile(&c, HS_PT_CPU, top, 1, &out->cpu) < 0 ||
       build_profile(&c, HS_PT_WALL, top, 1, &out->wall) < 0))
    rc = hs_query_oom(err, errlen);
  hs_query_coll_free(&c);
  if (rc == HS_STORE_OK && !out->requests && !out->cpu.samples &&
      !out->wall.samples) {
    hs_query_seterr(err, errlen,
                    "endpoint %s%s%s: no requests or samples in range",
                    service ? service : "", service ? " " : "", endpoint);
    rc = HS_STORE_NOTFOUND;
  }
  if (rc != HS_STORE_OK)
    hs_query_endpoint_profile_free(out);
  return rc;
}

void hs_query_endpoint_profile_free(hs_query_endpoint_profile *r) {
  if (!r)
    return;
  free(r->service);
  free(r->endpoint);
  profile_free(&r->cpu);
  profile_free(&r->wall);
  memset(r, 0, sizeof *r);
}

void hs_query_endpoint_profile_json(const hs_query_endpoint_profile *r,
                                    hs_buf *b) {
  hs_buf_puts(b, "{\"service\":");
  hs_json_str(b, r->service);
  hs_buf_puts(b, ",\"endpoint\":");
  hs_json_str(b, r->endpoint);
  hs_buf_printf(b,
                ",\"from_ns\":%lld,\"to_ns\":%lld,\"requests\":%lld,"
                "\"cpu\":",
                (long long)r->from_ns, (long long)r->to_ns,
                (long long)r->requests);
  int64_t per = r->no_per_request ? 0 : r->requests;
  profile_json(b, &r->cpu, per);
  hs_buf_puts(b, ",\"wall\":");
  profile_json(b, &r->wall, per);
  hs_buf_putc(b, '}');
}

/* ---------------------------------------------------------- diff */

/* Largest self delta first, then largest total delta, then by name. */
static int cmp_diff(const void *a, const void *b) {
  const hs_query_diff_row *x = a, *y = b;
  if (x->delta_self != y->delta_self)
    return x->delta_self > y->delta_self ? -1 : 1;
  if (x->delta_total != y->delta_total)
    return x->delta_total > y->delta_total ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* A diff of two time ranges (no versions). */
int hs_query_endpoint_diff(hs_store *s, const char *service,
                           const char *endpoint, int type, int64_t before_from,
                           int64_t before_to, int64_t after_from,
                           int64_t after_to, const hs_query_opts *o,
                           hs_query_diff *out, char *err, size_t errlen) {
  hs_query_diff_side b = {before_from, before_to, NULL};
  hs_query_diff_side a = {after_from, after_to, NULL};
  return hs_query_endpoint_diff_sides(s, service, endpoint, type, &b, &a, o,
                                      out, err, errlen);
}

/* Looks for one version among the stored ones; remembers a few names for
 * the error message. */
typedef struct version_find {
  const char *want;
  int found;
  hs_buf known;
  int nknown;
} version_find;

static int version_find_cb(void *arg, const hs_store_version *v) {
  version_find *f = arg;
  if (strcmp(v->version, f->want) == 0)
    f->found = 1;
  if (f->nknown < 8) {
    hs_buf_puts(&f->known, f->nknown ? ", " : "");
    hs_buf_puts(&f->known, v->version);
  } else if (f->nknown == 8) {
    hs_buf_puts(&f->known, ", ...");
  }
  f->nknown++;
  return 0;
}

/* HS_STORE_NOTFOUND, with the known versions in the message, when
 * service (NULL: any) has no version named version. */
static int check_version(hs_store *s, const char *service, const char *version,
                         char *err, size_t errlen) {
  version_find f = {version, 0, {0}, 0};
  hs_buf_init(&f.known, 4096);
  int rc = hs_store_versions(s, service, version_find_cb, &f, err, errlen);
  if (rc == HS_STORE_OK && !f.found) {
    hs_query_seterr(err, errlen, "version '%s' is unknown for %s%s (known: %s)",
                    version, service ? "service " : "any service",
                    service ? service : "",
                    f.nknown ? hs_buf_cstr(&f.known) : "none");
    rc = HS_STORE_NOTFOUND;
  }
  hs_buf_free(&f.known);
  return rc;
}

/* Fills out's header (type, ranges, copies of the names). 0, or -1 out of
 * memory. */
static int diff_init(hs_query_diff *out, const char *service,
                     const char *endpoint, int type,
                     const hs_query_diff_side *before,
                     const hs_query_diff_side *after) {
  out->type = type;
  out->before_from = before->from_ns;
  out->before_to = before->to_ns;
  out->after_from = after->from_ns;
  out->after_to = after->to_ns;
  out->endpoint = strdup(endpoint);
  if (!out->endpoint || (service && !(out->service = strdup(service))) ||
      (before->version && !(out->before_version = strdup(before->version))) ||
      (after->version && !(out->after_version = strdup(after->version))))
    return -1;
  return 0;
}

/* Both sides of a diff: their request counts into out and their profiles
 * of type (every function, no flame tree) into *pb (before) and *pa
 * (after). */
static int diff_profiles(hs_store *s, const char *service, const char *endpoint,
                         int type, const hs_query_diff_side *before,
                         const hs_query_diff_side *after, int lines,
                         hs_query_diff *out, hs_query_profile *pb,
                         hs_query_profile *pa, char *err, size_t errlen) {
  hs_query_coll cb, ca;
  hs_query_coll_init(&cb, s, lines);
  hs_query_coll_init(&ca, s, lines);
  int rc = endpoint_requests_v(s, service, endpoint, before->version,
                               before->from_ns, before->to_ns,
                               &out->before_requests, err, errlen);
  if (rc == HS_STORE_OK)
    rc = endpoint_requests_v(s, service, endpoint, after->version,
                             after->from_ns, after->to_ns, &out->after_requests,
                             err, errlen);
  if (rc == HS_STORE_OK)
    rc = endpoint_coll_v(service, endpoint, before->version, before->from_ns,
                         before->to_ns, type, &cb, err, errlen);
  if (rc == HS_STORE_OK)
    rc = endpoint_coll_v(service, endpoint, after->version, after->from_ns,
                         after->to_ns, type, &ca, err, errlen);
  if (rc == HS_STORE_OK && (build_profile(&cb, type, 0, 0, pb) < 0 ||
                            build_profile(&ca, type, 0, 0, pa) < 0))
    rc = hs_query_oom(err, errlen);
  hs_query_coll_free(&cb);
  hs_query_coll_free(&ca);
  return rc;
}

/* Adds the functions of both profiles (pb before, pa after) to out->rows,
 * one row per name, each side's values per request. */
static int diff_rows(hs_query_diff *out, const hs_query_profile *pb,
                     const hs_query_profile *pa, char *err, size_t errlen) {
  double nb = out->before_requests > 0 ? (double)out->before_requests : 1;
  double na = out->after_requests > 0 ? (double)out->after_requests : 1;
  hs_kvmap idx;
  hs_kvmap_init(&idx);
  int rc = HS_STORE_OK;
  for (int side = 0; rc == HS_STORE_OK && side < 2; side++) {
    const hs_query_profile *p = side ? pa : pb;
    for (size_t i = 0; i < p->nfuncs; i++) {
      const hs_query_func *f = &p->funcs[i];
      int added;
      hs_kv_slot *sl =
          hs_kvmap_put(&idx, f->name, strlen(f->name), (int64_t)out->n, &added);
      if (!sl) {
        rc = hs_query_oom(err, errlen);
        break;
      }
      hs_query_diff_row *r = &out->rows[sl->val];
      if (added) {
        if (!(r->name = strdup(f->name))) {
          rc = hs_query_oom(err, errlen);
          break;
        }
        out->n++;
      }
      if (side) {
        r->after_self = (double)f->self / na;
        r->after_total = (double)f->total / na;
      } else {
        r->before_self = (double)f->self / nb;
        r->before_total = (double)f->total / nb;
      }
    }
  }
  hs_kvmap_free(&idx);
  return rc;
}

/* The deltas of every row, the rows by delta, and at most top of them. */
static void diff_rank(hs_query_diff *out, size_t top) {
  for (size_t i = 0; i < out->n; i++) {
    out->rows[i].delta_self =
        out->rows[i].after_self - out->rows[i].before_self;
    out->rows[i].delta_total =
        out->rows[i].after_total - out->rows[i].before_total;
  }
  qsort(out->rows, out->n, sizeof *out->rows, cmp_diff);
  if (out->n > top) {
    for (size_t i = top; i < out->n; i++)
      free(out->rows[i].name);
    out->n = top;
  }
}

int hs_query_endpoint_diff_sides(hs_store *s, const char *service,
                                 const char *endpoint, int type,
                                 const hs_query_diff_side *before,
                                 const hs_query_diff_side *after,
                                 const hs_query_opts *o, hs_query_diff *out,
                                 char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!endpoint || (type != HS_PT_CPU && type != HS_PT_WALL) || !before ||
      !after) {
    hs_query_seterr(err, errlen,
                    "diff needs an endpoint and a type (cpu or wall)");
    return HS_STORE_ERR;
  }
  if (!before->version != !after->version) {
    hs_query_seterr(err, errlen,
                    "a version diff needs both versions (before and after)");
    return HS_STORE_ERR;
  }
  const char *bv = before->version, *av = after->version;
  size_t top = o && o->top ? o->top : DEFAULT_TOP;
  int lines = o ? o->lines : 0;
  if (diff_init(out, service, endpoint, type, before, after) < 0) {
    hs_query_diff_free(out);
    return hs_query_oom(err, errlen);
  }
  if (bv) {
    int vrc = check_version(s, service, bv, err, errlen);
    if (vrc == HS_STORE_OK)
      vrc = check_version(s, service, av, err, errlen);
    if (vrc != HS_STORE_OK) {
      hs_query_diff_free(out);
      return vrc;
    }
  }
  hs_query_profile pb, pa;
  memset(&pb, 0, sizeof pb);
  memset(&pa, 0, sizeof pa);
  int rc = diff_profiles(s, service, endpoint, type, before, after, lines, out,
                         &pb, &pa, err, errlen);
  /* A version that is known but has nothing for this endpoint (in the
   * range) would give a diff against nothing: say so instead. */
  for (int side = 0; rc == HS_STORE_OK && bv && side < 2; side++) {
    int64_t req = side ? out->after_requests : out->before_requests;
    const hs_query_profile *p = side ? &pa : &pb;
    if (!req && !p->samples) {
      hs_query_seterr(err, errlen,
                      "version '%s': no requests or samples of endpoint %s in"
                      " the range",
                      side ? av : bv, endpoint);
      rc = HS_STORE_NOTFOUND;
    }
  }
  /* Union of both ranges' functions. */
  if (rc == HS_STORE_OK &&
      !(out->rows = calloc(pb.nfuncs + pa.nfuncs + 1, sizeof *out->rows)))
    rc = hs_query_oom(err, errlen);
  if (rc == HS_STORE_OK)
    rc = diff_rows(out, &pb, &pa, err, errlen);
  if (rc == HS_STORE_OK)
    diff_rank(out, top);
  profile_free(&pb);
  profile_free(&pa);
  if (rc != HS_STORE_OK)
    hs_query_diff_free(out);
  return rc;
}

void hs_query_diff_free(hs_query_diff *r) {
  if (!r)
    return;
  free(r->service);
  free(r->endpoint);
  free(r->before_version);
  free(r->after_version);
  for (size_t i = 0; i < r->n; i++)
    free(r->rows[i].name);
  free(r->rows);
  memset(r, 0, sizeof *r);
}

void hs_query_diff_json(const hs_query_diff *r, hs_buf *b) {
  hs_buf_puts(b, "{\"service\":");
  hs_json_str(b, r->service);
  hs_buf_puts(b, ",\"endpoint\":");
  hs_json_str(b, r->endpoint);
  hs_buf_printf(b,
                ",\"type\":\"%s\",\"before\":{\"from_ns\":%lld,\"to_ns\":"
                "%lld,\"requests\":%lld,\"version\":",
                r->type == HS_PT_CPU ? "cpu" : "wall",
                (long long)r->before_from, (long long)r->before_to,
                (long long)r->before_requests);
  hs_json_str(b, r->before_version);
  hs_buf_printf(b,
                "},\"after\":{\"from_ns\":%lld,\"to_ns\":%lld,"
                "\"requests\":%lld,\"version\":",
                (long long)r->after_from, (long long)r->after_to,
                (long long)r->after_requests);
  hs_json_str(b, r->after_version);
  hs_buf_puts(b, "},\"functions\":[");
  for (size_t i = 0; i < r->n; i++) {
    const hs_query_diff_row *d = &r->rows[i];
    hs_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
    hs_json_str(b, d->name);
    const char *keys[] = {"before_self_ns", "after_self_ns",
                          "delta_self_ns",  "before_total_ns",
                          "after_total_ns", "delta_total_ns"};
    double vals[] = {d->before_self,  d->after_self,  d->delta_self,
                     d->before_total, d->after_total, d->delta_total};
    for (int k = 0; k < 6; k++) {
      hs_buf_printf(b, ",\"%s\":", keys[k]);
      hs_json_double(b, vals[k]);
    }
    hs_buf_putc(b, '}');
  }
  hs_buf_puts(b, "]}");
}
