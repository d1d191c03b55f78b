/* pprof (perftools.profiles.Profile) into hs_ing_samples.
 *
 * The protobuf is unpacked by the protobuf-c code generated from the
 * project's profile.proto, through an allocator with a byte budget:
 * protobuf-c's memory use grows with the input (a 2-byte empty message
 * becomes a struct of ~100 bytes), so the budget, not the input size, is
 * what bounds it. Every index read from the profile (string table,
 * location, function and mapping ids) is checked before use. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/compress.h"
#include "agent/decode.h"
#include "agent/pb_budget.h"
#include "profile.pb-c.h"
#include "wire/pprof_labels.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;

/* ---------------------------------------------------------- decoding */

typedef struct idmap {
  uint64_t id;
  size_t idx;
} idmap;

static int idmap_cmp(const void *a, const void *b) {
  const idmap *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Sorted id → index table; -1 on a zero or duplicate id. */
static int idmap_build(idmap *m, size_t n,
                       uint64_t (*get)(const void *, size_t), const void *arr) {
  for (size_t i = 0; i < n; i++) {
    m[i].id = get(arr, i);
    m[i].idx = i;
    if (m[i].id == 0)
      return -1;
  }
  qsort(m, n, sizeof(*m), idmap_cmp);
  for (size_t i = 1; i < n; i++)
    if (m[i].id == m[i - 1].id)
      return -1;
  return 0;
}

static const idmap *idmap_find(const idmap *m, size_t n, uint64_t id) {
  idmap key = {id, 0};
  return bsearch(&key, m, n, sizeof(*m), idmap_cmp);
}

static uint64_t loc_id(const void *a, size_t i) {
  return ((Location *const *)a)[i]->id;
}
static uint64_t fn_id(const void *a, size_t i) {
  return ((Function *const *)a)[i]->id;
}
static uint64_t map_id(const void *a, size_t i) {
  return ((Mapping *const *)a)[i]->id;
}

typedef struct ctx {
  const Profile *p;
  hs_agent_decoded *d;
  const char **strs; /* sanitized string table */
  idmap *locs, *fns, *maps;
  /* Frames of each location (leaf first), computed once. */
  hs_ing_frame **loc_frames;
  uint32_t *loc_nframes;
  char *err;
  size_t errlen;
} ctx;

/* The string at index i, or NULL (error set) when out of range. */
static int str_at(ctx *c, int64_t i, const char *what, const char **out) {
  if (i < 0 || (uint64_t)i >= c->p->n_string_table) {
    hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                  "pprof: %s string index %lld out of range (%zu strings)",
                  what, (long long)i, c->p->n_string_table);
    return -1;
  }
  *out = c->strs[i];
  return 0;
}

static int oom(ctx *c) {
  int code = c->d->arena.failed ? c->d->arena.failed : HS_AGENT_ENOMEM;
  return hs_agent_fail(c->err, c->errlen, code,
                       "pprof: decoded profile exceeds the memory limit");
}

/* Builds the frames of location li. */
static int location_frames(ctx *c, size_t li) {
  const Location *l = c->p->location[li];
  hs_agent_arena *a = &c->d->arena;
  const char *mapping = NULL;
  if (l->mapping_id) {
    const idmap *m = idmap_find(c->maps, c->p->n_mapping, l->mapping_id);
    if (!m)
      return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                           "pprof: location %llu names unknown mapping %llu",
                           (unsigned long long)l->id,
                           (unsigned long long)l->mapping_id);
    const char *fname;
    if (str_at(c, c->p->mapping[m->idx]->filename, "mapping filename", &fname))
      return HS_AGENT_EINVAL;
    mapping = fname[0] ? fname : NULL;
  }
  size_t n = l->n_line ? l->n_line : 1;
  hs_ing_frame *f = hs_agent_arena_array(a, n, sizeof(*f));
  if (!f)
    return oom(c);
  if (!l->n_line) {
    char buf[32];
    snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)l->address);
    f[0].function = hs_agent_arena_utf8(a, buf, strlen(buf));
    if (!f[0].function)
      return oom(c);
    f[0].mapping = mapping;
  }
  /* line[0] is the innermost (inlined) function: already leaf first. */
  for (size_t i = 0; i < l->n_line; i++) {
    const Perftools__Profiles__Line *ln = l->line[i];
    const idmap *fm = idmap_find(c->fns, c->p->n_function, ln->function_id);
    if (!fm)
      return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                           "pprof: location %llu names unknown function %llu",
                           (unsigned long long)l->id,
                           (unsigned long long)ln->function_id);
    const Function *fn = c->p->function[fm->idx];
    const char *name, *file;
    if (str_at(c, fn->name, "function name", &name) ||
        str_at(c, fn->filename, "function filename", &file))
      return HS_AGENT_EINVAL;
    f[i].function = name[0] ? name : "??";
    f[i].file = file[0] ? file : NULL;
    f[i].line = ln->line;
    f[i].mapping = mapping;
  }
  c->loc_frames[li] = f;
  c->loc_nframes[li] = (uint32_t)n;
  return HS_AGENT_OK;
}

static int parse_u64(const char *s, int base, uint64_t *out) {
  if (!s || !*s)
    return -1;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    int dv;
    if (*p >= '0' && *p <= '9')
      dv = *p - '0';
    else if (base == 16 && *p >= 'a' && *p <= 'f')
      dv = *p - 'a' + 10;
    else if (base == 16 && *p >= 'A' && *p <= 'F')
      dv = *p - 'A' + 10;
    else
      return -1;
    if (v > (UINT64_MAX - (uint64_t)dv) / (uint64_t)base)
      return -1;
    v = v * (uint64_t)base + (uint64_t)dv;
  }
  *out = v;
  return 0;
}

/* How one sample_type column maps to the model. */
typedef struct column {
  uint8_t type;  /* 0: ignored */
  int64_t scale; /* value × scale = ns (period for counts) */
} column;

static int type_of(const char *name) {
  if (!strcmp(name, HS_PPROF_TYPE_CPU) || !strcmp(name, "cpu-time"))
    return HS_PT_CPU;
  if (!strcmp(name, HS_PPROF_TYPE_WALL) || !strcmp(name, "wall-time"))
    return HS_PT_WALL;
  return 0;
}

/* Chooses the columns: nanosecond-valued cpu/wall types; when a kind has
 * only a count column ("samples", "cpu-samples", "wall-samples") and the
 * period is in nanoseconds, counts × period. */
static int choose_columns(ctx *c, column *cols) {
  const Profile *p = c->p;
  int have[3] = {0, 0, 0};
  for (size_t i = 0; i < p->n_sample_type; i++) {
    const char *t, *u;
    if (str_at(c, p->sample_type[i]->type, "sample type", &t) ||
        str_at(c, p->sample_type[i]->unit, "sample unit", &u))
      return HS_AGENT_EINVAL;
    int k = type_of(t);
    cols[i].type = 0;
    if (k && !strcmp(u, HS_PPROF_UNIT_NANOSECONDS) && !have[k]) {
      cols[i].type = (uint8_t)k;
      cols[i].scale = 1;
      have[k] = 1;
    }
  }
  int period_kind = 0;
  if (p->period_type && p->period > 0) {
    const char *t, *u;
    if (str_at(c, p->period_type->type, "period type", &t) ||
        str_at(c, p->period_type->unit, "period unit", &u))
      return HS_AGENT_EINVAL;
    if (!strcmp(u, HS_PPROF_UNIT_NANOSECONDS))
      period_kind = type_of(t);
  }
  if (!period_kind)
    return HS_AGENT_OK;
  for (size_t i = 0; i < p->n_sample_type; i++) {
    const char *t = c->strs[p->sample_type[i]->type];
    const char *u = c->strs[p->sample_type[i]->unit];
    int k = 0;
    if (!strcmp(t, HS_PPROF_TYPE_SAMPLES))
      k = period_kind;
    else if (!strcmp(t, "cpu-samples"))
      k = HS_PT_CPU;
    else if (!strcmp(t, "wall-samples"))
      k = HS_PT_WALL;
    if (k && k == period_kind && !have[k] && !strcmp(u, HS_PPROF_UNIT_COUNT)) {
      cols[i].type = (uint8_t)k;
      cols[i].scale = p->period;
      have[k] = 1;
    }
  }
  return HS_AGENT_OK;
}

typedef struct labels {
  uint64_t span_id, root_id, tid_hi, tid_lo, thread_id;
  const char *endpoint, *thread_name;
  int64_t time_ns;
} labels;

static int read_labels(ctx *c, const Sample *s, labels *lb) {
  memset(lb, 0, sizeof(*lb));
  for (size_t i = 0; i < s->n_label; i++) {
    const Label *l = s->label[i];
    const char *k, *v;
    if (str_at(c, l->key, "label key", &k) ||
        str_at(c, l->str, "label value", &v))
      return HS_AGENT_EINVAL;
    int has_str = l->str != 0;
    uint64_t num = (uint64_t)l->num;
    uint64_t *dst = NULL;
    int base = 10, optional = 0;
    if (!strcmp(k, HS_PPROF_LABEL_SPAN_ID)) {
      dst = &lb->span_id;
    } else if (!strcmp(k, HS_PPROF_LABEL_LOCAL_ROOT_SPAN_ID)) {
      dst = &lb->root_id;
    } else if (!strcmp(k, HS_PPROF_LABEL_THREAD_ID)) {
      /* Only informative: Datadog's Node profiler labels samples of
       * threads it cannot name (idle, GC, non-JS) "NA". Such a value
       * means "unknown thread", not a broken profile. */
      dst = &lb->thread_id;
      optional = 1;
    } else if (!strcmp(k, HS_PPROF_LABEL_SPAN_ID_HEX)) {
      dst = &lb->span_id;
      base = 16;
    } else if (!strcmp(k, HS_PPROF_LABEL_TRACE_ENDPOINT)) {
      lb->endpoint = v[0] ? v : NULL;
      continue;
    } else if (!strcmp(k, HS_PPROF_LABEL_THREAD_NAME)) {
      lb->thread_name = v[0] ? v : NULL;
      continue;
    } else if (!strcmp(k, "end_timestamp_ns") && !has_str) {
      lb->time_ns = l->num;
      continue;
    } else if (!strcmp(k, HS_PPROF_LABEL_TRACE_ID_HEX) && has_str) {
      size_t n = strlen(v);
      char hi[17] = {0};
      if (n == 32) {
        memcpy(hi, v, 16);
        if (parse_u64(hi, 16, &lb->tid_hi) ||
            parse_u64(v + 16, 16, &lb->tid_lo))
          goto bad;
      } else if (n == 16) {
        if (parse_u64(v, 16, &lb->tid_lo))
          goto bad;
      } else {
        goto bad;
      }
      continue;
    } else {
      continue;
    }
    if (has_str) {
      if (base == 16 && strlen(v) != 16)
        goto bad;
      if (parse_u64(v, base, dst)) {
        if (!optional)
          goto bad;
        *dst = 0;
      }
    } else {
      *dst = num;
    }
    continue;
  bad:
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "pprof: label \"%s\" has a malformed value \"%.40s\"",
                         k, v);
  }
  return HS_AGENT_OK;
}

/* Fills c's lookup tables (the strings, the ids of locations, functions
 * and mappings, each location's frames) and *colsp, the sample columns to
 * keep. */
static int build_tables(ctx *c, column **colsp) {
  const Profile *p = c->p;
  hs_agent_arena *a = &c->d->arena;
  if (p->n_string_table == 0 || p->string_table[0][0] != 0)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "pprof: string table must start with \"\"");
  c->strs = hs_agent_arena_array(a, p->n_string_table, sizeof(char *));
  c->locs = hs_agent_arena_array(a, p->n_location, sizeof(idmap));
  c->fns = hs_agent_arena_array(a, p->n_function, sizeof(idmap));
  c->maps = hs_agent_arena_array(a, p->n_mapping, sizeof(idmap));
  c->loc_frames = hs_agent_arena_array(a, p->n_location, sizeof(void *));
  c->loc_nframes = hs_agent_arena_array(a, p->n_location, sizeof(uint32_t));
  column *cols = hs_agent_arena_array(a, p->n_sample_type, sizeof(column));
  if (!c->strs || !c->locs || !c->fns || !c->maps || !c->loc_frames ||
      !c->loc_nframes || !cols)
    return oom(c);
  *colsp = cols;
  for (size_t i = 0; i < p->n_string_table; i++) {
    /* protobuf-c NUL-terminates but does not check UTF-8; a string may
     * hold NUL bytes, which the model cannot carry: strlen cuts there. */
    const char *s = p->string_table[i];
    c->strs[i] = hs_agent_arena_utf8(a, s, strlen(s));
    if (!c->strs[i])
      return oom(c);
  }
  if (idmap_build(c->locs, p->n_location, loc_id, p->location) ||
      idmap_build(c->fns, p->n_function, fn_id, p->function) ||
      idmap_build(c->maps, p->n_mapping, map_id, p->mapping))
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "pprof: zero or duplicate location, function or "
                         "mapping id");
  int rc = choose_columns(c, cols);
  if (rc)
    return rc;
  for (size_t i = 0; i < p->n_location; i++)
    if ((rc = location_frames(c, i)) != HS_AGENT_OK)
      return rc;
  return HS_AGENT_OK;
}

/* The number of hs_ing_samples the profile gives (one per kept column
 * with a non-zero value) into *count; checks every sample's value count. */
static int count_samples(ctx *c, const column *cols, size_t *count) {
  const Profile *p = c->p;
  *count = 0;
  for (size_t i = 0; i < p->n_sample; i++) {
    const Sample *s = p->sample[i];
    if (s->n_value != p->n_sample_type)
      return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                           "pprof: sample %zu has %zu values, expected %zu", i,
                           s->n_value, p->n_sample_type);
    for (size_t j = 0; j < s->n_value; j++)
      if (cols[j].type && s->value[j] != 0)
        (*count)++;
  }
  return HS_AGENT_OK;
}

/* The frames of sample i, its locations' frames in order, into *framesp
 * (arena memory; NULL when it has none or no kept value) and their count
 * into *nframesp. */
static int sample_frames(ctx *c, size_t i, const column *cols,
                         hs_ing_frame **framesp, size_t *nframesp) {
  const Profile *p = c->p;
  const Sample *s = p->sample[i];
  size_t nframes = 0;
  for (size_t k = 0; k < s->n_location_id; k++) {
    const idmap *m = idmap_find(c->locs, p->n_location, s->location_id[k]);
    if (!m)
      return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                           "pprof: sample %zu names unknown location %llu", i,
                           (unsigned long long)s->location_id[k]);
    nframes += c->loc_nframes[m->idx];
  }
  if (nframes > UINT32_MAX)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "pprof: sample %zu is too deep", i);
  hs_ing_frame *frames = NULL;
  int has_value = 0;
  for (size_t j = 0; j < s->n_value; j++)
    has_value |= cols[j].type && s->value[j] != 0;
  if (has_value && nframes) {
    frames = hs_agent_arena_array(&c->d->arena, nframes, sizeof(*frames));
    if (!frames)
      return oom(c);
    size_t f = 0;
    for (size_t k = 0; k < s->n_location_id; k++) {
      const idmap *m = idmap_find(c->locs, p->n_location, s->location_id[k]);
      memcpy(frames + f, c->loc_frames[m->idx],
             c->loc_nframes[m->idx] * sizeof(*frames));
      f += c->loc_nframes[m->idx];
    }
  }
  *framesp = frames;
  *nframesp = nframes;
  return HS_AGENT_OK;
}

static int decode_profile(ctx *c) {
  const Profile *p = c->p;
  hs_agent_decoded *d = c->d;
  hs_agent_arena *a = &d->arena;
  column *cols = NULL;
  int rc = build_tables(c, &cols);
  if (rc != HS_AGENT_OK)
    return rc;

  int64_t start = p->time_nanos;
  if (!d->batch.profile_start_ns && p->time_nanos) {
    d->batch.profile_start_ns = p->time_nanos;
    d->batch.profile_end_ns = p->time_nanos + p->duration_nanos;
  }
  if (!start)
    start = d->batch.profile_start_ns;

  /* Count the output first: one hs_ing_sample per non-zero column. */
  size_t count;
  if ((rc = count_samples(c, cols, &count)) != HS_AGENT_OK)
    return rc;
  size_t total = d->batch.nsamples + count;
  if (total < count)
    return oom(c);
  hs_ing_sample *out = hs_agent_arena_array(a, total, sizeof(*out));
  if (!out)
    return oom(c);
  if (d->batch.nsamples)
    memcpy(out, d->batch.samples, d->batch.nsamples * sizeof(*out));
  size_t o = d->batch.nsamples;
  for (size_t i = 0; i < p->n_sample; i++) {
    const Sample *s = p->sample[i];
    labels lb;
    if ((rc = read_labels(c, s, &lb)) != HS_AGENT_OK)
      return rc;
    hs_ing_frame *frames = NULL;
    size_t nframes = 0;
    if ((rc = sample_frames(c, i, cols, &frames, &nframes)) != HS_AGENT_OK)
      return rc;
    for (size_t j = 0; j < s->n_value; j++) {
      if (!cols[j].type || s->value[j] == 0)
        continue;
      hs_ing_sample *x = &out[o++];
      x->time_ns = lb.time_ns ? lb.time_ns : start;
      x->type = cols[j].type;
      if (__builtin_mul_overflow(s->value[j], cols[j].scale, &x->value))
        return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                             "pprof: sample %zu value overflows", i);
      x->span_id = lb.span_id;
      x->local_root_span_id = lb.root_id;
      x->trace_id_high = lb.tid_hi;
      x->trace_id_low = lb.tid_lo;
      x->endpoint = lb.endpoint;
      x->thread_id = lb.thread_id;
      x->thread_name = lb.thread_name;
      x->frames = frames;
      x->nframes = (uint32_t)nframes;
    }
  }
  d->batch.samples = out;
  d->batch.nsamples = o;
  return HS_AGENT_OK;
}

int hs_agent_decode_pprof(const uint8_t *data, size_t len,
                          const hs_agent_limits *lim, hs_agent_decoded *d,
                          char *err, size_t errlen) {
  hs_agent_limits l;
  hs_agent_limits_resolve(lim, &l);
  const uint8_t *raw;
  size_t rawlen;
  uint8_t *owned;
  int rc = hs_agent_maybe_decompress(data, len, l.max_inflated, &raw, &rawlen,
                                     &owned, err, errlen);
  if (rc != HS_AGENT_OK)
    return rc;
  hs_pb_budget b = {0, l.max_memory, 0};
  ProtobufCAllocator alloc = {hs_pb_budget_alloc, hs_pb_budget_free, &b};
  Profile *p = perftools__profiles__profile__unpack(&alloc, rawlen, raw);
  if (!p) {
    free(owned);
    if (b.exceeded)
      return hs_agent_fail(err, errlen, HS_AGENT_ETOOBIG,
                           "pprof: profile exceeds the memory limit");
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "pprof: malformed protobuf");
  }
  ctx c = {.p = p, .d = d, .err = err, .errlen = errlen};
  rc = decode_profile(&c);
  perftools__profiles__profile__free_unpacked(p, &alloc);
  free(owned);
  return rc;
}
