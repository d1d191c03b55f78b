/* The /api/v1 handlers, called in-process on a temporary SQLite store
 * filled with a hand-built batch: answers, defaults, parameter errors
 * (400 naming the parameter), unknown ids (404), and the export formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/api.h"
#include "backend/store.h"

#define T0 INT64_C(1700000000000000000)
#define MS INT64_C(1000000)

static char dir[64];
static hs_store *store;
static hs_agent_api api;

static int64_t fixed_now(void) {
  return T0 + 30 * 60 * INT64_C(1000000000); /* 30 min after T0 */
}

/* Two traces of checkout "POST /pay" (300 ms with an error, 100 ms) and
 * one of "GET /home"; CPU samples on the first root span. */
static void fill(void) {
  hs_ing_kv attrs[] = {{"http.method", "POST", 0}, {"http.status", NULL, 500}};
  hs_ing_span spans[4];
  memset(spans, 0, sizeof spans);
  for (int i = 0; i < 4; i++) {
    spans[i].service = "checkout";
    spans[i].name = "http.request";
    spans[i].resource = "POST /pay";
    spans[i].type = "web";
    spans[i].kind = 2;
  }
  spans[0].trace_id_low = 1, spans[0].span_id = 11;
  spans[0].start_ns = T0, spans[0].duration_ns = 300 * MS;
  spans[0].error = 1, spans[0].attrs = attrs, spans[0].nattrs = 2;
  spans[1].trace_id_low = 1, spans[1].span_id = 12, spans[1].parent_id = 11;
  spans[1].name = "db.query", spans[1].resource = "SELECT 1";
  spans[1].start_ns = T0 + 10 * MS, spans[1].duration_ns = 50 * MS;
  spans[2].trace_id_low = 2, spans[2].span_id = 21;
  spans[2].start_ns = T0 + 1000 * MS, spans[2].duration_ns = 100 * MS;
  spans[3].trace_id_high = 0xabc, spans[3].trace_id_low = 3;
  spans[3].span_id = 31, spans[3].resource = "GET /home";
  spans[3].start_ns = T0 + 2000 * MS, spans[3].duration_ns = 20 * MS;

  hs_ing_frame f_hash[] = {{"sha256_block", "sha.c", 10, NULL},
                           {"handle_pay", "pay.c", 20, NULL}};
  hs_ing_frame f_json[] = {{"json_encode", "json.c", 5, NULL},
                           {"handle_pay", "pay.c", 21, NULL}};
  hs_ing_sample samples[3];
  memset(samples, 0, sizeof samples);
  for (int i = 0; i < 3; i++) {
    samples[i].time_ns = T0 + 100 * MS;
    samples[i].type = HS_PT_CPU;
    samples[i].value = 10 * MS;
    samples[i].span_id = 11;
    samples[i].local_root_span_id = 11;
    samples[i].trace_id_low = 1;
    samples[i].endpoint = "POST /pay";
    samples[i].frames = i < 2 ? f_hash : f_json;
    samples[i].nframes = 2;
  }
  hs_ing_batch b;
  memset(&b, 0, sizeof b);
  b.spans = spans;
  b.nspans = 4;
  b.samples = samples;
  b.nsamples = 3;
  b.service = "checkout";
  b.profile_start_ns = T0;
  b.profile_end_ns = T0 + 60 * INT64_C(1000000000);
  char err[256];
  assert_int_equal(hs_store_ingest(store, &b, err, sizeof(err)), HS_STORE_OK);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/hs-api-XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  char path[128], err[256];
  snprintf(path, sizeof(path), "%s/a.db", dir);
  store = hs_store_open_sqlite(path, NULL, err, sizeof(err));
  if (!store)
    return -1;
  api.store = store;
  api.now_ns = fixed_now;
  fill();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  hs_store_close(store);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

typedef struct answer {
  int status;
  const char *ctype;
  char *body;
  size_t len;
} answer;

static answer call(hs_agent_http_handler h, const char *path,
                   const char *query) {
  hs_agent_http_request req;
  memset(&req, 0, sizeof req);
  req.method = "GET";
  req.path = path;
  req.query = query;
  hs_agent_http_response res;
  memset(&res, 0, sizeof res);
  res.status = 200;
  res.content_type = "application/json";
  hs_buf_init(&res.body, 0);
  h(&api, &req, &res);
  answer a = {res.status, res.content_type, NULL, res.body.len};
  a.body = malloc(res.body.len + 1);
  if (res.body.len)
    memcpy(a.body, res.body.data, res.body.len);
  a.body[res.body.len] = 0;
  hs_buf_free(&res.body);
  return a;
}

static void expect(hs_agent_http_handler h, const char *path, const char *query,
                   int status, const char *needle) {
  answer a = call(h, path, query);
  if (a.status != status || (needle && !strstr(a.body, needle)))
    fprintf(stderr, "%s?%s: %d %s (want %d with '%s')\n", path,
            query ? query : "", a.status, a.body, status, needle ? needle : "");
  assert_int_equal(a.status, status);
  if (needle)
    assert_non_null(strstr(a.body, needle));
  free(a.body);
}

static void test_query_param(void **state) {
  (void)state;
  char v[16];
  assert_int_equal(hs_agent_query_param("a=1&endpoint=POST+%2Fpay&b",
                                        "endpoint", v, sizeof(v)),
                   1);
  assert_string_equal(v, "POST /pay");
  assert_int_equal(hs_agent_query_param("a=1&b", "b", v, sizeof(v)), 1);
  assert_string_equal(v, "");
  assert_int_equal(hs_agent_query_param("ab=1", "a", v, sizeof(v)), 0);
  assert_int_equal(hs_agent_query_param("a=%zz", "a", v, sizeof(v)), -1);
  assert_int_equal(hs_agent_query_param("a=%00", "a", v, sizeof(v)), -1);
  assert_int_equal(
      hs_agent_query_param("a=0123456789abcdefXYZ", "a", v, sizeof(v)), -1);
  assert_int_equal(hs_agent_query_param(NULL, "a", v, sizeof(v)), 0);
}

static void test_services(void **state) {
  (void)state;
  /* Default range: the hour before now (T0 + 30 min) covers the data. */
  expect(hs_agent_api_services, "/api/v1/services", NULL, 200, "\"checkout\"");
  expect(hs_agent_api_services, "/api/v1/services", NULL, 200, "POST /pay");
  /* A range before the data: no services. */
  answer a = call(hs_agent_api_services, "/api/v1/services", "from=1&to=2");
  assert_int_equal(a.status, 200);
  assert_null(strstr(a.body, "checkout"));
  free(a.body);
  expect(hs_agent_api_services, "/api/v1/services", "from=abc", 400,
         "parameter from");
  expect(hs_agent_api_services, "/api/v1/services", "from=5&to=4", 400,
         "parameter from");
  expect(hs_agent_api_services, "/api/v1/services", "to=-1", 400,
         "parameter to");
}

static void test_traces(void **state) {
  (void)state;
  answer a = call(hs_agent_api_traces, "/api/v1/traces",
                  "service=checkout&endpoint=POST%20%2Fpay");
  assert_int_equal(a.status, 200);
  /* Longest first: the 300 ms trace before the 100 ms one. */
  char *t1 = strstr(a.body, "300000000"), *t2 = strstr(a.body, "100000000");
  assert_non_null(t1);
  assert_non_null(t2);
  assert_true(t1 < t2);
  assert_null(strstr(a.body, "GET /home"));
  free(a.body);
  a = call(hs_agent_api_traces, "/api/v1/traces", "error=1");
  assert_int_equal(a.status, 200);
  assert_non_null(strstr(a.body, "300000000"));
  assert_null(strstr(a.body, "100000000"));
  free(a.body);
  a = call(hs_agent_api_traces, "/api/v1/traces", "min_duration_ns=200000000");
  assert_null(strstr(a.body, "GET /home"));
  assert_non_null(strstr(a.body, "300000000"));
  free(a.body);
  expect(hs_agent_api_traces, "/api/v1/traces", "limit=0", 400,
         "parameter limit");
  expect(hs_agent_api_traces, "/api/v1/traces", "error=maybe", 400,
         "parameter error");
  expect(hs_agent_api_traces, "/api/v1/traces", "min_duration_ns=1e9", 400,
         "parameter min_duration_ns");
}

static void test_trace(void **state) {
  (void)state;
  expect(hs_agent_api_trace, "/api/v1/traces/1", NULL, 200, "db.query");
  expect(hs_agent_api_trace, "/api/v1/traces/0000000000000001", NULL, 200,
         "SELECT 1");
  /* 128-bit id in its 32-digit hex form. */
  expect(hs_agent_api_trace, "/api/v1/traces/0000000000000abc0000000000000003",
         NULL, 200, "GET /home");
  expect(hs_agent_api_trace, "/api/v1/traces/99", NULL, 404, "error");
  expect(hs_agent_api_trace, "/api/v1/traces/xyz", NULL, 400, "trace_id");
  expect(hs_agent_api_trace, "/api/v1/traces/1/extra", NULL, 404, "error");
}

static void test_hotspots(void **state) {
  (void)state;
  expect(hs_agent_api_spans, "/api/v1/spans/11/hotspots", NULL, 200,
         "sha256_block");
  expect(hs_agent_api_spans, "/api/v1/spans/11/hotspots", "lines=1", 200,
         "sha.c:10");
  /* type=wall lists no CPU functions. */
  answer a = call(hs_agent_api_spans, "/api/v1/spans/11/hotspots", "type=wall");
  assert_int_equal(a.status, 200);
  assert_null(strstr(a.body, "sha256_block"));
  free(a.body);
  expect(hs_agent_api_spans, "/api/v1/spans/0x0b/hotspots", "children=1", 200,
         "\"with_children\":true");
  expect(hs_agent_api_spans, "/api/v1/spans/12345/hotspots", NULL, 404,
         "error");
  expect(hs_agent_api_spans, "/api/v1/spans/11/hotspots", "type=gpu", 400,
         "parameter type");
  expect(hs_agent_api_spans, "/api/v1/spans/11/other", NULL, 404, "error");
  expect(hs_agent_api_spans, "/api/v1/spans/nope/hotspots", NULL, 400,
         "span_id");
}

static void test_profile(void **state) {
  (void)state;
  expect(hs_agent_api_profile, "/api/v1/profile",
         "service=checkout&endpoint=POST+%2Fpay", 200,
         "\"total_per_request_ns\"");
  answer a = call(hs_agent_api_profile, "/api/v1/profile",
                  "service=checkout&endpoint=POST+%2Fpay&per_request=0");
  assert_int_equal(a.status, 200);
  assert_null(strstr(a.body, "per_request"));
  assert_non_null(strstr(a.body, "\"requests\":2"));
  free(a.body);
  a = call(hs_agent_api_profile, "/api/v1/profile",
           "endpoint=POST+%2Fpay&format=folded");
  assert_int_equal(a.status, 200);
  assert_string_equal(a.ctype, "text/plain; charset=utf-8");
  assert_non_null(strstr(a.body, "handle_pay;sha256_block 20000000"));
  assert_non_null(strstr(a.body, "handle_pay;json_encode 10000000"));
  free(a.body);
  a = call(hs_agent_api_profile, "/api/v1/profile",
           "endpoint=POST+%2Fpay&format=pprof");
  assert_int_equal(a.status, 200);
  assert_string_equal(a.ctype, "application/octet-stream");
  assert_true(a.len > 2 && (uint8_t)a.body[0] == 0x1f &&
              (uint8_t)a.body[1] == 0x8b); /* gzip */
  free(a.body);
  expect(hs_agent_api_profile, "/api/v1/profile", "service=checkout", 400,
         "parameter endpoint");
  expect(hs_agent_api_profile, "/api/v1/profile", "endpoint=x&format=svg", 400,
         "parameter format");
  expect(hs_agent_api_profile, "/api/v1/profile",
         "endpoint=x&format=folded&type=both", 400, "parameter type");
}

static void test_diff(void **state) {
  (void)state;
  char q[300];
  snprintf(q, sizeof(q),
           "service=checkout&endpoint=POST%%20%%2Fpay&before_from=0&before_to="
           "%lld&after_from=%lld&after_to=%lld",
           (long long)(T0 - 1), (long long)T0,
           (long long)(T0 + 3600 * 1000 * MS));
  expect(hs_agent_api_diff, "/api/v1/diff", q, 200, "sha256_block");
  expect(hs_agent_api_diff, "/api/v1/diff", "endpoint=x&before_from=1", 400,
         "parameter before_to");
  expect(hs_agent_api_diff, "/api/v1/diff",
         "endpoint=x&before_from=2&before_to=1&after_from=1&after_to=2", 400,
         "parameter before_from");
  expect(hs_agent_api_diff, "/api/v1/diff",
         "before_from=1&before_to=2&after_from=1&after_to=2", 400,
         "parameter endpoint");
}

/* "inventory" GET /stock: version 1.0 with 3 requests and 30 CPU samples
 * of 10 ms in scan, version 1.1 with 3 requests and 90 in scan: per
 * request 100 ms before, 300 ms after. */
static void fill_versions(void) {
  static hs_ing_kv ver[2] = {{"version", "1.0", 0}, {"version", "1.1", 0}};
  hs_ing_frame f_scan[] = {{"scan", "stock.c", 3, NULL}};
  static hs_ing_span spans[3];
  static hs_ing_sample samples[90];
  for (int v = 0; v < 2; v++) {
    memset(spans, 0, sizeof spans);
    memset(samples, 0, sizeof samples);
    int n = v ? 90 : 30;
    for (int i = 0; i < 3; i++) {
      spans[i].service = "inventory";
      spans[i].name = "http.request";
      spans[i].resource = "GET /stock";
      spans[i].trace_id_low = (uint64_t)(100 + 10 * v + i);
      spans[i].span_id = spans[i].trace_id_low;
      spans[i].start_ns = T0 + (3 * v + i) * MS;
      spans[i].duration_ns = MS;
      spans[i].attrs = &ver[v];
      spans[i].nattrs = 1;
    }
    for (int i = 0; i < n; i++) {
      samples[i].time_ns = T0 + 3 * v * MS;
      samples[i].type = HS_PT_CPU;
      samples[i].value = 10 * MS;
      samples[i].endpoint = "GET /stock";
      samples[i].frames = f_scan;
      samples[i].nframes = 1;
    }
    hs_ing_batch b;
    memset(&b, 0, sizeof b);
    b.spans = spans;
    b.nspans = 3;
    b.samples = samples;
    b.nsamples = (size_t)n;
    b.service = "inventory";
    b.version = ver[v].str;
    char err[256];
    assert_int_equal(hs_store_ingest(store, &b, err, sizeof(err)), HS_STORE_OK);
  }
}

static void test_versions(void **state) {
  (void)state;
  fill_versions();
  expect(hs_agent_api_versions, "/api/v1/versions", "service=inventory", 200,
         "{\"service\":\"inventory\",\"versions\":[{\"service\":\"inventory\","
         "\"version\":\"1.0\",\"requests\":3,\"samples\":30,");
  expect(hs_agent_api_versions, "/api/v1/versions", "service=inventory", 200,
         "\"version\":\"1.1\",\"requests\":3,\"samples\":90,");
  expect(hs_agent_api_versions, "/api/v1/versions", "service=nothing", 404,
         "no versions known for service nothing");
  /* Without a range: all stored data (0, 0). */
  expect(hs_agent_api_diff, "/api/v1/diff",
         "service=inventory&endpoint=GET%20%2Fstock&before_version=1.0"
         "&after_version=1.1",
         200,
         "\"before\":{\"from_ns\":0,\"to_ns\":0,\"requests\":3,\"version\":"
         "\"1.0\"},\"after\":{\"from_ns\":0,\"to_ns\":0,\"requests\":3,"
         "\"version\":\"1.1\"},\"functions\":[{\"name\":\"scan\","
         "\"before_self_ns\":100000000,\"after_self_ns\":300000000,"
         "\"delta_self_ns\":200000000");
  /* A version within a range: 1.1's first request only. */
  char q[300];
  snprintf(q, sizeof(q),
           "endpoint=GET%%20%%2Fstock&before_version=1.0&after_version=1.1"
           "&after_from=%lld&after_to=%lld",
           (long long)(T0 + 3 * MS), (long long)(T0 + 4 * MS));
  expect(hs_agent_api_diff, "/api/v1/diff", q, 200,
         "\"after\":{\"from_ns\":1700000000003000000,\"to_ns\":"
         "1700000000004000000,\"requests\":1,\"version\":\"1.1\"}");
  expect(hs_agent_api_diff, "/api/v1/diff",
         "service=inventory&endpoint=GET%20%2Fstock&before_version=1.0"
         "&after_version=2.0",
         404,
         "version '2.0' is unknown for service inventory (known: 1.0, 1.1)");
  /* Mixed wrongly: one version alone, or half a range with versions. */
  expect(hs_agent_api_diff, "/api/v1/diff",
         "endpoint=GET%20%2Fstock&before_version=1.0&before_from=0"
         "&before_to=1&after_from=0&after_to=1",
         400, "parameter after_version");
  expect(hs_agent_api_diff, "/api/v1/diff",
         "endpoint=GET%20%2Fstock&after_version=1.1&before_from=0"
         "&before_to=1&after_from=0&after_to=1",
         400, "parameter before_version");
  expect(hs_agent_api_diff, "/api/v1/diff",
         "endpoint=GET%20%2Fstock&before_version=1.0&after_version=1.1"
         "&before_from=5",
         400, "parameter before_to");
  expect(hs_agent_api_diff, "/api/v1/diff",
         "endpoint=GET%20%2Fstock&before_version=1.0&after_version=1.1"
         "&after_from=9&after_to=5",
         400, "parameter after_from");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_query_param), cmocka_unit_test(test_services),
      cmocka_unit_test(test_traces),      cmocka_unit_test(test_trace),
      cmocka_unit_test(test_hotspots),    cmocka_unit_test(test_profile),
      cmocka_unit_test(test_diff),        cmocka_unit_test(test_versions),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
