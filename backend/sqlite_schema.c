/* The SQLite store's connection (see store.h and docs/store.md): opening
 * (directory checks, pragmas, the schema version), the schema and its
 * versioned migrations, the statements prepared at open, closing, and the
 * helpers the other sqlite_*.c files share (sqlite_int.h).
 *
 * One connection, used by one thread. The statements are prepared once at
 * open in the form the file's schema version takes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/sqlite_int.h"

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

/* The first schema version each statement works with (0: all). A store
 * opened at an older version (tests only) uses old_forms where given and
 * leaves the others unprepared. */
static const int stmt_min_version[ST_COUNT] = {
    [ST_VERSION_INS] = 3,
    [ST_VERSION_SEL] = 3,
    [ST_RESOURCE_INS] = 5,
    [ST_RESOURCE_SEL] = 5,
};

const char *const hs_sq_stmt_sql[ST_COUNT] = {
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
 * that applies replaces hs_sq_stmt_sql. Entries of one statement go by rising
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

void hs_sq_seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int hs_sq_dberr(sq_store *s, char *err, size_t errlen, const char *what) {
  hs_sq_seterr(err, errlen, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
  return HS_STORE_ERR;
}

int hs_sq_exec(sq_store *s, const char *sql, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    hs_sq_seterr(err, errlen, "%s: %s", s->path, msg ? msg : "error");
    sqlite3_free(msg);
    return HS_STORE_ERR;
  }
  return HS_STORE_OK;
}

int hs_sq_step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

void hs_sq_clear_caches(sq_store *s) {
  hs_kvmap_free(&s->services);
  hs_kvmap_free(&s->endpoints);
  hs_kvmap_free(&s->frames);
  hs_kvmap_free(&s->stacks);
  hs_kvmap_free(&s->threads);
  hs_kvmap_free(&s->versions);
  hs_kvmap_free(&s->resources);
}

void hs_sq_close(hs_store *base) {
  sq_store *s = (sq_store *)base;
  for (int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(s->st[i]);
  if (s->db)
    sqlite3_close_v2(s->db);
  hs_sq_clear_caches(s);
  hs_buf_free(&s->scratch);
  hs_buf_free(&s->blob);
  free(s->path);
  free(s);
}

static const hs_store_vt sq_vt = {
    .close = hs_sq_close,
    .ingest = hs_sq_ingest,
    .retain = hs_sq_retain,
    .traces = hs_sq_traces,
    .trace = hs_sq_trace,
    .trace_spans = hs_sq_trace_spans,
    .find_span = hs_sq_find_span,
    .samples = hs_sq_samples,
    .stack = hs_sq_stack,
    .versions = hs_sq_versions,
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
    hs_sq_seterr(err, errlen, "out of memory");
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
    hs_sq_seterr(err, errlen, "cannot open store %s: directory %s: %s", path, d,
                 strerror(errno));
    r = -1;
  } else if (!S_ISDIR(sb.st_mode)) {
    hs_sq_seterr(err, errlen, "cannot open store %s: %s is not a directory",
                 path, d);
    r = -1;
  } else if (!read_only && access(d, W_OK | X_OK) != 0) {
    /* WAL mode creates -wal and -shm files beside the database. */
    hs_sq_seterr(err, errlen,
                 "cannot open store %s: directory %s is not writable", path, d);
    r = -1;
  }
  free(dir);
  return r;
}

static int migrate(sq_store *s, int target, char *err, size_t errlen) {
  while (s->version < target) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", s->version + 1);
    if (hs_sq_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
      return -1;
    if (hs_sq_exec(s, migrations[s->version], err, errlen) < 0 ||
        hs_sq_exec(s, sql, err, errlen) < 0) {
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
    if (hs_sq_exec(s, "COMMIT", err, errlen) < 0) {
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
    s->version++;
  }
  return 0;
}

/* Sets the page cache to opts' cache_mib (64 MiB by default). A hint:
 * failure is fine. */
static void set_cache_size(sq_store *s, const hs_store_sqlite_opts *o) {
  char sql[64];
  /* A negative cache_size is in KiB. */
  int mib = o->cache_mib > 0 ? o->cache_mib : 64;
  snprintf(sql, sizeof sql, "PRAGMA cache_size=-%ld",
           (long)(mib < (1 << 20) ? mib : 1 << 20) * 1024);
  sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

/* Reads the schema version into s->version and refuses one newer than
 * this build knows. The first read of the file: a file that is not SQLite
 * fails here. 0, or -1 with the message set. */
static int read_version(sq_store *s, const char *path, char *err,
                        size_t errlen) {
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
      hs_sq_seterr(err, errlen, "cannot open store %s: not an SQLite database",
                   path);
    else
      hs_sq_seterr(err, errlen, "cannot open store %s: %s", path,
                   sqlite3_errmsg(s->db));
    return -1;
  }
  if (s->version > HS_STORE_SQLITE_SCHEMA_VERSION) {
    hs_sq_seterr(err, errlen,
                 "cannot open store %s: its schema version %d is newer than"
                 " this build knows (%d); use a newer hotspan-agent",
                 path, s->version, HS_STORE_SQLITE_SCHEMA_VERSION);
    return -1;
  }
  return 0;
}

/* Prepares every statement the schema version has, in the form it takes
 * at that version. 0, or -1 with the message set. */
static int prepare_statements(sq_store *s, char *err, size_t errlen) {
  for (int i = 0; i < ST_COUNT; i++) {
    const char *sql = hs_sq_stmt_sql[i];
    for (size_t k = 0; k < sizeof old_forms / sizeof old_forms[0]; k++)
      if (old_forms[k].st == i && s->version < old_forms[k].below) {
        sql = old_forms[k].sql;
        break;
      }
    if (s->version < stmt_min_version[i])
      continue;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                           NULL) != SQLITE_OK) {
      hs_sq_dberr(s, err, errlen, "preparing statements");
      return -1;
    }
  }
  return 0;
}

/* Read-write only: the pragmas of a writer (auto_vacuum on a new file,
 * WAL), the migrations up to target, the statements. 0, or -1 with the
 * message set. */
static int setup_writer(sq_store *s, int target, char *err, size_t errlen) {
  /* auto_vacuum only takes effect before the first table exists. */
  if (s->version == 0 &&
      hs_sq_exec(s, "PRAGMA auto_vacuum=INCREMENTAL", err, errlen) < 0)
    return -1;
  if (hs_sq_exec(s,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 " PRAGMA journal_size_limit=67108864",
                 err, errlen) < 0)
    return -1;
  if (migrate(s, target, err, errlen) < 0)
    return -1;
  return prepare_statements(s, err, errlen);
}

hs_store *hs_store_open_sqlite(const char *path,
                               const hs_store_sqlite_opts *opts, char *err,
                               size_t errlen) {
  hs_store_sqlite_opts o;
  memset(&o, 0, sizeof o);
  if (opts)
    o = *opts;
  if (!path || !*path) {
    hs_sq_seterr(err, errlen, "no store path");
    return NULL;
  }
  int target =
      o.target_version > 0 ? o.target_version : HS_STORE_SQLITE_SCHEMA_VERSION;
  if (target > HS_STORE_SQLITE_SCHEMA_VERSION) {
    hs_sq_seterr(err, errlen, "unknown schema version %d", target);
    return NULL;
  }
  if (check_dir(path, o.read_only, err, errlen) < 0)
    return NULL;
  sq_store *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) {
    free(s);
    hs_sq_seterr(err, errlen, "out of memory");
    return NULL;
  }
  s->base.vt = &sq_vt;
  hs_buf_init(&s->scratch, 16u << 20);
  hs_buf_init(&s->blob, 16u << 20);
  int flags = o.read_only ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    hs_sq_seterr(err, errlen, "cannot open store %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
    goto fail;
  }
  sqlite3_extended_result_codes(s->db, 0);
  sqlite3_busy_timeout(s->db, o.busy_timeout_ms > 0 ? o.busy_timeout_ms : 5000);
  set_cache_size(s, &o);
  if (read_version(s, path, err, errlen) < 0)
    goto fail;
  if (o.read_only) {
    if (s->version < HS_STORE_SQLITE_SCHEMA_VERSION) {
      hs_sq_seterr(err, errlen,
                   "cannot open store %s read-only: schema version %d needs"
                   " migrating to %d (open it read-write once)",
                   path, s->version, HS_STORE_SQLITE_SCHEMA_VERSION);
      goto fail;
    }
    return &s->base;
  }
  if (setup_writer(s, target, err, errlen) < 0)
    goto fail;
  return &s->base;
fail:
  hs_sq_close(&s->base);
  return NULL;
}
