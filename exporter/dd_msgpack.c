/* Datadog Agent trace payload encoder (msgpack v0.4). See dd_msgpack.h and
 * docs/export-datadog.md for what is sent.
 *
 * Speed matters here: every kept span passes through it on the writer
 * thread. Fixed keys are written as precomputed msgpack bytes (header and
 * text in one append), strings are measured and checked for UTF-8 in one
 * pass, and nothing is allocated per span once the buffers have grown. */
#include "exporter/dd_msgpack.h"
#include "common/utf8.h"
#include "exporter/dd_meta_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hex.h"
#include "hotspan/error.h"

/* Linear parent search below this chunk size, a hash table above. */
#define SMALL_CHUNK 16

/* ------------------------------------------------------------ output */

static int pk_write(void *data, const char *buf, size_t len) {
  hs_buf_append((hs_buf *)data, buf, len);
  return 0; /* failures are sticky in the buffer, checked per chunk */
}

/* A literal that already holds its msgpack header, e.g. "\xa4" "name". */
#define RAW(e, lit) hs_buf_append(&(e)->out, (lit), sizeof(lit) - 1)

/* ------------------------------------------------------------ UTF-8 */

/* Copies s (n bytes) into fix with every invalid byte replaced by U+FFFD. */
static void utf8_repair(hs_buf *fix, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  hs_buf_reset(fix);
  size_t i = 0;
  while (i < n) {
    size_t k = hs_utf8_seq(p + i, n - i);
    if (k == 0) {
      hs_buf_append(fix, "\xef\xbf\xbd", 3);
      i++;
    } else {
      hs_buf_append(fix, p + i, k);
      i += k;
    }
  }
}

static int utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t k = hs_utf8_seq(p + i, n - i);
    if (k == 0)
      return 0;
    i += k;
  }
  return 1;
}

/* A msgpack str of n bytes of s, repaired if it is not valid UTF-8. */
static void put_strn(hs_dd_encoder *e, const char *s, size_t n, int ascii) {
  if (!ascii && !utf8_valid(s, n)) {
    utf8_repair(&e->fix, s, n);
    if (hs_buf_failed(&e->fix)) {
      e->out.failed = 1;
      return;
    }
    s = e->fix.data;
    n = e->fix.len;
  }
  msgpack_pack_str(&e->pk, n);
  msgpack_pack_str_body(&e->pk, s, n);
}

/* A NUL-terminated string (NULL is ""): one pass finds the length and
 * whether any byte is non-ASCII. */
static void put_str(hs_dd_encoder *e, const char *s) {
  if (s == NULL)
    s = "";
  size_t n = 0;
  unsigned char high = 0;
  while (s[n] != '\0')
    high |= (unsigned char)s[n++];
  put_strn(e, s, n, high < 0x80);
}

/* JSON built by common/buf.h is valid UTF-8 already. */
static void put_json(hs_dd_encoder *e, const hs_buf *j) {
  msgpack_pack_str(&e->pk, j->len);
  msgpack_pack_str_body(&e->pk, j->data, j->len);
}

/* ------------------------------------------------------------ keys */

/* Keys the encoder writes itself. A span tag with one of these keys is
 * left out on the spans where the encoder writes the key, so that no map
 * holds a key twice. env and version are the exception: a span's own tag
 * wins over the tracer's setting. */
enum {
  K_ENV = 1u << 0,
  K_VERSION = 1u << 1,
  K_ORIGIN = 1u << 2,
  K_KIND = 1u << 3,
  K_TID = 1u << 4,
  K_RUNTIME = 1u << 5,
  K_LANGUAGE = 1u << 6,
  K_EVENTS = 1u << 7,
  K_LINKS = 1u << 8,
  K_PRIORITY = 1u << 9,
  K_TOPLEVEL = 1u << 10,
  K_RULE = 1u << 11,
  K_LIMIT = 1u << 12,
  K_AGENT = 1u << 13,
  K_PID = 1u << 14,
  K_PROPAGATED = 1u << 15 /* any _dd.p.* key */
};

/* Which generated key k is (0 if none). Most tag keys are rejected by
 * their first byte. */
static unsigned generated_key(const char *k) {
  switch (k[0]) {
  case 'e':
    if (strcmp(k, "env") == 0)
      return K_ENV;
    return strcmp(k, "events") == 0 ? K_EVENTS : 0;
  case 'v':
    return strcmp(k, "version") == 0 ? K_VERSION : 0;
  case 's':
    return strcmp(k, "span.kind") == 0 ? K_KIND : 0;
  case 'l':
    return strcmp(k, "language") == 0 ? K_LANGUAGE : 0;
  case 'r':
    return strcmp(k, "runtime-id") == 0 ? K_RUNTIME : 0;
  case 'p':
    return strcmp(k, "process_id") == 0 ? K_PID : 0;
  case '_':
    if (strncmp(k, "_dd.", 4) == 0) {
      const char *r = k + 4;
      if (strcmp(r, "p.tid") == 0)
        return K_TID;
      if (strncmp(r, "p.", 2) == 0)
        return K_PROPAGATED;
      if (strcmp(r, "origin") == 0)
        return K_ORIGIN;
      if (strcmp(r, "span_links") == 0)
        return K_LINKS;
      if (strcmp(r, "top_level") == 0)
        return K_TOPLEVEL;
      if (strcmp(r, "rule_psr") == 0)
        return K_RULE;
      if (strcmp(r, "limit_psr") == 0)
        return K_LIMIT;
      if (strcmp(r, "agent_psr") == 0)
        return K_AGENT;
      return 0;
    }
    return strcmp(k, "_sampling_priority_v1") == 0 ? K_PRIORITY : 0;
  default:
    return 0;
  }
}

static const char *kind_name(int kind) {
  static const char *const names[] = {NULL,     "internal", "server",
                                      "client", "producer", "consumer"};
  return (kind >= 1 && kind <= 5) ? names[kind] : NULL;
}

/* ------------------------------------------------------------ chunk */

/* What the encoder knows about the chunk as a whole. */
typedef struct chunk_ctx {
  const hs_chunk *c;
  hs_trace_view tv;
  const hotspan_span *first;
  int64_t pid;
  uint32_t nprop; /* _dd.p.* entries in tv.propagated_tags, tid excluded */
} chunk_ctx;

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  return x;
}

/* Builds the span id table of a large chunk. Returns -1 out of memory. */
static int index_chunk(hs_dd_encoder *e, const hs_chunk *c) {
  size_t want = 32;
  while (want < (size_t)c->nspans * 2)
    want *= 2;
  if (want > e->nslots) {
    const hotspan_span **p = realloc(e->slots, want * sizeof *p);
    if (p == NULL)
      return -1;
    e->slots = p;
    e->nslots = want;
  }
  memset(e->slots, 0, e->nslots * sizeof *e->slots);
  size_t mask = e->nslots - 1;
  for (const hotspan_span *s = c->spans; s != NULL; s = s->next) {
    size_t i = (size_t)mix64(s->span_id) & mask;
    while (e->slots[i] != NULL)
      i = (i + 1) & mask;
    e->slots[i] = s;
  }
  return 0;
}

static const hotspan_span *find_parent(const hs_dd_encoder *e,
                                       const hs_chunk *c, uint64_t id) {
  if (id == 0)
    return NULL;
  if (c->nspans <= SMALL_CHUNK) {
    for (const hotspan_span *s = c->spans; s != NULL; s = s->next)
      if (s->span_id == id)
        return s;
    return NULL;
  }
  size_t mask = e->nslots - 1;
  for (size_t i = (size_t)mix64(id) & mask; e->slots[i] != NULL;
       i = (i + 1) & mask)
    if (e->slots[i]->span_id == id)
      return e->slots[i];
  return NULL;
}

static int same_str(const char *a, const char *b) {
  if (a == b)
    return 1;
  if (a == NULL || b == NULL)
    return 0;
  return strcmp(a, b) == 0;
}

/* Datadog's "top-level" span (the entry of a service, where the agent
 * computes stats): the local root, a span whose parent in the chunk has
 * another service, and a span whose parent is not in the chunk (flushed
 * earlier) if its service is not the tracer's own. */
static int is_top_level(const hs_dd_encoder *e, const chunk_ctx *cc,
                        const hotspan_span *s) {
  if (s->is_local_root)
    return 1;
  const hotspan_span *p = find_parent(e, cc->c, s->parent_id);
  if (p != NULL)
    return !same_str(p->service, s->service);
  return !same_str(e->st->service, s->service);
}

static int span_has_key(const hotspan_span *s, const char *key) {
  for (uint16_t i = 0; i < s->ntags; i++)
    if (strcmp(s->tags[i].key, key) == 0)
      return 1;
  return 0;
}

/* The next "k=v" entry of a propagated tags string at *p: sets key/val
 * and advances *p. Returns 0 at the end. */
static int next_prop(const char **p, const char **k, size_t *klen,
                     const char **v, size_t *vlen) {
  while (**p != '\0') {
    const char *s = *p;
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    *p = s + n + (end != NULL);
    const char *eq = memchr(s, '=', n);
    if (eq == NULL || eq == s)
      continue;
    *k = s;
    *klen = (size_t)(eq - s);
    *v = eq + 1;
    *vlen = n - *klen - 1;
    /* _dd.p.tid comes from the trace id, not from what was extracted. */
    if (*klen == 9 && memcmp(s, "_dd.p.tid", 9) == 0)
      continue;
    return 1;
  }
  return 0;
}

static int prop_has(const chunk_ctx *cc, const char *key) {
  const char *p = cc->tv.propagated_tags, *k, *v;
  size_t klen, vlen, n = strlen(key);
  while (next_prop(&p, &k, &klen, &v, &vlen))
    if (klen == n && memcmp(k, key, n) == 0)
      return 1;
  return 0;
}

/* Whether tag t (whose key is generated key g) is left out of a span on
 * which the encoder writes the keys gen: env and version never are (the
 * span's own value wins); a propagated key only if the trace carries it. */
static int tag_skipped(const chunk_ctx *cc, unsigned gen, unsigned g,
                       const hs_tag *t) {
  if (g == K_ENV || g == K_VERSION || !(g & gen))
    return 0;
  return g != K_PROPAGATED || prop_has(cc, t->key);
}

/* ------------------------------------------------------------ spans */

static void put_hex64(hs_dd_encoder *e, uint64_t v) {
  char b[17];
  b[0] = (char)0xb0; /* fixstr of 16 bytes */
  hs_hex16(b + 1, v);
  hs_buf_append(&e->out, b, sizeof b);
}

/* What encode_span writes for one span: which generated keys
 * (K_* bits), how many meta and metrics entries, which of the first 64
 * tags and global tags are left out or written. */
typedef struct span_plan {
  unsigned gen;
  uint32_t nmeta, nmetrics;
  uint64_t skip;    /* bit i: span tag i is left out (first 64) */
  uint64_t globals; /* bit i: global tag i is written (first 64) */
  int put_env, put_version;
  const char *kind;
} span_plan;

/* Which generated keys go on span s. */
static unsigned plan_keys(const hs_dd_encoder *e, const chunk_ctx *cc,
                          const hotspan_span *s, const char *kind) {
  const hs_trace_view *tv = &cc->tv;
  const int first = s == cc->first;
  const int root = s->is_local_root;
  /* The local root carries the trace's sampling values; a chunk without
   * it (a partial flush) carries the priority on its first span so that
   * the agent still sees the decision. */
  const int carries_priority = tv->priority != HOTSPAN_PRIORITY_UNSET &&
                               (root || (first && cc->c->partial));
  unsigned gen = 0;
  if (tv->origin[0] != '\0')
    gen |= K_ORIGIN;
  if (kind != NULL)
    gen |= K_KIND;
  if ((first || root) && tv->id_high != 0)
    gen |= K_TID;
  if (first && cc->nprop > 0)
    gen |= K_PROPAGATED;
  if (root)
    gen |= K_RUNTIME | K_LANGUAGE | K_PID;
  if (s->events != NULL)
    gen |= K_EVENTS;
  if (s->links != NULL)
    gen |= K_LINKS;
  if (carries_priority)
    gen |= K_PRIORITY;
  if (is_top_level(e, cc, s))
    gen |= K_TOPLEVEL;
  if (root && tv->rule_rate >= 0)
    gen |= K_RULE;
  if (root && tv->limit_rate >= 0)
    gen |= K_LIMIT;
  if (root && tv->agent_rate >= 0)
    gen |= K_AGENT;

  return gen;
}

/* Counts the meta and metrics entries of span s into *pl. */
static void plan_counts(const hs_dd_encoder *e, const chunk_ctx *cc,
                        const hotspan_span *s, span_plan *pl) {
  const hs_tracer_settings *st = e->st;
  const unsigned gen = pl->gen;
  const int root = s->is_local_root;
  /* Count meta and metrics entries: span tags first. Which of the first
   * 64 tags are left out is remembered (bit i of skip), so that their keys
   * are classified once per span. */
  uint32_t nmeta = 0, nmetrics = 0;
  int own_env = 0, own_version = 0;
  uint64_t skip = 0;
  for (uint16_t i = 0; i < s->ntags; i++) {
    const hs_tag *t = &s->tags[i];
    unsigned g = generated_key(t->key);
    if (g == K_ENV)
      own_env = 1;
    else if (g == K_VERSION)
      own_version = 1;
    if (tag_skipped(cc, gen, g, t)) {
      if (i < 64)
        skip |= UINT64_C(1) << i;
      continue;
    }
    if (t->type == HS_TAG_STR || t->type == HS_TAG_BOOL)
      nmeta++;
    else if (t->type == HS_TAG_INT || isfinite(t->v.d))
      nmetrics++;
  }
  int put_env = st->env != NULL && !own_env;
  int put_version = st->version != NULL && !own_version;
  /* Global tags (DD_TAGS), unless the span has the key or the encoder
   * writes it. Rarely more than a few, so the quadratic check is cheap. */
  uint64_t globals = 0; /* bit i: global tag i is written (first 64) */
  for (size_t i = 0; i < st->ntags && i < 64; i++) {
    const char *k = st->tags[i].key;
    unsigned g = generated_key(k);
    if (g == K_ENV || g == K_VERSION || (g & gen) || span_has_key(s, k))
      continue;
    globals |= UINT64_C(1) << i;
    nmeta++;
  }
  nmeta += (uint32_t)put_env + (uint32_t)put_version;
  nmeta += !!(gen & K_ORIGIN) + !!(gen & K_KIND) + !!(gen & K_TID) +
           !!(gen & K_EVENTS) + !!(gen & K_LINKS);
  if (gen & K_PROPAGATED)
    nmeta += cc->nprop;
  if (root)
    nmeta += 2; /* runtime-id, language */
  nmetrics += !!(gen & K_PRIORITY) + !!(gen & K_TOPLEVEL) + !!(gen & K_RULE) +
              !!(gen & K_LIMIT) + !!(gen & K_AGENT) + !!(gen & K_PID);

  pl->nmeta = nmeta;
  pl->nmetrics = nmetrics;
  pl->skip = skip;
  pl->globals = globals;
  pl->put_env = put_env;
  pl->put_version = put_version;
}

/* The fixed fields of the span map. */
static void put_span_fields(hs_dd_encoder *e, const chunk_ctx *cc,
                            const hotspan_span *s) {
  const hs_tracer_settings *st = e->st;
  const hs_trace_view *tv = &cc->tv;
  /* The span map. */
  RAW(e, "\x8c"
         "\xa7"
         "service");
  put_str(e, s->service != NULL ? s->service : st->service);
  RAW(e, "\xa4"
         "name");
  put_str(e, s->name);
  RAW(e, "\xa8"
         "resource");
  /* The agent needs a resource; the operation name stands in. */
  put_str(e, s->resource != NULL && s->resource[0] != '\0' ? s->resource
                                                           : s->name);
  RAW(e, "\xa4"
         "type");
  put_str(e, s->type);
  RAW(e, "\xa8"
         "trace_id");
  msgpack_pack_uint64(&e->pk, tv->id_low);
  RAW(e, "\xa7"
         "span_id");
  msgpack_pack_uint64(&e->pk, s->span_id);
  RAW(e, "\xa9"
         "parent_id");
  msgpack_pack_uint64(&e->pk, s->parent_id);
  RAW(e, "\xa5"
         "start");
  msgpack_pack_int64(&e->pk, (int64_t)s->start_ns);
  RAW(e, "\xa8"
         "duration");
  msgpack_pack_int64(&e->pk, (int64_t)s->duration_ns);
  RAW(e, "\xa5"
         "error");
  msgpack_pack_int32(&e->pk, s->error ? 1 : 0);
}

/* meta: span tags, global tags, env, version and the generated keys. */
static void put_span_meta(hs_dd_encoder *e, const chunk_ctx *cc,
                          const hotspan_span *s, const span_plan *pl) {
  const hs_tracer_settings *st = e->st;
  const hs_trace_view *tv = &cc->tv;
  const unsigned gen = pl->gen;
  const uint64_t skip = pl->skip, globals = pl->globals;
  const int root = s->is_local_root;
  const char *kind = pl->kind;
  /* meta: str → str */
  RAW(e, "\xa4"
         "meta");
  msgpack_pack_map(&e->pk, pl->nmeta);
  for (uint16_t i = 0; i < s->ntags; i++) {
    const hs_tag *t = &s->tags[i];
    if (t->type != HS_TAG_STR && t->type != HS_TAG_BOOL)
      continue;
    if (i < 64 ? (int)((skip >> i) & 1)
               : tag_skipped(cc, gen, generated_key(t->key), t))
      continue;
    put_str(e, t->key);
    if (t->type == HS_TAG_STR)
      put_str(e, t->v.s);
    else if (t->v.i)
      RAW(e, "\xa4"
             "true");
    else
      RAW(e, "\xa5"
             "false");
  }
  for (size_t i = 0; i < st->ntags && i < 64; i++) {
    if (!(globals & (UINT64_C(1) << i)))
      continue;
    put_str(e, st->tags[i].key);
    put_str(e, st->tags[i].value);
  }
  if (pl->put_env) {
    RAW(e, "\xa3"
           "env");
    put_str(e, st->env);
  }
  if (pl->put_version) {
    RAW(e, "\xa7"
           "version");
    put_str(e, st->version);
  }
  if (gen & K_ORIGIN) {
    RAW(e, "\xaa"
           "_dd.origin");
    put_str(e, tv->origin);
  }
  if (gen & K_KIND) {
    RAW(e, "\xa9"
           "span.kind");
    put_str(e, kind);
  }
  if (gen & K_TID) {
    RAW(e, "\xa9"
           "_dd.p.tid");
    put_hex64(e, tv->id_high);
  }
  if (gen & K_PROPAGATED) {
    const char *p = tv->propagated_tags, *k, *v;
    size_t klen, vlen;
    while (next_prop(&p, &k, &klen, &v, &vlen)) {
      put_strn(e, k, klen, 0);
      put_strn(e, v, vlen, 0);
    }
  }
  if (root) {
    RAW(e, "\xaa"
           "runtime-id");
    put_str(e, st->runtime_id);
    RAW(e, "\xa8"
           "language");
    put_str(e, HS_DD_LANGUAGE);
  }
  if (gen & K_EVENTS) {
    RAW(e, "\xa6"
           "events");
    hs_dd_events_json(&e->json, s);
    put_json(e, &e->json);
  }
  if (gen & K_LINKS) {
    RAW(e, "\xae"
           "_dd.span_links");
    hs_dd_links_json(&e->json, s);
    put_json(e, &e->json);
  }
}

/* metrics: numeric span tags and the generated numeric keys. */
static void put_span_metrics(hs_dd_encoder *e, const chunk_ctx *cc,
                             const hotspan_span *s, const span_plan *pl) {
  const hs_trace_view *tv = &cc->tv;
  const unsigned gen = pl->gen;
  const uint64_t skip = pl->skip;
  /* metrics: str → float64 */
  RAW(e, "\xa7"
         "metrics");
  msgpack_pack_map(&e->pk, pl->nmetrics);
  for (uint16_t i = 0; i < s->ntags; i++) {
    const hs_tag *t = &s->tags[i];
    if (t->type == HS_TAG_STR || t->type == HS_TAG_BOOL)
      continue;
    double v = t->type == HS_TAG_INT ? (double)t->v.i : t->v.d;
    if (!isfinite(v))
      continue; /* the agent's JSON side cannot hold NaN or Inf */
    if (i < 64 ? (int)((skip >> i) & 1)
               : tag_skipped(cc, gen, generated_key(t->key), t))
      continue;
    put_str(e, t->key);
    msgpack_pack_double(&e->pk, v);
  }
  if (gen & K_PRIORITY) {
    RAW(e, "\xb5"
           "_sampling_priority_v1");
    msgpack_pack_double(&e->pk, (double)tv->priority);
  }
  if (gen & K_TOPLEVEL) {
    RAW(e, "\xad"
           "_dd.top_level");
    msgpack_pack_double(&e->pk, 1.0);
  }
  if (gen & K_RULE) {
    RAW(e, "\xac"
           "_dd.rule_psr");
    msgpack_pack_double(&e->pk, tv->rule_rate);
  }
  if (gen & K_LIMIT) {
    RAW(e, "\xad"
           "_dd.limit_psr");
    msgpack_pack_double(&e->pk, tv->limit_rate);
  }
  if (gen & K_AGENT) {
    RAW(e, "\xad"
           "_dd.agent_psr");
    msgpack_pack_double(&e->pk, tv->agent_rate);
  }
  if (gen & K_PID) {
    RAW(e, "\xaa"
           "process_id");
    msgpack_pack_double(&e->pk, (double)cc->pid);
  }
}

static void encode_span(hs_dd_encoder *e, const chunk_ctx *cc,
                        const hotspan_span *s) {
  span_plan pl;
  pl.kind = kind_name(s->kind);
  pl.gen = plan_keys(e, cc, s, pl.kind);
  plan_counts(e, cc, s, &pl);
  put_span_fields(e, cc, s);
  put_span_meta(e, cc, s, &pl);
  put_span_metrics(e, cc, s, &pl);
}

/* ------------------------------------------------------------ payload */

void hs_dd_encoder_init(hs_dd_encoder *e, const hs_tracer_settings *st,
                        size_t max_bytes) {
  memset(e, 0, sizeof *e);
  e->st = st;
  hs_buf_init(&e->out, max_bytes);
  /* A meta value is at most HS_TAG_VALUE_MAX bytes; the repair of one
   * can triple it (one invalid byte → U+FFFD). */
  hs_buf_init(&e->json, (size_t)HS_TAG_VALUE_MAX * 8);
  hs_buf_init(&e->fix, (size_t)HS_TAG_VALUE_MAX * 4);
  msgpack_packer_init(&e->pk, &e->out, pk_write);
  hs_dd_encoder_begin(e);
}

void hs_dd_encoder_free(hs_dd_encoder *e) {
  if (e == NULL)
    return;
  hs_buf_free(&e->out);
  hs_buf_free(&e->json);
  hs_buf_free(&e->fix);
  free(e->slots);
  e->slots = NULL;
  e->nslots = 0;
}

void hs_dd_encoder_abandon(hs_dd_encoder *e) {
  const hs_tracer_settings *st = e->st;
  size_t max = e->out.max;
  /* Forget, do not free: another thread may have been using these
   * buffers in the parent when the process forked. */
  hs_dd_encoder_init(e, st, max);
}

void hs_dd_encoder_begin(hs_dd_encoder *e) {
  hs_buf_reset(&e->out);
  /* array32 header, count filled in by finish */
  hs_buf_append(&e->out, "\xdd\0\0\0\0", 5);
  e->ntraces = 0;
  e->nspans = 0;
}

int hs_dd_encoder_add(hs_dd_encoder *e, const hs_chunk *c) {
  if (e == NULL || c == NULL || c->spans == NULL || c->nspans == 0)
    return HOTSPAN_EINVAL;
  chunk_ctx cc;
  cc.c = c;
  cc.first = c->spans;
  hs_trace_snapshot(c->trace, &cc.tv);
  cc.nprop = 0;
  {
    const char *p = cc.tv.propagated_tags, *k, *v;
    size_t klen, vlen;
    while (next_prop(&p, &k, &klen, &v, &vlen))
      cc.nprop++;
  }
  cc.pid = 0;
  for (const hotspan_span *s = c->spans; s != NULL; s = s->next)
    if (s->is_local_root) {
      cc.pid = hs_process_id(); /* per chunk: fork changes it */
      break;
    }
  size_t mark = e->out.len;
  if (c->nspans > SMALL_CHUNK && index_chunk(e, c) != 0)
    e->out.failed = 1;
  /* The count of spans is what the trace array says; walk exactly that
   * many so that a list longer than nspans cannot corrupt the payload. */
  msgpack_pack_array(&e->pk, c->nspans);
  uint32_t n = 0;
  for (const hotspan_span *s = c->spans; s != NULL && n < c->nspans;
       s = s->next, n++) {
    hs_span_prefetch(s->next);
    encode_span(e, &cc, s);
  }
  if (hs_buf_failed(&e->out) || n != c->nspans) {
    e->out.len = mark;
    e->out.failed = 0;
    e->chunks_dropped++;
    e->spans_dropped += c->nspans;
    return HOTSPAN_ETOOBIG;
  }
  e->ntraces++;
  e->nspans += c->nspans;
  return HOTSPAN_OK;
}

int hs_dd_encoder_finish(hs_dd_encoder *e, char **body, size_t *len,
                         uint32_t *ntraces, uint32_t *nspans) {
  if (e->out.len < 5 || e->out.data == NULL) {
    hs_dd_encoder_begin(e);
    return HOTSPAN_ENOMEM;
  }
  unsigned char *h = (unsigned char *)e->out.data;
  h[0] = 0xdd;
  h[1] = (unsigned char)(e->ntraces >> 24);
  h[2] = (unsigned char)(e->ntraces >> 16);
  h[3] = (unsigned char)(e->ntraces >> 8);
  h[4] = (unsigned char)e->ntraces;
  *body = e->out.data;
  *len = e->out.len;
  if (ntraces != NULL)
    *ntraces = e->ntraces;
  if (nspans != NULL)
    *nspans = e->nspans;
  /* The buffer now belongs to the caller; the next payload grows anew. */
  e->out.data = NULL;
  e->out.cap = 0;
  hs_dd_encoder_begin(e);
  return HOTSPAN_OK;
}

int hs_dd_encode_chunk(const hs_tracer_settings *st, const hs_chunk *c,
                       hs_buf *out) {
  hs_dd_encoder e;
  hs_dd_encoder_init(&e, st, 0);
  int rc = hs_dd_encoder_add(&e, c);
  if (rc == HOTSPAN_OK) {
    char *body = NULL;
    size_t len = 0;
    rc = hs_dd_encoder_finish(&e, &body, &len, NULL, NULL);
    if (rc == HOTSPAN_OK) {
      hs_buf_append(out, body, len);
      free(body);
    }
  }
  hs_dd_encoder_free(&e);
  return rc;
}
