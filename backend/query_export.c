/* Export of a selection's samples as folded stacks and as gzipped pprof. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "backend/query_int.h"
#include "profile.pb-c.h"

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
    sl->val += st->value;
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

static int gzip_append(const uint8_t *in, size_t n, hs_buf *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  /* 15 + 16: a gzip wrapper, as pprof files have. */
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  size_t bound = deflateBound(&z, (uLong)n);
  if (hs_buf_reserve(out, bound) < 0) {
    deflateEnd(&z);
    return -1;
  }
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  z.next_out = (Bytef *)out->data + out->len;
  z.avail_out = (uInt)bound;
  int rc = deflate(&z, Z_FINISH);
  if (rc == Z_STREAM_END)
    out->len += z.total_out;
  deflateEnd(&z);
  return rc == Z_STREAM_END ? 0 : -1;
}

int hs_query_export_pprof(hs_store *s, const hs_query_selection *sel, hs_buf *out,
                         char *err, size_t errlen) {
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
  size_t nsamples = c.n, nlocs_total = 0;
  for (size_t i = 0; i < c.n; i++)
    nlocs_total += c.v[i].nnames;
  Perftools__Profiles__Sample *samples = calloc(nsamples + 1, sizeof *samples);
  Perftools__Profiles__Sample **sp = calloc(nsamples + 1, sizeof *sp);
  uint64_t *locids = calloc(nlocs_total + 1, sizeof *locids);
  int64_t *vals = calloc(2 * nsamples + 2, sizeof *vals);
  Perftools__Profiles__Location *lv = calloc(nlocs_total + 1, sizeof *lv);
  Perftools__Profiles__Location **lp = calloc(nlocs_total + 1, sizeof *lp);
  Perftools__Profiles__Line *lnv = calloc(nlocs_total + 1, sizeof *lnv);
  Perftools__Profiles__Line **lnp = calloc(nlocs_total + 1, sizeof *lnp);
  Perftools__Profiles__Function *fv = calloc(nlocs_total + 1, sizeof *fv);
  Perftools__Profiles__Function **fp = calloc(nlocs_total + 1, sizeof *fp);
  uint8_t *packed = NULL;
  size_t nloc = 0;
  if (!samples || !sp || !locids || !vals || !lv || !lp || !lnv || !lnp ||
      !fv || !fp) {
    rc = hs_query_oom(err, errlen);
    goto out;
  }
  size_t li = 0;
  for (size_t i = 0; i < c.n; i++) {
    const hs_query_stack *k = &c.v[i];
    Perftools__Profiles__Sample *sm = &samples[i];
    perftools__profiles__sample__init(sm);
    sm->location_id = &locids[li];
    sm->n_location_id = k->nnames;
    sm->value = &vals[2 * i];
    sm->n_value = 2;
    vals[2 * i] = k->count;
    vals[2 * i + 1] = k->value;
    sp[i] = sm;
    for (size_t f = 0; f < k->nnames; f++) {
      int added;
      hs_kv_slot *sl = hs_kvmap_put(&locs, k->names[f], strlen(k->names[f]),
                                    (int64_t)nloc + 1, &added);
      if (!sl) {
        rc = hs_query_oom(err, errlen);
        goto out;
      }
      if (added) {
        uint64_t id = (uint64_t)sl->val;
        Perftools__Profiles__Function *fn = &fv[nloc];
        perftools__profiles__function__init(fn);
        fn->id = id;
        fn->name = fn->system_name = str_id(&st, k->names[f]);
        Perftools__Profiles__Line *ln = &lnv[nloc];
        perftools__profiles__line__init(ln);
        ln->function_id = id;
        lnp[nloc] = ln;
        Perftools__Profiles__Location *lo = &lv[nloc];
        perftools__profiles__location__init(lo);
        lo->id = id;
        lo->line = &lnp[nloc];
        lo->n_line = 1;
        lp[nloc] = lo;
        fp[nloc] = fn;
        nloc++;
      }
      locids[li++] = (uint64_t)sl->val;
    }
  }
  const char *unit_type = sel->type == HS_PT_CPU ? "cpu" : "wall";
  Perftools__Profiles__ValueType vt[2], *vtp[2] = {&vt[0], &vt[1]};
  perftools__profiles__value_type__init(&vt[0]);
  perftools__profiles__value_type__init(&vt[1]);
  vt[0].type = str_id(&st, "samples");
  vt[0].unit = str_id(&st, "count");
  vt[1].type = str_id(&st, unit_type);
  vt[1].unit = str_id(&st, "nanoseconds");
  if (st.oom) {
    rc = hs_query_oom(err, errlen);
    goto out;
  }
  Perftools__Profiles__Profile pr;
  perftools__profiles__profile__init(&pr);
  pr.sample_type = vtp;
  pr.n_sample_type = 2;
  pr.sample = sp;
  pr.n_sample = nsamples;
  pr.location = lp;
  pr.n_location = nloc;
  pr.function = fp;
  pr.n_function = nloc;
  pr.string_table = st.v;
  pr.n_string_table = st.n;
  pr.default_sample_type = vt[1].type;
  if (!sel->span_id) {
    pr.time_nanos = sel->from_ns;
    if (sel->to_ns > sel->from_ns)
      pr.duration_nanos = sel->to_ns - sel->from_ns;
  }
  size_t len = perftools__profiles__profile__get_packed_size(&pr);
  packed = malloc(len ? len : 1);
  if (!packed) {
    rc = hs_query_oom(err, errlen);
    goto out;
  }
  perftools__profiles__profile__pack(&pr, packed);
  if (gzip_append(packed, len, out) < 0) {
    hs_query_seterr(err, errlen,
                   "compressing the profile failed (output too large?)");
    rc = HS_STORE_ERR;
  }
out:
  free(packed);
  free(samples);
  free(sp);
  free(locids);
  free(vals);
  free(lv);
  free(lp);
  free(lnv);
  free(lnp);
  free(fv);
  free(fp);
  free(st.v);
  hs_kvmap_free(&st.idx);
  hs_kvmap_free(&locs);
  hs_query_coll_free(&c);
  return rc;
}
