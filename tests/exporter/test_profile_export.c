/* Profile export: the Datadog upload (event.json, multipart body, tags),
 * RFC 3339 times, endpoint request counts, the Pyroscope request URL, the
 * agent URL resolution, the exporter's pairing of CPU and wall profiles,
 * and its configuration from the environment. No network: requests are
 * captured where the transport would take them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/json_read.h"
#include "context/endpoints.h"
#include "exporter/dd_agent_url.h"
#include "exporter/dd_profile.h"
#include "exporter/profile_exporter.h"
#include "exporter/pyroscope.h"
#include "hotspan/error.h"
#include "profiler/profile.h"
#include "support/env.h"

#define T0 1741944413000000000ull /* 2025-03-14T09:26:53Z */

/* ------------------------------------------------------------ helpers */

static hs_json_doc *parse_json(const char *s, size_t n) {
  hs_json_doc *doc = NULL;
  char err[200] = "";
  if (hs_json_parse(s, n, NULL, &doc, err, sizeof err, NULL) != 0)
    print_error("bad JSON (%s): %.*s\n", err, (int)n, s);
  assert_non_null(doc);
  return doc;
}

static const char *jstr(const hs_json_value *v, const char *key) {
  const hs_json_value *m = hs_json_get(v, key);
  assert_non_null(m);
  assert_int_equal(m->type, HS_JSON_STRING);
  return m->u.string.ptr;
}

static void drain_all(void) {
  (void)hs_endpoint_counts_drain(NULL, NULL);
}

static const hs_dd_profile_meta *meta(void) {
  static const hs_profile_tag tags[] = {{"team", "a,b c"}, {"region", "eu"}};
  static hs_dd_profile_meta m;
  memset(&m, 0, sizeof m);
  m.service = "svc \"quoted\"";
  m.env = "prod";
  m.version = "1.2.3";
  m.host = "box1";
  m.runtime_id = "0c0ffee0-0000-4000-8000-000000000001";
  m.profiler_version = "0.1.0";
  m.tags = tags;
  m.ntags = 2;
  return &m;
}

/* ------------------------------------------------------------ RFC 3339 */

static void test_rfc3339(void **state) {
  (void)state;
  char b[40];
  assert_int_equal(hs_rfc3339(T0, b, sizeof b), 27);
  assert_string_equal(b, "2025-03-14T09:26:53.000000Z");
  hs_rfc3339(T0 + 123456789, b, sizeof b);
  assert_string_equal(b, "2025-03-14T09:26:53.123456Z");
  hs_rfc3339(0, b, sizeof b);
  assert_string_equal(b, "1970-01-01T00:00:00.000000Z");
  /* Year 2100 is not a leap year: 2100-03-01 follows 2100-02-28. */
  hs_rfc3339(4107542400ull * 1000000000ull, b, sizeof b);
  assert_string_equal(b, "2100-03-01T00:00:00.000000Z");
  assert_int_equal(hs_rfc3339(T0, b, 27), 0); /* no room for the NUL */
  assert_string_equal(b, "");
}

/* ------------------------------------------------------------ tags */

static void test_dd_tags(void **state) {
  (void)state;
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_dd_tags_profiler(&b, meta());
  assert_string_equal(hs_buf_cstr(&b),
                      "service:svc_\"quoted\",env:prod,version:1.2.3,host:box1,"
                      "runtime-id:0c0ffee0-0000-4000-8000-000000000001,"
                      "profiler_version:0.1.0,language:native,team:a_b_c,"
                      "region:eu");
  /* Empty and NULL values leave the tag out. */
  hs_buf_reset(&b);
  hs_dd_profile_meta m;
  memset(&m, 0, sizeof m);
  m.service = "s";
  m.env = "";
  hs_dd_tags_profiler(&b, &m);
  assert_string_equal(hs_buf_cstr(&b), "service:s,language:native");

  /* Long value: cut at 200 bytes, not inside a UTF-8 character. */
  char v[400];
  memset(v, 'x', sizeof v);
  v[sizeof v - 1] = '\0';
  v[195] = (char)0xc3; /* "é" at value bytes 195..196 = tag bytes 199..200 */
  v[196] = (char)0xa9;
  hs_buf_reset(&b);
  assert_int_equal(hs_dd_tag_append(&b, "key", v), 1);
  assert_int_equal(b.len, 199); /* "key:" + 195 bytes: the é would pass 200 */
  v[195] = v[196] = 'x';
  hs_buf_reset(&b);
  hs_dd_tag_append(&b, "key", v);
  assert_int_equal(b.len, HS_DD_TAG_MAX);
  /* Control bytes and newlines cannot break the list or a header. */
  hs_buf_reset(&b);
  hs_dd_tag_append(&b, "k\n", "v\r\t\x01,");
  assert_string_equal(hs_buf_cstr(&b), "k_:v____");
  hs_buf_free(&b);
}

/* ------------------------------------------------------------ event.json */

static void test_event_json(void **state) {
  (void)state;
  static const uint8_t a[] = {1, 2, 3};
  hs_dd_attachment att[2] = {{"cpu.pprof", a, 3}, {"wall.pprof", a, 3}};
  hs_dd_endpoint_count ec[2] = {{"GET /a", 12}, {"POST /\"x\"\n", 3}};
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_dd_event_json(&b, meta(), T0, T0 + 60000000000ull, att, 2, ec, 2);
  hs_json_doc *doc = parse_json(b.data, b.len);
  const hs_json_value *root = hs_json_root(doc);
  const hs_json_value *at = hs_json_get(root, "attachments");
  assert_non_null(at);
  assert_int_equal(at->type, HS_JSON_ARRAY);
  assert_int_equal(at->u.array.len, 2);
  assert_string_equal(at->u.array.items[0].u.string.ptr, "cpu.pprof");
  assert_string_equal(at->u.array.items[1].u.string.ptr, "wall.pprof");
  assert_string_equal(jstr(root, "start"), "2025-03-14T09:26:53.000000Z");
  assert_string_equal(jstr(root, "end"), "2025-03-14T09:27:53.000000Z");
  assert_string_equal(jstr(root, "family"), "native");
  assert_string_equal(jstr(root, "version"), "4");
  const char *tp = jstr(root, "tags_profiler");
  assert_non_null(strstr(tp, "service:svc_\"quoted\","));
  assert_non_null(strstr(tp, "runtime-id:0c0ffee0"));
  const hs_json_value *epc = hs_json_get(root, "endpoint_counts");
  assert_non_null(epc);
  assert_int_equal(epc->type, HS_JSON_OBJECT);
  uint64_t n = 0;
  assert_int_equal(hs_json_as_u64(hs_json_get(epc, "GET /a"), &n), 0);
  assert_int_equal(n, 12);
  assert_int_equal(hs_json_as_u64(hs_json_get(epc, "POST /\"x\"\n"), &n), 0);
  assert_int_equal(n, 3);
  hs_json_free(doc);

  /* No endpoints: an empty object, still valid JSON. */
  hs_buf_reset(&b);
  hs_dd_event_json(&b, meta(), T0, T0, att, 1, NULL, 0);
  doc = parse_json(b.data, b.len);
  epc = hs_json_get(hs_json_root(doc), "endpoint_counts");
  assert_int_equal(epc->u.object.len, 0);
  hs_json_free(doc);
  hs_buf_free(&b);
}

/* ------------------------------------------------------------ multipart */

static void test_multipart_fixed_boundary(void **state) {
  (void)state;
  /* Binary data with NUL, CR LF and dashes goes through byte for byte. */
  static const uint8_t cpu[] = {0x1f, 0x8b, 0, '\r', '\n', '-', '-', 0xff};
  static const uint8_t wall[] = {0x1f, 0x8b, 9};
  hs_dd_attachment att[2] = {{"cpu.pprof", cpu, sizeof cpu},
                             {"wall.pprof", wall, sizeof wall}};
  hs_buf b;
  hs_buf_init(&b, 0);
  char ct[128];
  assert_int_equal(hs_dd_profile_build(meta(), T0, T0 + 1000000000ull, att, 2,
                                       NULL, 0, "XyZ", &b, ct, sizeof ct),
                   HOTSPAN_OK);
  assert_string_equal(ct, "multipart/form-data; boundary=XyZ");
  hs_buf ev;
  hs_buf_init(&ev, 0);
  hs_dd_event_json(&ev, meta(), T0, T0 + 1000000000ull, att, 2, NULL, 0);
  hs_buf want;
  hs_buf_init(&want, 0);
  hs_buf_puts(&want, "--XyZ\r\nContent-Disposition: form-data; name=\"event\"; "
                     "filename=\"event.json\"\r\nContent-Type: "
                     "application/json\r\n\r\n");
  hs_buf_append(&want, ev.data, ev.len);
  hs_buf_puts(&want, "\r\n--XyZ\r\nContent-Disposition: form-data; "
                     "name=\"cpu.pprof\"; filename=\"cpu.pprof\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n");
  hs_buf_append(&want, cpu, sizeof cpu);
  hs_buf_puts(&want, "\r\n--XyZ\r\nContent-Disposition: form-data; "
                     "name=\"wall.pprof\"; filename=\"wall.pprof\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n");
  hs_buf_append(&want, wall, sizeof wall);
  hs_buf_puts(&want, "\r\n--XyZ--\r\n");
  assert_int_equal(b.len, want.len);
  assert_memory_equal(b.data, want.data, want.len);
  hs_buf_free(&want);
  hs_buf_free(&ev);

  /* The fixed boundary occurs in the data: refused, body untouched. */
  static const uint8_t clash[] = {'-', '-', 'X', 'y', 'Z'};
  hs_dd_attachment bad = {"cpu.pprof", clash, sizeof clash};
  size_t len0 = b.len;
  assert_int_equal(hs_dd_profile_build(meta(), T0, T0, &bad, 1, NULL, 0, "XyZ",
                                       &b, ct, sizeof ct),
                   HOTSPAN_EINVAL);
  assert_int_equal(b.len, len0);
  hs_buf_free(&b);
}

static void test_multipart_random_boundary_and_errors(void **state) {
  (void)state;
  static const uint8_t d[] = {1, 2, 3, 4};
  hs_dd_attachment att = {"cpu.pprof", d, sizeof d};
  hs_buf b1, b2;
  hs_buf_init(&b1, 0);
  hs_buf_init(&b2, 0);
  char ct1[128], ct2[128];
  assert_int_equal(hs_dd_profile_build(meta(), T0, T0, &att, 1, NULL, 0, NULL,
                                       &b1, ct1, sizeof ct1),
                   HOTSPAN_OK);
  assert_int_equal(hs_dd_profile_build(meta(), T0, T0, &att, 1, NULL, 0, NULL,
                                       &b2, ct2, sizeof ct2),
                   HOTSPAN_OK);
  assert_string_not_equal(ct1, ct2); /* random per upload */
  const char *bnd = strstr(ct1, "boundary=") + 9;
  assert_true(strlen(bnd) >= 16);
  char delim[100];
  snprintf(delim, sizeof delim, "--%s", bnd);
  /* Exactly three delimiters: event, one attachment, the closing one. */
  int count = 0;
  for (const char *p = b1.data; (p = memmem(p, b1.len - (size_t)(p - b1.data),
                                            delim, strlen(delim))) != NULL;
       p++)
    count++;
  assert_int_equal(count, 3);
  hs_buf_free(&b1);
  hs_buf_free(&b2);

  /* Bad input: no attachment, bad names, tiny content-type room, bad
   * boundary, over the body's cap. */
  hs_buf b;
  hs_buf_init(&b, 0);
  char ct[128];
  assert_int_equal(hs_dd_profile_build(meta(), T0, T0, &att, 0, NULL, 0, NULL,
                                       &b, ct, sizeof ct),
                   HOTSPAN_EINVAL);
  hs_dd_attachment q = {"a\"b", d, 4};
  assert_int_equal(
      hs_dd_profile_build(meta(), T0, T0, &q, 1, NULL, 0, NULL, &b, ct, 128),
      HOTSPAN_EINVAL);
  hs_dd_attachment nl = {"a\r\nX: y", d, 4};
  assert_int_equal(
      hs_dd_profile_build(meta(), T0, T0, &nl, 1, NULL, 0, NULL, &b, ct, 128),
      HOTSPAN_EINVAL);
  assert_int_equal(
      hs_dd_profile_build(meta(), T0, T0, &att, 1, NULL, 0, NULL, &b, ct, 20),
      HOTSPAN_EINVAL);
  assert_int_equal(
      hs_dd_profile_build(meta(), T0, T0, &att, 1, NULL, 0, "a b", &b, ct, 128),
      HOTSPAN_EINVAL);
  assert_int_equal(b.len, 0);
  hs_buf small;
  hs_buf_init(&small, 300);
  uint8_t *big = calloc(1, 4096);
  hs_dd_attachment ba = {"cpu.pprof", big, 4096};
  assert_int_equal(hs_dd_profile_build(meta(), T0, T0, &ba, 1, NULL, 0, NULL,
                                       &small, ct, 128),
                   HOTSPAN_ETOOBIG);
  free(big);
  hs_buf_free(&small);
  hs_buf_free(&b);
}

/* ------------------------------------------------------------ endpoints */

typedef struct {
  char names[8][64];
  uint64_t counts[8];
  int n;
} seen_counts;

static void seen(const char *name, uint64_t c, void *arg) {
  seen_counts *s = arg;
  if (s->n < 8) {
    snprintf(s->names[s->n], 64, "%s", name);
    s->counts[s->n++] = c;
  }
}

static uint64_t count_of(const seen_counts *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0)
      return s->counts[i];
  return 0;
}

static void test_endpoint_counts(void **state) {
  (void)state;
  drain_all();
  uint32_t a = hs_endpoint_intern("GET /ec-a", 9);
  uint32_t b = hs_endpoint_intern("POST /ec-b", 10);
  for (int i = 0; i < 12; i++)
    hs_endpoint_count_request(a);
  hs_endpoint_count_request(b);
  hs_endpoint_count_request(0);      /* no endpoint: ignored */
  hs_endpoint_count_request(999999); /* unknown id: ignored */
  hs_endpoint_count_request(HS_ENDPOINT_OVERFLOW);
  seen_counts s;
  memset(&s, 0, sizeof s);
  assert_int_equal(hs_endpoint_counts_drain(seen, &s), 3);
  assert_int_equal(count_of(&s, "GET /ec-a"), 12);
  assert_int_equal(count_of(&s, "POST /ec-b"), 1);
  assert_int_equal(count_of(&s, "other"), 1);
  /* Reset: the next snapshot holds only what came since. */
  memset(&s, 0, sizeof s);
  assert_int_equal(hs_endpoint_counts_drain(seen, &s), 0);
  hs_endpoint_count_request(b);
  assert_int_equal(hs_endpoint_counts_drain(seen, &s), 1);
  assert_int_equal(count_of(&s, "POST /ec-b"), 1);
}

/* ------------------------------------------------------------ Pyroscope */

static void test_pct_encode(void **state) {
  (void)state;
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_pct_encode(&b, "a.b_c-d~e {k=v,x=y} /?&#%+\xc3\xa9");
  assert_string_equal(
      hs_buf_cstr(&b),
      "a.b_c-d~e%20%7Bk%3Dv%2Cx%3Dy%7D%20%2F%3F%26%23%25%2B%C3%A9");
  hs_buf_free(&b);
}

static void test_pyroscope_name_and_url(void **state) {
  (void)state;
  hs_profile_tag tags[] = {
      {"env", "prod"}, {"bad key!", "v,{x}=y"}, {"9lives", "z"}, {"empty", ""}};
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_pyroscope_name(&b, "my app{1}", "cpu", tags, 4);
  assert_string_equal(hs_buf_cstr(&b),
                      "my_app_1_.cpu{env=prod,bad_key_=v__x__y,_9lives=z}");
  hs_buf_reset(&b);
  hs_pyroscope_name(&b, "", "wall", NULL, 0);
  assert_string_equal(hs_buf_cstr(&b), "hotspan.wall");

  hs_buf_reset(&b);
  assert_int_equal(hs_pyroscope_url(&b, "http://pyro:4040//", "app", "cpu",
                                    tags, 1, T0 + 500000000ull,
                                    T0 + 60200000000ull, 99),
                   0);
  assert_string_equal(hs_buf_cstr(&b),
                      "http://pyro:4040/ingest?name=app.cpu%7Benv%3Dprod%7D"
                      "&from=1741944413&until=1741944474&format=pprof"
                      "&spyName=hotspan&sampleRate=99");
  /* A period inside one second still spans at least one second; exact
   * seconds are not rounded up. */
  hs_buf_reset(&b);
  hs_pyroscope_url(&b, "http://p", "a", "wall", NULL, 0, T0, T0, 0);
  assert_string_equal(hs_buf_cstr(&b),
                      "http://p/ingest?name=a.wall&from=1741944413"
                      "&until=1741944414&format=pprof&spyName=hotspan");
  hs_buf_reset(&b);
  hs_pyroscope_url(&b, "http://p", "a", "cpu", NULL, 0, T0, T0 + 2000000000ull,
                   0);
  assert_non_null(strstr(hs_buf_cstr(&b), "&until=1741944415&"));
  assert_int_equal(hs_pyroscope_url(&b, "", "a", "cpu", NULL, 0, T0, T0, 0),
                   -1);
  assert_int_equal(hs_pyroscope_url(&b, NULL, "a", "cpu", NULL, 0, T0, T0, 0),
                   -1);
  hs_buf_free(&b);
}

static void test_basic_auth(void **state) {
  (void)state;
  char h[128];
  assert_int_equal(hs_basic_auth_header("Aladdin", "open sesame", h, sizeof h),
                   0);
  assert_string_equal(h, "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  assert_int_equal(hs_basic_auth_header("ab", "", h, sizeof h), 0);
  assert_string_equal(h, "Authorization: Basic YWI6");
  assert_int_equal(hs_basic_auth_header("Aladdin", "open sesame", h, 30), -1);
}

/* ------------------------------------------------------------ agent URL */

static void url_ok(const char *in, const char *base, int is_unix) {
  hs_agent_url a;
  char err[96] = "";
  if (hs_agent_url_parse(in, &a, err, sizeof err) != 0)
    print_error("%s: %s\n", in, err);
  assert_int_equal(hs_agent_url_parse(in, &a, err, sizeof err), 0);
  assert_string_equal(a.base, base);
  assert_int_equal(a.is_unix, is_unix);
}

static void url_bad(const char *in, const char *why) {
  hs_agent_url a;
  char err[96] = "";
  assert_int_equal(hs_agent_url_parse(in, &a, err, sizeof err), -1);
  if (strstr(err, why) == NULL)
    print_error("%s: got \"%s\", want \"%s\"\n", in, err, why);
  assert_non_null(strstr(err, why));
}

static void test_agent_url_parse(void **state) {
  (void)state;
  url_ok("http://localhost:8126", "http://localhost:8126", 0);
  url_ok("http://agent:9000/", "http://agent:9000", 0);
  url_ok("HTTPS://agent.example/prefix//", "https://agent.example/prefix", 0);
  url_ok("http://[::1]:8126", "http://[::1]:8126", 0);
  url_ok("http://10.0.0.7", "http://10.0.0.7", 0);
  url_ok("unix:///var/run/datadog/apm.socket",
         "unix:///var/run/datadog/apm.socket", 1);
  url_bad("ftp://agent:21", "unknown scheme");
  url_bad("localhost:8126", "unknown scheme");
  url_bad("http://agent:0", "port");
  url_bad("http://agent:65536", "port");
  url_bad("http://agent:80x", "port");
  url_bad("http://agent:", "port");
  url_bad("http://agent:-1", "port");
  url_bad("http://:8126", "empty host");
  url_bad("http://", "empty host");
  url_bad("http://[::1", "unclosed");
  url_bad("unix://relative.sock", "absolute");
  url_bad("unix://", "absolute");
  url_bad("unix:///", "absolute");
  url_bad("http://u:p@agent:8126", "user info");
  url_bad("http://agent:8126?x=1", "query");
  char *huge = malloc(3000);
  memset(huge, 'a', 2999);
  memcpy(huge, "http://", 7);
  huge[2999] = '\0';
  url_bad(huge, "too long");
  free(huge);

  /* Endpoint URLs: http appends the path, unix passes it apart. */
  hs_agent_url a;
  char u[256];
  const char *up = "x";
  hs_agent_url_parse("http://h:1/p", &a, NULL, 0);
  assert_int_equal(
      hs_agent_url_endpoint(&a, "/profiling/v1/input", u, sizeof u, &up), 0);
  assert_string_equal(u, "http://h:1/p/profiling/v1/input");
  assert_null(up);
  hs_agent_url_parse("unix:///s.sock", &a, NULL, 0);
  hs_agent_url_endpoint(&a, "/profiling/v1/input", u, sizeof u, &up);
  assert_string_equal(u, "unix:///s.sock");
  assert_string_equal(up, "/profiling/v1/input");
  assert_int_equal(hs_agent_url_endpoint(&a, "/x", u, 5, &up), -1);
}

static void test_agent_url_resolve(void **state) {
  (void)state;
  hs_agent_url a;
  hs_agent_url_resolve(NULL, NULL, NULL, NULL, NULL, &a);
  assert_string_equal(a.base, "http://localhost:8126");
  hs_agent_url_resolve("unix:///run/apm.sock", "U", "h", "1", "P", &a);
  assert_string_equal(a.base, "unix:///run/apm.sock");
  assert_int_equal(a.is_unix, 1);
  /* A bad URL falls back to host and port. */
  hs_agent_url_resolve("gopher://x", "U", "agent", "9126", "P", &a);
  assert_string_equal(a.base, "http://agent:9126");
  assert_int_equal(a.is_unix, 0);
  /* A bad port falls back to 8126; an IPv6 host gets brackets. */
  hs_agent_url_resolve(NULL, NULL, "fd00::7", "99999", "P", &a);
  assert_string_equal(a.base, "http://[fd00::7]:8126");
  hs_agent_url_resolve(NULL, NULL, "agent", "abc", "P", &a);
  assert_string_equal(a.base, "http://agent:8126");
  /* A host that would change the URL is refused. */
  hs_agent_url_resolve(NULL, NULL, "evil/path?", "1", "P", &a);
  assert_string_equal(a.base, "http://localhost:1");

  /* From the environment, HOTSPAN_ first. */
  setenv("DD_AGENT_HOST", "dd-agent", 1);
  setenv("DD_TRACE_AGENT_PORT", "18126", 1);
  unsetenv("DD_TRACE_AGENT_URL");
  unsetenv("HOTSPAN_AGENT_URL");
  hs_agent_url_from_env(&a);
  assert_string_equal(a.base, "http://dd-agent:18126");
  setenv("DD_TRACE_AGENT_URL", "http://from-url:1", 1);
  hs_agent_url_from_env(&a);
  assert_string_equal(a.base, "http://from-url:1");
  setenv("HOTSPAN_AGENT_URL", "unix:///hs.sock", 1);
  hs_agent_url_from_env(&a);
  assert_string_equal(a.base, "unix:///hs.sock");
  unsetenv("HOTSPAN_AGENT_URL");
  unsetenv("DD_TRACE_AGENT_URL");
  unsetenv("DD_AGENT_HOST");
  unsetenv("DD_TRACE_AGENT_PORT");
}

/* ------------------------------------------------------------ exporter */

typedef struct {
  unsigned dest;
  char *body;
  size_t len;
  char ctype[200];
  char url[600];
  uint32_t items;
} req;

typedef struct {
  req r[16];
  int n;
  int refuse;
} capture;

static int capture_send(void *arg, unsigned dest, char *body, size_t len,
                        const char *const *headers, const char *url,
                        uint32_t items) {
  capture *c = arg;
  if (c->refuse || c->n >= 16) {
    free(body);
    return HOTSPAN_EFULL;
  }
  req *r = &c->r[c->n++];
  memset(r, 0, sizeof *r);
  r->dest = dest;
  r->body = body;
  r->len = len;
  r->items = items;
  for (const char *const *h = headers; h && *h; h++)
    if (strncmp(*h, "Content-Type: ", 14) == 0)
      snprintf(r->ctype, sizeof r->ctype, "%s", *h + 14);
  if (url)
    snprintf(r->url, sizeof r->url, "%s", url);
  return HOTSPAN_OK;
}

static void capture_free(capture *c) {
  for (int i = 0; i < c->n; i++)
    free(c->r[i].body);
  c->n = 0;
}

/* event.json of a captured Datadog upload. */
static hs_json_doc *event_of(const req *r) {
  const char *start = memmem(r->body, r->len, "\r\n\r\n", 4);
  assert_non_null(start);
  start += 4;
  const char *end =
      memmem(start, r->len - (size_t)(start - r->body), "\r\n--", 4);
  assert_non_null(end);
  return parse_json(start, (size_t)(end - start));
}

static size_t n_attachments(const req *r) {
  hs_json_doc *d = event_of(r);
  size_t n = hs_json_get(hs_json_root(d), "attachments")->u.array.len;
  hs_json_free(d);
  return n;
}

static hs_profexp_config test_config(unsigned exporters, unsigned wall_hz) {
  hs_profexp_config c;
  memset(&c, 0, sizeof c);
  c.exporters = exporters;
  c.service = "svc";
  c.env = "test";
  snprintf(c.host, sizeof c.host, "h");
  snprintf(c.runtime_id, sizeof c.runtime_id, "rid");
  snprintf(c.pyroscope_url, sizeof c.pyroscope_url, "http://pyro:4040");
  snprintf(c.pyroscope_app, sizeof c.pyroscope_app, "svc");
  c.cpu_hz = 99;
  c.wall_hz = wall_hz;
  return c;
}

static void test_exporter_pairing(void **state) {
  (void)state;
  drain_all();
  capture cap;
  memset(&cap, 0, sizeof cap);
  hs_profexp_config c = test_config(HS_PROFEXP_DATADOG, 19);
  hs_profexp *x = hs_profexp_new(&c, capture_send, &cap);
  assert_non_null(x);
  static const uint8_t p1[] = {0x1f, 0x8b, 1}, p2[] = {0x1f, 0x8b, 2};
  uint64_t t1 = T0 + 60000000000ull, t2 = t1 + 60000000000ull;

  /* CPU then wall of one period: one upload with both. */
  uint32_t ep = hs_endpoint_intern("GET /pair", 9);
  for (int i = 0; i < 5; i++)
    hs_endpoint_count_request(ep);
  hs_profexp_on_profile(x, HS_PROFILE_CPU, p1, 3, T0, t1);
  assert_int_equal(cap.n, 0); /* waits for its wall profile */
  hs_profexp_on_profile(x, HS_PROFILE_WALL, p2, 3, T0, t1);
  assert_int_equal(cap.n, 1);
  assert_int_equal(cap.r[0].dest, HS_PROFEXP_DATADOG);
  assert_int_equal(cap.r[0].items, 2);
  assert_non_null(strstr(cap.r[0].ctype, "multipart/form-data; boundary="));
  hs_json_doc *d = event_of(&cap.r[0]);
  const hs_json_value *root = hs_json_root(d);
  assert_int_equal(hs_json_get(root, "attachments")->u.array.len, 2);
  assert_string_equal(jstr(root, "start"), "2025-03-14T09:26:53.000000Z");
  assert_string_equal(jstr(root, "end"), "2025-03-14T09:27:53.000000Z");
  uint64_t n = 0;
  assert_int_equal(
      hs_json_as_u64(
          hs_json_get(hs_json_get(root, "endpoint_counts"), "GET /pair"), &n),
      0);
  assert_int_equal(n, 5);
  hs_json_free(d);
  /* The profile bytes are in the body as given. */
  assert_non_null(memmem(cap.r[0].body, cap.r[0].len, p1, 3));
  assert_non_null(memmem(cap.r[0].body, cap.r[0].len, p2, 3));
  capture_free(&cap);

  /* CPU whose wall never comes: sent alone when the next CPU arrives. */
  hs_profexp_on_profile(x, HS_PROFILE_CPU, p1, 3, T0, t1);
  hs_profexp_on_profile(x, HS_PROFILE_CPU, p1, 3, t1, t2);
  assert_int_equal(cap.n, 1);
  assert_int_equal(n_attachments(&cap.r[0]), 1);
  /* A wall profile of another period: the waiting CPU goes first, alone,
   * then the wall alone. */
  hs_profexp_on_profile(x, HS_PROFILE_WALL, p2, 3, t2, t2 + 1000);
  assert_int_equal(cap.n, 3);
  d = event_of(&cap.r[1]);
  assert_string_equal(hs_json_get(hs_json_root(d), "attachments")
                          ->u.array.items[0]
                          .u.string.ptr,
                      "cpu.pprof");
  hs_json_free(d);
  d = event_of(&cap.r[2]);
  assert_string_equal(hs_json_get(hs_json_root(d), "attachments")
                          ->u.array.items[0]
                          .u.string.ptr,
                      "wall.pprof");
  hs_json_free(d);
  capture_free(&cap);

  /* At stop: flush sends the waiting CPU profile; nothing twice. */
  hs_profexp_on_profile(x, HS_PROFILE_CPU, p1, 3, t2, t2 + 5);
  hs_profexp_flush(x);
  assert_int_equal(cap.n, 1);
  hs_profexp_flush(x);
  assert_int_equal(cap.n, 1);
  capture_free(&cap);

  /* Refused by the sender: counted, not retried here. */
  cap.refuse = 1;
  hs_profexp_on_profile(x, HS_PROFILE_WALL, p2, 3, t2, t2 + 5);
  hs_profexp_counts k;
  hs_profexp_get_counts(x, &k);
  assert_int_equal(k.dd_uploads, 6);
  assert_int_equal(k.dd_unpaired, 5);
  assert_int_equal(k.send_errors, 1);
  cap.refuse = 0;
  /* Bad input is ignored. */
  hs_profexp_on_profile(x, 7, p1, 3, T0, t1);
  hs_profexp_on_profile(x, HS_PROFILE_CPU, NULL, 3, T0, t1);
  hs_profexp_flush(x);
  assert_int_equal(cap.n, 0);
  hs_profexp_free(x);
  hs_profexp_free(NULL);

  /* Wall profiling off: each CPU profile goes at once. */
  c = test_config(HS_PROFEXP_DATADOG, 0);
  x = hs_profexp_new(&c, capture_send, &cap);
  hs_profexp_on_profile(x, HS_PROFILE_CPU, p1, 3, T0, t1);
  assert_int_equal(cap.n, 1);
  capture_free(&cap);
  hs_profexp_free(x);
}

static void test_exporter_pyroscope(void **state) {
  (void)state;
  capture cap;
  memset(&cap, 0, sizeof cap);
  hs_profexp_config c = test_config(HS_PROFEXP_PYROSCOPE, 19);
  hs_profile_tag tags[] = {{"team", "core"}};
  c.tags = tags;
  c.ntags = 1;
  hs_profexp *x = hs_profexp_new(&c, capture_send, &cap);
  static const uint8_t p[] = {0x1f, 0x8b, 8, 0};
  hs_profexp_on_profile(x, HS_PROFILE_CPU, p, 4, T0, T0 + 60000000000ull);
  hs_profexp_on_profile(x, HS_PROFILE_WALL, p, 4, T0, T0 + 60000000000ull);
  assert_int_equal(cap.n, 2);
  assert_int_equal(cap.r[0].dest, HS_PROFEXP_PYROSCOPE);
  assert_string_equal(cap.r[0].url,
                      "http://pyro:4040/ingest?name=svc.cpu%7Benv%3Dtest%2C"
                      "team%3Dcore%7D&from=1741944413&until=1741944473"
                      "&format=pprof&spyName=hotspan&sampleRate=99");
  assert_non_null(strstr(cap.r[1].url, "name=svc.wall%7B"));
  assert_non_null(strstr(cap.r[1].url, "&sampleRate=19"));
  /* The body is the pprof itself. */
  assert_int_equal(cap.r[0].len, 4);
  assert_memory_equal(cap.r[0].body, p, 4);
  assert_string_equal(cap.r[0].ctype, "application/octet-stream");
  capture_free(&cap);
  hs_profexp_free(x);
}

/* ------------------------------------------------------------ config */

static void test_parse_exporters(void **state) {
  (void)state;
  unsigned m = 99;
  assert_int_equal(hs_profexp_parse_exporters("datadog,pyroscope", &m), 0);
  assert_int_equal(m, HS_PROFEXP_DATADOG | HS_PROFEXP_PYROSCOPE);
  assert_int_equal(hs_profexp_parse_exporters(" DD  file ", &m), 0);
  assert_int_equal(m, HS_PROFEXP_DATADOG | HS_PROFEXP_FILE);
  assert_int_equal(hs_profexp_parse_exporters("none", &m), 0);
  assert_int_equal(m, 0);
  assert_int_equal(hs_profexp_parse_exporters("", &m), 0);
  assert_int_equal(m, 0);
  assert_int_equal(hs_profexp_parse_exporters("pyroscope,jaeger", &m), -1);
  assert_int_equal(m, HS_PROFEXP_PYROSCOPE);
  assert_int_equal(hs_profexp_parse_exporters("datadogg", &m), -1);
  assert_int_equal(m, 0);
}

static void test_config_from_env(void **state) {
  (void)state;
  ts_clear_env();
  hs_profexp_config c;
  /* Defaults: the Datadog agent on localhost. */
  assert_int_equal(hs_profexp_config_load(&c, 1, 10101010, 52631579), 0);
  assert_int_equal(c.exporters, HS_PROFEXP_DATADOG);
  assert_string_equal(c.agent.base, "http://localhost:8126");
  assert_int_equal(c.cpu_hz, 99);
  assert_int_equal(c.wall_hz, 19);
  assert_int_equal(c.flush_timeout_ms, HS_PROFEXP_FLUSH_TIMEOUT_MS);
  assert_true(strlen(c.runtime_id) == 36);
  hs_profexp_config_free(&c);
  hs_profexp_config_free(&c); /* idempotent */

  setenv("HOTSPAN_PROFILING_EXPORTERS", "pyroscope,datadog", 1);
  setenv("DD_SERVICE", "checkout", 1);
  setenv("DD_ENV", "staging", 1);
  setenv("DD_VERSION", "7", 1);
  setenv("DD_TAGS", "team:core,region:eu", 1);
  setenv("DD_TRACE_AGENT_URL", "unix:///var/run/datadog/apm.socket", 1);
  setenv("PYROSCOPE_SERVER_ADDRESS", "http://pyro:4040", 1);
  setenv("PYROSCOPE_TENANT_ID", "t1", 1);
  setenv("DD_HOSTNAME", "web-1", 1);
  setenv("HOTSPAN_PROFILING_FLUSH_TIMEOUT_MS", "500", 1);
  assert_int_equal(hs_profexp_config_load(&c, 1, 10101010, 0), 0);
  assert_int_equal(c.exporters, HS_PROFEXP_DATADOG | HS_PROFEXP_PYROSCOPE);
  assert_int_equal(c.agent.is_unix, 1);
  assert_string_equal(c.agent.base, "unix:///var/run/datadog/apm.socket");
  assert_string_equal(c.service, "checkout");
  assert_string_equal(c.env, "staging");
  assert_string_equal(c.version, "7");
  assert_string_equal(c.host, "web-1");
  assert_int_equal(c.ntags, 2);
  assert_string_equal(c.pyroscope_url, "http://pyro:4040");
  assert_string_equal(c.pyroscope_app, "checkout"); /* the service */
  assert_string_equal(c.pyroscope_tenant, "t1");
  assert_int_equal(c.flush_timeout_ms, 500);
  assert_int_equal(c.wall_hz, 0);
  hs_profexp_config_free(&c);

  /* Bad values: logged and ignored. */
  setenv("HOTSPAN_PROFILING_EXPORTERS", "bogus", 1);
  setenv("PYROSCOPE_SERVER_ADDRESS", "pyro:4040", 1);
  setenv("HOTSPAN_PROFILING_FLUSH_TIMEOUT_MS", "999999", 1);
  setenv("DD_TRACE_AGENT_URL", "tcp://x", 1);
  assert_int_equal(hs_profexp_config_load(&c, 1, 10101010, 0), 0);
  assert_int_equal(c.exporters, 0);
  assert_string_equal(c.pyroscope_url, "http://localhost:4040");
  assert_int_equal(c.flush_timeout_ms, HS_PROFEXP_FLUSH_TIMEOUT_MS);
  assert_string_equal(c.agent.base, "http://localhost:8126");
  hs_profexp_config_free(&c);

  /* Without the environment: no network exporter. */
  setenv("HOTSPAN_PROFILING_EXPORTERS", "datadog", 1);
  assert_int_equal(hs_profexp_config_load(&c, 0, 10101010, 0), 0);
  assert_int_equal(c.exporters, 0);
  hs_profexp_config_free(&c);
  ts_clear_env();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc3339),
      cmocka_unit_test(test_dd_tags),
      cmocka_unit_test(test_event_json),
      cmocka_unit_test(test_multipart_fixed_boundary),
      cmocka_unit_test(test_multipart_random_boundary_and_errors),
      cmocka_unit_test(test_endpoint_counts),
      cmocka_unit_test(test_pct_encode),
      cmocka_unit_test(test_pyroscope_name_and_url),
      cmocka_unit_test(test_basic_auth),
      cmocka_unit_test(test_agent_url_parse),
      cmocka_unit_test(test_agent_url_resolve),
      cmocka_unit_test(test_exporter_pairing),
      cmocka_unit_test(test_exporter_pyroscope),
      cmocka_unit_test(test_parse_exporters),
      cmocka_unit_test(test_config_from_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
