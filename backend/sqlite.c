/* The SQLite implementation of the store (see store.h and docs/store.md).
 *
 * One connection, used by one thread. Ingest runs one IMMEDIATE transaction
 * per batch with statements prepared once at open. Frames, stacks,
 * services, endpoints and thread names are deduplicated through in-memory
 * caches in front of INSERT OR IGNORE; the caches are cleared whenever a
 * transaction rolls back (their newest ids may not exist any more) and
 * when they pass a size bound. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/kvmap.h"
#include "backend/store.h"

/* Entries per cache before it is emptied: bounds the agent's memory when
 * frames keep changing (JIT code, many binaries). */
#define CACHE_MAX_ENTRIES 1000000

/* Schema migrations, applied in order; migration i brings the database
 * from version i to i + 1. Never edit a released migration: add one. */
static const char *const migrations[HS_STORE_SQLITE_SCHEMA_VERSION] = {
    /* 1: the tables. */
    "CREATE TABLE services(id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE endpoints(id INTEGER PRIMARY KEY,"
    " service_id INTEGER NOT NULL, name TEXT NOT NULL,"
    " UNIQUE(service_id, name));"
    "CREATE TABLE traces(id INTEGER PRIMARY KEY,"
    " trace_hi INTEGER NOT NULL, trace_lo INTEGER NOT NULL,"
    " root_span_id INTEGER NOT NULL, root_known INTEGER NOT NULL,"
    " endpoint_id INTEGER NOT NULL, start_ns INTEGER NOT NULL,"
    " duration_ns INTEGER NOT NULL, error INTEGER NOT NULL,"
    " span_count INTEGER NOT NULL, UNIQUE(trace_lo, trace_hi));"
    "CREATE TABLE spans(trace_hi INTEGER NOT NULL, trace_lo INTEGER NOT NULL,"
    " span_id INTEGER NOT NULL, parent_id INTEGER NOT NULL,"
    " service_id INTEGER NOT NULL, name TEXT NOT NULL,"
    " resource TEXT NOT NULL, type TEXT NOT NULL, kind INTEGER NOT NULL,"
    " start_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL,"
    " error INTEGER NOT NULL, attrs TEXT NOT NULL,"
    " UNIQUE(trace_lo, trace_hi, span_id));"
    "CREATE TABLE frames(id INTEGER PRIMARY KEY, function TEXT NOT NULL,"
    " file TEXT NOT NULL, line INTEGER NOT NULL, mapping TEXT NOT NULL,"
    " UNIQUE(function, file, line, mapping));"
    "CREATE TABLE stacks(id INTEGER PRIMARY KEY,"
    " hash INTEGER NOT NULL UNIQUE, frames BLOB NOT NULL);"
    "CREATE TABLE thread_names(id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE samples(time_ns INTEGER NOT NULL, type INTEGER NOT NULL,"
    " value INTEGER NOT NULL, span_id INTEGER NOT NULL,"
    " local_root_span_id INTEGER NOT NULL, endpoint_id INTEGER,"
    " trace_hi INTEGER NOT NULL, trace_lo INTEGER NOT NULL,"
    " thread_id INTEGER NOT NULL, thread_name_id INTEGER,"
    " stack_id INTEGER NOT NULL);",
    /* 2: indexes for the correlation queries and retention. The endpoint
     * index covers the profile query (no table lookups). */
    "CREATE INDEX spans_span_id ON spans(span_id);"
    "CREATE INDEX traces_start ON traces(start_ns);"
    "CREATE INDEX traces_endpoint ON traces(endpoint_id, start_ns);"
    "CREATE INDEX samples_span ON samples(span_id);"
    "CREATE INDEX samples_endpoint ON samples(endpoint_id, time_ns, type,"
    " stack_id, value);"
    "CREATE INDEX samples_time ON samples(time_ns);",
    /* 3: versions. A version belongs to a service (the profile's for
     * samples, the root span's for traces); rows stored before this
     * migration keep a NULL version_id (unknown). The indexes cover the
     * version-selected profile query and the request count. */
    "CREATE TABLE versions(id INTEGER PRIMARY KEY,"
    " service_id INTEGER NOT NULL, name TEXT NOT NULL,"
    " UNIQUE(service_id, name));"
    "ALTER TABLE samples ADD COLUMN version_id INTEGER;"
    "ALTER TABLE traces ADD COLUMN version_id INTEGER;"
    "CREATE INDEX samples_version ON samples(version_id, endpoint_id,"
    " time_ns, type, stack_id, value);"
    "CREATE INDEX traces_version ON traces(version_id, endpoint_id,"
    " start_ns);",
    /* 4: span events and links, as JSON arrays (NULL when the span has
     * none), and the counts the sender dropped. */
    "ALTER TABLE spans ADD COLUMN events TEXT;"
    "ALTER TABLE spans ADD COLUMN links TEXT;"
    "ALTER TABLE spans ADD COLUMN dropped_events INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE spans ADD COLUMN dropped_links INTEGER NOT NULL DEFAULT 0;",
    /* 5: the sender's resource (OTLP Resource attributes: environment,
     * host, process, SDK), one row per distinct attribute set. */
    "CREATE TABLE resources(id INTEGER PRIMARY KEY,"
    " attrs TEXT NOT NULL UNIQUE);"
    "ALTER TABLE spans ADD COLUMN resource_id INTEGER;",
};

/* Whether the upserted trace row takes the incoming root (see below). */
#define HS_TAKE                                                                \
  "(excluded.root_known > root_known OR (excluded.root_known = root_known"     \
  " AND root_known = 0 AND excluded.start_ns < start_ns))"

/* The trace upsert. The stored root is replaced by a true root (parent
 * 0), or while no true root is known by an earlier span. SET expressions
 * see the old row, so every CASE tests the same condition. COLS, VALS and
 * SET add columns (the version since schema 3). */
#define TRACE_UPSERT(COLS, VALS, SET)                                          \
  "INSERT INTO traces(trace_hi, trace_lo, root_span_id, root_known,"           \
  " endpoint_id, start_ns, duration_ns, error, span_count" COLS ")"            \
  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9" VALS ")"                                \
  " ON CONFLICT(trace_lo, trace_hi) DO UPDATE SET"                             \
  " span_count = span_count + excluded.span_count,"                            \
  " error = max(error, excluded.error),"                                       \
  " root_span_id = CASE WHEN " HS_TAKE                                         \
  " THEN excluded.root_span_id ELSE root_span_id END,"                         \
  " endpoint_id = CASE WHEN " HS_TAKE                                          \
  " THEN excluded.endpoint_id ELSE endpoint_id END,"                           \
  " start_ns = CASE WHEN " HS_TAKE                                             \
  " THEN excluded.start_ns ELSE start_ns END,"                                 \
  " duration_ns = CASE WHEN " HS_TAKE                                          \
  " THEN excluded.duration_ns ELSE duration_ns END,"                           \
  " root_known = max(root_known, excluded.root_known)" SET

#define SPAN_INS(COLS, VALS)                                                   \
  "INSERT OR IGNORE INTO spans(trace_hi, trace_lo, span_id, parent_id,"        \
  " service_id, name, resource, type, kind, start_ns, duration_ns, error,"     \
  " attrs" COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?" VALS ")"

#define SPAN_V4_COLS "events, links, dropped_events, dropped_links"

#define SAMPLE_INS(COLS, VALS)                                                 \
  "INSERT INTO samples(time_ns, type, value, span_id,"                         \
  " local_root_span_id, endpoint_id, trace_hi, trace_lo, thread_id,"           \
  " thread_name_id, stack_id" COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,"      \
  "?10,?11" VALS ")"

enum {
  ST_SERVICE_INS,
  ST_SERVICE_SEL,
  ST_ENDPOINT_INS,
  ST_ENDPOINT_SEL,
  ST_SPAN_INS,
  ST_TRACE_UPSERT,
  ST_FRAME_INS,
  ST_FRAME_SEL,
  ST_STACK_INS,
  ST_STACK_SEL,
  ST_THREAD_INS,
  ST_THREAD_SEL,
  ST_SAMPLE_INS,
  ST_STACK_GET,
  ST_FRAME_GET,
  ST_VERSION_INS,
  ST_VERSION_SEL,
  ST_RESOURCE_INS,
  ST_RESOURCE_SEL,
  ST_COUNT
};

/* The first schema version each statement works with (0: all). A store
 * opened at an older version (tests only) uses old_forms where given and
 * leaves the others unprepared. */
static const int stmt_min_version[ST_COUNT] = {
    [ST_VERSION_INS] = 3,
    [ST_VERSION_SEL] = 3,
    [ST_RESOURCE_INS] = 5,
    [ST_RESOURCE_SEL] = 5,
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_SERVICE_INS] = "INSERT OR IGNORE INTO services(name) VALUES(?)",
    [ST_SERVICE_SEL] = "SELECT id FROM services WHERE name=?",
    [ST_ENDPOINT_INS] =
        "INSERT OR IGNORE INTO endpoints(service_id, name) VALUES(?,?)",
    [ST_ENDPOINT_SEL] =
        "SELECT id FROM endpoints WHERE service_id=? AND name=?",
    [ST_SPAN_INS] = SPAN_INS(", " SPAN_V4_COLS ", resource_id", ",?,?,?,?,?"),
    [ST_TRACE_UPSERT] =
        TRACE_UPSERT(", version_id", ",?10",
                     ", version_id = CASE WHEN " HS_TAKE
                     " THEN excluded.version_id ELSE version_id END"),
    [ST_FRAME_INS] = "INSERT OR IGNORE INTO frames(function, file, line,"
                     " mapping) VALUES(?,?,?,?)",
    [ST_FRAME_SEL] = "SELECT id FROM frames WHERE function=? AND file=? AND"
                     " line=? AND mapping=?",
    [ST_STACK_INS] = "INSERT OR IGNORE INTO stacks(hash, frames) VALUES(?,?)",
    [ST_STACK_SEL] = "SELECT id, frames FROM stacks WHERE hash=?",
    [ST_THREAD_INS] = "INSERT OR IGNORE INTO thread_names(name) VALUES(?)",
    [ST_THREAD_SEL] = "SELECT id FROM thread_names WHERE name=?",
    [ST_SAMPLE_INS] = SAMPLE_INS(", version_id", ",?12"),
    [ST_STACK_GET] = "SELECT frames FROM stacks WHERE id=?",
    [ST_FRAME_GET] =
        "SELECT function, file, line, mapping FROM frames WHERE id=?",
    [ST_VERSION_INS] =
        "INSERT OR IGNORE INTO versions(service_id, name) VALUES(?,?)",
    [ST_VERSION_SEL] = "SELECT id FROM versions WHERE service_id=? AND name=?",
    [ST_RESOURCE_INS] = "INSERT OR IGNORE INTO resources(attrs) VALUES(?)",
    [ST_RESOURCE_SEL] = "SELECT id FROM resources WHERE attrs=?",
};

/* Statement forms for stores at older schema versions (tests open them):
 * for a store below version `below`, the first entry of its statement
 * that applies replaces stmt_sql. Entries of one statement go by rising
 * `below`. */
static const struct {
  int below, st;
  const char *sql;
} old_forms[] = {
    /* no version columns */
    {3, ST_TRACE_UPSERT, TRACE_UPSERT("", "", "")},
    {3, ST_SAMPLE_INS, SAMPLE_INS("", "")},
    /* no span events and links, then no resources */
    {4, ST_SPAN_INS, SPAN_INS("", "")},
    {5, ST_SPAN_INS, SPAN_INS(", " SPAN_V4_COLS, ",?,?,?,?")},
};

typedef struct sq_store {
  hs_store base;
  sqlite3 *db;
  char *path;
  int version;
  sqlite3_stmt *st[ST_COUNT];
  hs_kvmap services, endpoints, frames, stacks, threads, versions, resources;
  hs_buf scratch; /* attrs JSON, cache keys */
  hs_buf blob;    /* a stack's frame ids; a span's events and links JSON */
} sq_store;

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int dberr(sq_store *s, char *err, size_t errlen, const char *what) {
  seterr(err, errlen, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
  return HS_STORE_ERR;
}

static int exec(sq_store *s, const char *sql, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    seterr(err, errlen, "%s: %s", s->path, msg ? msg : "error");
    sqlite3_free(msg);
    return HS_STORE_ERR;
  }
  return HS_STORE_OK;
}

static void clear_caches(sq_store *s) {
  hs_kvmap_free(&s->services);
  hs_kvmap_free(&s->endpoints);
  hs_kvmap_free(&s->frames);
  hs_kvmap_free(&s->stacks);
  hs_kvmap_free(&s->threads);
  hs_kvmap_free(&s->versions);
  hs_kvmap_free(&s->resources);
}

static void sq_close(hs_store *base) {
  sq_store *s = (sq_store *)base;
  for (int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(s->st[i]);
  if (s->db)
    sqlite3_close_v2(s->db);
  clear_caches(s);
  hs_buf_free(&s->scratch);
  hs_buf_free(&s->blob);
  free(s->path);
  free(s);
}

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

static int step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* ------------------------------------------------------------ ingest */

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
  if (step_done(ins) < 0 || step_id(sel, id) != 1)
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
  if (step_done(ins) < 0 || step_id(sel, id) != 1)
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
  if (step_done(ins) < 0 || step_id(sel, id) != 1)
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
  if (step_done(ins) < 0 || step_id(sel, id) != 1)
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
  for (uint32_t i = 0; i < smp->nframes; i++) {
    int64_t fid;
    if (frame_id(s, &smp->frames[i], &fid) < 0)
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
  uint64_t h = hs_kv_hash(blob->data, blob->len);
  sqlite3_stmt *ins = s->st[ST_STACK_INS], *sel = s->st[ST_STACK_SEL];
  for (int probe = 0; probe < 16; probe++, h++) {
    sqlite3_bind_int64(ins, 1, (int64_t)h);
    sqlite3_bind_blob(ins, 2, blob->data, (int)blob->len, SQLITE_STATIC);
    if (step_done(ins) < 0)
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
    seterr(err, errlen, "out of memory");
    goto out;
  }
  sqlite3_stmt *ins = s->st[ST_SPAN_INS];
  resource_memo memo = {NULL, 0, 0};
  for (size_t i = 0; i < b->nspans; i++) {
    const hs_ing_span *sp = &b->spans[i];
    int64_t sid;
    if (service_id(s, sp->service, &sid) < 0) {
      dberr(s, err, errlen, "storing a service");
      goto out;
    }
    attrs_json(&s->scratch, sp);
    if (hs_buf_failed(&s->scratch)) {
      seterr(err, errlen, "span attributes too large");
      goto out;
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
    if (s->version >= 5 && resource_id(s, sp, &memo, &rid) < 0) {
      dberr(s, err, errlen, "storing a span's resource");
      goto out;
    }
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
        seterr(err, errlen, "span events and links too large");
        goto out;
      }
      bind_json_or_null(ins, 14, s->blob.data, elen);
      bind_json_or_null(ins, 15, s->blob.len > elen ? s->blob.data + elen : "",
                        s->blob.len - elen);
      sqlite3_bind_int64(ins, 16, sp->dropped_events);
      sqlite3_bind_int64(ins, 17, sp->dropped_links);
    }
    if (step_done(ins) < 0) {
      dberr(s, err, errlen, "storing a span");
      goto out;
    }
    if (sqlite3_changes(s->db) == 0)
      continue; /* already stored: a resent span */
    uint64_t key[2] = {sp->trace_id_high, sp->trace_id_low};
    int added;
    hs_kv_slot *slot =
        hs_kvmap_put(&byid, key, sizeof key, (int64_t)naggs, &added);
    if (!slot) {
      seterr(err, errlen, "out of memory");
      goto out;
    }
    int is_root = sp->parent_id == 0;
    if (added) {
      trace_agg *a = &aggs[naggs++];
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
  }
  sqlite3_stmt *up = s->st[ST_TRACE_UPSERT];
  for (size_t i = 0; i < naggs; i++) {
    const trace_agg *a = &aggs[i];
    const hs_ing_span *r = &b->spans[a->root];
    int64_t eid;
    if (endpoint_id(s, r->service, r->resource ? r->resource : r->name, &eid) <
        0) {
      dberr(s, err, errlen, "storing an endpoint");
      goto out;
    }
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
      if (ver && version_id(s, r->service, ver, &vid) < 0) {
        dberr(s, err, errlen, "storing a version");
        goto out;
      }
      if (ver)
        sqlite3_bind_int64(up, 10, vid);
      else
        sqlite3_bind_null(up, 10);
    }
    if (step_done(up) < 0) {
      dberr(s, err, errlen, "storing a trace");
      goto out;
    }
  }
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
    return dberr(s, err, errlen, "storing a version");
  for (size_t i = 0; i < b->nsamples; i++) {
    const hs_ing_sample *smp = &b->samples[i];
    if (smp->type != HS_PT_CPU && smp->type != HS_PT_WALL) {
      seterr(err, errlen, "sample %zu: unknown profile type %u", i,
             (unsigned)smp->type);
      return HS_STORE_ERR;
    }
    if (smp->nframes && !smp->frames) {
      seterr(err, errlen, "sample %zu: frames missing", i);
      return HS_STORE_ERR;
    }
    int64_t stk, eid = 0, tid = 0;
    if (stack_id(s, smp, &stk) < 0)
      return dberr(s, err, errlen, "storing a stack");
    if (smp->endpoint && endpoint_id(s, b->service, smp->endpoint, &eid) < 0)
      return dberr(s, err, errlen, "storing an endpoint");
    if (smp->thread_name && thread_name_id(s, smp->thread_name, &tid) < 0)
      return dberr(s, err, errlen, "storing a thread name");
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
    if (step_done(ins) < 0)
      return dberr(s, err, errlen, "storing a sample");
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

static int sq_ingest(hs_store *base, const hs_ing_batch *b, char *err,
                     size_t errlen) {
  sq_store *s = (sq_store *)base;
  if (!b || (b->nspans && !b->spans) || (b->nsamples && !b->samples)) {
    seterr(err, errlen, "invalid batch");
    return HS_STORE_ERR;
  }
  if (s->version < 1 || !s->st[0]) {
    seterr(err, errlen, "%s: store opened read-only", s->path);
    return HS_STORE_ERR;
  }
  bound_caches(s);
  if (exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
    return HS_STORE_ERR;
  int rc = ingest_spans(s, b, err, errlen);
  if (rc == HS_STORE_OK)
    rc = ingest_samples(s, b, err, errlen);
  if (rc == HS_STORE_OK && exec(s, "COMMIT", err, errlen) < 0)
    rc = HS_STORE_ERR;
  if (rc != HS_STORE_OK) {
    /* The error message is already set: keep it. */
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    clear_caches(s);
  }
  return rc;
}

/* ------------------------------------------------------------ retention */

static int64_t db_int(sq_store *s, const char *sql) {
  sqlite3_stmt *st;
  int64_t v = -1;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

int64_t hs_store_sqlite_size(hs_store *base) {
  if (!base || base->vt->close != sq_close)
    return -1;
  sq_store *s = (sq_store *)base;
  int64_t pc = db_int(s, "PRAGMA page_count");
  int64_t ps = db_int(s, "PRAGMA page_size");
  return pc < 0 || ps < 0 ? -1 : pc * ps;
}

/* Deletes up to limit traces that started before cutoff, oldest first, with
 * their spans. Returns the number of traces deleted, -1 on error. */
static int64_t delete_traces(sq_store *s, int64_t cutoff, int64_t limit,
                             int64_t *spans) {
  sqlite3_stmt *sel = NULL, *dsp = NULL, *dtr = NULL;
  int64_t n = -1;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT id, trace_lo, trace_hi FROM traces WHERE"
                         " start_ns < ? ORDER BY start_ns LIMIT ?",
                         -1, &sel, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db,
                         "DELETE FROM spans WHERE trace_lo=? AND trace_hi=?",
                         -1, &dsp, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db, "DELETE FROM traces WHERE id=?", -1, &dtr,
                         NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_int64(sel, 1, cutoff);
  sqlite3_bind_int64(sel, 2, limit);
  int rc;
  n = 0;
  while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
    sqlite3_bind_int64(dsp, 1, sqlite3_column_int64(sel, 1));
    sqlite3_bind_int64(dsp, 2, sqlite3_column_int64(sel, 2));
    sqlite3_bind_int64(dtr, 1, sqlite3_column_int64(sel, 0));
    if (step_done(dsp) < 0) {
      n = -1;
      goto out;
    }
    *spans += sqlite3_changes(s->db);
    if (step_done(dtr) < 0) {
      n = -1;
      goto out;
    }
    n++;
  }
  if (rc != SQLITE_DONE)
    n = -1;
out:
  sqlite3_finalize(sel);
  sqlite3_finalize(dsp);
  sqlite3_finalize(dtr);
  return n;
}

static int64_t delete_samples(sq_store *s, int64_t cutoff, int64_t limit) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         "DELETE FROM samples WHERE rowid IN (SELECT rowid"
                         " FROM samples WHERE time_ns < ? ORDER BY time_ns"
                         " LIMIT ?)",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_int64(st, 1, cutoff);
  sqlite3_bind_int64(st, 2, limit);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
}

static int sq_retain(hs_store *base, const hs_store_retention *r,
                     hs_store_retain_stats *out, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  hs_store_retain_stats st;
  memset(&st, 0, sizeof st);
  if (!r) {
    seterr(err, errlen, "no retention policy");
    return HS_STORE_ERR;
  }
  int64_t step = r->step_rows > 0 ? r->step_rows : 5000;
  st.bytes_before = hs_store_sqlite_size(base);
  if (exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
    return HS_STORE_ERR;
  int age_full = 0;
  int64_t size_deleted = 0;
  if (r->max_age_ns > 0) {
    int64_t cutoff = r->now_ns - r->max_age_ns;
    int64_t t = delete_traces(s, cutoff, step, &st.spans_deleted);
    int64_t m = t < 0 ? -1 : delete_samples(s, cutoff, step);
    if (t < 0 || m < 0)
      goto fail;
    st.traces_deleted += t;
    st.samples_deleted += m;
    age_full = t == step || m == step;
  }
  if (r->max_bytes > 0) {
    /* Pages on the free list are reused before the file grows, so what
     * counts against the limit is the pages in use. */
    int64_t used =
        (db_int(s, "PRAGMA page_count") - db_int(s, "PRAGMA freelist_count")) *
        db_int(s, "PRAGMA page_size");
    if (used > r->max_bytes) {
      int64_t t = delete_traces(s, INT64_MAX, step, &st.spans_deleted);
      int64_t m = t < 0 ? -1 : delete_samples(s, INT64_MAX, step);
      if (t < 0 || m < 0)
        goto fail;
      st.traces_deleted += t;
      st.samples_deleted += m;
      size_deleted = t + m;
    }
  }
  if (exec(s, "COMMIT", err, errlen) < 0)
    goto fail_msg;
  /* Give the freed pages back (auto_vacuum = INCREMENTAL). */
  if (st.traces_deleted + st.samples_deleted > 0 &&
      exec(s, "PRAGMA incremental_vacuum", err, errlen) < 0)
    return HS_STORE_ERR;
  st.bytes_after = hs_store_sqlite_size(base);
  /* When nothing was left to delete, more steps would not help (frames and
   * stacks are kept; see docs/store.md). */
  st.more = age_full || (size_deleted > 0 && st.bytes_after > r->max_bytes);
  if (out)
    *out = st;
  return HS_STORE_OK;
fail:
  dberr(s, err, errlen, "retention");
fail_msg:
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return HS_STORE_ERR;
}

/* ------------------------------------------------------------ queries */

static const char *col_text(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? (const char *)t : "";
}

#define TRACE_COLS                                                             \
  "SELECT t.trace_hi, t.trace_lo, t.root_span_id, t.root_known, s.name,"       \
  " e.name, t.start_ns, t.duration_ns, t.error, t.span_count FROM traces t"    \
  " JOIN endpoints e ON e.id = t.endpoint_id JOIN services s ON"               \
  " s.id = e.service_id"

static void read_trace(sqlite3_stmt *st, hs_store_trace *t) {
  t->trace_id_high = (uint64_t)sqlite3_column_int64(st, 0);
  t->trace_id_low = (uint64_t)sqlite3_column_int64(st, 1);
  t->root_span_id = (uint64_t)sqlite3_column_int64(st, 2);
  t->root_known = sqlite3_column_int(st, 3);
  t->service = col_text(st, 4);
  t->endpoint = col_text(st, 5);
  t->start_ns = sqlite3_column_int64(st, 6);
  t->duration_ns = sqlite3_column_int64(st, 7);
  t->error = sqlite3_column_int(st, 8);
  t->span_count = sqlite3_column_int64(st, 9);
}

/* Steps st, calling cb per row through rd. Returns HS_STORE_OK,
 * HS_STORE_NOTFOUND if no row and notfound is set, the callback's stop
 * value, or HS_STORE_ERR. Finalizes st. */
static int run_trace_rows(sq_store *s, sqlite3_stmt *st, hs_store_trace_cb cb,
                          void *arg, int notfound, char *err, size_t errlen) {
  int rc, rows = 0, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    hs_store_trace t;
    read_trace(st, &t);
    rows++;
    stop = cb(arg, &t);
  }
  int r = stop                ? stop
          : rc != SQLITE_DONE ? dberr(s, err, errlen, "reading traces")
          : !rows && notfound ? HS_STORE_NOTFOUND
                              : HS_STORE_OK;
  sqlite3_finalize(st);
  return r;
}

static int sq_traces(hs_store *base, const hs_store_trace_filter *f,
                     hs_store_trace_cb cb, void *arg, char *err,
                     size_t errlen) {
  sq_store *s = (sq_store *)base;
  hs_store_trace_filter none;
  memset(&none, 0, sizeof none);
  if (!f)
    f = &none;
  char sql[1024];
  snprintf(sql, sizeof sql, TRACE_COLS " WHERE 1%s%s%s%s%s%s%s%s%s",
           f->service ? " AND s.name=?1" : "",
           f->version ? " AND t.version_id=(SELECT v.id FROM versions v"
                        " WHERE v.service_id=s.id AND v.name=?7)"
                      : "",
           f->endpoint ? " AND e.name=?2" : "",
           f->min_duration_ns > 0 ? " AND t.duration_ns>=?3" : "",
           f->errors_only ? " AND t.error!=0" : "",
           f->from_ns ? " AND t.start_ns>=?4" : "",
           f->to_ns ? " AND t.start_ns<?5" : "",
           f->by_duration ? " ORDER BY t.duration_ns DESC" : "",
           f->limit > 0 ? " LIMIT ?6" : "");
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "listing traces");
  if (f->service)
    sqlite3_bind_text(st, 1, f->service, -1, SQLITE_STATIC);
  if (f->endpoint)
    sqlite3_bind_text(st, 2, f->endpoint, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, f->min_duration_ns);
  sqlite3_bind_int64(st, 4, f->from_ns);
  sqlite3_bind_int64(st, 5, f->to_ns);
  sqlite3_bind_int64(st, 6, f->limit);
  if (f->version)
    sqlite3_bind_text(st, 7, f->version, -1, SQLITE_STATIC);
  return run_trace_rows(s, st, cb, arg, 0, err, errlen);
}

static int sq_trace(hs_store *base, uint64_t hi, uint64_t lo,
                    hs_store_trace_cb cb, void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         TRACE_COLS " WHERE t.trace_lo=? AND t.trace_hi=?", -1,
                         &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "reading a trace");
  sqlite3_bind_int64(st, 1, (int64_t)lo);
  sqlite3_bind_int64(st, 2, (int64_t)hi);
  return run_trace_rows(s, st, cb, arg, 1, err, errlen);
}

#define SPAN_COLS                                                              \
  "SELECT p.trace_hi, p.trace_lo, p.span_id, p.parent_id, s.name, p.name,"     \
  " p.resource, p.type, p.kind, p.start_ns, p.duration_ns, p.error,"           \
  " p.attrs, p.events, p.links, p.dropped_events, p.dropped_links, r.attrs"    \
  " FROM spans p LEFT JOIN services s ON s.id = p.service_id"                  \
  " LEFT JOIN resources r ON r.id = p.resource_id"

static int run_span_rows(sq_store *s, sqlite3_stmt *st, hs_store_span_cb cb,
                         void *arg, char *err, size_t errlen) {
  int rc, rows = 0, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    hs_store_span p;
    p.trace_id_high = (uint64_t)sqlite3_column_int64(st, 0);
    p.trace_id_low = (uint64_t)sqlite3_column_int64(st, 1);
    p.span_id = (uint64_t)sqlite3_column_int64(st, 2);
    p.parent_id = (uint64_t)sqlite3_column_int64(st, 3);
    p.service = col_text(st, 4);
    p.name = col_text(st, 5);
    p.resource = col_text(st, 6);
    p.type = col_text(st, 7);
    p.kind = sqlite3_column_int(st, 8);
    p.start_ns = sqlite3_column_int64(st, 9);
    p.duration_ns = sqlite3_column_int64(st, 10);
    p.error = sqlite3_column_int(st, 11);
    p.attrs_json = col_text(st, 12);
    p.events_json = (const char *)sqlite3_column_text(st, 13);
    p.links_json = (const char *)sqlite3_column_text(st, 14);
    p.dropped_events = sqlite3_column_int64(st, 15);
    p.dropped_links = sqlite3_column_int64(st, 16);
    p.resource_json = (const char *)sqlite3_column_text(st, 17);
    rows++;
    stop = cb(arg, &p);
  }
  int r = stop                ? stop
          : rc != SQLITE_DONE ? dberr(s, err, errlen, "reading spans")
          : !rows             ? HS_STORE_NOTFOUND
                              : HS_STORE_OK;
  sqlite3_finalize(st);
  return r;
}

static int sq_trace_spans(hs_store *base, uint64_t hi, uint64_t lo,
                          hs_store_span_cb cb, void *arg, char *err,
                          size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         SPAN_COLS " WHERE p.trace_lo=? AND p.trace_hi=?"
                                   " ORDER BY p.start_ns, p.span_id",
                         -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "reading spans");
  sqlite3_bind_int64(st, 1, (int64_t)lo);
  sqlite3_bind_int64(st, 2, (int64_t)hi);
  return run_span_rows(s, st, cb, arg, err, errlen);
}

static int sq_find_span(hs_store *base, uint64_t span_id, hs_store_span_cb cb,
                        void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, SPAN_COLS " WHERE p.span_id=?", -1, &st,
                         NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "reading a span");
  sqlite3_bind_int64(st, 1, (int64_t)span_id);
  return run_span_rows(s, st, cb, arg, err, errlen);
}

static int run_sample_rows(sq_store *s, sqlite3_stmt *st, hs_store_sample_cb cb,
                           void *arg, char *err, size_t errlen) {
  int rc, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
    stop = cb(arg, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1),
              sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
  if (!stop && rc != SQLITE_DONE)
    stop = dberr(s, err, errlen, "reading samples");
  sqlite3_reset(st);
  return stop;
}

static int sq_samples(hs_store *base, const hs_store_sample_sel *sel,
                      hs_store_sample_cb cb, void *arg, char *err,
                      size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st = NULL, *eps = NULL;
  int rc = HS_STORE_OK;
  if (!sel || (!sel->span_ids && !sel->endpoint)) {
    seterr(err, errlen, "no sample selection");
    return HS_STORE_ERR;
  }
  if (sel->span_ids) {
    if (sqlite3_prepare_v2(s->db,
                           "SELECT type, stack_id, SUM(value), COUNT(*) FROM"
                           " samples WHERE span_id=?1 AND (?2=0 OR type=?2)"
                           " GROUP BY type, stack_id",
                           -1, &st, NULL) != SQLITE_OK)
      return dberr(s, err, errlen, "reading samples");
    sqlite3_bind_int(st, 2, sel->type);
    for (size_t i = 0; rc == HS_STORE_OK && i < sel->nspan_ids; i++) {
      sqlite3_bind_int64(st, 1, (int64_t)sel->span_ids[i]);
      rc = run_sample_rows(s, st, cb, arg, err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
  }
  /* Endpoint ids (with the id of the version of the endpoint's service)
   * first, then one index range per id: keeps the covering (endpoint_id,
   * time_ns, ...) or (version_id, endpoint_id, time_ns, ...) index in
   * use. */
  const char *eps_sql =
      sel->version ? "SELECT e.id, v.id FROM endpoints e JOIN services s ON"
                     " s.id = e.service_id JOIN versions v ON v.service_id ="
                     " e.service_id AND v.name=?3 WHERE e.name=?1 AND (?2 IS"
                     " NULL OR s.name=?2 OR s.name='')"
                   : "SELECT e.id, 0 FROM endpoints e JOIN services s ON"
                     " s.id = e.service_id WHERE e.name=?1 AND (?2 IS"
                     " NULL OR s.name=?2 OR s.name='')";
  const char *smp_sql =
      sel->version ? "SELECT type, stack_id, SUM(value), COUNT(*) FROM"
                     " samples WHERE version_id=?5 AND endpoint_id=?1 AND"
                     " time_ns>=?2 AND time_ns<?3 AND (?4=0 OR type=?4)"
                     " GROUP BY type, stack_id"
                   : "SELECT type, stack_id, SUM(value), COUNT(*) FROM"
                     " samples WHERE endpoint_id=?1 AND time_ns>=?2 AND"
                     " time_ns<?3 AND (?4=0 OR type=?4) AND ?5=0"
                     " GROUP BY type, stack_id";
  if (sqlite3_prepare_v2(s->db, eps_sql, -1, &eps, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db, smp_sql, -1, &st, NULL) != SQLITE_OK) {
    rc = dberr(s, err, errlen, "reading samples");
    goto out;
  }
  sqlite3_bind_text(eps, 1, sel->endpoint, -1, SQLITE_STATIC);
  if (sel->service)
    sqlite3_bind_text(eps, 2, sel->service, -1, SQLITE_STATIC);
  if (sel->version)
    sqlite3_bind_text(eps, 3, sel->version, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, sel->from_ns);
  sqlite3_bind_int64(st, 3, sel->to_ns ? sel->to_ns : INT64_MAX);
  sqlite3_bind_int(st, 4, sel->type);
  int erc;
  while (rc == HS_STORE_OK && (erc = sqlite3_step(eps)) == SQLITE_ROW) {
    sqlite3_bind_int64(st, 1, sqlite3_column_int64(eps, 0));
    sqlite3_bind_int64(st, 5, sqlite3_column_int64(eps, 1));
    rc = run_sample_rows(s, st, cb, arg, err, errlen);
  }
  if (rc == HS_STORE_OK && erc != SQLITE_DONE)
    rc = dberr(s, err, errlen, "reading endpoints");
out:
  sqlite3_finalize(eps);
  sqlite3_finalize(st);
  return rc;
}

static int sq_stack(hs_store *base, int64_t stack_id, hs_store_stack_cb cb,
                    void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st = NULL, *fr = NULL;
  hs_store_frame *frames = NULL;
  char **owned = NULL;
  size_t n = 0;
  int rc = HS_STORE_ERR;
  /* Read-only stores prepare no statements at open. */
  if (s->st[ST_STACK_GET]) {
    st = s->st[ST_STACK_GET];
    fr = s->st[ST_FRAME_GET];
  } else if (sqlite3_prepare_v2(s->db, stmt_sql[ST_STACK_GET], -1, &st, NULL) !=
                 SQLITE_OK ||
             sqlite3_prepare_v2(s->db, stmt_sql[ST_FRAME_GET], -1, &fr, NULL) !=
                 SQLITE_OK) {
    dberr(s, err, errlen, "reading a stack");
    goto out;
  }
  sqlite3_bind_int64(st, 1, stack_id);
  int src = sqlite3_step(st);
  if (src == SQLITE_DONE) {
    seterr(err, errlen, "stack %" PRId64 " not found", stack_id);
    rc = HS_STORE_NOTFOUND;
    goto out;
  }
  if (src != SQLITE_ROW) {
    dberr(s, err, errlen, "reading a stack");
    goto out;
  }
  const unsigned char *p = sqlite3_column_blob(st, 0);
  size_t len = (size_t)sqlite3_column_bytes(st, 0);
  /* At most one frame per blob byte. */
  frames = calloc(len ? len : 1, sizeof *frames);
  owned = calloc(len ? len * 3 : 1, sizeof *owned);
  if (!frames || !owned) {
    seterr(err, errlen, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < len;) {
    uint64_t v = 0;
    int shift = 0;
    while (i < len && shift < 64) {
      v |= (uint64_t)(p[i] & 0x7f) << shift;
      shift += 7;
      if (!(p[i++] & 0x80))
        break;
    }
    sqlite3_bind_int64(fr, 1, (int64_t)v);
    hs_store_frame *f = &frames[n];
    if (sqlite3_step(fr) == SQLITE_ROW) {
      owned[3 * n] = strdup(col_text(fr, 0));
      owned[3 * n + 1] = strdup(col_text(fr, 1));
      owned[3 * n + 2] = strdup(col_text(fr, 3));
      f->line = sqlite3_column_int64(fr, 2);
    } else {
      owned[3 * n] = strdup("??");
      owned[3 * n + 1] = strdup("");
      owned[3 * n + 2] = strdup("");
    }
    sqlite3_reset(fr);
    if (!owned[3 * n] || !owned[3 * n + 1] || !owned[3 * n + 2]) {
      n++;
      seterr(err, errlen, "out of memory");
      goto out;
    }
    f->function = owned[3 * n];
    f->file = owned[3 * n + 1];
    f->mapping = owned[3 * n + 2];
    n++;
  }
  rc = cb(arg, frames, n);
out:
  if (owned)
    for (size_t i = 0; i < 3 * n; i++)
      free(owned[i]);
  free(owned);
  free(frames);
  if (st && st == s->st[ST_STACK_GET]) {
    sqlite3_reset(st);
    sqlite3_reset(fr);
  } else {
    sqlite3_finalize(st);
    sqlite3_finalize(fr);
  }
  return rc;
}

/* Counts come from the version indexes (one range each); versions
 * whose traces and samples retention has deleted are left out. */
static int sq_versions(hs_store *base, const char *service,
                       hs_store_version_cb cb, void *arg, char *err,
                       size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(
          s->db,
          "SELECT sv, vn, nt, ns, min(coalesce(t0, m0), coalesce(m0, t0)),"
          " max(coalesce(t1, m1), coalesce(m1, t1)) FROM (SELECT s.name AS"
          " sv, v.name AS vn,"
          " (SELECT count(*) FROM traces WHERE version_id=v.id) AS nt,"
          " (SELECT count(*) FROM samples WHERE version_id=v.id) AS ns,"
          " (SELECT min(start_ns) FROM traces WHERE version_id=v.id) AS t0,"
          " (SELECT max(start_ns) FROM traces WHERE version_id=v.id) AS t1,"
          " (SELECT min(time_ns) FROM samples WHERE version_id=v.id) AS m0,"
          " (SELECT max(time_ns) FROM samples WHERE version_id=v.id) AS m1"
          " FROM versions v JOIN services s ON s.id = v.service_id"
          " WHERE ?1 IS NULL OR s.name=?1)"
          " WHERE nt > 0 OR ns > 0 ORDER BY sv, 5, vn",
          -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "listing versions");
  if (service)
    sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
  int rc, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    hs_store_version v;
    v.service = col_text(st, 0);
    v.version = col_text(st, 1);
    v.requests = sqlite3_column_int64(st, 2);
    v.samples = sqlite3_column_int64(st, 3);
    v.first_ns = sqlite3_column_int64(st, 4);
    v.last_ns = sqlite3_column_int64(st, 5);
    stop = cb(arg, &v);
  }
  int r = stop                ? stop
          : rc != SQLITE_DONE ? dberr(s, err, errlen, "listing versions")
                              : HS_STORE_OK;
  sqlite3_finalize(st);
  return r;
}

/* ------------------------------------------------------------ open */

static const hs_store_vt sq_vt = {
    .close = sq_close,
    .ingest = sq_ingest,
    .retain = sq_retain,
    .traces = sq_traces,
    .trace = sq_trace,
    .trace_spans = sq_trace_spans,
    .find_span = sq_find_span,
    .samples = sq_samples,
    .stack = sq_stack,
    .versions = sq_versions,
};

int hs_store_sqlite_schema_version(hs_store *base) {
  if (!base || base->vt != &sq_vt)
    return -1;
  return ((sq_store *)base)->version;
}

/* A clear message for the usual mistakes before SQLite's own. */
static int check_dir(const char *path, int read_only, char *err,
                     size_t errlen) {
  char *dir = strdup(path);
  if (!dir) {
    seterr(err, errlen, "out of memory");
    return -1;
  }
  char *slash = strrchr(dir, '/');
  const char *d = ".";
  if (slash == dir)
    d = "/";
  else if (slash) {
    *slash = 0;
    d = dir;
  }
  struct stat sb;
  int r = 0;
  if (stat(d, &sb) != 0) {
    seterr(err, errlen, "cannot open store %s: directory %s: %s", path, d,
           strerror(errno));
    r = -1;
  } else if (!S_ISDIR(sb.st_mode)) {
    seterr(err, errlen, "cannot open store %s: %s is not a directory", path, d);
    r = -1;
  } else if (!read_only && access(d, W_OK | X_OK) != 0) {
    /* WAL mode creates -wal and -shm files beside the database. */
    seterr(err, errlen, "cannot open store %s: directory %s is not writable",
           path, d);
    r = -1;
  }
  free(dir);
  return r;
}

static int migrate(sq_store *s, int target, char *err, size_t errlen) {
  while (s->version < target) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", s->version + 1);
    if (exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
      return -1;
    if (exec(s, migrations[s->version], err, errlen) < 0 ||
        exec(s, sql, err, errlen) < 0) {
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
    if (exec(s, "COMMIT", err, errlen) < 0) {
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
    s->version++;
  }
  return 0;
}

hs_store *hs_store_open_sqlite(const char *path,
                               const hs_store_sqlite_opts *opts, char *err,
                               size_t errlen) {
  hs_store_sqlite_opts o;
  memset(&o, 0, sizeof o);
  if (opts)
    o = *opts;
  if (!path || !*path) {
    seterr(err, errlen, "no store path");
    return NULL;
  }
  int target =
      o.target_version > 0 ? o.target_version : HS_STORE_SQLITE_SCHEMA_VERSION;
  if (target > HS_STORE_SQLITE_SCHEMA_VERSION) {
    seterr(err, errlen, "unknown schema version %d", target);
    return NULL;
  }
  if (check_dir(path, o.read_only, err, errlen) < 0)
    return NULL;
  sq_store *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) {
    free(s);
    seterr(err, errlen, "out of memory");
    return NULL;
  }
  s->base.vt = &sq_vt;
  hs_buf_init(&s->scratch, 16u << 20);
  hs_buf_init(&s->blob, 16u << 20);
  int flags = o.read_only ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    seterr(err, errlen, "cannot open store %s: %s", path,
           s->db ? sqlite3_errmsg(s->db) : "out of memory");
    goto fail;
  }
  sqlite3_extended_result_codes(s->db, 0);
  sqlite3_busy_timeout(s->db, o.busy_timeout_ms > 0 ? o.busy_timeout_ms : 5000);
  {
    char sql[64];
    /* A negative cache_size is in KiB. */
    int mib = o.cache_mib > 0 ? o.cache_mib : 64;
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%ld",
             (long)(mib < (1 << 20) ? mib : 1 << 20) * 1024);
    sqlite3_exec(s->db, sql, NULL, NULL, NULL); /* a hint: failure is fine */
  }
  /* The first read of the file: a file that is not SQLite fails here. */
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      s->version = sqlite3_column_int(st, 0);
      rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_OK) {
    if (sqlite3_errcode(s->db) == SQLITE_NOTADB)
      seterr(err, errlen, "cannot open store %s: not an SQLite database", path);
    else
      seterr(err, errlen, "cannot open store %s: %s", path,
             sqlite3_errmsg(s->db));
    goto fail;
  }
  if (s->version > HS_STORE_SQLITE_SCHEMA_VERSION) {
    seterr(err, errlen,
           "cannot open store %s: its schema version %d is newer than this"
           " build knows (%d); use a newer hotspan-agent",
           path, s->version, HS_STORE_SQLITE_SCHEMA_VERSION);
    goto fail;
  }
  if (o.read_only) {
    if (s->version < HS_STORE_SQLITE_SCHEMA_VERSION) {
      seterr(err, errlen,
             "cannot open store %s read-only: schema version %d needs"
             " migrating to %d (open it read-write once)",
             path, s->version, HS_STORE_SQLITE_SCHEMA_VERSION);
      goto fail;
    }
    return &s->base;
  }
  /* auto_vacuum only takes effect before the first table exists. */
  if (s->version == 0 &&
      exec(s, "PRAGMA auto_vacuum=INCREMENTAL", err, errlen) < 0)
    goto fail;
  if (exec(s,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
           " PRAGMA journal_size_limit=67108864",
           err, errlen) < 0)
    goto fail;
  if (migrate(s, target, err, errlen) < 0)
    goto fail;
  for (int i = 0; i < ST_COUNT; i++) {
    const char *sql = stmt_sql[i];
    for (size_t k = 0; k < sizeof old_forms / sizeof old_forms[0]; k++)
      if (old_forms[k].st == i && s->version < old_forms[k].below) {
        sql = old_forms[k].sql;
        break;
      }
    if (s->version < stmt_min_version[i])
      continue;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                           NULL) != SQLITE_OK) {
      dberr(s, err, errlen, "preparing statements");
      goto fail;
    }
  }
  return &s->base;
fail:
  sq_close(&s->base);
  return NULL;
}
