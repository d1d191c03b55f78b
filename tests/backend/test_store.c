/* The SQLite store: open/migrate/refuse, atomic ingest, dedup, trace
 * upserts, retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "backend/store.h"
#include "support/store_fixtures.h"

static const hs_ing_frame stack_f[] = {{"f", "a.c", 10, "app"},
                                       {"handler", "a.c", 20, "app"},
                                       {"main", "a.c", 30, "app"}};
static const hs_ing_frame stack_g[] = {{"g", "a.c", 40, "app"},
                                       {"handler", "a.c", 20, "app"},
                                       {"main", "a.c", 30, "app"}};

static int64_t raw_int(const char *path, const char *sql) {
  sqlite3 *db;
  int64_t v = -1;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

static void raw_exec(const char *path, const char *sql) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

static int count_cb(void *arg, const hs_store_trace *t) {
  (void)t;
  (*(int *)arg)++;
  return 0;
}

static int count_traces(hs_store *s) {
  int n = 0;
  char err[256];
  assert_int_equal(hs_store_traces(s, NULL, count_cb, &n, err, sizeof err),
                   HS_STORE_OK);
  return n;
}

static int copy_trace_cb(void *arg, const hs_store_trace *t) {
  hs_store_trace *d = arg;
  *d = *t;
  d->service = d->endpoint = NULL; /* borrowed strings die after the call */
  return 0;
}

static void test_open_creates_wal_and_schema(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(hs_store_sqlite_schema_version(s),
                   HS_STORE_SQLITE_SCHEMA_VERSION);
  hs_store_close(s);
  assert_int_equal(raw_int(t.path, "PRAGMA user_version"),
                   HS_STORE_SQLITE_SCHEMA_VERSION);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  assert_int_equal(raw_int(t.path, "PRAGMA auto_vacuum"), 2);
  tmpdb_remove(&t);
}

static void test_migrates_v1_database(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store_sqlite_opts o = {.target_version = 1};
  hs_store *s = hs_store_open_sqlite(t.path, &o, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(hs_store_sqlite_schema_version(s), 1);
  static tbatch b;
  tb_init(&b, "svc");
  tb_span(&b, 0, 1, 10, 0, "svc", "GET /x", 1000, 500);
  tb_samples(&b, 3, HS_PT_CPU, 100, 10, "GET /x", 1000, stack_f, 3);
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  hs_store_close(s);
  assert_int_equal(raw_int(t.path, "PRAGMA user_version"), 1);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE"
                                   " name='samples_endpoint'"),
                   0);
  s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(hs_store_sqlite_schema_version(s),
                   HS_STORE_SQLITE_SCHEMA_VERSION);
  assert_int_equal(count_traces(s), 1);
  hs_store_close(s);
  assert_int_equal(raw_int(t.path, "PRAGMA user_version"),
                   HS_STORE_SQLITE_SCHEMA_VERSION);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE"
                                   " name='samples_endpoint'"),
                   1);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM samples"), 3);
  tmpdb_remove(&t);
}

static int collect_version_cb(void *arg, const hs_store_version *v) {
  char *out = arg;
  char line[200];
  snprintf(line, sizeof line, "%s/%s r=%lld s=%lld [%lld,%lld];", v->service,
           v->version, (long long)v->requests, (long long)v->samples,
           (long long)v->first_ns, (long long)v->last_ns);
  strncat(out, line, 1023 - strlen(out));
  return 0;
}

/* A database at schema 2 (before versions) keeps its rows through the
 * migration to 3; they have no version (NULL) and are not listed as one,
 * and new batches record theirs. */
static void test_migrates_v2_database_versions(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store_sqlite_opts o = {.target_version = 2};
  hs_store *s = hs_store_open_sqlite(t.path, &o, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(hs_store_sqlite_schema_version(s), 2);
  static tbatch b;
  tb_init(&b, "svc");
  b.b.version = "1.0"; /* a schema-2 store cannot keep it */
  hs_ing_kv ver = {"version", "1.0", 0};
  tb_span(&b, 0, 1, 10, 0, "svc", "GET /x", 1000, 500);
  b.spans[0].attrs = &ver;
  b.spans[0].nattrs = 1;
  tb_samples(&b, 3, HS_PT_CPU, 100, 10, "GET /x", 1000, stack_f, 3);
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  hs_store_close(s);
  assert_int_equal(raw_int(t.path, "PRAGMA user_version"), 2);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE"
                                   " name='versions'"),
                   0);

  s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(hs_store_sqlite_schema_version(s),
                   HS_STORE_SQLITE_SCHEMA_VERSION);
  assert_int_equal(count_traces(s), 1);
  char list[1024] = "";
  assert_int_equal(
      hs_store_versions(s, NULL, collect_version_cb, list, err, sizeof err),
      HS_STORE_OK);
  assert_string_equal(list, "");
  /* Now with versions: one trace of 2.0 (root attribute "version"), one
   * of 2.1 given only as "service.version", one child-only version that
   * does not count, and 5 samples of a 2.0 profile. */
  tb_init(&b, "svc");
  b.b.version = "2.0";
  hs_ing_kv v20 = {"version", "2.0", 0};
  hs_ing_kv v21[] = {{"http.method", "GET", 0}, {"service.version", "2.1", 0}};
  hs_ing_kv v99 = {"version", "9.9", 0};
  hs_ing_span *sp = tb_span(&b, 0, 2, 20, 0, "svc", "GET /x", 3000, 500);
  sp->attrs = &v20;
  sp->nattrs = 1;
  sp = tb_span(&b, 0, 3, 30, 0, "svc", "GET /x", 4000, 500);
  sp->attrs = v21;
  sp->nattrs = 2;
  sp = tb_span(&b, 0, 3, 31, 30, "svc", "child", 4100, 50);
  sp->attrs = &v99;
  sp->nattrs = 1;
  tb_samples(&b, 5, HS_PT_CPU, 100, 20, "GET /x", 3500, stack_f, 3);
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  list[0] = 0;
  assert_int_equal(
      hs_store_versions(s, "svc", collect_version_cb, list, err, sizeof err),
      HS_STORE_OK);
  assert_string_equal(list, "svc/2.0 r=1 s=5 [3000,3500];"
                            "svc/2.1 r=1 s=0 [4000,4000];");
  /* Only the 2.0 trace and samples are selected by version. */
  hs_store_trace_filter f = {.version = "2.0"};
  int n = 0;
  assert_int_equal(hs_store_traces(s, &f, count_cb, &n, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(n, 1);
  f.version = "9.9";
  n = 0;
  assert_int_equal(hs_store_traces(s, &f, count_cb, &n, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(n, 0);
  hs_store_close(s);
  assert_int_equal(
      raw_int(t.path, "SELECT count(*) FROM samples WHERE version_id IS NULL"),
      3);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM samples s JOIN"
                                   " versions v ON v.id = s.version_id"
                                   " WHERE v.name='2.0'"),
                   5);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM traces WHERE"
                                   " version_id IS NULL"),
                   1);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE"
                                   " name IN ('samples_version',"
                                   " 'traces_version')"),
                   2);
  tmpdb_remove(&t);
}

/* What the span callback saw, by span id (10 and 11). */
typedef struct el_seen {
  char events[2][512], links[2][512], resource[2][512];
  int null_resource[2];
  int64_t dropped_events[2], dropped_links[2];
  int null_events[2], null_links[2];
} el_seen;

static int collect_el_cb(void *arg, const hs_store_span *p) {
  el_seen *e = arg;
  int i = p->span_id == 11;
  e->null_events[i] = p->events_json == NULL;
  e->null_links[i] = p->links_json == NULL;
  snprintf(e->events[i], sizeof e->events[i], "%s",
           p->events_json ? p->events_json : "");
  snprintf(e->links[i], sizeof e->links[i], "%s",
           p->links_json ? p->links_json : "");
  e->null_resource[i] = p->resource_json == NULL;
  snprintf(e->resource[i], sizeof e->resource[i], "%s",
           p->resource_json ? p->resource_json : "");
  e->dropped_events[i] = p->dropped_events;
  e->dropped_links[i] = p->dropped_links;
  return 0;
}

/* Version 4 keeps span events and links, version 5 the sender's resource.
 * A span stored by a version-3 store reads back with none; a span stored
 * after the migrations keeps them exactly, strings escaped; a resource
 * attribute set is stored once. */
static void test_span_events_links_and_v3_migration(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store_sqlite_opts o = {.target_version = 3};
  hs_store *s = hs_store_open_sqlite(t.path, &o, err, sizeof err);
  assert_non_null(s);
  static tbatch b;
  tb_init(&b, "svc");
  tb_span(&b, 0, 1, 10, 0, "svc", "GET /x", 1000, 500);
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  hs_store_close(s);
  assert_int_equal(raw_int(t.path, "PRAGMA user_version"), 3);

  s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(hs_store_sqlite_schema_version(s),
                   HS_STORE_SQLITE_SCHEMA_VERSION);
  tb_init(&b, "svc");
  hs_ing_span *sp = tb_span(&b, 0, 1, 11, 10, "svc", "child", 1100, 50);
  hs_ing_kv eattrs[] = {{"exception.message", "bad \"quote\"\n", 0},
                        {"retry", NULL, 3}};
  hs_ing_kv lattr = {"link.kind", "batch", 0};
  hs_ing_event ev[2] = {{1150, "exception", eattrs, 2}, {0, "", NULL, 0}};
  hs_ing_link lk = {UINT64_C(0x0af7651916cd43dd),
                    UINT64_C(0x8448eb211c80319c),
                    UINT64_C(0x00f067aa0ba902b7),
                    "rojo=00f067aa0ba902b7",
                    0x301,
                    &lattr,
                    1};
  sp->events = ev;
  sp->nevents = 2;
  sp->dropped_events = 3;
  sp->links = &lk;
  sp->nlinks = 1;
  sp->dropped_links = UINT32_MAX;
  hs_ing_kv res[] = {{"deployment.environment", "prod", 0},
                     {"host.name", "web-1", 0},
                     {"process.pid", NULL, 4242}};
  sp->resource_attrs = res;
  sp->nresource_attrs = 3;
  /* Another trace's span with the same resource set (a copy: another
   * array), then one with another set. */
  hs_ing_kv res_copy[3];
  memcpy(res_copy, res, sizeof res);
  tb_span(&b, 0, 2, 20, 0, "svc", "GET /y", 2000, 50)->resource_attrs =
      res_copy;
  b.spans[1].nresource_attrs = 3;
  hs_ing_kv res2 = {"deployment.environment", "staging", 0};
  tb_span(&b, 0, 3, 30, 0, "svc", "GET /z", 3000, 50)->resource_attrs = &res2;
  b.spans[2].nresource_attrs = 1;
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  el_seen seen;
  memset(&seen, 0, sizeof seen);
  assert_int_equal(
      hs_store_trace_spans(s, 0, 1, collect_el_cb, &seen, err, sizeof err),
      HS_STORE_OK);
  /* The span from before the migration. */
  assert_true(seen.null_events[0] && seen.null_links[0]);
  assert_true(seen.null_resource[0]);
  assert_false(seen.null_resource[1]);
  assert_string_equal(seen.resource[1],
                      "{\"deployment.environment\":\"prod\","
                      "\"host.name\":\"web-1\",\"process.pid\":4242}");
  assert_int_equal(seen.dropped_events[0], 0);
  assert_int_equal(seen.dropped_links[0], 0);
  /* The span after it. */
  assert_false(seen.null_events[1] || seen.null_links[1]);
  assert_string_equal(
      seen.events[1],
      "[{\"time_ns\":1150,\"name\":\"exception\",\"attrs\":"
      "{\"exception.message\":\"bad \\\"quote\\\"\\n\","
      "\"retry\":3}},{\"time_ns\":0,\"name\":\"\",\"attrs\":{}}]");
  assert_string_equal(seen.links[1],
                      "[{\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\","
                      "\"span_id\":\"00f067aa0ba902b7\","
                      "\"tracestate\":\"rojo=00f067aa0ba902b7\",\"flags\":769,"
                      "\"attrs\":{\"link.kind\":\"batch\"}}]");
  assert_int_equal(seen.dropped_events[1], 3);
  assert_int_equal(seen.dropped_links[1], UINT32_MAX);
  hs_store_close(s);
  /* Two distinct resource sets; the shared one names spans 11 and 20. */
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM resources"), 2);
  assert_int_equal(raw_int(t.path, "SELECT count(DISTINCT resource_id) FROM"
                                   " spans WHERE span_id IN (11, 20)"),
                   1);
  assert_int_equal(
      raw_int(t.path, "SELECT count(*) FROM spans WHERE resource_id IS NULL"),
      1);
  tmpdb_remove(&t);
}

static void test_refuses_newer_schema(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  hs_store_close(s);
  raw_exec(t.path, "PRAGMA user_version=99");
  s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "schema version 99 is newer"));
  assert_non_null(strstr(err, t.path));
  /* Left untouched. */
  assert_int_equal(raw_int(t.path, "PRAGMA user_version"), 99);
  tmpdb_remove(&t);
}

static void test_not_sqlite_file(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  FILE *f = fopen(t.path, "w");
  assert_non_null(f);
  for (int i = 0; i < 200; i++)
    fputs("this is not a database, just some text\n", f);
  fclose(f);
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "not an SQLite database"));
  tmpdb_remove(&t);
}

static void test_bad_directories(void **state) {
  (void)state;
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite("/nonexistent-hs-dir/x/agent.db", NULL,
                                     err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "/nonexistent-hs-dir/x"));
  assert_non_null(strstr(err, "No such file or directory"));

  tmpdb t;
  tmpdb_make(&t);
  char file[200], under[260];
  snprintf(file, sizeof file, "%s/plain", t.dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(under, sizeof under, "%s/agent.db", file);
  s = hs_store_open_sqlite(under, NULL, err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "is not a directory"));
  unlink(file);

  assert_null(hs_store_open_sqlite("", NULL, err, sizeof err));
  assert_null(hs_store_open_sqlite(NULL, NULL, err, sizeof err));

  /* Read-only directory: root may write anyway, so only checked as a
   * normal user. */
  if (geteuid() != 0) {
    chmod(t.dir, 0555);
    s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "not writable"));
    chmod(t.dir, 0755);
  }
  tmpdb_remove(&t);
}

static void test_batch_is_atomic(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  static tbatch b;
  tb_init(&b, "svc");
  tb_span(&b, 0, 1, 10, 0, "svc", "GET /x", 1000, 500);
  tb_span(&b, 0, 1, 11, 10, "svc", "child", 1100, 100);
  tb_samples(&b, 3, HS_PT_CPU, 100, 10, "GET /x", 1000, stack_f, 3);
  b.samples[2].type = 9; /* invalid: the whole batch must be refused */
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_ERR);
  assert_non_null(strstr(err, "unknown profile type"));
  assert_int_equal(count_traces(s), 0);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM spans"), 0);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM samples"), 0);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM frames"), 0);
  /* After the rollback the caches must not hand out ids of rolled-back
   * rows: the same batch, fixed, stores completely. */
  b.samples[2].type = HS_PT_CPU;
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM samples s JOIN"
                                   " stacks k ON k.id = s.stack_id"),
                   3);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM frames"), 3);
  assert_int_equal(hs_store_ingest(s, NULL, err, sizeof err), HS_STORE_ERR);
  hs_store_close(s);
  tmpdb_remove(&t);
}

static void test_dedup_and_upsert(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  static tbatch b;
  /* The child arrives first: it stands in for the root. */
  tb_init(&b, "svc");
  const uint64_t big = 0xfedcba9876543210ULL;
  tb_span(&b, big, 5, 0xffffffffffffffffULL, 77, "svc", "child", 2000, 100);
  tb_samples(&b, 50, HS_PT_CPU, 10, 77, "GET /y", 2000, stack_f, 3);
  tb_samples(&b, 50, HS_PT_WALL, 10, 77, "GET /y", 2000, stack_g, 3);
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  hs_store_trace tr;
  assert_int_equal(
      hs_store_get_trace(s, big, 5, copy_trace_cb, &tr, err, sizeof err),
      HS_STORE_OK);
  assert_int_equal(tr.root_known, 0);
  assert_true(tr.root_span_id == 0xffffffffffffffffULL);
  assert_int_equal(tr.span_count, 1);
  /* Resent child and the root. */
  tb_init(&b, "svc");
  tb_span(&b, big, 5, 0xffffffffffffffffULL, 77, "svc", "child", 2000, 100);
  tb_span(&b, big, 5, 77, 0, "svc", "GET /y", 1500, 900)->error = 1;
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  assert_int_equal(
      hs_store_get_trace(s, big, 5, copy_trace_cb, &tr, err, sizeof err),
      HS_STORE_OK);
  assert_int_equal(tr.root_known, 1);
  assert_int_equal(tr.root_span_id, 77);
  assert_int_equal(tr.span_count, 2);
  assert_int_equal(tr.duration_ns, 900);
  assert_int_equal(tr.start_ns, 1500);
  assert_int_equal(tr.error, 1);
  assert_true(tr.trace_id_high == big);
  /* A later non-root span does not displace a true root. */
  tb_init(&b, "svc");
  tb_span(&b, big, 5, 78, 77, "svc", "early", 100, 5);
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  assert_int_equal(
      hs_store_get_trace(s, big, 5, copy_trace_cb, &tr, err, sizeof err),
      HS_STORE_OK);
  assert_int_equal(tr.root_span_id, 77);
  assert_int_equal(tr.span_count, 3);
  assert_int_equal(
      hs_store_get_trace(s, 0, 12345, copy_trace_cb, &tr, err, sizeof err),
      HS_STORE_NOTFOUND);
  hs_store_close(s);
  /* 100 samples over 2 stacks of 4 distinct frames. */
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM samples"), 100);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM stacks"), 2);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM frames"), 4);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM spans"), 3);
  tmpdb_remove(&t);
}

static void test_retention_by_age(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  static tbatch b;
  tb_init(&b, "svc");
  for (int i = 0; i < 30; i++) {
    int64_t start = i < 20 ? 1000 : 9000; /* 20 old, 10 new */
    tb_span(&b, 0, (uint64_t)i + 1, (uint64_t)i + 100, 0, "svc", "GET /a",
            start, 10);
    tb_samples(&b, 2, HS_PT_CPU, 5, (uint64_t)i + 100, "GET /a", start, stack_f,
               3);
  }
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  hs_store_retention r = {.now_ns = 10000, .max_age_ns = 5000, .step_rows = 8};
  hs_store_retain_stats st;
  int64_t traces = 0, samples = 0, spans = 0;
  int steps = 0;
  do {
    assert_int_equal(hs_store_retain(s, &r, &st, err, sizeof err), HS_STORE_OK);
    assert_true(st.traces_deleted <= 8 && st.samples_deleted <= 8);
    traces += st.traces_deleted;
    samples += st.samples_deleted;
    spans += st.spans_deleted;
    assert_true(++steps < 20);
  } while (st.more);
  assert_int_equal(traces, 20);
  assert_int_equal(spans, 20);
  assert_int_equal(samples, 40);
  assert_int_equal(count_traces(s), 10);
  hs_store_close(s);
  assert_int_equal(
      raw_int(t.path, "SELECT count(*) FROM samples WHERE time_ns < 5000"), 0);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM samples"), 20);
  tmpdb_remove(&t);
}

static void test_retention_by_size(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256] = "";
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  static tbatch b;
  /* Ten batches, each a later time: about a few MB in all. */
  static char attr_val[2048];
  memset(attr_val, 'x', sizeof attr_val - 1);
  hs_ing_kv kv = {"blob", attr_val, 0};
  for (int k = 0; k < 10; k++) {
    tb_init(&b, "svc");
    for (int i = 0; i < 200; i++) {
      uint64_t id = (uint64_t)(k * 1000 + i + 1);
      hs_ing_span *sp =
          tb_span(&b, 0, id, id, 0, "svc", "GET /a", k * 1000 + i, 10);
      sp->attrs = &kv;
      sp->nattrs = 1;
      tb_samples(&b, 5, HS_PT_WALL, 5, id, "GET /a", k * 1000 + i, stack_g, 3);
    }
    assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);
  }
  int64_t before = hs_store_sqlite_size(s);
  assert_true(before > 2 * 1024 * 1024);
  int64_t limit = before / 2;
  hs_store_retention r = {.max_bytes = limit, .step_rows = 300};
  hs_store_retain_stats st;
  int steps = 0;
  do {
    assert_int_equal(hs_store_retain(s, &r, &st, err, sizeof err), HS_STORE_OK);
    assert_true(st.traces_deleted <= 300);
    assert_true(++steps < 50);
  } while (st.more);
  int64_t after = hs_store_sqlite_size(s);
  assert_true(after <= limit);
  int n = count_traces(s);
  assert_true(n > 0 && n < 2000);
  hs_store_close(s);
  /* The oldest went first: what is left is the newest. */
  assert_int_equal(raw_int(t.path, "SELECT max(start_ns) FROM traces"), 9199);
  assert_true(raw_int(t.path, "SELECT min(start_ns) FROM traces") > 0);
  assert_int_equal(raw_int(t.path, "SELECT count(*) FROM traces"),
                   raw_int(t.path, "SELECT count(*) FROM spans"));
  tmpdb_remove(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_creates_wal_and_schema),
      cmocka_unit_test(test_migrates_v1_database),
      cmocka_unit_test(test_migrates_v2_database_versions),
      cmocka_unit_test(test_span_events_links_and_v3_migration),
      cmocka_unit_test(test_refuses_newer_schema),
      cmocka_unit_test(test_not_sqlite_file),
      cmocka_unit_test(test_bad_directories),
      cmocka_unit_test(test_batch_is_atomic),
      cmocka_unit_test(test_dedup_and_upsert),
      cmocka_unit_test(test_retention_by_age),
      cmocka_unit_test(test_retention_by_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
