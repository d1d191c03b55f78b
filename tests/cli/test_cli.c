/* The hotspan CLI's query side: parsing of times, durations and ids as
 * users type them, the agent API paths, the rendering of known store
 * contents (exact tables), exit codes, and the agent backend against a
 * one-shot fake agent that serves what the store backend produced (both
 * must render the same). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/store.h"
#include "cli/cli.h"
#include "support/store_fixtures.h"

#define S 1000000000LL
#define MS 1000000LL
/* 2024-05-01T12:00:00Z */
#define NOW (1714564800LL * S)

/* ------------------------------------------------------------ parsing */

static void test_durations(void **state) {
  (void)state;
  int64_t ns;
  assert_int_equal(hs_cli_parse_duration("250ms", &ns), 0);
  assert_int_equal(ns, 250 * MS);
  assert_int_equal(hs_cli_parse_duration("1.5s", &ns), 0);
  assert_int_equal(ns, 1500 * MS);
  assert_int_equal(hs_cli_parse_duration("2m", &ns), 0);
  assert_int_equal(ns, 120 * S);
  assert_int_equal(hs_cli_parse_duration("1h", &ns), 0);
  assert_int_equal(ns, 3600 * S);
  assert_int_equal(hs_cli_parse_duration("10us", &ns), 0);
  assert_int_equal(ns, 10000);
  assert_int_equal(hs_cli_parse_duration("500ns", &ns), 0);
  assert_int_equal(ns, 500);
  assert_int_equal(hs_cli_parse_duration("0", &ns), 0);
  assert_int_equal(ns, 0);
  const char *bad[] = {"",      "5",     "ms",    "1.5.5s",
                       "-1s",   "1e3s",  "10 ms", "1h ",
                       "0x10s", "inf s", "nanms", "99999999999999h",
                       "1.s.",  ".s"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(hs_cli_parse_duration(bad[i], &ns), -1);
}

static void test_times(void **state) {
  (void)state;
  int64_t ns;
  assert_int_equal(hs_cli_parse_time("2024-05-01T12:00:00Z", 0, &ns), 0);
  assert_int_equal(ns, NOW);
  assert_int_equal(hs_cli_parse_time("2024-05-01 14:00:00.25+02:00", 0, &ns),
                   0);
  assert_int_equal(ns, NOW + 250 * MS);
  assert_int_equal(hs_cli_parse_time("2024-05-01T11:30:00-00:30", 0, &ns), 0);
  assert_int_equal(ns, NOW);
  assert_int_equal(hs_cli_parse_time("2024-05-01", 0, &ns), 0);
  assert_int_equal(ns, NOW - 12 * 3600 * S);
  assert_int_equal(hs_cli_parse_time("2024-02-29T00:00:00Z", 0, &ns), 0);
  assert_int_equal(hs_cli_parse_time("1714564800", 0, &ns), 0);
  assert_int_equal(ns, NOW);
  assert_int_equal(hs_cli_parse_time("1714564800.5", 0, &ns), 0);
  assert_int_equal(ns, NOW + 500 * MS);
  assert_int_equal(hs_cli_parse_time("now", NOW, &ns), 0);
  assert_int_equal(ns, NOW);
  assert_int_equal(hs_cli_parse_time("-1h", NOW, &ns), 0);
  assert_int_equal(ns, NOW - 3600 * S);
  assert_int_equal(hs_cli_parse_time("30m", NOW, &ns), 0);
  assert_int_equal(ns, NOW - 1800 * S);
  const char *bad[] = {"",
                       "yesterday",
                       "12:00",
                       "2023-02-29T00:00:00Z",
                       "2024-04-31",
                       "2024-05-01T25:00:00Z",
                       "2024-05-01T12:00:00",
                       "2024-05-01T12:00:00+2:00",
                       "2024-05-01T12:00:00.Z",
                       "2024-05-01T12:00:00Zjunk",
                       "2024-13-01",
                       "9999-12-31T00:00:00Z",
                       "1e9",
                       "-1714564800",
                       "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (hs_cli_parse_time(bad[i], NOW, &ns) != -1)
      fail_msg("'%s' parsed as %lld", bad[i], (long long)ns);
  }
  int64_t a, b;
  assert_int_equal(hs_cli_parse_range("-2h..-1h", NOW, &a, &b), 0);
  assert_int_equal(a, NOW - 7200 * S);
  assert_int_equal(b, NOW - 3600 * S);
  assert_int_equal(hs_cli_parse_range("-1h..", NOW, &a, &b), 0);
  assert_int_equal(b, NOW);
  assert_int_equal(hs_cli_parse_range("-1h..-2h", NOW, &a, &b), -1);
  assert_int_equal(hs_cli_parse_range("-1h", NOW, &a, &b), -1);
  assert_int_equal(hs_cli_parse_range("..-1h", NOW, &a, &b), -1);
}

static void test_formats(void **state) {
  (void)state;
  char b[64];
  hs_cli_fmt_duration(850, b, sizeof b);
  assert_string_equal(b, "850 ns");
  hs_cli_fmt_duration(12345, b, sizeof b);
  assert_string_equal(b, "12.3 us");
  hs_cli_fmt_duration(1.2e6, b, sizeof b);
  assert_string_equal(b, "1.2 ms");
  hs_cli_fmt_duration(3.4e9, b, sizeof b);
  assert_string_equal(b, "3.40 s");
  hs_cli_fmt_duration(150e9, b, sizeof b);
  assert_string_equal(b, "2.5 min");
  hs_cli_fmt_duration(-2e6, b, sizeof b);
  assert_string_equal(b, "-2.0 ms");
  hs_cli_fmt_time(NOW + 123 * MS, b, sizeof b);
  assert_string_equal(b, "2024-05-01T12:00:00.123Z");
  hs_cli_fmt_time(-1 * MS, b, sizeof b);
  assert_string_equal(b, "1969-12-31T23:59:59.999Z");
}

static void test_api_paths(void **state) {
  (void)state;
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_cli_query q = {0};
  q.kind = HS_Q_TRACES;
  q.service = "shop";
  q.endpoint = "GET /checkout?x=1&y";
  q.min_duration_ns = 250 * MS;
  q.errors_only = 1;
  q.limit = 5;
  q.from_ns = 10;
  hs_cli_api_path(&q, &b);
  assert_string_equal(hs_buf_cstr(&b),
                      "/api/v1/traces?service=shop&endpoint=GET%20%2Fcheckout"
                      "%3Fx%3D1%26y&min_duration_ns=250000000&error=1&limit=5"
                      "&from=10");
  hs_buf_reset(&b);
  memset(&q, 0, sizeof q);
  q.kind = HS_Q_HOTSPOTS;
  q.id_lo = 0x4d2;
  q.type = HS_CLI_WALL;
  q.children = 1;
  hs_cli_api_path(&q, &b);
  assert_string_equal(
      hs_buf_cstr(&b),
      "/api/v1/spans/00000000000004d2/hotspots?type=wall&children=1&lines=0");
  hs_buf_reset(&b);
  memset(&q, 0, sizeof q);
  q.kind = HS_Q_TRACE;
  q.id_hi = 1;
  q.id_lo = 2;
  hs_cli_api_path(&q, &b);
  assert_string_equal(hs_buf_cstr(&b),
                      "/api/v1/traces/00000000000000010000000000000002");
  hs_buf_reset(&b);
  /* A version diff without ranges sends no range; with one, that side's. */
  memset(&q, 0, sizeof q);
  q.kind = HS_Q_DIFF;
  q.endpoint = "GET /v";
  q.before_version = "1.2.0";
  q.after_version = "1.3.0+b 1";
  hs_cli_api_path(&q, &b);
  assert_string_equal(hs_buf_cstr(&b),
                      "/api/v1/diff?endpoint=GET%20%2Fv&before_version=1.2.0"
                      "&after_version=1.3.0%2Bb%201&type=cpu");
  hs_buf_reset(&b);
  q.after_from = 5;
  q.after_to = 9;
  hs_cli_api_path(&q, &b);
  assert_string_equal(hs_buf_cstr(&b),
                      "/api/v1/diff?endpoint=GET%20%2Fv&after_from=5"
                      "&after_to=9&before_version=1.2.0"
                      "&after_version=1.3.0%2Bb%201&type=cpu");
  hs_buf_reset(&b);
  memset(&q, 0, sizeof q);
  q.kind = HS_Q_VERSIONS;
  q.service = "shop";
  hs_cli_api_path(&q, &b);
  assert_string_equal(hs_buf_cstr(&b), "/api/v1/versions?service=shop");
  hs_buf_free(&b);
}

/* ------------------------------------------------------------ running */

typedef struct run_out {
  int rc;
  char *out, *err;
  size_t outlen, errlen;
} run_out;

static void run_free(run_out *r) {
  free(r->out);
  free(r->err);
}

/* Runs `hotspan ARGS...` (NULL-terminated) in process, capturing output. */
static run_out run(const char *first, ...) {
  char *argv[64];
  int argc = 0;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *))
    argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  run_out r = {0};
  FILE *o = open_memstream(&r.out, &r.outlen);
  FILE *e = open_memstream(&r.err, &r.errlen);
  assert_non_null(o);
  assert_non_null(e);
  r.rc = hs_cli_query_main(argc, argv, NOW, o, e);
  fclose(o);
  fclose(e);
  return r;
}

#define EXPECT_USAGE(...)                                                      \
  do {                                                                         \
    run_out r_ = run(__VA_ARGS__, NULL);                                       \
    if (r_.rc != HS_CLI_USAGE || strstr(r_.err, "hotspan ") == NULL ||         \
        r_.outlen != 0)                                                        \
      fail_msg("rc %d, err '%s'", r_.rc, r_.err);                              \
    run_free(&r_);                                                             \
  } while (0)

static void test_usage_errors(void **state) {
  (void)state;
  EXPECT_USAGE("hotspots", "zz");
  EXPECT_USAGE("hotspots");
  EXPECT_USAGE("hotspots", "0af7651916cd43dd8448eb211c80319c"); /* 128-bit */
  EXPECT_USAGE("hotspots", "12", "34");
  EXPECT_USAGE("hotspots", "12", "--since", "1h");
  EXPECT_USAGE("trace");
  EXPECT_USAGE("trace", "0x");
  EXPECT_USAGE("traces", "--slowest", "0");
  EXPECT_USAGE("traces", "--slowest", "five");
  EXPECT_USAGE("traces", "--slowest");
  EXPECT_USAGE("traces", "--min-duration", "5");
  EXPECT_USAGE("traces", "--since", "1h", "--from", "-2h");
  EXPECT_USAGE("traces", "--from", "-1h", "--to", "-2h");
  EXPECT_USAGE("traces", "--from", "tomorrow");
  EXPECT_USAGE("traces", "--errors=1");
  EXPECT_USAGE("traces", "--bogus");
  EXPECT_USAGE("traces", "--wall");
  EXPECT_USAGE("endpoints", "--agent", "");
  EXPECT_USAGE("profile");
  EXPECT_USAGE("profile", "--endpoint", "GET /a", "--format", "svg");
  EXPECT_USAGE("profile", "--endpoint", "GET /a", "--format", "pprof",
               "--json");
  EXPECT_USAGE("diff", "--endpoint", "GET /a", "--before", "-1h..-2h",
               "--after", "-1h..");
  EXPECT_USAGE("diff", "--endpoint", "GET /a", "--before", "-2h..-1h");
  EXPECT_USAGE("diff", "--endpoint", "GET /a", "--before-version", "1.2.0");
  EXPECT_USAGE("diff", "--endpoint", "GET /a", "--after-version", "1.3.0",
               "--before", "-2h..-1h", "--after", "-1h..");
  EXPECT_USAGE("diff", "--endpoint", "GET /a", "--before-version", "",
               "--after-version", "1.3.0");
  EXPECT_USAGE("versions", "--endpoint", "GET /a");
  EXPECT_USAGE("versions", "1.2.0");
  run_out r = run("traces", "--help", NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "usage: hotspan traces"));
  run_free(&r);
}

/* ---------------------------------------------------------- the store */

static tmpdb db;
static const uint64_t T1 = 0x0af7651916cd43ddULL, T2 = 0x1111;
static const uint64_t ROOT = 0x1000, PRICING = 0x1001, REPORT = 0x2000;

static int setup_db(void **state) {
  (void)state;
  tmpdb_make(&db);
  char err[256];
  hs_store *s = hs_store_open_sqlite(db.path, NULL, err, sizeof err);
  if (s == NULL)
    fail_msg("%s", err);
  static tbatch tb;
  tb_init(&tb, "shop");
  int64_t t0 = NOW - 600 * S;
  hs_ing_span *root =
      tb_span(&tb, 0x1, T1, ROOT, 0, "shop", "GET /checkout", t0, 100 * MS);
  root->name = "http.request";
  /* The sender's resource: the trace header shows it, but service.name. */
  hs_ing_kv res[] = {{"service.name", "shop", 0},
                     {"deployment.environment", "prod", 0},
                     {"process.pid", NULL, 4242}};
  root->resource_attrs = res;
  root->nresource_attrs = 3;
  hs_ing_span *pr = tb_span(&tb, 0x1, T1, PRICING, ROOT, "shop", "pricing",
                            t0 + 10 * MS, 80 * MS);
  pr->name = "pricing";
  /* An exception event (a message with a newline, a stack trace the table
   * leaves out), a link, and events the sender dropped. */
  hs_ing_kv exc[] = {{"exception.type", "Timeout", 0},
                     {"exception.message", "ledger\nslow", 0},
                     {"exception.stacktrace", "at a\nat b", 0},
                     {"retry", NULL, 2}};
  hs_ing_event ev = {t0 + 50 * MS, "exception", exc, 4};
  /* 64 bytes: the table cuts it at 60. */
  hs_ing_kv lka = {
      "link.kind",
      "batch-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 0};
  hs_ing_link lk = {0, 0x2, 0xaa, NULL, 1, &lka, 1};
  pr->events = &ev;
  pr->nevents = 1;
  pr->dropped_events = 2;
  pr->links = &lk;
  pr->nlinks = 1;
  hs_ing_span *r =
      tb_span(&tb, 0, T2, REPORT, 0, "shop", "GET /report", t0 + S, 300 * MS);
  r->name = "http.request";
  r->error = 1;
  static const hs_ing_frame hot[] = {{"compute_price_rules", "shop.c", 42, ""},
                                     {"handle", "shop.c", 10, ""},
                                     {"main", "shop.c", 3, ""}};
  static const hs_ing_frame cart[] = {{"parse_cart", "shop.c", 20, ""},
                                      {"handle", "shop.c", 11, ""},
                                      {"main", "shop.c", 3, ""}};
  static const hs_ing_frame wait[] = {{"nanosleep", "", 0, "libc.so.6"},
                                      {"wait_for_ledger", "shop.c", 60, ""},
                                      {"main", "shop.c", 3, ""}};
  tb_samples(&tb, 8, HS_PT_CPU, 10 * MS, PRICING, "GET /checkout", t0, hot, 3);
  tb_samples(&tb, 2, HS_PT_CPU, 10 * MS, ROOT, "GET /checkout", t0, cart, 3);
  tb_samples(&tb, 9, HS_PT_WALL, 10 * MS, PRICING, "GET /checkout", t0, hot, 3);
  tb_samples(&tb, 1, HS_PT_WALL, 10 * MS, ROOT, "GET /checkout", t0, cart, 3);
  tb_samples(&tb, 30, HS_PT_WALL, 10 * MS, REPORT, "GET /report", t0 + S, wait,
             3);
  if (hs_store_ingest(s, &tb.b, err, sizeof err) != HS_STORE_OK)
    fail_msg("%s", err);
  hs_store_close(s);
  return 0;
}

static int teardown_db(void **state) {
  (void)state;
  tmpdb_remove(&db);
  return 0;
}

static void test_db_traces(void **state) {
  (void)state;
  run_out r = run("traces", "--db", db.path, "--slowest", "5", NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(
      r.out,
      "TRACE ID                          ROOT SPAN         SERVICE  ENDPOINT  "
      "     START                     DURATION  SPANS  ERROR\n"
      "00000000000000000000000000001111  0000000000002000  shop     GET "
      "/report    2024-05-01T11:50:01.000Z  300.0 ms      1  error\n"
      "00000000000000010af7651916cd43dd  0000000000001000  shop     GET "
      "/checkout  2024-05-01T11:50:00.000Z  100.0 ms      2\n");
  run_free(&r);
  /* Filters that leave nothing: exit 1 with a message. */
  r = run("traces", "--db", db.path, "--min-duration", "1s", NULL);
  assert_int_equal(r.rc, 1);
  assert_non_null(strstr(r.err, "nothing found"));
  run_free(&r);
  r = run("traces", "--db", db.path, "--since", "5m", NULL);
  assert_int_equal(r.rc, 1);
  run_free(&r);
  r = run("traces", "--db", db.path, "--errors", "--json", NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "\"root_span_id\":\"0000000000002000\""));
  assert_null(strstr(r.out, "0000000000001000"));
  run_free(&r);
}

static void test_db_hotspots(void **state) {
  (void)state;
  /* Ids as users copy them: 16 hex digits, 0x-hex, decimal. */
  const char *ids[] = {"0000000000001000", "0x1000", "4096"};
  for (int i = 0; i < 3; i++) {
    run_out r = run("hotspots", ids[i], "--children", "--db", db.path, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(
        r.out,
        "span 0000000000001000  shop  http.request  GET /checkout  100.0 ms\n"
        "trace 00000000000000010af7651916cd43dd  (samples of 2 spans: the "
        "span and its children)\n"
        "verdict: cpu-bound (cpu/wall 1.00)\n"
        "\n"
        "CPU  total 100.0 ms, 10 samples\n"
        "     SELF  SELF%     TOTAL  TOTAL%  FUNCTION\n"
        "  80.0 ms  80.0%   80.0 ms   80.0%  compute_price_rules\n"
        "  20.0 ms  20.0%   20.0 ms   20.0%  parse_cart\n"
        "     0 ns   0.0%  100.0 ms  100.0%  handle\n"
        "     0 ns   0.0%  100.0 ms  100.0%  main\n"
        "\n"
        "  call tree (>= 1% of the total):\n"
        "  100.0%   100.0 ms  main\n"
        "  100.0%   100.0 ms    handle\n"
        "   80.0%    80.0 ms      compute_price_rules\n"
        "   20.0%    20.0 ms      parse_cart\n"
        "\n"
        "WALL  total 100.0 ms, 10 samples\n"
        "     SELF  SELF%     TOTAL  TOTAL%  FUNCTION\n"
        "  90.0 ms  90.0%   90.0 ms   90.0%  compute_price_rules\n"
        "  10.0 ms  10.0%   10.0 ms   10.0%  parse_cart\n"
        "     0 ns   0.0%  100.0 ms  100.0%  handle\n"
        "     0 ns   0.0%  100.0 ms  100.0%  main\n"
        "\n"
        "  call tree (>= 1% of the total):\n"
        "  100.0%   100.0 ms  main\n"
        "  100.0%   100.0 ms    handle\n"
        "   90.0%    90.0 ms      compute_price_rules\n"
        "   10.0%    10.0 ms      parse_cart\n");
    run_free(&r);
  }
  /* Without children, --cpu only: the root's own samples. */
  run_out r = run("hotspots", "0x1000", "--cpu", "--db", db.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "CPU  total 20.0 ms, 2 samples\n"));
  assert_null(strstr(r.out, "WALL"));
  assert_null(strstr(r.out, "compute_price_rules"));
  run_free(&r);
  /* A waiting span. */
  r = run("hotspots", "0x2000", "--db", db.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "verdict: waiting (cpu/wall 0.00)\n"));
  assert_non_null(strstr(r.out, "300.0 ms  100.0%  wait_for_ledger\n"));
  run_free(&r);
  /* Unknown span: exit 1, message from the engine. */
  r = run("hotspots", "0x9999", "--db", db.path, NULL);
  assert_int_equal(r.rc, 1);
  assert_int_equal(r.outlen, 0);
  assert_non_null(strstr(r.err, "hotspan hotspots: "));
  run_free(&r);
}

static void test_db_trace_endpoints_profile_diff(void **state) {
  (void)state;
  run_out r =
      run("trace", "00000000000000010af7651916cd43dd", "--db", db.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(
      r.out,
      "trace 00000000000000010af7651916cd43dd  shop  GET /checkout  100.0 ms  "
      "2 spans  started 2024-05-01T11:50:00.000Z\n"
      "resource  deployment.environment=prod  process.pid=4242\n"
      "\n"
      "SPAN ID              START  DURATION  SERVICE  SPAN\n"
      "0000000000001000     +0 ns  100.0 ms  shop     http.request  GET "
      "/checkout\n"
      "0000000000001001  +10.0 ms   80.0 ms  shop       pricing\n"
      "                  +50.0 ms                         event exception  "
      "exception.type=Timeout  exception.message=ledger slow  retry=2\n"
      "                                                   link "
      "00000000000000000000000000000002 00000000000000aa  "
      "link.kind=batch-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz.."
      ".\n"
      "                                                   2 events and 0 "
      "links dropped by the sender\n");
  run_free(&r);
  /* The JSON keeps everything, the stack trace too. */
  r = run("trace", "00000000000000010af7651916cd43dd", "--json", "--db",
          db.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "\"exception.stacktrace\":\"at a\\nat b\""));
  assert_non_null(strstr(r.out,
                         "\"dropped_events\":2,\"links\":[{"
                         "\"trace_id\":\"00000000000000000000000000000002\""));
  run_free(&r);
  r = run("trace", "0x5", "--db", db.path, NULL);
  assert_int_equal(r.rc, 1);
  run_free(&r);

  r = run("endpoints", "--db", db.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(
      r.out, "SERVICE  ENDPOINT       REQUESTS  ERRORS       P50       P95  "
             "     P99       MAX\n"
             "shop     GET /checkout         1       0  100.0 ms  100.0 ms  "
             "100.0 ms  100.0 ms\n"
             "shop     GET /report           1       1  300.0 ms  300.0 ms  "
             "300.0 ms  300.0 ms\n");
  run_free(&r);

  r = run("profile", "--endpoint", "GET /report", "--wall", "--db", db.path,
          NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "endpoint GET /report  "
                                "2024-05-01T11:00:00.000Z .. now  1 requests"));
  assert_non_null(strstr(r.out, "WALL  total 300.0 ms (300.0 ms per request), "
                                "30 samples\n"));
  run_free(&r);
  r = run("profile", "--endpoint", "GET /checkout", "--per-request", "--format",
          "folded", "--db", db.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "main;handle;compute_price_rules 80000000\n"
                             "main;handle;parse_cart 20000000\n");
  run_free(&r);
  r = run("profile", "--endpoint", "GET /nowhere", "--db", db.path, NULL);
  assert_int_equal(r.rc, 1);
  run_free(&r);

  r = run("diff", "--endpoint", "GET /checkout", "--before", "-3h..-2h",
          "--after", "-1h..", "--db", db.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "+80.0 ms    0 ns  80.0 ms     +80.0 ms  "
                                "compute_price_rules\n"));
  run_free(&r);
}

static void test_backend_errors(void **state) {
  (void)state;
  run_out r = run("traces", "--db", "/nonexistent-dir/x.db", NULL);
  assert_int_equal(r.rc, 3);
  assert_non_null(strstr(r.err, "/nonexistent-dir"));
  run_free(&r);
  char path[160];
  snprintf(path, sizeof path, "%s/not-sqlite.db", db.dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("this is not a database, just text that is long enough to be read\n",
        f);
  fclose(f);
  r = run("endpoints", "--db", path, NULL);
  assert_int_equal(r.rc, 3);
  run_free(&r);
  unlink(path);
  /* Port 1 on loopback: nothing listens, the connection is refused. */
  r = run("traces", "--agent", "http://127.0.0.1:1", NULL);
  assert_int_equal(r.rc, 3);
  assert_non_null(strstr(r.err, "cannot reach hotspan-agent"));
  run_free(&r);
}

static void test_render_bad_documents(void **state) {
  (void)state;
  const char *docs[] = {"[]", "{}", "{\"traces\":5}", "{\"span_id\":1}",
                        "{\"trace\":{},\"spans\":{}}"};
  for (int k = HS_Q_SERVICES; k <= HS_Q_DIFF; k++) {
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
      hs_json_doc *d = NULL;
      char err[128];
      assert_int_equal(hs_json_parse(docs[i], strlen(docs[i]), NULL, &d, err,
                                     sizeof err, NULL),
                       0);
      char *o = NULL, *e = NULL;
      size_t ol, el;
      FILE *of = open_memstream(&o, &ol), *ef = open_memstream(&e, &el);
      int rc = hs_cli_render((hs_cli_kind)k, hs_json_root(d), NULL, of, ef);
      fclose(of);
      fclose(ef);
      assert_int_equal(rc, HS_CLI_BACKEND);
      assert_non_null(strstr(e, "not the document expected"));
      free(o);
      free(e);
      hs_json_free(d);
    }
  }
  /* Members of the wrong type render as empty cells, not crashes. */
  const char *odd = "{\"traces\":[{\"trace_id\":7,\"duration_ns\":\"x\"},3]}";
  hs_json_doc *d = NULL;
  assert_int_equal(hs_json_parse(odd, strlen(odd), NULL, &d, NULL, 0, NULL), 0);
  char *o = NULL;
  size_t ol;
  FILE *of = open_memstream(&o, &ol);
  assert_int_equal(hs_cli_render(HS_Q_TRACES, hs_json_root(d), NULL, of, of),
                   0);
  fclose(of);
  assert_non_null(strstr(o, "0 ns"));
  free(o);
  hs_json_free(d);
}

/* ------------------------------------------------------ the fake agent */

typedef struct fake_agent {
  int fd;
  int port;
  char request[2048];
  int status;
  const char *body;
} fake_agent;

static void *fake_serve(void *arg) {
  fake_agent *fa = arg;
  int c = accept(fa->fd, NULL, NULL);
  if (c < 0)
    return NULL;
  size_t n = 0;
  while (n + 1 < sizeof fa->request) {
    ssize_t k = read(c, fa->request + n, sizeof fa->request - 1 - n);
    if (k <= 0)
      break;
    n += (size_t)k;
    fa->request[n] = '\0';
    if (strstr(fa->request, "\r\n\r\n"))
      break;
  }
  char head[256];
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    fa->status, strlen(fa->body));
  if (write(c, head, (size_t)hl) < 0 ||
      write(c, fa->body, strlen(fa->body)) < 0)
    perror("fake agent write");
  close(c);
  return NULL;
}

static void fake_start(fake_agent *fa, pthread_t *t) {
  fa->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fa->fd >= 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fa->fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fa->fd, (struct sockaddr *)&a, &len), 0);
  fa->port = ntohs(a.sin_port);
  assert_int_equal(listen(fa->fd, 1), 0);
  assert_int_equal(pthread_create(t, NULL, fake_serve, fa), 0);
}

static void test_agent_backend(void **state) {
  (void)state;
  /* The store backend's JSON, served by a fake agent: same table. */
  run_out dbj =
      run("hotspots", "0x1000", "--children", "--json", "--db", db.path, NULL);
  run_out dbt = run("hotspots", "0x1000", "--children", "--db", db.path, NULL);
  assert_int_equal(dbj.rc, 0);
  fake_agent fa = {0};
  fa.status = 200;
  fa.body = dbj.out;
  pthread_t t;
  fake_start(&fa, &t);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", fa.port);
  run_out r = run("hotspots", "4096", "--children", "--agent", url, NULL);
  pthread_join(t, NULL);
  close(fa.fd);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, dbt.out);
  assert_non_null(strstr(fa.request, "GET /api/v1/spans/0000000000001000/"
                                     "hotspots?type=both&children=1&lines=0 "
                                     "HTTP/1.1\r\n"));
  run_free(&r);
  run_free(&dbj);
  run_free(&dbt);

  /* An API error: 404 is exit 1 with the agent's message; 400 is 2. */
  int codes[] = {404, 400, 500};
  int exits[] = {1, 2, 3};
  for (int i = 0; i < 3; i++) {
    fake_agent fe = {0};
    fe.status = codes[i];
    fe.body = "{\"error\":\"span 0000000000000001 not found\"}";
    fake_start(&fe, &t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fe.port);
    r = run("hotspots", "1", "--agent", url, NULL);
    pthread_join(t, NULL);
    close(fe.fd);
    assert_int_equal(r.rc, exits[i]);
    assert_string_equal(r.err,
                        "hotspan hotspots: span 0000000000000001 not found\n");
    run_free(&r);
  }
  /* A 200 answer that is not JSON. */
  fake_agent fg = {0};
  fg.status = 200;
  fg.body = "<html>hello</html>";
  fake_start(&fg, &t);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", fg.port);
  r = run("endpoints", "--agent", url, NULL);
  pthread_join(t, NULL);
  close(fg.fd);
  assert_int_equal(r.rc, 3);
  assert_non_null(strstr(r.err, "not JSON"));
  run_free(&r);
}

/* ------------------------------------------------------------ versions */

static tmpdb vdb;

/* "shop" GET /v: version 1.2.0 with 3 requests and 30 CPU samples of 10 ms
 * in f, then 1.3.0 with 3 requests and 90 in f (both with 30 in g). */
static int setup_vdb(void **state) {
  (void)state;
  tmpdb_make(&vdb);
  char err[256];
  hs_store *s = hs_store_open_sqlite(vdb.path, NULL, err, sizeof err);
  if (s == NULL)
    fail_msg("%s", err);
  static tbatch tb;
  static const hs_ing_frame f[] = {{"f", "v.c", 1, ""}, {"main", "v.c", 9, ""}};
  static const hs_ing_frame g[] = {{"g", "v.c", 5, ""}, {"main", "v.c", 9, ""}};
  static hs_ing_kv ver[2] = {{"version", "1.2.0", 0}, {"version", "1.3.0", 0}};
  for (int v = 0; v < 2; v++) {
    tb_init(&tb, "shop");
    tb.b.version = ver[v].str;
    for (int i = 0; i < 3; i++) {
      int64_t t = NOW - 3600 * S + (v * 3 + i) * 60 * S;
      uint64_t id = (uint64_t)(v * 3 + i + 1);
      hs_ing_span *sp = tb_span(&tb, 0, id, id, 0, "shop", "GET /v", t, S);
      sp->attrs = &ver[v];
      sp->nattrs = 1;
      tb_samples(&tb, v ? 30 : 10, HS_PT_CPU, 10 * MS, id, "GET /v", t, f, 2);
      tb_samples(&tb, 10, HS_PT_CPU, 10 * MS, id, "GET /v", t, g, 2);
    }
    if (hs_store_ingest(s, &tb.b, err, sizeof err) != HS_STORE_OK)
      fail_msg("%s", err);
  }
  hs_store_close(s);
  return 0;
}

static int teardown_vdb(void **state) {
  (void)state;
  tmpdb_remove(&vdb);
  return 0;
}

static void test_db_versions_and_version_diff(void **state) {
  (void)state;
  run_out r = run("versions", "--service", "shop", "--db", vdb.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(
      r.out, "SERVICE  VERSION  REQUESTS  SAMPLES  FIRST SEEN                "
             "LAST SEEN\n"
             "shop     1.2.0           3       60  2024-05-01T11:00:00.000Z  "
             "2024-05-01T11:02:00.000Z\n"
             "shop     1.3.0           3      120  2024-05-01T11:03:00.000Z  "
             "2024-05-01T11:05:00.000Z\n");
  run_free(&r);
  r = run("versions", "--service", "nope", "--db", vdb.path, NULL);
  assert_int_equal(r.rc, 1);
  assert_string_equal(r.err,
                      "hotspan versions: no versions known for service nope\n");
  run_free(&r);

  /* f: 100 ms per request before, 300 ms after (+200 %). */
  r = run("diff", "--endpoint", "GET /v", "--service", "shop",
          "--before-version", "1.2.0", "--after-version", "1.3.0", "--db",
          vdb.path, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out,
                      "diff GET /v (cpu time per request)\n"
                      "  before version 1.2.0, all stored data  3 requests\n"
                      "  after  version 1.3.0, all stored data  3 requests\n"
                      "\n"
                      "DELTA SELF    BEFORE     AFTER  DELTA TOTAL  FUNCTION\n"
                      " +200.0 ms  100.0 ms  300.0 ms    +200.0 ms  f\n"
                      "      0 ns      0 ns      0 ns    +200.0 ms  main\n"
                      "      0 ns  100.0 ms  100.0 ms         0 ns  g\n");
  run_free(&r);
  /* A version within a range: the first two minutes hold 2 of 1.2.0's. */
  r = run("diff", "--endpoint", "GET /v", "--before-version", "1.2.0",
          "--before", "-1h..-58m", "--after-version", "1.3.0", "--db", vdb.path,
          NULL);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "  before version 1.2.0, "
                                "2024-05-01T11:00:00.000Z .. "
                                "2024-05-01T11:02:00.000Z  2 requests\n"));
  run_free(&r);
  r = run("diff", "--endpoint", "GET /v", "--before-version", "1.2.0",
          "--after-version", "2.0", "--db", vdb.path, NULL);
  assert_int_equal(r.rc, 1);
  assert_string_equal(r.err, "hotspan diff: version '2.0' is unknown for any "
                             "service (known: 1.2.0, 1.3.0)\n");
  run_free(&r);

  /* The agent backend asks /api/v1/versions and renders the same table. */
  run_out dbj = run("versions", "--json", "--db", vdb.path, NULL);
  run_out dbt = run("versions", "--db", vdb.path, NULL);
  assert_int_equal(dbj.rc, 0);
  fake_agent fa = {0};
  fa.status = 200;
  fa.body = dbj.out;
  pthread_t t;
  fake_start(&fa, &t);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", fa.port);
  r = run("versions", "--agent", url, NULL);
  pthread_join(t, NULL);
  close(fa.fd);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, dbt.out);
  assert_non_null(strstr(fa.request, "GET /api/v1/versions HTTP/1.1\r\n"));
  run_free(&r);
  run_free(&dbj);
  run_free(&dbt);
}

int main(void) {
  const struct CMUnitTest versions[] = {
      cmocka_unit_test(test_db_versions_and_version_diff),
  };
  const struct CMUnitTest pure[] = {
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_times),
      cmocka_unit_test(test_formats),
      cmocka_unit_test(test_api_paths),
      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_render_bad_documents),
  };
  const struct CMUnitTest store[] = {
      cmocka_unit_test(test_db_traces),
      cmocka_unit_test(test_db_hotspots),
      cmocka_unit_test(test_db_trace_endpoints_profile_diff),
      cmocka_unit_test(test_backend_errors),
      cmocka_unit_test(test_agent_backend),
  };
  int rc = cmocka_run_group_tests_name("cli", pure, NULL, NULL);
  rc |= cmocka_run_group_tests_name("cli_store", store, setup_db, teardown_db);
  rc |= cmocka_run_group_tests_name("cli_versions", versions, setup_vdb,
                                    teardown_vdb);
  return rc;
}
