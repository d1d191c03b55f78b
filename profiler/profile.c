/* Profile builder (see profile.h): merges the samples of one period by
 * (stack, labels), then encodes them as gzip-compressed pprof.
 *
 * Adding a sample costs one hash of its stack and labels and, for a new
 * combination, one allocation; nothing is symbolized until encode, where
 * each distinct address is looked up once (and the symbolizer caches it
 * across profiles). */
#include "profiler/profile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gzip.h"
#include "common/log.h"
#include "context/endpoints.h"
#include "hotspan/error.h"
#include "profile.pb-c.h"
#include "profiler/intern.h"
#include "profiler/symbolize.h"
#include "wire/pprof_labels.h"

/* Memory a profile may hold in merged samples. Past it new stacks are
 * dropped (and counted) rather than grow the host process without bound;
 * samples that merge into known stacks are still counted. */
#define PROFILE_MAX_BYTES ((size_t)128 << 20)
#define THREAD_NAME_MAX 256

typedef struct agg_entry {
  struct agg_entry *next;
  uint64_t hash;
  int64_t count;
  int64_t ns;
  const char *tname; /* interned in the profile, NULL if none */
  hs_ctx_value ctx;  /* all zero unless has_ctx */
  uint32_t tid;
  uint16_t depth;
  uint8_t has_ctx;
  uint8_t truncated;
  uintptr_t pcs[]; /* as sampled: leaf first, return addresses after */
} agg_entry;

struct hs_profile {
  hs_profile_config cfg;
  uint64_t added;
  uint64_t dropped;
  size_t bytes;
  agg_entry **buckets;
  size_t nbuckets; /* power of two */
  size_t nentries;
  hs_intern_set names; /* thread names */
};

hs_profile *hs_profile_new(const hs_profile_config *cfg) {
  if (cfg == NULL ||
      (cfg->type != HS_PROFILE_CPU && cfg->type != HS_PROFILE_WALL))
    return NULL;
  hs_profile *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->cfg = *cfg;
  p->nbuckets = 1024;
  p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
  if (p->buckets == NULL) {
    free(p);
    return NULL;
  }
  return p;
}

void hs_profile_free(hs_profile *p) {
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->nbuckets; i++) {
    agg_entry *e = p->buckets[i];
    while (e != NULL) {
      agg_entry *nx = e->next;
      free(e);
      e = nx;
    }
  }
  free(p->buckets);
  hs_intern_free(&p->names);
  free(p);
}

uint64_t hs_profile_sample_count(const hs_profile *p) {
  return p ? p->added : 0;
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static int same_key(const agg_entry *e, uint64_t hash, const hs_sample *s,
                    uint16_t depth, uint8_t truncated, const char *tname,
                    const hs_ctx_value *ctx, uint8_t has_ctx) {
  if (e->hash != hash || e->depth != depth || e->tid != s->tid ||
      e->tname != tname || e->has_ctx != has_ctx || e->truncated != truncated)
    return 0;
  if (has_ctx && (e->ctx.span_id != ctx->span_id ||
                  e->ctx.local_root_span_id != ctx->local_root_span_id ||
                  e->ctx.trace_id_high != ctx->trace_id_high ||
                  e->ctx.trace_id_low != ctx->trace_id_low ||
                  e->ctx.endpoint_id != ctx->endpoint_id))
    return 0;
  return memcmp(e->pcs, s->pcs, depth * sizeof s->pcs[0]) == 0;
}

static void rehash(hs_profile *p) {
  size_t ncap = p->nbuckets * 2;
  agg_entry **nb = calloc(ncap, sizeof *nb);
  if (nb == NULL)
    return; /* keep the longer chains; still correct */
  for (size_t i = 0; i < p->nbuckets; i++) {
    agg_entry *e = p->buckets[i];
    while (e != NULL) {
      agg_entry *nx = e->next;
      size_t j = e->hash & (ncap - 1);
      e->next = nb[j];
      nb[j] = e;
      e = nx;
    }
  }
  free(p->buckets);
  p->buckets = nb;
  p->nbuckets = ncap;
}

int hs_profile_add(hs_profile *p, const hs_sample *s, const char *thread_name) {
  if (p == NULL || s == NULL)
    return HOTSPAN_EINVAL;
  int want = p->cfg.type == HS_PROFILE_CPU ? HS_SAMPLE_CPU : HS_SAMPLE_WALL;
  if (s->kind != want)
    return HOTSPAN_EINVAL;
  /* A stack deeper than the engine's hard limit keeps its leaf-most
   * frames: those carry the time. */
  uint16_t depth = s->depth;
  uint8_t truncated = s->truncated ? 1 : 0;
  if (depth > HS_PROF_MAX_DEPTH_LIMIT) {
    depth = HS_PROF_MAX_DEPTH_LIMIT;
    truncated = 1;
  }
  /* A sample stands for its own measured time; the period is the best
   * estimate when the engine could not measure it. */
  uint64_t v = s->kind == HS_SAMPLE_CPU ? s->cpu_ns : s->wall_ns;
  if (v == 0)
    v = p->cfg.period_ns;
  if (v > INT64_MAX)
    v = INT64_MAX;

  const char *tname = NULL;
  if (thread_name != NULL && thread_name[0] != '\0') {
    tname = hs_intern_n(&p->names, thread_name, THREAD_NAME_MAX);
    if (tname == NULL) {
      p->dropped++;
      return HOTSPAN_ENOMEM;
    }
  }
  hs_ctx_value ctx;
  memset(&ctx, 0, sizeof ctx);
  uint8_t has_ctx = s->has_ctx && s->ctx.span_id != 0;
  if (has_ctx) {
    ctx.trace_id_high = s->ctx.trace_id_high;
    ctx.trace_id_low = s->ctx.trace_id_low;
    ctx.span_id = s->ctx.span_id;
    ctx.local_root_span_id = s->ctx.local_root_span_id;
    ctx.endpoint_id = s->ctx.endpoint_id;
  }

  uint64_t h = hs_hash_bytes(s->pcs, depth * sizeof s->pcs[0]);
  h = mix(h, ((uint64_t)s->tid << 17) ^ ((uint64_t)truncated << 1) ^ has_ctx);
  h = mix(h, (uint64_t)(uintptr_t)tname);
  h = mix(h, ctx.span_id);
  h = mix(h, ctx.local_root_span_id ^ ctx.endpoint_id);
  h = mix(h, ctx.trace_id_high ^ ctx.trace_id_low);

  for (agg_entry *e = p->buckets[h & (p->nbuckets - 1)]; e; e = e->next) {
    if (same_key(e, h, s, depth, truncated, tname, &ctx, has_ctx)) {
      e->count++;
      e->ns = (uint64_t)e->ns + v > INT64_MAX ? INT64_MAX : e->ns + (int64_t)v;
      p->added++;
      return HOTSPAN_OK;
    }
  }

  size_t sz = sizeof(agg_entry) + depth * sizeof s->pcs[0];
  agg_entry *e = p->bytes + sz > PROFILE_MAX_BYTES ? NULL : malloc(sz);
  if (e == NULL) {
    p->dropped++;
    return HOTSPAN_ENOMEM;
  }
  e->hash = h;
  e->count = 1;
  e->ns = (int64_t)v;
  e->tname = tname;
  e->ctx = ctx;
  e->tid = s->tid;
  e->depth = depth;
  e->has_ctx = has_ctx;
  e->truncated = truncated;
  memcpy(e->pcs, s->pcs, depth * sizeof s->pcs[0]);
  size_t b = h & (p->nbuckets - 1);
  e->next = p->buckets[b];
  p->buckets[b] = e;
  p->bytes += sz;
  p->nentries++;
  p->added++;
  if (p->nentries > p->nbuckets)
    rehash(p);
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ encoding */

/* Open-addressing index: 64-bit hash -> position in a caller's array; the
 * caller confirms candidates with its own equality test. */
typedef struct idx_map {
  uint64_t *hash;
  uint32_t *pos1; /* position + 1; 0 = empty slot */
  size_t cap, count;
} idx_map;

static int idx_grow(idx_map *m) {
  size_t ncap = m->cap ? m->cap * 2 : 1024;
  uint64_t *nh = malloc(ncap * sizeof *nh);
  uint32_t *np = calloc(ncap, sizeof *np);
  if (nh == NULL || np == NULL) {
    free(nh);
    free(np);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->pos1[i] == 0)
      continue;
    size_t j = m->hash[i] & (ncap - 1);
    while (np[j] != 0)
      j = (j + 1) & (ncap - 1);
    nh[j] = m->hash[i];
    np[j] = m->pos1[i];
  }
  free(m->hash);
  free(m->pos1);
  m->hash = nh;
  m->pos1 = np;
  m->cap = ncap;
  return 0;
}

static void idx_free(idx_map *m) {
  free(m->hash);
  free(m->pos1);
}

/* Iteration over candidates: start at *slot = hash & (cap-1). */
#define IDX_FOR(m, h, j)                                                       \
  for (size_t j = (m)->cap ? (h) & ((m)->cap - 1) : 0;                         \
       (m)->cap && (m)->pos1[j] != 0; j = (j + 1) & ((m)->cap - 1))

static int idx_insert(idx_map *m, uint64_t h, uint32_t pos) {
  if ((m->count + 1) * 2 > m->cap && idx_grow(m) != 0)
    return -1;
  size_t j = h & (m->cap - 1);
  while (m->pos1[j] != 0)
    j = (j + 1) & (m->cap - 1);
  m->hash[j] = h;
  m->pos1[j] = pos + 1;
  m->count++;
  return 0;
}

/* Growable array of fixed-size items. */
typedef struct vec {
  void *data;
  size_t n, cap, item;
} vec;

static void *vec_push(vec *v) {
  if (v->n == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 64;
    void *nd = realloc(v->data, ncap * v->item);
    if (nd == NULL)
      return NULL;
    v->data = nd;
    v->cap = ncap;
  }
  void *it = (char *)v->data + v->n * v->item;
  memset(it, 0, v->item);
  v->n++;
  return it;
}

typedef struct enc_func {
  const char *name, *sys, *file;
  int start_line;
} enc_func;

typedef struct enc_loc {
  uint64_t addr;
  uint64_t mapping_id;
  size_t first_line, nlines;
} enc_loc;

typedef struct enc_line {
  uint64_t function_id;
  int64_t line;
} enc_line;

typedef struct enc {
  hs_symbolizer *sym;
  int oom;
  /* string table */
  vec strs; /* const char * */
  idx_map str_idx;
  hs_intern_set own; /* strings made here (hex ids) */
  /* tables */
  vec funcs; /* enc_func */
  idx_map func_idx;
  vec locs; /* enc_loc */
  idx_map loc_idx;
  vec lines; /* enc_line */
  vec maps;  /* const hs_sym_map * */
  idx_map map_idx;
  uint64_t loc_truncated, loc_nostack; /* pseudo locations; 0 = none yet */
} enc;

static int64_t str_id(enc *e, const char *s) {
  if (s == NULL)
    return 0;
  uint64_t h = hs_hash_bytes(s, strlen(s));
  const char **arr = e->strs.data;
  IDX_FOR(&e->str_idx, h, j) {
    if (e->str_idx.hash[j] == h && strcmp(arr[e->str_idx.pos1[j] - 1], s) == 0)
      return (int64_t)(e->str_idx.pos1[j] - 1);
  }
  const char **slot = vec_push(&e->strs);
  if (slot == NULL || idx_insert(&e->str_idx, h, (uint32_t)e->strs.n - 1)) {
    e->oom = 1;
    return 0;
  }
  *slot = s;
  return (int64_t)e->strs.n - 1;
}

static uint64_t func_id(enc *e, const hs_sym_frame *f) {
  uint64_t h = mix(mix(mix((uintptr_t)f->function, (uintptr_t)f->system_name),
                       (uintptr_t)f->file),
                   (uint64_t)f->start_line);
  enc_func *arr = e->funcs.data;
  IDX_FOR(&e->func_idx, h, j) {
    enc_func *c = &arr[e->func_idx.pos1[j] - 1];
    if (e->func_idx.hash[j] == h && c->name == f->function &&
        c->sys == f->system_name && c->file == f->file &&
        c->start_line == f->start_line)
      return e->func_idx.pos1[j];
  }
  enc_func *nf = vec_push(&e->funcs);
  if (nf == NULL || idx_insert(&e->func_idx, h, (uint32_t)e->funcs.n - 1)) {
    e->oom = 1;
    return 0;
  }
  nf->name = f->function;
  nf->sys = f->system_name;
  nf->file = f->file;
  nf->start_line = f->start_line;
  return e->funcs.n; /* ids are positions + 1 */
}

static uint64_t map_id(enc *e, const hs_sym_map *m) {
  if (m == NULL)
    return 0;
  uint64_t h = mix(0, (uintptr_t)m);
  const hs_sym_map **arr = e->maps.data;
  IDX_FOR(&e->map_idx, h, j) {
    if (arr[e->map_idx.pos1[j] - 1] == m)
      return e->map_idx.pos1[j];
  }
  const hs_sym_map **slot = vec_push(&e->maps);
  if (slot == NULL || idx_insert(&e->map_idx, h, (uint32_t)e->maps.n - 1)) {
    e->oom = 1;
    return 0;
  }
  *slot = m;
  return e->maps.n;
}

static uint64_t new_loc(enc *e, uint64_t addr, uint64_t mapping,
                        const hs_sym_frame *frames, uint32_t n) {
  size_t first = e->lines.n;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t fid = func_id(e, &frames[i]);
    enc_line *ln = vec_push(&e->lines);
    if (ln == NULL || fid == 0) {
      e->oom = 1;
      return 0;
    }
    ln->function_id = fid;
    ln->line = frames[i].line;
  }
  enc_loc *l = vec_push(&e->locs);
  if (l == NULL) {
    e->oom = 1;
    return 0;
  }
  l->addr = addr;
  l->mapping_id = mapping;
  l->first_line = first;
  l->nlines = n;
  return e->locs.n;
}

static uint64_t pseudo_loc(enc *e, uint64_t *cached, const char *name) {
  if (*cached == 0) {
    hs_sym_frame f = {name, name, NULL, 0, 0};
    *cached = new_loc(e, 0, 0, &f, 1);
  }
  return *cached;
}

/* Location of a sampled address (pseudo locations are not indexed). */
static uint64_t loc_id(enc *e, uintptr_t addr) {
  uint64_t h = mix(0x51ed, addr);
  enc_loc *arr = e->locs.data;
  IDX_FOR(&e->loc_idx, h, j) {
    if (arr[e->loc_idx.pos1[j] - 1].addr == addr)
      return e->loc_idx.pos1[j];
  }
  const hs_sym_loc *sl = hs_symbolize_loc(e->sym, addr);
  if (sl == NULL) {
    e->oom = 1;
    return 0;
  }
  uint64_t id = new_loc(e, addr, map_id(e, sl->map), sl->frames, sl->nframes);
  if (id == 0 || idx_insert(&e->loc_idx, h, (uint32_t)id - 1) != 0) {
    e->oom = 1;
    return 0;
  }
  return id;
}

static void enc_free(enc *e) {
  free(e->strs.data);
  idx_free(&e->str_idx);
  hs_intern_free(&e->own);
  free(e->funcs.data);
  idx_free(&e->func_idx);
  free(e->locs.data);
  idx_free(&e->loc_idx);
  free(e->lines.data);
  free(e->maps.data);
  idx_free(&e->map_idx);
}

static const char *hex_id(enc *e, const uint64_t *words, int nwords) {
  static const char hx[] = "0123456789abcdef";
  char buf[33];
  int k = 0;
  for (int w = 0; w < nwords; w++)
    for (int sh = 60; sh >= 0; sh -= 4)
      buf[k++] = hx[(words[w] >> sh) & 15];
  buf[k] = '\0';
  const char *r = hs_intern_n(&e->own, buf, (size_t)k);
  if (r == NULL)
    e->oom = 1;
  return r;
}

#define MAX_LABELS 7

int hs_profile_encode(hs_profile *p, hs_symbolizer *sym, uint64_t end_unix_ns,
                      hs_buf *out) {
  return hs_profile_encode_with(p, sym, end_unix_ns, NULL, 0, out);
}

/* The string ids of the names every profile uses. */
typedef struct enc_keys {
  int64_t samples, count, type, ns;
  int64_t span, root, endpoint, tid, tname, span_hex, trace_hex;
} enc_keys;

static void intern_keys(enc *e, int is_cpu, enc_keys *k) {
  str_id(e, ""); /* index 0 */
  k->samples = str_id(e, HS_PPROF_TYPE_SAMPLES);
  k->count = str_id(e, HS_PPROF_UNIT_COUNT);
  k->type = str_id(e, is_cpu ? HS_PPROF_TYPE_CPU : HS_PPROF_TYPE_WALL);
  k->ns = str_id(e, HS_PPROF_UNIT_NANOSECONDS);
  k->span = str_id(e, HS_PPROF_LABEL_SPAN_ID);
  k->root = str_id(e, HS_PPROF_LABEL_LOCAL_ROOT_SPAN_ID);
  k->endpoint = str_id(e, HS_PPROF_LABEL_TRACE_ENDPOINT);
  k->tid = str_id(e, HS_PPROF_LABEL_THREAD_ID);
  k->tname = str_id(e, HS_PPROF_LABEL_THREAD_NAME);
  k->span_hex = str_id(e, HS_PPROF_LABEL_SPAN_ID_HEX);
  k->trace_hex = str_id(e, HS_PPROF_LABEL_TRACE_ID_HEX);
}

/* The protobuf-c messages of one encoding, all owned here. */
typedef struct pb_msgs {
  Perftools__Profiles__Sample *samples, **sample_ptrs;
  Perftools__Profiles__Label *labels, **label_ptrs;
  int64_t *values;
  uint64_t *loc_ids;
  size_t nsamples;
  Perftools__Profiles__Function *funs, **fun_ptrs;
  Perftools__Profiles__Location *locs, **loc_ptrs;
  Perftools__Profiles__Line *lns, **ln_ptrs;
  Perftools__Profiles__Mapping *maps, **map_ptrs;
  int64_t *comment_ids;
  size_t ncomment;
} pb_msgs;

static void pb_msgs_free(pb_msgs *m) {
  free(m->samples);
  free(m->sample_ptrs);
  free(m->labels);
  free(m->label_ptrs);
  free(m->values);
  free(m->loc_ids);
  free(m->funs);
  free(m->fun_ptrs);
  free(m->locs);
  free(m->loc_ptrs);
  free(m->lns);
  free(m->ln_ptrs);
  free(m->maps);
  free(m->map_ptrs);
  free(m->comment_ids);
}

/* The labels of aggregated entry a into lb (and its pointers at lp);
 * returns how many. */
static size_t entry_labels(enc *e, const enc_keys *k, const agg_entry *a,
                           Perftools__Profiles__Label *lb,
                           Perftools__Profiles__Label **lp) {
  size_t nl = 0;
#define ADD_LABEL(kid, sv, nv)                                                 \
  do {                                                                         \
    perftools__profiles__label__init(&lb[nl]);                                 \
    lb[nl].key = (kid);                                                        \
    lb[nl].str = (sv);                                                         \
    lb[nl].num = (nv);                                                         \
    lp[nl] = &lb[nl];                                                          \
    nl++;                                                                      \
  } while (0)
  ADD_LABEL(k->tid, 0, (int64_t)a->tid);
  if (a->tname != NULL)
    ADD_LABEL(k->tname, str_id(e, a->tname), 0);
  if (a->has_ctx) {
    ADD_LABEL(k->span, 0, (int64_t)a->ctx.span_id);
    if (a->ctx.local_root_span_id != 0)
      ADD_LABEL(k->root, 0, (int64_t)a->ctx.local_root_span_id);
    const char *ep =
        a->ctx.endpoint_id != 0 ? hs_endpoint_name(a->ctx.endpoint_id) : NULL;
    if (ep != NULL && ep[0] != '\0')
      ADD_LABEL(k->endpoint, str_id(e, ep), 0);
    ADD_LABEL(k->span_hex, str_id(e, hex_id(e, &a->ctx.span_id, 1)), 0);
    if (a->ctx.trace_id_high != 0 || a->ctx.trace_id_low != 0) {
      uint64_t t[2] = {a->ctx.trace_id_high, a->ctx.trace_id_low};
      ADD_LABEL(k->trace_hex, str_id(e, hex_id(e, t, 2)), 0);
    }
  }
#undef ADD_LABEL
  return nl;
}

/* Pass 1: one Sample per aggregated entry, its locations (interned into
 * e) and labels. */
static void build_samples(hs_profile *p, enc *e, const enc_keys *k,
                          pb_msgs *m) {
  size_t nsamples = p->nentries, total_locs = 0;
  m->samples = calloc(nsamples ? nsamples : 1, sizeof *m->samples);
  m->sample_ptrs = calloc(nsamples ? nsamples : 1, sizeof *m->sample_ptrs);
  m->labels = calloc(nsamples ? nsamples * MAX_LABELS : 1, sizeof *m->labels);
  m->label_ptrs =
      calloc(nsamples ? nsamples * MAX_LABELS : 1, sizeof *m->label_ptrs);
  m->values = calloc(nsamples ? nsamples * 2 : 1, sizeof *m->values);
  for (size_t b = 0; b < p->nbuckets; b++)
    for (agg_entry *a = p->buckets[b]; a != NULL; a = a->next)
      total_locs += (size_t)a->depth + 1;
  m->loc_ids = calloc(total_locs ? total_locs : 1, sizeof *m->loc_ids);
  if (!m->samples || !m->sample_ptrs || !m->labels || !m->label_ptrs ||
      !m->values || !m->loc_ids)
    e->oom = 1;

  size_t si = 0, li = 0, lo = 0;
  uint64_t *loc_ids = m->loc_ids;
  for (size_t b = 0; b < p->nbuckets && !e->oom; b++) {
    for (agg_entry *a = p->buckets[b]; a != NULL && !e->oom; a = a->next) {
      Perftools__Profiles__Sample *sm = &m->samples[si];
      perftools__profiles__sample__init(sm);
      m->sample_ptrs[si] = sm;
      sm->location_id = &loc_ids[lo];
      for (uint16_t i = 0; i < a->depth; i++) {
        /* Return addresses point after the call: step back into it. */
        uintptr_t pc = a->pcs[i];
        if (i > 0 && pc > 0)
          pc--;
        loc_ids[lo++] = loc_id(e, pc);
      }
      if (a->depth == 0)
        loc_ids[lo++] = pseudo_loc(e, &e->loc_nostack, "[no stack]");
      else if (a->truncated)
        loc_ids[lo++] = pseudo_loc(e, &e->loc_truncated, "[truncated]");
      sm->n_location_id = (size_t)(&loc_ids[lo] - sm->location_id);
      sm->value = &m->values[2 * si];
      sm->n_value = 2;
      sm->value[0] = a->count;
      sm->value[1] = a->ns;
      sm->label = &m->label_ptrs[li];
      sm->n_label = entry_labels(e, k, a, &m->labels[li], &m->label_ptrs[li]);
      li += sm->n_label;
      si++;
    }
  }
  m->nsamples = si;
}

/* Pass 2: the function, line, location and mapping tables. */
static void build_tables(enc *e, pb_msgs *m) {
  size_t nfun = e->funcs.n, nloc = e->locs.n, nline = e->lines.n;
  size_t nmap = e->maps.n;
  m->funs = calloc(nfun + 1, sizeof *m->funs);
  m->fun_ptrs = calloc(nfun + 1, sizeof *m->fun_ptrs);
  m->locs = calloc(nloc + 1, sizeof *m->locs);
  m->loc_ptrs = calloc(nloc + 1, sizeof *m->loc_ptrs);
  m->lns = calloc(nline + 1, sizeof *m->lns);
  m->ln_ptrs = calloc(nline + 1, sizeof *m->ln_ptrs);
  m->maps = calloc(nmap + 1, sizeof *m->maps);
  m->map_ptrs = calloc(nmap + 1, sizeof *m->map_ptrs);
  if (!m->funs || !m->fun_ptrs || !m->locs || !m->loc_ptrs || !m->lns ||
      !m->ln_ptrs || !m->maps || !m->map_ptrs)
    e->oom = 1;
  for (size_t i = 0; i < nfun && !e->oom; i++) {
    enc_func *f = &((enc_func *)e->funcs.data)[i];
    perftools__profiles__function__init(&m->funs[i]);
    m->funs[i].id = i + 1;
    m->funs[i].name = str_id(e, f->name);
    m->funs[i].system_name = str_id(e, f->sys);
    m->funs[i].filename = str_id(e, f->file);
    m->funs[i].start_line = f->start_line;
    m->fun_ptrs[i] = &m->funs[i];
  }
  for (size_t i = 0; i < nline && !e->oom; i++) {
    enc_line *l = &((enc_line *)e->lines.data)[i];
    perftools__profiles__line__init(&m->lns[i]);
    m->lns[i].function_id = l->function_id;
    m->lns[i].line = l->line;
    m->ln_ptrs[i] = &m->lns[i];
  }
  for (size_t i = 0; i < nloc && !e->oom; i++) {
    enc_loc *l = &((enc_loc *)e->locs.data)[i];
    perftools__profiles__location__init(&m->locs[i]);
    m->locs[i].id = i + 1;
    m->locs[i].mapping_id = l->mapping_id;
    m->locs[i].address = l->addr;
    m->locs[i].line = &m->ln_ptrs[l->first_line];
    m->locs[i].n_line = l->nlines;
    m->loc_ptrs[i] = &m->locs[i];
  }
  for (size_t i = 0; i < nmap && !e->oom; i++) {
    const hs_sym_map *mp = ((const hs_sym_map **)e->maps.data)[i];
    Perftools__Profiles__Mapping *mm = &m->maps[i];
    perftools__profiles__mapping__init(mm);
    mm->id = i + 1;
    mm->memory_start = mp->start;
    mm->memory_limit = mp->limit;
    mm->file_offset = mp->offset;
    mm->filename = str_id(e, mp->name);
    mm->build_id = str_id(e, mp->build_id);
    mm->has_functions = mp->has_functions;
    mm->has_filenames = mp->has_filenames;
    mm->has_line_numbers = mp->has_line_numbers;
    mm->has_inline_frames = mp->has_inline_frames;
    m->map_ptrs[i] = mm;
  }
}

/* The comments, then the note on dropped samples if any. */
static void build_comments(const hs_profile *p, enc *e,
                           const char *const *comments, size_t ncomments,
                           pb_msgs *m) {
  char note[96];
  m->comment_ids = calloc(ncomments + 1, sizeof *m->comment_ids);
  e->oom |= m->comment_ids == NULL;
  for (size_t i = 0; m->comment_ids != NULL && i < ncomments; i++)
    if (comments[i] != NULL)
      m->comment_ids[m->ncomment++] = str_id(e, comments[i]);
  if (m->comment_ids != NULL && p->dropped > 0) {
    snprintf(note, sizeof note,
             "hotspan: %" PRIu64 " samples dropped (profile memory full)",
             p->dropped);
    m->comment_ids[m->ncomment++] = str_id(e, note);
  }
}

/* The Profile message around the tables, packed and gzipped onto out. */
static int pack_profile(const hs_profile *p, enc *e, const enc_keys *k,
                        pb_msgs *m, uint64_t end_unix_ns, hs_buf *out) {
  Perftools__Profiles__ValueType vt[2], period;
  Perftools__Profiles__ValueType *vt_ptrs[2] = {&vt[0], &vt[1]};
  perftools__profiles__value_type__init(&vt[0]);
  perftools__profiles__value_type__init(&vt[1]);
  perftools__profiles__value_type__init(&period);
  vt[0].type = k->samples;
  vt[0].unit = k->count;
  vt[1].type = k->type;
  vt[1].unit = k->ns;
  period.type = k->type;
  period.unit = k->ns;

  Perftools__Profiles__Profile pr;
  perftools__profiles__profile__init(&pr);
  pr.n_sample_type = 2;
  pr.sample_type = vt_ptrs;
  pr.n_sample = m->nsamples;
  pr.sample = m->sample_ptrs;
  pr.n_mapping = e->maps.n;
  pr.mapping = m->map_ptrs;
  pr.n_location = e->locs.n;
  pr.location = m->loc_ptrs;
  pr.n_function = e->funcs.n;
  pr.function = m->fun_ptrs;
  pr.n_string_table = e->strs.n;
  pr.string_table = (char **)e->strs.data;
  uint64_t start = p->cfg.start_unix_ns;
  pr.time_nanos = start > INT64_MAX ? INT64_MAX : (int64_t)start;
  uint64_t dur = end_unix_ns > start ? end_unix_ns - start : 0;
  pr.duration_nanos = dur > INT64_MAX ? INT64_MAX : (int64_t)dur;
  pr.period_type = &period;
  pr.period =
      p->cfg.period_ns > INT64_MAX ? INT64_MAX : (int64_t)p->cfg.period_ns;
  pr.default_sample_type = k->type;
  if (m->ncomment > 0) {
    pr.n_comment = m->ncomment;
    pr.comment = m->comment_ids;
  }
  size_t len = perftools__profiles__profile__get_packed_size(&pr);
  uint8_t *packed = malloc(len ? len : 1);
  if (packed == NULL)
    return HOTSPAN_ENOMEM;
  perftools__profiles__profile__pack(&pr, packed);
  /* Level 1: profiles compress well at any level; encoding time matters
   * more on the host. */
  int rc = hs_gzip_append(out, packed, len, 1);
  free(packed);
  return rc;
}

int hs_profile_encode_with(hs_profile *p, hs_symbolizer *sym,
                           uint64_t end_unix_ns, const char *const *comments,
                           size_t ncomments, hs_buf *out) {
  if (p == NULL || sym == NULL || out == NULL)
    return HOTSPAN_EINVAL;
  if (hs_buf_failed(out))
    return out->len >= out->max ? HOTSPAN_ETOOBIG : HOTSPAN_ENOMEM;
  size_t out_len0 = out->len;
  hs_symbolizer_new_epoch(sym);

  enc e;
  memset(&e, 0, sizeof e);
  e.sym = sym;
  e.strs.item = sizeof(const char *);
  e.funcs.item = sizeof(enc_func);
  e.locs.item = sizeof(enc_loc);
  e.lines.item = sizeof(enc_line);
  e.maps.item = sizeof(const hs_sym_map *);
  enc_keys k;
  intern_keys(&e, p->cfg.type == HS_PROFILE_CPU, &k);
  /* The main executable is mapping 1: pprof shows the first mapping as
   * "the binary" of the profile. */
  map_id(&e, hs_symbolizer_main_map(sym));

  pb_msgs m;
  memset(&m, 0, sizeof m);
  build_samples(p, &e, &k, &m);
  build_tables(&e, &m);
  build_comments(p, &e, comments, ncomments, &m);
  int rc =
      e.oom ? HOTSPAN_ENOMEM : pack_profile(p, &e, &k, &m, end_unix_ns, out);
  pb_msgs_free(&m);
  enc_free(&e);
  if (rc != HOTSPAN_OK) {
    out->len = out_len0 <= out->len ? out_len0 : out->len;
    hs_log(HS_LOG_WARN, "profile: encoding failed: %s", hotspan_strerror(rc));
  }
  return rc;
}
