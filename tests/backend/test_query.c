/* The correlation engine on hand-built data whose answers are known
 * exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <zlib.h>

#include "backend/query.h"
#include "support/gzip.h"
#include "support/store_fixtures.h"

#define MS 1000000LL
#define T0 (1700000000LL * 1000000000LL)
#define HOUR (3600LL * 1000000000LL)

static const hs_ing_frame stack_f[] = {{"f", "a.c", 10, "app"},
                                       {"handler", "a.c", 20, "app"},
                                       {"main", "a.c", 30, "app"}};
static const hs_ing_frame stack_g[] = {{"g", "a.c", 40, "app"},
                                       {"handler", "a.c", 20, "app"},
                                       {"main", "a.c", 30, "app"}};
static const hs_ing_frame stack_db[] = {{"db_query", "db.c", 5, "app"},
                                        {"child_fn", "a.c", 50, "app"},
                                        {"main", "a.c", 30, "app"}};
static const hs_ing_frame stack_wait[] = {{"wait_io", "io.c", 7, "libc"},
                                          {"child_fn", "a.c", 51, "app"},
                                          {"main", "a.c", 30, "app"}};
/* Recursion: r calls r. */
static const hs_ing_frame stack_rec[] = {
    {"r", "r.c", 1, "app"}, {"r", "r.c", 2, "app"}, {"main", "a.c", 30, "app"}};

typedef struct fixture {
  tmpdb t;
  hs_store *s;
} fixture;

/* Data: trace 0xabc (root 100 "GET /a" 100 ms, child 101, grandchild 102),
 * trace 0xdef (root 200 "GET /a" 50 ms), trace 0x123 (root 300 "GET /b",
 * 10 ms, error), all in the first hour; trace 0x456 (root 400 "GET /a")
 * in the second hour. Samples of 10 ms each:
 *   span 100: 30 CPU in f, 10 CPU in g      (endpoint GET /a)
 *   span 101: 20 CPU in db_query            (endpoint GET /a)
 *   span 102: 5 wall in wait_io             (endpoint GET /a)
 *   span 300: 4 CPU in r (recursive)        (endpoint GET /b)
 *   span 400: 60 CPU in f, 10 CPU in g      (endpoint GET /a, hour 2) */
static int setup(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  tmpdb_make(&fx->t);
  char err[256];
  fx->s = hs_store_open_sqlite(fx->t.path, NULL, err, sizeof err);
  assert_non_null(fx->s);
  static tbatch b;
  tb_init(&b, "svc");
  tb_span(&b, 0, 0xabc, 100, 0, "svc", "GET /a", T0, 100 * MS);
  tb_span(&b, 0, 0xabc, 101, 100, "svc", "child", T0 + 10 * MS, 60 * MS);
  tb_span(&b, 0, 0xabc, 102, 101, "svc", "grandchild", T0 + 20 * MS, 30 * MS);
  tb_span(&b, 0, 0xdef, 200, 0, "svc", "GET /a", T0 + MS, 50 * MS);
  tb_span(&b, 0, 0x123, 300, 0, "svc", "GET /b", T0 + 2 * MS, 10 * MS)->error =
      1;
  tb_span(&b, 0, 0x456, 400, 0, "svc", "GET /a", T0 + HOUR + MS, 80 * MS);
  tb_samples(&b, 30, HS_PT_CPU, 10 * MS, 100, "GET /a", T0, stack_f, 3);
  tb_samples(&b, 10, HS_PT_CPU, 10 * MS, 100, "GET /a", T0, stack_g, 3);
  tb_samples(&b, 20, HS_PT_CPU, 10 * MS, 101, "GET /a", T0, stack_db, 3);
  tb_samples(&b, 5, HS_PT_WALL, 10 * MS, 102, "GET /a", T0, stack_wait, 3);
  tb_samples(&b, 4, HS_PT_CPU, 10 * MS, 300, "GET /b", T0, stack_rec, 3);
  tb_samples(&b, 60, HS_PT_CPU, 10 * MS, 400, "GET /a", T0 + HOUR, stack_f, 3);
  tb_samples(&b, 10, HS_PT_CPU, 10 * MS, 400, "GET /a", T0 + HOUR, stack_g, 3);
  assert_int_equal(hs_store_ingest(fx->s, &b.b, err, sizeof err), HS_STORE_OK);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture *fx = *state;
  hs_store_close(fx->s);
  tmpdb_remove(&fx->t);
  free(fx);
  return 0;
}

static const hs_query_func *find_func(const hs_query_profile *p,
                                      const char *name) {
  for (size_t i = 0; i < p->nfuncs; i++)
    if (!strcmp(p->funcs[i].name, name))
      return &p->funcs[i];
  return NULL;
}

static void test_parse_id(void **state) {
  (void)state;
  uint64_t hi, lo;
  assert_int_equal(hs_query_parse_id("1234", &hi, &lo), 0);
  assert_true(hi == 0 && lo == 1234);
  assert_int_equal(hs_query_parse_id("0x4d2", &hi, &lo), 0);
  assert_true(hi == 0 && lo == 1234);
  assert_int_equal(hs_query_parse_id("00000000000004d2", &hi, &lo), 0);
  assert_true(hi == 0 && lo == 1234);
  /* 16 characters: hex even with only decimal digits. */
  assert_int_equal(hs_query_parse_id("0000000000001234", &hi, &lo), 0);
  assert_true(lo == 0x1234);
  assert_int_equal(
      hs_query_parse_id("4bf92f3577b34da6a3ce929d0e0e4736", &hi, &lo), 0);
  assert_true(hi == 0x4bf92f3577b34da6ULL && lo == 0xa3ce929d0e0e4736ULL);
  assert_int_equal(hs_query_parse_id("18446744073709551615", &hi, &lo), 0);
  assert_true(hi == 0 && lo == UINT64_MAX);
  assert_int_equal(hs_query_parse_id("18446744073709551616", &hi, &lo), 0);
  assert_true(hi == 1 && lo == 0);
  assert_int_equal(hs_query_parse_id("abc", &hi, &lo), 0);
  assert_true(lo == 0xabc);
  /* Bad input. */
  assert_int_equal(hs_query_parse_id("", &hi, &lo), -1);
  assert_int_equal(hs_query_parse_id(NULL, &hi, &lo), -1);
  assert_int_equal(hs_query_parse_id("0x", &hi, &lo), -1);
  assert_int_equal(hs_query_parse_id("12 34", &hi, &lo), -1);
  assert_int_equal(hs_query_parse_id("xyz", &hi, &lo), -1);
  assert_int_equal(hs_query_parse_id("-5", &hi, &lo), -1);
  assert_int_equal(
      hs_query_parse_id("0x4bf92f3577b34da6a3ce929d0e0e47361", &hi, &lo), -1);
  /* 2^128 does not fit. */
  assert_int_equal(
      hs_query_parse_id("340282366920938463463374607431768211456", &hi, &lo),
      -1);
  assert_int_equal(
      hs_query_parse_id("340282366920938463463374607431768211455", &hi, &lo),
      0);
  assert_true(hi == UINT64_MAX && lo == UINT64_MAX);
}

static void test_percentiles(void **state) {
  (void)state;
  int64_t v[100];
  for (int i = 0; i < 100; i++)
    v[i] = i + 1;
  assert_int_equal(hs_query_percentile(v, 100, 50), 50);
  assert_int_equal(hs_query_percentile(v, 100, 95), 95);
  assert_int_equal(hs_query_percentile(v, 100, 99), 99);
  assert_int_equal(hs_query_percentile(v, 100, 100), 100);
  int64_t w[] = {10, 20, 30};
  assert_int_equal(hs_query_percentile(w, 3, 50), 20);
  assert_int_equal(hs_query_percentile(w, 3, 99), 30);
  assert_int_equal(hs_query_percentile(w, 0, 50), 0);
}

static void test_services(void **state) {
  fixture *fx = *state;
  hs_query_services r;
  char err[256];
  assert_int_equal(
      hs_query_services_query(fx->s, T0, T0 + HOUR, &r, err, sizeof err),
      HS_STORE_OK);
  assert_int_equal(r.nservices, 1);
  assert_string_equal(r.services[0].service, "svc");
  assert_int_equal(r.services[0].lat.requests, 3);
  assert_int_equal(r.services[0].lat.errors, 1);
  assert_int_equal(r.services[0].nendpoints, 2);
  const hs_query_endpoint_stat *a = &r.services[0].endpoints[0];
  assert_string_equal(a->endpoint, "GET /a");
  assert_int_equal(a->lat.requests, 2); /* the hour-2 trace is outside */
  assert_int_equal(a->lat.p50_ns, 50 * MS);
  assert_int_equal(a->lat.p99_ns, 100 * MS);
  assert_string_equal(r.services[0].endpoints[1].endpoint, "GET /b");
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_services_json(&r, &b);
  assert_non_null(strstr(hs_buf_cstr(&b),
                         "{\"endpoint\":\"GET /a\",\"requests\":2,\"errors\":"
                         "0,\"p50_ns\":50000000,\"p95_ns\":100000000"));
  hs_buf_free(&b);
  hs_query_services_free(&r);
}

static void test_traces_list_and_trace(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_query_traces r;
  hs_store_trace_filter f = {.service = "svc", .min_duration_ns = 20 * MS};
  assert_int_equal(hs_query_traces_query(fx->s, &f, &r, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(r.n, 3); /* 100, 80 and 50 ms; the 10 ms one is out */
  assert_int_equal(r.rows[0].duration_ns, 100 * MS);
  assert_int_equal(r.rows[1].duration_ns, 80 * MS);
  assert_int_equal(r.rows[2].duration_ns, 50 * MS);
  assert_int_equal(r.rows[0].span_count, 3);
  hs_query_traces_free(&r);
  hs_store_trace_filter e = {.errors_only = 1};
  assert_int_equal(hs_query_traces_query(fx->s, &e, &r, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.rows[0].endpoint, "GET /b");
  hs_query_traces_free(&r);

  hs_query_trace t;
  assert_int_equal(hs_query_trace_query(fx->s, 0, 0xabc, &t, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(t.n, 3);
  assert_int_equal(t.spans[0].span_id, 100);
  assert_int_equal(t.spans[0].depth, 0);
  assert_int_equal(t.spans[1].span_id, 101);
  assert_int_equal(t.spans[1].depth, 1);
  assert_int_equal(t.spans[2].span_id, 102);
  assert_int_equal(t.spans[2].depth, 2);
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_trace_json(&t, &b);
  assert_non_null(strstr(hs_buf_cstr(&b),
                         "\"trace_id\":\"00000000000000000000000000000abc\""));
  assert_non_null(strstr(hs_buf_cstr(&b), "\"span_id\":\"0000000000000066\""));
  hs_buf_free(&b);
  hs_query_trace_free(&t);
  assert_int_equal(hs_query_trace_query(fx->s, 0, 0x999, &t, err, sizeof err),
                   HS_STORE_NOTFOUND);
  assert_non_null(strstr(err, "not found"));
  hs_query_trace_free(&t);
}

static void test_span_hotspots(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_query_hotspots h;
  hs_query_opts o = {0};
  assert_int_equal(hs_query_span_hotspots(fx->s, 100, &o, &h, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(h.nspans, 1);
  assert_int_equal(h.cpu.total, 400 * MS);
  assert_int_equal(h.cpu.samples, 40);
  assert_string_equal(h.cpu.funcs[0].name, "f");
  assert_true(h.cpu.funcs[0].self_pct == 75.0);
  const hs_query_func *g = find_func(&h.cpu, "g");
  assert_non_null(g);
  assert_true(g->self_pct == 25.0);
  const hs_query_func *hd = find_func(&h.cpu, "handler");
  assert_non_null(hd);
  assert_int_equal(hd->self, 0);
  assert_true(hd->total_pct == 100.0);
  assert_null(find_func(&h.cpu, "db_query")); /* the child's */
  assert_int_equal(h.wall.total, 0);
  /* No wall samples: CPU 400 ms against the 100 ms duration. */
  assert_int_equal(h.wall_from_duration, 1);
  assert_string_equal(h.verdict, "cpu-bound");
  /* Flame: root -> main -> handler -> {f 300, g 100}. */
  assert_int_equal(h.cpu.flame.value, 400 * MS);
  assert_int_equal(h.cpu.flame.nchildren, 1);
  const hs_query_flame *hn = &h.cpu.flame.children[0].children[0];
  assert_string_equal(hn->name, "handler");
  assert_int_equal(hn->nchildren, 2);
  assert_string_equal(hn->children[0].name, "f");
  assert_int_equal(hn->children[0].value, 300 * MS);
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_hotspots_json(&h, &b);
  assert_non_null(strstr(hs_buf_cstr(&b),
                         "{\"name\":\"f\",\"self_ns\":300000000,\"total_ns\":"
                         "300000000,\"self_pct\":75,\"total_pct\":75}"));
  assert_non_null(strstr(hs_buf_cstr(&b), "{\"name\":\"f\",\"value\":300000000,"
                                          "\"children\":[]}"));
  hs_buf_free(&b);
  hs_query_hotspots_free(&h);

  /* Including descendants: the child's 20 CPU samples and the
   * grandchild's wall samples count. */
  o.with_children = 1;
  assert_int_equal(hs_query_span_hotspots(fx->s, 100, &o, &h, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(h.nspans, 3);
  assert_int_equal(h.cpu.total, 600 * MS);
  assert_true(find_func(&h.cpu, "f")->self_pct == 50.0);
  assert_int_equal(find_func(&h.cpu, "db_query")->self, 200 * MS);
  assert_int_equal(h.wall.total, 50 * MS);
  hs_query_hotspots_free(&h);

  /* Only wall samples in a wait function: waiting. */
  o.with_children = 0;
  assert_int_equal(hs_query_span_hotspots(fx->s, 102, &o, &h, err, sizeof err),
                   HS_STORE_OK);
  assert_string_equal(h.verdict, "waiting");
  assert_string_equal(h.wall.funcs[0].name, "wait_io");
  assert_true(h.wall.funcs[0].self_pct == 100.0);
  hs_query_hotspots_free(&h);

  /* By line. */
  o.lines = 1;
  assert_int_equal(hs_query_span_hotspots(fx->s, 100, &o, &h, err, sizeof err),
                   HS_STORE_OK);
  assert_string_equal(h.cpu.funcs[0].name, "f a.c:10");
  hs_query_hotspots_free(&h);

  /* Recursion counts a function once per stack in its total. */
  o.lines = 0;
  assert_int_equal(hs_query_span_hotspots(fx->s, 300, &o, &h, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(find_func(&h.cpu, "r")->total, 40 * MS);
  assert_true(find_func(&h.cpu, "r")->total_pct == 100.0);
  hs_query_hotspots_free(&h);

  /* Unknown span. */
  assert_int_equal(
      hs_query_span_hotspots(fx->s, 424242, &o, &h, err, sizeof err),
      HS_STORE_NOTFOUND);
  assert_non_null(strstr(err, "span 0000000000067932 not found"));
  hs_query_hotspots_free(&h);
}

static void test_verdict_rule(void **state) {
  (void)state;
  double r;
  assert_string_equal(hs_query_verdict(50, 100, &r), "cpu-bound");
  assert_true(r == 0.5);
  assert_string_equal(hs_query_verdict(10, 100, &r), "waiting");
  assert_string_equal(hs_query_verdict(11, 100, &r), "mixed");
  assert_string_equal(hs_query_verdict(49, 100, &r), "mixed");
  assert_string_equal(hs_query_verdict(0, 0, &r), "no-samples");
  assert_string_equal(hs_query_verdict(0, 100, &r), "waiting");
}

static void test_endpoint_profile(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_query_endpoint_profile p;
  assert_int_equal(hs_query_endpoint_profile_query(fx->s, "svc", "GET /a", T0,
                                                   T0 + HOUR, NULL, &p, err,
                                                   sizeof err),
                   HS_STORE_OK);
  assert_int_equal(p.requests, 2);
  /* f 300 ms, g 100 ms, db_query 200 ms of CPU; wait_io 50 ms wall. */
  assert_int_equal(p.cpu.total, 600 * MS);
  assert_int_equal(find_func(&p.cpu, "f")->self, 300 * MS);
  assert_int_equal(p.wall.total, 50 * MS);
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_endpoint_profile_json(&p, &b);
  /* Per request: 300 ms / 2 requests. */
  assert_non_null(strstr(hs_buf_cstr(&b),
                         "{\"name\":\"f\",\"self_ns\":300000000,\"total_ns\":"
                         "300000000,\"self_pct\":50,\"total_pct\":50,"
                         "\"self_per_request_ns\":150000000,"
                         "\"total_per_request_ns\":150000000}"));
  assert_non_null(strstr(hs_buf_cstr(&b), "\"requests\":2,"));
  hs_buf_free(&b);
  hs_query_endpoint_profile_free(&p);
  /* Any service. */
  assert_int_equal(hs_query_endpoint_profile_query(fx->s, NULL, "GET /a", T0, 0,
                                                   NULL, &p, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(p.requests, 3);
  assert_int_equal(p.cpu.total, 1300 * MS);
  hs_query_endpoint_profile_free(&p);
  assert_int_equal(hs_query_endpoint_profile_query(fx->s, "svc", "GET /zz", 0,
                                                   0, NULL, &p, err,
                                                   sizeof err),
                   HS_STORE_NOTFOUND);
  assert_non_null(strstr(err, "GET /zz"));
  hs_query_endpoint_profile_free(&p);
}

static void test_endpoint_diff(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_query_diff d;
  assert_int_equal(hs_query_endpoint_diff(fx->s, "svc", "GET /a", HS_PT_CPU, T0,
                                          T0 + HOUR, T0 + HOUR, T0 + 2 * HOUR,
                                          NULL, &d, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(d.before_requests, 2);
  assert_int_equal(d.after_requests, 1);
  /* f: 300 ms / 2 before, 600 ms / 1 after: it grew the most. */
  assert_string_equal(d.rows[0].name, "f");
  assert_true(d.rows[0].before_self == 150.0 * MS);
  assert_true(d.rows[0].after_self == 600.0 * MS);
  assert_true(d.rows[0].delta_self == 450.0 * MS);
  /* db_query vanished: the largest drop, last. */
  assert_string_equal(d.rows[d.n - 1].name, "db_query");
  assert_true(d.rows[d.n - 1].delta_self == -100.0 * MS);
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_diff_json(&d, &b);
  assert_non_null(strstr(hs_buf_cstr(&b),
                         "{\"name\":\"f\",\"before_self_ns\":150000000,"
                         "\"after_self_ns\":600000000,\"delta_self_ns\":"
                         "450000000"));
  hs_buf_free(&b);
  hs_query_diff_free(&d);
  assert_int_equal(hs_query_endpoint_diff(fx->s, "svc", "GET /a", 0, 0, 0, 0, 0,
                                          NULL, &d, err, sizeof err),
                   HS_STORE_ERR);
  hs_query_diff_free(&d);
}

/* Two versions of "shop" serving "GET /v" at the same time (a canary):
 * 1.2.0 roots at T0+0s, +2s, +4s, 1.3.0 roots at T0+1s, +3s, +5s, each
 * root carrying its "version" attribute. Per request, 1.2.0's profile has
 * 10 CPU samples in f and 10 in g, 1.3.0's 30 in f and 10 in g (10 ms
 * each, at the request's start). Noise that must not count: an
 * unversioned "GET /v" request, a 1.3.0 request of another endpoint, and
 * a service "web" with its own version 9.0. */
static int setup_versions(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  tmpdb_make(&fx->t);
  char err[256];
  fx->s = hs_store_open_sqlite(fx->t.path, NULL, err, sizeof err);
  assert_non_null(fx->s);
  static tbatch b;
  static hs_ing_kv va = {"version", "1.2.0", 0}, vb = {"version", "1.3.0", 0},
                   vw = {"version", "9.0", 0};
  for (int v = 0; v < 2; v++) {
    tb_init(&b, "shop");
    b.b.version = v ? "1.3.0" : "1.2.0";
    for (int i = 0; i < 3; i++) {
      int64_t start = T0 + (2 * i + v) * 1000 * MS;
      uint64_t id = (uint64_t)(10 * v + i + 1);
      hs_ing_span *sp =
          tb_span(&b, 0, id, id, 0, "shop", "GET /v", start, 100 * MS);
      sp->attrs = v ? &vb : &va;
      sp->nattrs = 1;
      tb_samples(&b, v ? 30 : 10, HS_PT_CPU, 10 * MS, id, "GET /v", start,
                 stack_f, 3);
      tb_samples(&b, 10, HS_PT_CPU, 10 * MS, id, "GET /v", start, stack_g, 3);
    }
    assert_int_equal(hs_store_ingest(fx->s, &b.b, err, sizeof err),
                     HS_STORE_OK);
  }
  tb_init(&b, "shop"); /* spans only: no profile version */
  tb_span(&b, 0, 50, 50, 0, "shop", "GET /v", T0 + 500 * MS, 10 * MS);
  tb_span(&b, 0, 51, 51, 0, "shop", "GET /other", T0 + 600 * MS, 10 * MS)
      ->attrs = &vb;
  b.spans[1].nattrs = 1;
  assert_int_equal(hs_store_ingest(fx->s, &b.b, err, sizeof err), HS_STORE_OK);
  tb_init(&b, "web");
  b.b.version = "9.0";
  tb_span(&b, 0, 60, 60, 0, "web", "GET /v", T0 + 700 * MS, 10 * MS)->attrs =
      &vw;
  b.spans[0].nattrs = 1;
  tb_samples(&b, 50, HS_PT_CPU, 10 * MS, 60, "GET /v", T0 + 700 * MS, stack_f,
             3);
  assert_int_equal(hs_store_ingest(fx->s, &b.b, err, sizeof err), HS_STORE_OK);
  *state = fx;
  return 0;
}

static const hs_query_diff_row *diff_row(const hs_query_diff *d,
                                         const char *name) {
  for (size_t i = 0; i < d->n; i++)
    if (strcmp(d->rows[i].name, name) == 0)
      return &d->rows[i];
  fail_msg("no row %s", name);
  return NULL;
}

static void test_version_diff(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_query_diff d;
  hs_query_diff_side bs = {0, 0, "1.2.0"}, as = {0, 0, "1.3.0"};
  assert_int_equal(hs_query_endpoint_diff_sides(fx->s, "shop", "GET /v",
                                                HS_PT_CPU, &bs, &as, NULL, &d,
                                                err, sizeof err),
                   HS_STORE_OK);
  /* The unversioned request and the other endpoint's do not count. */
  assert_int_equal(d.before_requests, 3);
  assert_int_equal(d.after_requests, 3);
  /* f: 300 ms / 3 before, 900 ms / 3 after: +200 ms (+200 %) per
   * request, first; g unchanged at 100 ms. */
  assert_string_equal(d.rows[0].name, "f");
  assert_true(d.rows[0].before_self == 100.0 * MS);
  assert_true(d.rows[0].after_self == 300.0 * MS);
  assert_true(d.rows[0].delta_self == 200.0 * MS);
  assert_true(d.rows[0].delta_self / d.rows[0].before_self == 2.0);
  const hs_query_diff_row *g = diff_row(&d, "g");
  assert_true(g->before_self == 100.0 * MS && g->after_self == 100.0 * MS);
  assert_true(g->delta_self == 0);
  /* handler and main: total 200 -> 400 ms per request. */
  const hs_query_diff_row *h = diff_row(&d, "handler");
  assert_true(h->before_total == 200.0 * MS && h->after_total == 400.0 * MS);
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_diff_json(&d, &b);
  assert_non_null(strstr(hs_buf_cstr(&b),
                         "\"before\":{\"from_ns\":0,\"to_ns\":0,\"requests\":3,"
                         "\"version\":\"1.2.0\"},\"after\":{\"from_ns\":0,"
                         "\"to_ns\":0,\"requests\":3,\"version\":\"1.3.0\"}"));
  hs_buf_free(&b);
  hs_query_diff_free(&d);

  /* Any service: web's 9.0 is not 1.2.0, so the answer is the same. */
  assert_int_equal(hs_query_endpoint_diff_sides(fx->s, NULL, "GET /v",
                                                HS_PT_CPU, &bs, &as, NULL, &d,
                                                err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(d.before_requests, 3);
  assert_true(diff_row(&d, "f")->after_self == 300.0 * MS);
  hs_query_diff_free(&d);

  /* A version within a range: [T0, T0+3s) holds 1.2.0's first two
   * requests and 1.3.0's first. */
  bs.to_ns = as.to_ns = T0 + 3000 * MS;
  bs.from_ns = as.from_ns = T0;
  assert_int_equal(hs_query_endpoint_diff_sides(fx->s, "shop", "GET /v",
                                                HS_PT_CPU, &bs, &as, NULL, &d,
                                                err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(d.before_requests, 2);
  assert_int_equal(d.after_requests, 1);
  assert_true(d.rows[0].before_self == 100.0 * MS);
  assert_true(d.rows[0].after_self == 300.0 * MS);
  hs_query_diff_free(&d);
}

static void test_version_diff_bad_input(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_query_diff d;
  hs_query_diff_side bs = {0, 0, "1.2.0"}, as = {0, 0, "7.7"};
  assert_int_equal(hs_query_endpoint_diff_sides(fx->s, "shop", "GET /v",
                                                HS_PT_CPU, &bs, &as, NULL, &d,
                                                err, sizeof err),
                   HS_STORE_NOTFOUND);
  assert_string_equal(err, "version '7.7' is unknown for service shop"
                           " (known: 1.2.0, 1.3.0)");
  assert_int_equal(d.n, 0);
  hs_query_diff_free(&d);
  /* 9.0 is web's, not shop's. */
  as.version = "9.0";
  assert_int_equal(hs_query_endpoint_diff_sides(fx->s, "shop", "GET /v",
                                                HS_PT_CPU, &bs, &as, NULL, &d,
                                                err, sizeof err),
                   HS_STORE_NOTFOUND);
  hs_query_diff_free(&d);
  /* Known versions, but nothing of them in the range. */
  as.version = "1.3.0";
  as.from_ns = T0 + HOUR;
  as.to_ns = T0 + 2 * HOUR;
  assert_int_equal(hs_query_endpoint_diff_sides(fx->s, "shop", "GET /v",
                                                HS_PT_CPU, &bs, &as, NULL, &d,
                                                err, sizeof err),
                   HS_STORE_NOTFOUND);
  assert_non_null(strstr(err, "version '1.3.0': no requests or samples"));
  hs_query_diff_free(&d);
  /* One version alone. */
  as.version = NULL;
  assert_int_equal(hs_query_endpoint_diff_sides(fx->s, "shop", "GET /v",
                                                HS_PT_CPU, &bs, &as, NULL, &d,
                                                err, sizeof err),
                   HS_STORE_ERR);
  assert_non_null(strstr(err, "both versions"));
  hs_query_diff_free(&d);
}

static void test_versions_query(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_query_versions v;
  assert_int_equal(hs_query_versions_query(fx->s, "shop", &v, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(v.n, 2);
  assert_string_equal(v.v[0].version, "1.2.0");
  assert_int_equal(v.v[0].requests, 3);
  assert_int_equal(v.v[0].samples, 60);
  assert_int_equal(v.v[0].first_ns, T0);
  assert_int_equal(v.v[0].last_ns, T0 + 4000 * MS);
  assert_string_equal(v.v[1].version, "1.3.0");
  assert_int_equal(v.v[1].requests, 4); /* with GET /other's */
  assert_int_equal(v.v[1].samples, 120);
  assert_int_equal(v.v[1].first_ns, T0 + 600 * MS);
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_versions_json(&v, &b);
  assert_non_null(strstr(hs_buf_cstr(&b),
                         "{\"service\":\"shop\",\"versions\":[{\"service\":"
                         "\"shop\",\"version\":\"1.2.0\",\"requests\":3,"
                         "\"samples\":60,\"first_ns\":"));
  hs_buf_free(&b);
  hs_query_versions_free(&v);
  assert_int_equal(hs_query_versions_query(fx->s, NULL, &v, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(v.n, 3);
  assert_string_equal(v.v[2].service, "web");
  hs_query_versions_free(&v);
  assert_int_equal(hs_query_versions_query(fx->s, "zz", &v, err, sizeof err),
                   HS_STORE_NOTFOUND);
  assert_string_equal(err, "no versions known for service zz");
  hs_query_versions_free(&v);
}

static void test_export_folded(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_selection sel = {.span_id = 100, .type = HS_PT_CPU};
  assert_int_equal(hs_query_export_folded(fx->s, &sel, &b, err, sizeof err),
                   HS_STORE_OK);
  assert_string_equal(hs_buf_cstr(&b), "main;handler;f 300000000\n"
                                       "main;handler;g 100000000\n");
  hs_buf_reset(&b);
  sel.with_children = 1;
  assert_int_equal(hs_query_export_folded(fx->s, &sel, &b, err, sizeof err),
                   HS_STORE_OK);
  assert_string_equal(hs_buf_cstr(&b), "main;child_fn;db_query 200000000\n"
                                       "main;handler;f 300000000\n"
                                       "main;handler;g 100000000\n");
  hs_buf_reset(&b);
  hs_query_selection ep = {.endpoint = "GET /b", .type = HS_PT_CPU, .lines = 1};
  assert_int_equal(hs_query_export_folded(fx->s, &ep, &b, err, sizeof err),
                   HS_STORE_OK);
  assert_string_equal(hs_buf_cstr(&b),
                      "main a.c:30;r r.c:2;r r.c:1 40000000\n");
  hs_buf_reset(&b);
  sel.span_id = 5555;
  assert_int_equal(hs_query_export_folded(fx->s, &sel, &b, err, sizeof err),
                   HS_STORE_NOTFOUND);
  assert_int_equal(b.len, 0);
  hs_buf_free(&b);
}

static void test_export_pprof(void **state) {
  fixture *fx = *state;
  char err[256];
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_query_selection sel = {.span_id = 100, .type = HS_PT_CPU};
  assert_int_equal(hs_query_export_pprof(fx->s, &sel, &b, err, sizeof err),
                   HS_STORE_OK);
  /* gzip, then a protobuf that names the frames and value types. */
  size_t n;
  uint8_t *raw = ts_gunzip(b.data, b.len, &n);
  const char *want[] = {"handler", "main", "samples",
                        "count",   "cpu",  "nanoseconds"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    assert_non_null(memmem(raw, n, want[i], strlen(want[i])));
  free(raw);
  hs_buf_free(&b);
}

/* Values no sum can hold: two stacks of 0.75 * 2^63 (the store takes what
 * a caller gives it; the agent refuses such values, older databases may
 * hold them) saturate at INT64_MAX instead of wrapping to a negative
 * total (UBSan aborts on the signed overflow this test once caught), and
 * the query still answers. A stack deeper than the frame cap comes back
 * cut, its outermost caller replaced by the marker. */
static void test_huge_values_and_deep_stacks(void **state) {
  (void)state;
  tmpdb t;
  tmpdb_make(&t);
  char err[256];
  hs_store *s = hs_store_open_sqlite(t.path, NULL, err, sizeof err);
  assert_non_null(s);
  static tbatch b;
  tb_init(&b, "svc");
  tb_span(&b, 0, 0x999, 900, 0, "svc", "GET /huge", T0, 100 * MS);
  const int64_t big = INT64_MAX / 4 * 3;
  tb_samples(&b, 1, HS_PT_CPU, big, 900, "GET /huge", T0, stack_f, 3);
  tb_samples(&b, 1, HS_PT_CPU, big, 900, "GET /huge", T0, stack_g, 3);
  static hs_ing_frame deep[HS_ING_MAX_FRAMES + 500];
  for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++)
    deep[i] =
        (hs_ing_frame){i == 0 ? "leaf" : "caller", "d.c", (int64_t)i, "app"};
  tb_samples(&b, 1, HS_PT_WALL, 10 * MS, 900, "GET /huge", T0, deep,
             sizeof deep / sizeof deep[0]);
  assert_int_equal(hs_store_ingest(s, &b.b, err, sizeof err), HS_STORE_OK);

  hs_query_hotspots h;
  assert_int_equal(hs_query_span_hotspots(s, 900, NULL, &h, err, sizeof err),
                   HS_STORE_OK);
  assert_int_equal(h.cpu.total, INT64_MAX);
  assert_int_equal(h.cpu.flame.value, INT64_MAX);
  assert_int_equal(find_func(&h.cpu, "handler")->total, INT64_MAX);
  /* The wall flame graph: root, then the marker, then 1023 frames. */
  const hs_query_flame *n = &h.wall.flame;
  size_t depth = 0;
  while (n->nchildren > 0) {
    n = &n->children[0];
    if (depth++ == 0)
      assert_string_equal(n->name, HS_ING_TRUNCATED_FRAME);
  }
  assert_int_equal(depth, HS_ING_MAX_FRAMES);
  assert_string_equal(n->name, "leaf");
  hs_query_hotspots_free(&h);
  hs_store_close(s);
  tmpdb_remove(&t);
}

static void test_no_store(void **state) {
  (void)state;
  char err[256];
  hs_query_hotspots h;
  assert_int_equal(hs_query_span_hotspots(NULL, 1, NULL, &h, err, sizeof err),
                   HS_STORE_ERR);
  hs_query_hotspots_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_id),
      cmocka_unit_test(test_percentiles),
      cmocka_unit_test(test_verdict_rule),
      cmocka_unit_test_setup_teardown(test_services, setup, teardown),
      cmocka_unit_test_setup_teardown(test_traces_list_and_trace, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_span_hotspots, setup, teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_profile, setup, teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_diff, setup, teardown),
      cmocka_unit_test_setup_teardown(test_version_diff, setup_versions,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_version_diff_bad_input,
                                      setup_versions, teardown),
      cmocka_unit_test_setup_teardown(test_versions_query, setup_versions,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_export_folded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_export_pprof, setup, teardown),
      cmocka_unit_test(test_huge_values_and_deep_stacks),
      cmocka_unit_test(test_no_store),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
