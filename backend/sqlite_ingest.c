/* Ingest into the SQLite store: one IMMEDIATE transaction per batch,
 * with the statements prepared at open. Spans go in with INSERT OR IGNORE
 * (a resent span is stored once) and their traces are upserted once per
 * batch; samples go in with their stacks and frames. Frames, stacks,
 * services, endpoints, versions, resources and thread names are
 * deduplicated through in-memory caches in front of INSERT OR IGNORE; the
 * caches are cleared whenever a transaction rolls back (their newest ids
 * may not exist any more) and when they pass a size bound. */
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite_int.h"
#include "common/hash.h"

/* Entries per cache before it is emptied: bounds the agent's memory when
 * frames keep changing (JIT code, many binaries). */
#define CACHE_MAX_ENTRIES 1000000

/* Text bound as given; NULL as "" (the schema has no NULL strings, so
 * UNIQUE constraints dedupe). */
static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

/* Runs a reset statement that returns at most one integer. Returns 1 with
 * *out set, 0 if no row, -1 on error. */
static int step_id(sqlite3_stmt *st, int64_t *out) {
  int rc = sqlite3_step(st);
  int r = -1;
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    r = 1;
  } else if (rc == SQLITE_DONE) {
    r = 0;
  }
  sqlite3_reset(st);
  return r;
}

/* Id of name in a dictionary table (services, thread names): from the
 * in-memory cache, else INSERT OR IGNORE then SELECT. */
static int dict_id(hs_kvmap *cache, sqlite3_stmt *ins, sqlite3_stmt *sel,
                   const char *name, int64_t *id) {
  size_t n = strlen(name);
  hs_kv_slot *slot = hs_kvmap_get(cache, name, n);
  if (slot) {
    *id = slot->val;
    return 0;
  }
  bind_text(ins, 1, name);
  bind_text(sel, 1, name);
  if (hs_sq_step_done(ins) < 0 || step_id(sel, id) != 1)
    return -1;
  return hs_kvmap_put(cache, name, n, *id, NULL) ? 0 : -1;
}

static int service_id(sq_store *s, const char *name, int64_t *id) {
  return dict_id(&s->services, s->st[ST_SERVICE_INS], s->st[ST_SERVICE_SEL],
                 name ? name : "", id);
}

static int endpoint_id(sq_store *s, const char *service, const char *name,
                       int64_t *id) {
  service = service ? service : "";
  name = name ? name : "";
  hs_buf *k = &s->scratch;
  hs_buf_reset(k);
  hs_buf_append(k, service, strlen(service) + 1);
  hs_buf_puts(k, name);
  if (hs_buf_failed(k))
    return -1;
  hs_kv_slot *slot = hs_kvmap_get(&s->endpoints, k->data, k->len);
  if (slot) {
    *id = slot->val;
    return 0;
  }
  int64_t sid;
  if (service_id(s, service, &sid) < 0)
    return -1;
  sqlite3_stmt *ins = s->st[ST_ENDPOINT_INS], *sel = s->st[ST_ENDPOINT_SEL];
  sqlite3_bind_int64(ins, 1, sid);
  bind_text(ins, 2, name);
  sqlite3_bind_int64(sel, 1, sid);
  bind_text(sel, 2, name);
  if (hs_sq_step_done(ins) < 0 || step_id(sel, id) != 1)
    return -1;
  /* service_id may have used the scratch buffer: rebuild the key. */
  hs_buf_reset(k);
  hs_buf_append(k, service, strlen(service) + 1);
  hs_buf_puts(k, name);
  if (hs_buf_failed(k))
    return -1;
  return hs_kvmap_put(&s->endpoints, k->data, k->len, *id, NULL) ? 0 : -1;
}

/* The id of (service, version), created if new. The cache key is the
 * service's id and the version's bytes. */
static int version_id(sq_store *s, const char *service, const char *name,
                      int64_t *id) {
  int64_t sid;
  if (service_id(s, service, &sid) < 0)
    return -1;
  hs_buf *k = &s->scratch;
  hs_buf_reset(k);
  hs_buf_append(k, &sid, sizeof sid);
  hs_buf_puts(k, name);
  if (hs_buf_failed(k))
    return -1;
  hs_kv_slot *slot = hs_kvmap_get(&s->versions, k->data, k->len);
  if (slot) {
    *id = slot->val;
    return 0;
  }
  sqlite3_stmt *ins = s->st[ST_VERSION_INS], *sel = s->st[ST_VERSION_SEL];
  sqlite3_bind_int64(ins, 1, sid);
  bind_text(ins, 2, name);
  sqlite3_bind_int64(sel, 1, sid);
  bind_text(sel, 2, name);
  if (hs_sq_step_done(ins) < 0 || step_id(sel, id) != 1)
    return -1;
  return hs_kvmap_put(&s->versions, k->data, k->len, *id, NULL) ? 0 : -1;
}

/* A span's version: its string attribute "version" (Datadog meta, set by
 * hotspan's tracer on every span), else "service.version" (the OTLP
 * semantic convention, when sent as a span attribute). NULL if neither or
 * empty. */
static const char *span_version(const hs_ing_span *sp) {
  const char *alt = NULL;
  for (uint32_t i = 0; i < sp->nattrs; i++) {
    const hs_ing_kv *kv = &sp->attrs[i];
    if (!kv->key || !kv->str || !kv->str[0])
      continue;
    if (strcmp(kv->key, "version") == 0)
      return kv->str;
    if (!alt && strcmp(kv->key, "service.version") == 0)
      alt = kv->str;
  }
  return alt;
}

static int thread_name_id(sq_store *s, const char *name, int64_t *id) {
  return dict_id(&s->threads, s->st[ST_THREAD_INS], s->st[ST_THREAD_SEL], name,
                 id);
}

static int frame_id(sq_store *s, const hs_ing_frame *f, int64_t *id) {
  const char *fn = f->function ? f->function : "??";
  const char *file = f->file ? f->file : "";
  const char *map = f->mapping ? f->mapping : "";
  hs_buf *k = &s->scratch;
  hs_buf_reset(k);
  hs_buf_append(k, fn, strlen(fn) + 1);
  hs_buf_append(k, file, strlen(file) + 1);
  hs_buf_append(k, &f->line, sizeof f->line);
  hs_buf_puts(k, map);
  if (hs_buf_failed(k))
    return -1;
  hs_kv_slot *slot = hs_kvmap_get(&s->frames, k->data, k->len);
  if (slot) {
    *id = slot->val;
    return 0;
  }
  sqlite3_stmt *ins = s->st[ST_FRAME_INS], *sel = s->st[ST_FRAME_SEL];
  bind_text(ins, 1, fn);
  bind_text(ins, 2, file);
  sqlite3_bind_int64(ins, 3, f->line);
  bind_text(ins, 4, map);
  bind_text(sel, 1, fn);
  bind_text(sel, 2, file);
  sqlite3_bind_int64(sel, 3, f->line);
  bind_text(sel, 4, map);
  if (hs_sq_step_done(ins) < 0 || step_id(sel, id) != 1)
    return -1;
  return hs_kvmap_put(&s->frames, k->data, k->len, *id, NULL) ? 0 : -1;
}

static void put_varint(hs_buf *b, uint64_t v) {
  unsigned char tmp[10];
  size_t n = 0;
  do {
    tmp[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v)
      tmp[n] |= 0x80;
    n++;
  } while (v);
  hs_buf_append(b, tmp, n);
}

/* Stack rows are keyed by a 64-bit hash of their frame-id blob; a hash
 * collision (two different blobs) moves the newcomer to the next hash
 * value, so different stacks never merge. */
static int stack_id(sq_store *s, const hs_ing_sample *smp, int64_t *id) {
  hs_buf *blob = &s->blob;
  hs_buf_reset(blob);
  int cut = smp->nframes > HS_ING_MAX_FRAMES;
  uint32_t keep = cut ? HS_ING_MAX_FRAMES - 1 : smp->nframes;
  for (uint32_t i = 0; i < keep; i++) {
    int64_t fid;
    if (frame_id(s, &smp->frames[i], &fid) < 0)
      return -1;
    put_varint(blob, (uint64_t)fid);
  }
  if (cut) {
    static const hs_ing_frame marker = {.function = HS_ING_TRUNCATED_FRAME};
    int64_t fid;
    if (frame_id(s, &marker, &fid) < 0)
      return -1;
    put_varint(blob, (uint64_t)fid);
  }
  if (hs_buf_failed(blob))
    return -1;
  hs_kv_slot *slot = hs_kvmap_get(&s->stacks, blob->data, blob->len);
  if (slot) {
    *id = slot->val;
    return 0;
  }
  uint64_t h = hs_hash_bytes(blob->data, blob->len);
  sqlite3_stmt *ins = s->st[ST_STACK_INS], *sel = s->st[ST_STACK_SEL];
  for (int probe = 0; probe < 16; probe++, h++) {
    sqlite3_bind_int64(ins, 1, (int64_t)h);
    sqlite3_bind_blob(ins, 2, blob->data, (int)blob->len, SQLITE_STATIC);
    if (hs_sq_step_done(ins) < 0)
      return -1;
    sqlite3_bind_int64(sel, 1, (int64_t)h);
    if (sqlite3_step(sel) != SQLITE_ROW) {
      sqlite3_reset(sel);
      return -1;
    }
    int64_t got = sqlite3_column_int64(sel, 0);
    const void *b = sqlite3_column_blob(sel, 1);
    size_t bn = (size_t)sqlite3_column_bytes(sel, 1);
    int same = bn == blob->len && (bn == 0 || !memcmp(b, blob->data, bn));
    sqlite3_reset(sel);
    if (same) {
      *id = got;
      return hs_kvmap_put(&s->stacks, blob->data, blob->len, got, NULL) ? 0
                                                                        : -1;
    }
  }
  return -1;
}

/* A JSON object of attributes, appended to b. */
static void kv_json(hs_buf *b, const hs_ing_kv *kvs, uint32_t n) {
  hs_buf_putc(b, '{');
  for (uint32_t i = 0; i < n; i++) {
    const hs_ing_kv *kv = &kvs[i];
    if (i)
      hs_buf_putc(b, ',');
    hs_json_str(b, kv->key ? kv->key : "");
    hs_buf_putc(b, ':');
    if (kv->str)
      hs_json_str(b, kv->str);
    else
      hs_json_double(b, kv->num);
  }
  hs_buf_putc(b, '}');
}

static void attrs_json(hs_buf *b, const hs_ing_span *sp) {
  hs_buf_reset(b);
  kv_json(b, sp->attrs, sp->nattrs);
}

static void json_hex_id(hs_buf *b, uint64_t hi, uint64_t lo, int with_hi) {
  hs_buf_putc(b, '"');
  if (with_hi)
    hs_json_hex64(b, hi);
  hs_json_hex64(b, lo);
  hs_buf_putc(b, '"');
}

/* The span's events then its links, as two JSON arrays in b: events at
 * [0, *elen), links at [*elen, b->len); an empty list has length 0. */
static void events_links_json(hs_buf *b, const hs_ing_span *sp, size_t *elen) {
  hs_buf_reset(b);
  for (uint32_t i = 0; i < sp->nevents; i++) {
    const hs_ing_event *e = &sp->events[i];
    hs_buf_puts(b, i ? ",{\"time_ns\":" : "[{\"time_ns\":");
    hs_json_i64(b, e->time_ns);
    hs_buf_puts(b, ",\"name\":");
    hs_json_str(b, e->name ? e->name : "");
    hs_buf_puts(b, ",\"attrs\":");
    kv_json(b, e->attrs, e->nattrs);
    hs_buf_putc(b, '}');
  }
  if (sp->nevents)
    hs_buf_putc(b, ']');
  *elen = b->len;
  for (uint32_t i = 0; i < sp->nlinks; i++) {
    const hs_ing_link *l = &sp->links[i];
    hs_buf_puts(b, i ? ",{\"trace_id\":" : "[{\"trace_id\":");
    json_hex_id(b, l->trace_id_high, l->trace_id_low, 1);
    hs_buf_puts(b, ",\"span_id\":");
    json_hex_id(b, 0, l->span_id, 0);
    hs_buf_puts(b, ",\"tracestate\":");
    hs_json_str(b, l->tracestate ? l->tracestate : "");
    hs_buf_puts(b, ",\"flags\":");
    hs_json_u64(b, l->flags);
    hs_buf_puts(b, ",\"attrs\":");
    kv_json(b, l->attrs, l->nattrs);
    hs_buf_putc(b, '}');
  }
  if (sp->nlinks)
    hs_buf_putc(b, ']');
}

/* Id of a span's resource attribute set in `resources` (*id 0 when it has
 * none). Spans decoded from one OTLP ResourceSpans share their attribute
 * array, so the last one is remembered and not encoded again. */
typedef struct resource_memo {
  const hs_ing_kv *attrs;
  uint32_t n;
  int64_t id;
} resource_memo;

static int resource_id(sq_store *s, const hs_ing_span *sp, resource_memo *m,
                       int64_t *id) {
  *id = 0;
  if (!sp->nresource_attrs)
    return 0;
  if (m->attrs == sp->resource_attrs && m->n == sp->nresource_attrs) {
    *id = m->id;
    return 0;
  }
  hs_buf_reset(&s->blob);
  kv_json(&s->blob, sp->resource_attrs, sp->nresource_attrs);
  hs_buf_putc(&s->blob, '\0');
  if (hs_buf_failed(&s->blob))
    return -1;
  if (dict_id(&s->resources, s->st[ST_RESOURCE_INS], s->st[ST_RESOURCE_SEL],
              s->blob.data, id) < 0)
    return -1;
  m->attrs = sp->resource_attrs;
  m->n = sp->nresource_attrs;
  m->id = *id;
  return 0;
}

static void bind_json_or_null(sqlite3_stmt *st, int i, const char *p,
                              size_t n) {
  if (n)
    sqlite3_bind_text(st, i, p, (int)n, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* Per-batch summary of one trace id's newly stored spans. */
typedef struct trace_agg {
  uint64_t hi, lo;
  int64_t count;
  int error;
  size_t root; /* index of the span standing for the root */
  int root_known;
} trace_agg;

static int better_root(const hs_ing_span *cand, int cand_true,
                       const hs_ing_span *cur, int cur_true) {
  if (cand_true != cur_true)
    return cand_true;
  return cand->start_ns < cur->start_ns;
}

/* Binds sp's row to the span insert and runs it. Returns HS_STORE_OK (the
 * span may have been there already: see sqlite3_changes), else
 * HS_STORE_ERR with the message set. */
static int insert_span(sq_store *s, const hs_ing_span *sp, resource_memo *memo,
                       char *err, size_t errlen) {
  sqlite3_stmt *ins = s->st[ST_SPAN_INS];
  int64_t sid;
  if (service_id(s, sp->service, &sid) < 0)
    return hs_sq_dberr(s, err, errlen, "storing a service");
  attrs_json(&s->scratch, sp);
  if (hs_buf_failed(&s->scratch)) {
    hs_sq_seterr(err, errlen, "span attributes too large");
    return HS_STORE_ERR;
  }
  sqlite3_bind_int64(ins, 1, (int64_t)sp->trace_id_high);
  sqlite3_bind_int64(ins, 2, (int64_t)sp->trace_id_low);
  sqlite3_bind_int64(ins, 3, (int64_t)sp->span_id);
  sqlite3_bind_int64(ins, 4, (int64_t)sp->parent_id);
  sqlite3_bind_int64(ins, 5, sid);
  bind_text(ins, 6, sp->name);
  bind_text(ins, 7, sp->resource);
  bind_text(ins, 8, sp->type);
  sqlite3_bind_int(ins, 9, sp->kind);
  sqlite3_bind_int64(ins, 10, sp->start_ns);
  sqlite3_bind_int64(ins, 11, sp->duration_ns);
  sqlite3_bind_int(ins, 12, sp->error ? 1 : 0);
  sqlite3_bind_text(ins, 13, s->scratch.data, (int)s->scratch.len,
                    SQLITE_STATIC);
  int64_t rid = 0;
  if (s->version >= 5 && resource_id(s, sp, memo, &rid) < 0)
    return hs_sq_dberr(s, err, errlen, "storing a span's resource");
  if (s->version >= 5) {
    if (rid)
      sqlite3_bind_int64(ins, 18, rid);
    else
      sqlite3_bind_null(ins, 18);
  }
  if (s->version >= 4) {
    size_t elen = 0;
    events_links_json(&s->blob, sp, &elen);
    if (hs_buf_failed(&s->blob)) {
      hs_sq_seterr(err, errlen, "span events and links too large");
      return HS_STORE_ERR;
    }
    bind_json_or_null(ins, 14, s->blob.data, elen);
    bind_json_or_null(ins, 15, s->blob.len > elen ? s->blob.data + elen : "",
                      s->blob.len - elen);
    sqlite3_bind_int64(ins, 16, sp->dropped_events);
    sqlite3_bind_int64(ins, 17, sp->dropped_links);
  }
  if (hs_sq_step_done(ins) < 0)
    return hs_sq_dberr(s, err, errlen, "storing a span");
  return HS_STORE_OK;
}

/* Counts the newly stored span b->spans[i] into its trace's summary,
 * adding one to aggs (*naggs of them, byid maps trace ids to them) for a
 * trace id new in this batch. Returns 0, or -1 out of memory. */
static int agg_span(const hs_ing_batch *b, size_t i, hs_kvmap *byid,
                    trace_agg *aggs, size_t *naggs) {
  const hs_ing_span *sp = &b->spans[i];
  uint64_t key[2] = {sp->trace_id_high, sp->trace_id_low};
  int added;
  hs_kv_slot *slot =
      hs_kvmap_put(byid, key, sizeof key, (int64_t)*naggs, &added);
  if (!slot)
    return -1;
  int is_root = sp->parent_id == 0;
  if (added) {
    trace_agg *a = &aggs[(*naggs)++];
    a->hi = sp->trace_id_high;
    a->lo = sp->trace_id_low;
    a->root = i;
    a->root_known = is_root;
  }
  trace_agg *a = &aggs[slot->val];
  a->count++;
  a->error |= sp->error ? 1 : 0;
  if (!added && better_root(sp, is_root, &b->spans[a->root], a->root_known)) {
    a->root = i;
    a->root_known = is_root;
  }
  return 0;
}

/* Upserts the trace row of one batch summary a (its root among b's
 * spans). HS_STORE_OK, else HS_STORE_ERR with the message set. */
static int upsert_trace(sq_store *s, const hs_ing_batch *b, const trace_agg *a,
                        char *err, size_t errlen) {
  sqlite3_stmt *up = s->st[ST_TRACE_UPSERT];
  const hs_ing_span *r = &b->spans[a->root];
  int64_t eid;
  if (endpoint_id(s, r->service, r->resource ? r->resource : r->name, &eid) < 0)
    return hs_sq_dberr(s, err, errlen, "storing an endpoint");
  sqlite3_bind_int64(up, 1, (int64_t)a->hi);
  sqlite3_bind_int64(up, 2, (int64_t)a->lo);
  sqlite3_bind_int64(up, 3, (int64_t)r->span_id);
  sqlite3_bind_int(up, 4, a->root_known);
  sqlite3_bind_int64(up, 5, eid);
  sqlite3_bind_int64(up, 6, r->start_ns);
  sqlite3_bind_int64(up, 7, r->duration_ns);
  sqlite3_bind_int(up, 8, a->error);
  sqlite3_bind_int64(up, 9, a->count);
  if (s->version >= 3) {
    const char *ver = span_version(r);
    int64_t vid = 0;
    if (ver && version_id(s, r->service, ver, &vid) < 0)
      return hs_sq_dberr(s, err, errlen, "storing a version");
    if (ver)
      sqlite3_bind_int64(up, 10, vid);
    else
      sqlite3_bind_null(up, 10);
  }
  if (hs_sq_step_done(up) < 0)
    return hs_sq_dberr(s, err, errlen, "storing a trace");
  return HS_STORE_OK;
}

/* Stores b's spans, then upserts each trace they belong to once, from a
 * summary of the spans that were new (a resent span counts once). */
static int ingest_spans(sq_store *s, const hs_ing_batch *b, char *err,
                        size_t errlen) {
  if (!b->nspans)
    return 0;
  trace_agg *aggs = calloc(b->nspans, sizeof *aggs);
  hs_kvmap byid;
  hs_kvmap_init(&byid);
  size_t naggs = 0;
  int rc = HS_STORE_ERR;
  if (!aggs) {
    hs_sq_seterr(err, errlen, "out of memory");
    goto out;
  }
  resource_memo memo = {NULL, 0, 0};
  for (size_t i = 0; i < b->nspans; i++) {
    if (insert_span(s, &b->spans[i], &memo, err, errlen) != HS_STORE_OK)
      goto out;
    if (sqlite3_changes(s->db) == 0)
      continue; /* already stored: a resent span */
    if (agg_span(b, i, &byid, aggs, &naggs) < 0) {
      hs_sq_seterr(err, errlen, "out of memory");
      goto out;
    }
  }
  for (size_t i = 0; i < naggs; i++)
    if (upsert_trace(s, b, &aggs[i], err, errlen) != HS_STORE_OK)
      goto out;
  rc = HS_STORE_OK;
out:
  hs_kvmap_free(&byid);
  free(aggs);
  return rc;
}

static int ingest_samples(sq_store *s, const hs_ing_batch *b, char *err,
                          size_t errlen) {
  sqlite3_stmt *ins = s->st[ST_SAMPLE_INS];
  /* One version for the whole batch: the profile's. */
  int64_t vid = 0;
  int has_version =
      s->version >= 3 && b->nsamples && b->version && b->version[0];
  if (has_version && version_id(s, b->service, b->version, &vid) < 0)
    return hs_sq_dberr(s, err, errlen, "storing a version");
  for (size_t i = 0; i < b->nsamples; i++) {
    const hs_ing_sample *smp = &b->samples[i];
    if (smp->type != HS_PT_CPU && smp->type != HS_PT_WALL) {
      hs_sq_seterr(err, errlen, "sample %zu: unknown profile type %u", i,
                   (unsigned)smp->type);
      return HS_STORE_ERR;
    }
    if (smp->nframes && !smp->frames) {
      hs_sq_seterr(err, errlen, "sample %zu: frames missing", i);
      return HS_STORE_ERR;
    }
    int64_t stk, eid = 0, tid = 0;
    if (stack_id(s, smp, &stk) < 0)
      return hs_sq_dberr(s, err, errlen, "storing a stack");
    if (smp->endpoint && endpoint_id(s, b->service, smp->endpoint, &eid) < 0)
      return hs_sq_dberr(s, err, errlen, "storing an endpoint");
    if (smp->thread_name && thread_name_id(s, smp->thread_name, &tid) < 0)
      return hs_sq_dberr(s, err, errlen, "storing a thread name");
    sqlite3_bind_int64(ins, 1, smp->time_ns);
    sqlite3_bind_int(ins, 2, smp->type);
    sqlite3_bind_int64(ins, 3, smp->value);
    sqlite3_bind_int64(ins, 4, (int64_t)smp->span_id);
    sqlite3_bind_int64(ins, 5, (int64_t)smp->local_root_span_id);
    if (smp->endpoint)
      sqlite3_bind_int64(ins, 6, eid);
    else
      sqlite3_bind_null(ins, 6);
    sqlite3_bind_int64(ins, 7, (int64_t)smp->trace_id_high);
    sqlite3_bind_int64(ins, 8, (int64_t)smp->trace_id_low);
    sqlite3_bind_int64(ins, 9, (int64_t)smp->thread_id);
    if (smp->thread_name)
      sqlite3_bind_int64(ins, 10, tid);
    else
      sqlite3_bind_null(ins, 10);
    sqlite3_bind_int64(ins, 11, stk);
    if (has_version)
      sqlite3_bind_int64(ins, 12, vid);
    else if (s->version >= 3)
      sqlite3_bind_null(ins, 12);
    if (hs_sq_step_done(ins) < 0)
      return hs_sq_dberr(s, err, errlen, "storing a sample");
  }
  return HS_STORE_OK;
}

static void bound_caches(sq_store *s) {
  hs_kvmap *maps[] = {&s->services, &s->endpoints, &s->frames,   &s->stacks,
                      &s->threads,  &s->versions,  &s->resources};
  for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
    if (maps[i]->n > CACHE_MAX_ENTRIES)
      hs_kvmap_free(maps[i]);
}

int hs_sq_ingest(hs_store *base, const hs_ing_batch *b, char *err,
                 size_t errlen) {
  sq_store *s = (sq_store *)base;
  if (!b || (b->nspans && !b->spans) || (b->nsamples && !b->samples)) {
    hs_sq_seterr(err, errlen, "invalid batch");
    return HS_STORE_ERR;
  }
  if (s->version < 1 || !s->st[0]) {
    hs_sq_seterr(err, errlen, "%s: store opened read-only", s->path);
    return HS_STORE_ERR;
  }
  bound_caches(s);
  if (hs_sq_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
    return HS_STORE_ERR;
  int rc = ingest_spans(s, b, err, errlen);
  if (rc == HS_STORE_OK)
    rc = ingest_samples(s, b, err, errlen);
  if (rc == HS_STORE_OK && hs_sq_exec(s, "COMMIT", err, errlen) < 0)
    rc = HS_STORE_ERR;
  if (rc != HS_STORE_OK) {
    /* The error message is already set: keep it. */
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    hs_sq_clear_caches(s);
  }
  return rc;
}
