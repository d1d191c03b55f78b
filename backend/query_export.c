/* Export of a selection's samples as folded stacks and as gzipped pprof. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/query_int.h"
#include "common/gzip.h"
#include "profile.pb-c.h"
#include "wire/pprof_labels.h"

/* Collects the selection's stacks of sel->type into c. */
static int collect(hs_store *s, const hs_query_selection *sel, hs_query_coll *c,
                   char *err, size_t errlen) {
  if (!sel || (sel->type != HS_PT_CPU && sel->type != HS_PT_WALL)) {
    hs_query_seterr(err, errlen, "export needs a type (cpu or wall)");
    return HS_STORE_ERR;
  }
  hs_query_coll_init(c, s, sel->lines);
  hs_store_sample_sel q;
  memset(&q, 0, sizeof q);
  q.type = sel->type;
  uint64_t *ids = NULL;
  int rc;
  if (sel->span_id) {
    hs_query_span span;
    size_t n;
    rc = hs_query_span_ids(s, sel->span_id, sel->with_children, &span, &ids, &n,
                           err, errlen);
    if (rc != HS_STORE_OK)
      return rc;
    hs_query_span_clear(&span);
    q.span_ids = ids;
    q.nspan_ids = n;
  } else if (sel->endpoint) {
    q.service = sel->service;
    q.endpoint = sel->endpoint;
    q.from_ns = sel->from_ns;
    q.to_ns = sel->to_ns;
  } else {
    hs_query_seterr(err, errlen, "export needs a span id or an endpoint");
    return HS_STORE_ERR;
  }
  rc = hs_query_coll_add(c, &q, err, errlen);
  free(ids);
  return rc == HS_STORE_OK ? hs_query_coll_resolve(c, err, errlen) : rc;
}

/* ------------------------------------------------------------- folded */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int hs_query_export_folded(hs_store *s, const hs_query_selection *sel,
                           hs_buf *out, char *err, size_t errlen) {
  hs_query_coll c;
  int rc = collect(s, sel, &c, err, errlen);
  hs_kvmap lines;
  hs_kvmap_init(&lines);
  hs_buf line;
  hs_buf_init(&line, 0);
  char **keys = NULL;
  for (size_t i = 0; rc == HS_STORE_OK && i < c.n; i++) {
    const hs_query_stack *st = &c.v[i];
    hs_buf_reset(&line);
    for (size_t k = st->nnames; k-- > 0;) {
      /* ';' separates frames and '\n' lines: neither may appear in one. */
      for (const char *p = st->names[k]; *p; p++)
        hs_buf_putc(&line, *p == ';' || *p == '\n' || *p == '\r' ? '_' : *p);
      if (k)
        hs_buf_putc(&line, ';');
    }
    if (hs_buf_failed(&line)) {
      rc = hs_query_oom(err, errlen);
      break;
    }
    hs_kv_slot *sl = hs_kvmap_put(&lines, line.data, line.len, 0, NULL);
    if (!sl) {
      rc = hs_query_oom(err, errlen);
      break;
    }
    sl->val = hs_query_sat_add(sl->val, st->value);
  }
  if (rc == HS_STORE_OK && lines.n) {
    keys = malloc(lines.n * sizeof *keys);
    if (!keys)
      rc = hs_query_oom(err, errlen);
  }
  if (rc == HS_STORE_OK) {
    size_t n = 0;
    for (size_t i = 0; i < lines.cap; i++)
      if (lines.slots[i].key)
        keys[n++] = lines.slots[i].key;
    qsort(keys, n, sizeof *keys, cmp_str);
    for (size_t i = 0; i < n; i++) {
      hs_kv_slot *sl = hs_kvmap_get(&lines, keys[i], strlen(keys[i]));
      hs_buf_printf(out, "%s %lld\n", keys[i], (long long)sl->val);
    }
    if (hs_buf_failed(out)) {
      hs_query_seterr(err, errlen, "output too large");
      rc = HS_STORE_ERR;
    }
  }
  free(keys);
  hs_buf_free(&line);
  hs_kvmap_free(&lines);
  hs_query_coll_free(&c);
  return rc;
}

/* ------------------------------------------------------------- pprof */

typedef struct strtab {
  hs_kvmap idx;
  char **v;
  size_t n, cap;
  int oom;
} strtab;

static int64_t str_id(strtab *t, const char *s) {
  int added;
  hs_kv_slot *sl = hs_kvmap_put(&t->idx, s, strlen(s), (int64_t)t->n, &added);
  if (!sl) {
    t->oom = 1;
    return 0;
  }
  if (added) {
    if (t->n == t->cap) {
      size_t nc = t->cap ? t->cap * 2 : 64;
      char **nv = realloc(t->v, nc * sizeof *nv);
      if (!nv) {
        t->oom = 1;
        return 0;
      }
      t->v = nv;
      t->cap = nc;
    }
    t->v[t->n++] = sl->key; /* the map owns the copy */
  }
  return sl->val;
}

/* The protobuf messages of one profile, in arrays sized for the collected
 * stacks: a sample per stack, and at most one location, line and function
 * per frame (one per distinct frame name in use: nloc). */
typedef struct pprof_msgs {
  Perftools__Profiles__Sample *samples, **sp;
  uint64_t *locids;
  int64_t *vals;
  Perftools__Profiles__Location *lv, **lp;
  Perftools__Profiles__Line *lnv, **lnp;
  Perftools__Profiles__Function *fv, **fp;
  size_t nloc;
} pprof_msgs;

/* 0, or -1 out of memory (free with msgs_free either way). */
static int msgs_alloc(pprof_msgs *m, size_t nsamples, size_t nlocs_total) {
  memset(m, 0, sizeof *m);
  m->samples = calloc(nsamples + 1, sizeof *m->samples);
  m->sp = calloc(nsamples + 1, sizeof *m->sp);
  m->locids = calloc(nlocs_total + 1, sizeof *m->locids);
  m->vals = calloc(2 * nsamples + 2, sizeof *m->vals);
  m->lv = calloc(nlocs_total + 1, sizeof *m->lv);
  m->lp = calloc(nlocs_total + 1, sizeof *m->lp);
  m->lnv = calloc(nlocs_total + 1, sizeof *m->lnv);
  m->lnp = calloc(nlocs_total + 1, sizeof *m->lnp);
  m->fv = calloc(nlocs_total + 1, sizeof *m->fv);
  m->fp = calloc(nlocs_total + 1, sizeof *m->fp);
  if (!m->samples || !m->sp || !m->locids || !m->vals || !m->lv || !m->lp ||
      !m->lnv || !m->lnp || !m->fv || !m->fp)
    return -1;
  return 0;
}

static void msgs_free(pprof_msgs *m) {
  free(m->samples);
  free(m->sp);
  free(m->locids);
  free(m->vals);
  free(m->lv);
  free(m->lp);
  free(m->lnv);
  free(m->lnp);
  free(m->fv);
  free(m->fp);
}

/* Adds the location id (with its one line and function) of frame name. */
static void add_location(pprof_msgs *m, strtab *st, uint64_t id,
                         const char *name) {
  size_t nloc = m->nloc;
  Perftools__Profiles__Function *fn = &m->fv[nloc];
  perftools__profiles__function__init(fn);
  fn->id = id;
  fn->name = fn->system_name = str_id(st, name);
  Perftools__Profiles__Line *ln = &m->lnv[nloc];
  perftools__profiles__line__init(ln);
  ln->function_id = id;
  m->lnp[nloc] = ln;
  Perftools__Profiles__Location *lo = &m->lv[nloc];
  perftools__profiles__location__init(lo);
  lo->id = id;
  lo->line = &m->lnp[nloc];
  lo->n_line = 1;
  m->lp[nloc] = lo;
  m->fp[nloc] = fn;
  m->nloc++;
}

/* A sample (count, value) per collected stack, its frames as location ids;
 * locs maps a frame name to its location id. 0, or -1 out of memory. */
static int add_samples(const hs_query_coll *c, pprof_msgs *m, strtab *st,
                       hs_kvmap *locs) {
  size_t li = 0;
  for (size_t i = 0; i < c->n; i++) {
    const hs_query_stack *k = &c->v[i];
    Perftools__Profiles__Sample *sm = &m->samples[i];
    perftools__profiles__sample__init(sm);
    sm->location_id = &m->locids[li];
    sm->n_location_id = k->nnames;
    sm->value = &m->vals[2 * i];
    sm->n_value = 2;
    m->vals[2 * i] = k->count;
    m->vals[2 * i + 1] = k->value;
    m->sp[i] = sm;
    for (size_t f = 0; f < k->nnames; f++) {
      int added;
      hs_kv_slot *sl = hs_kvmap_put(locs, k->names[f], strlen(k->names[f]),
                                    (int64_t)m->nloc + 1, &added);
      if (!sl)
        return -1;
      if (added)
        add_location(m, st, (uint64_t)sl->val, k->names[f]);
      m->locids[li++] = (uint64_t)sl->val;
    }
  }
  return 0;
}

/* The Profile message around m (nsamples samples), packed and gzipped
 * onto out. */
static int pack_profile(const hs_query_selection *sel, pprof_msgs *m,
                        size_t nsamples, strtab *st, hs_buf *out, char *err,
                        size_t errlen) {
  const char *unit_type =
      sel->type == HS_PT_CPU ? HS_PPROF_TYPE_CPU : HS_PPROF_TYPE_WALL;
  Perftools__Profiles__ValueType vt[2], *vtp[2] = {&vt[0], &vt[1]};
  perftools__profiles__value_type__init(&vt[0]);
  perftools__profiles__value_type__init(&vt[1]);
  vt[0].type = str_id(st, HS_PPROF_TYPE_SAMPLES);
  vt[0].unit = str_id(st, HS_PPROF_UNIT_COUNT);
  vt[1].type = str_id(st, unit_type);
  vt[1].unit = str_id(st, HS_PPROF_UNIT_NANOSECONDS);
  if (st->oom)
    return hs_query_oom(err, errlen);
  Perftools__Profiles__Profile pr;
  perftools__profiles__profile__init(&pr);
  pr.sample_type = vtp;
  pr.n_sample_type = 2;
  pr.sample = m->sp;
  pr.n_sample = nsamples;
  pr.location = m->lp;
  pr.n_location = m->nloc;
  pr.function = m->fp;
  pr.n_function = m->nloc;
  pr.string_table = st->v;
  pr.n_string_table = st->n;
  pr.default_sample_type = vt[1].type;
  if (!sel->span_id) {
    pr.time_nanos = sel->from_ns;
    if (sel->to_ns > sel->from_ns)
      pr.duration_nanos = sel->to_ns - sel->from_ns;
  }
  size_t len = perftools__profiles__profile__get_packed_size(&pr);
  uint8_t *packed = malloc(len ? len : 1);
  if (!packed)
    return hs_query_oom(err, errlen);
  perftools__profiles__profile__pack(&pr, packed);
  int rc = HS_STORE_OK;
  if (hs_gzip_append(out, packed, len, -1) != 0) {
    hs_query_seterr(err, errlen,
                    "compressing the profile failed (output too large?)");
    rc = HS_STORE_ERR;
  }
  free(packed);
  return rc;
}

int hs_query_export_pprof(hs_store *s, const hs_query_selection *sel,
                          hs_buf *out, char *err, size_t errlen) {
  hs_query_coll c;
  int rc = collect(s, sel, &c, err, errlen);
  if (rc != HS_STORE_OK) {
    hs_query_coll_free(&c);
    return rc;
  }
  strtab st;
  memset(&st, 0, sizeof st);
  str_id(&st, ""); /* pprof: string_table[0] is "" */
  /* One location and one function per distinct frame name: the names
   * already carry file:line when lines were asked for. */
  hs_kvmap locs;
  hs_kvmap_init(&locs);
  size_t nlocs_total = 0;
  for (size_t i = 0; i < c.n; i++)
    nlocs_total += c.v[i].nnames;
  pprof_msgs m;
  if (msgs_alloc(&m, c.n, nlocs_total) < 0 ||
      add_samples(&c, &m, &st, &locs) < 0)
    rc = hs_query_oom(err, errlen);
  else
    rc = pack_profile(sel, &m, c.n, &st, out, err, errlen);
  msgs_free(&m);
  free(st.v);
  hs_kvmap_free(&st.idx);
  hs_kvmap_free(&locs);
  hs_query_coll_free(&c);
  return rc;
}
