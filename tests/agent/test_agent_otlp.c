/* The OTLP trace decoders (protobuf and JSON): golden decodes of requests
 * built here (protobuf through the generated protobuf-c structs, JSON as
 * an OTLP exporter writes it), and bad input: every truncation, garbage,
 * wrong types, bad ids, hostile nesting and limits. Every bad input gives
 * an error code and a message, never a crash (the ASan/UBSan build checks
 * memory safety). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/decode.h"
#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

static const uint8_t TRACE_ID[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3,
                                     0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
                                     0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SPAN_ID[8] = {0x00, 0xf0, 0x67, 0xaa,
                                   0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t PARENT_ID[8] = {0, 0, 0, 0, 0, 0, 0, 0x2a};

/* The protobuf decoder refuses p[0..n) as invalid, naming needle. */
static void expect_pb_error(const uint8_t *p, size_t n, const char *needle) {
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_otlp(p, n, NULL, &d, err, sizeof(err)),
                   HS_AGENT_EINVAL);
  if (!strstr(err, needle))
    fprintf(stderr, "err '%s' (want '%s')\n", err, needle);
  assert_non_null(strstr(err, needle));
  hs_agent_decoded_free(&d);
}

/* A string attribute key = s in kv, its value in v. */
static void str_kv(KeyValue *kv, AnyValue *v, const char *key, const char *s) {
  opentelemetry__proto__common__v1__any_value__init(v);
  opentelemetry__proto__common__v1__key_value__init(kv);
  v->value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v->string_value = (char *)s;
  kv->key = (char *)key;
  kv->value = v;
}

/* A request of the n spans under one resource (res may be NULL), packed
 * into malloc'ed bytes at *out. */
static size_t pack_spans(Opentelemetry__Proto__Trace__V1__Span **spans,
                         size_t n,
                         Opentelemetry__Proto__Resource__V1__Resource *res,
                         uint8_t **out) {
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ss.spans = spans;
  ss.n_spans = n;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  rs.resource = res;
  rs.scope_spans = sss;
  rs.n_scope_spans = 1;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.resource_spans = rss;
  req.n_resource_spans = 1;
  size_t len =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
          &req);
  *out = malloc(len);
  assert_non_null(*out);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(
      &req, *out);
  return len;
}

/* A request with one resource (service "checkout") and two spans: a
 * server root with attributes of every kind, and an erroring child. The
 * packed bytes are malloc'ed into *out. */
static size_t build_request(uint8_t **out) {
  AnyValue v_svc;
  KeyValue kv_svc;
  str_kv(&kv_svc, &v_svc, "service.name", "checkout");
  KeyValue *res_attrs[] = {&kv_svc};
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.attributes = res_attrs;
  res.n_attributes = 1;

  AnyValue v[8];
  KeyValue kv[8];
  for (int i = 0; i < 8; i++) {
    opentelemetry__proto__common__v1__any_value__init(&v[i]);
    opentelemetry__proto__common__v1__key_value__init(&kv[i]);
    kv[i].value = &v[i];
  }
  kv[0].key = "http.method";
  v[0].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v[0].string_value = "POST";
  kv[1].key = "http.status_code";
  v[1].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  v[1].int_value = 200;
  kv[2].key = "ratio";
  v[2].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v[2].double_value = 0.25;
  kv[3].key = "cached";
  v[3].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
  v[3].bool_value = 1;
  kv[4].key = "big";
  v[4].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  v[4].int_value = INT64_C(9007199254740993);
  kv[5].key = "blob";
  v[5].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
  static uint8_t blob[] = {'h', 'i', '!'};
  v[5].bytes_value.data = blob;
  v[5].bytes_value.len = 3;
  kv[6].key = "resource.name";
  v[6].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v[6].string_value = "POST /checkout";
  kv[7].key = "span.type";
  v[7].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v[7].string_value = "web";
  /* An array attribute: ["a", 1]. */
  AnyValue item[2];
  opentelemetry__proto__common__v1__any_value__init(&item[0]);
  opentelemetry__proto__common__v1__any_value__init(&item[1]);
  item[0].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  item[0].string_value = "a";
  item[1].value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  item[1].int_value = 1;
  AnyValue *items[] = {&item[0], &item[1]};
  Opentelemetry__Proto__Common__V1__ArrayValue arr =
      OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
  arr.values = items;
  arr.n_values = 2;
  AnyValue v_arr = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
  v_arr.value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
  v_arr.array_value = &arr;
  KeyValue kv_arr = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
  kv_arr.key = "tags";
  kv_arr.value = &v_arr;
  KeyValue *attrs[] = {&kv[0], &kv[1], &kv[2], &kv[3], &kv[4],
                       &kv[5], &kv[6], &kv[7], &kv_arr};

  Opentelemetry__Proto__Trace__V1__Span root =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  root.trace_id.data = (uint8_t *)TRACE_ID;
  root.trace_id.len = 16;
  root.span_id.data = (uint8_t *)PARENT_ID;
  root.span_id.len = 8;
  root.name = "http.request";
  root.kind =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
  root.start_time_unix_nano = UINT64_C(1700000000000000000);
  root.end_time_unix_nano = UINT64_C(1700000000250000000);
  root.attributes = attrs;
  root.n_attributes = 9;

  Opentelemetry__Proto__Trace__V1__Status st =
      OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
  st.code =
      OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
  Opentelemetry__Proto__Trace__V1__Span child =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  child.trace_id.data = (uint8_t *)TRACE_ID;
  child.trace_id.len = 16;
  child.span_id.data = (uint8_t *)SPAN_ID;
  child.span_id.len = 8;
  child.parent_span_id.data = (uint8_t *)PARENT_ID;
  child.parent_span_id.len = 8;
  child.name = "SELECT orders";
  child.kind =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
  child.start_time_unix_nano = UINT64_C(1700000000010000000);
  child.end_time_unix_nano = UINT64_C(1700000000020000000);
  child.status = &st;
  /* The child has an exception event and a link; counts of dropped ones
   * on the root. */
  AnyValue v_msg;
  KeyValue kv_msg;
  str_kv(&kv_msg, &v_msg, "exception.message", "timeout");
  KeyValue *ev_attrs[] = {&kv_msg};
  Opentelemetry__Proto__Trace__V1__Span__Event ev =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
  ev.time_unix_nano = UINT64_C(1700000000015000000);
  ev.name = "exception";
  ev.attributes = ev_attrs;
  ev.n_attributes = 1;
  Opentelemetry__Proto__Trace__V1__Span__Event *evs[] = {&ev};
  child.events = evs;
  child.n_events = 1;
  static const uint8_t LINK_TRACE[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                         9, 10, 11, 12, 13, 14, 15, 16};
  static const uint8_t LINK_SPAN[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  Opentelemetry__Proto__Trace__V1__Span__Link lk =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
  lk.trace_id.data = (uint8_t *)LINK_TRACE;
  lk.trace_id.len = 16;
  lk.span_id.data = (uint8_t *)LINK_SPAN;
  lk.span_id.len = 8;
  lk.trace_state = "congo=t61";
  lk.flags = 0x301;
  lk.attributes = ev_attrs;
  lk.n_attributes = 1;
  Opentelemetry__Proto__Trace__V1__Span__Link *lks[] = {&lk};
  child.links = lks;
  child.n_links = 1;
  root.dropped_events_count = 2;
  root.dropped_links_count = 5;

  Opentelemetry__Proto__Trace__V1__Span *spans[] = {&root, &child};
  return pack_spans(spans, 2, &res, out);
}

/* The same request in the OTLP JSON encoding. */
static const char JSON_REQ[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":["
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
    "\"spanId\":\"000000000000002a\",\"parentSpanId\":\"\","
    "\"name\":\"http.request\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1700000000000000000\","
    "\"endTimeUnixNano\":\"1700000000250000000\","
    "\"attributes\":["
    "{\"key\":\"http.method\",\"value\":{\"stringValue\":\"POST\"}},"
    "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}},"
    "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.25}},"
    "{\"key\":\"cached\",\"value\":{\"boolValue\":true}},"
    "{\"key\":\"big\",\"value\":{\"intValue\":\"9007199254740993\"}},"
    "{\"key\":\"blob\",\"value\":{\"bytesValue\":\"aGkh\"}},"
    "{\"key\":\"resource.name\",\"value\":{\"stringValue\":\"POST "
    "/checkout\"}},"
    "{\"key\":\"span.type\",\"value\":{\"stringValue\":\"web\"}},"
    "{\"key\":\"tags\",\"value\":{\"arrayValue\":{\"values\":["
    "{\"stringValue\":\"a\"},{\"intValue\":1}]}}}],"
    "\"droppedEventsCount\":2,\"droppedLinksCount\":\"5\","
    "\"status\":{}},"
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
    "\"spanId\":\"00f067aa0ba902b7\",\"parentSpanId\":\"000000000000002a\","
    "\"name\":\"SELECT orders\",\"kind\":\"SPAN_KIND_CLIENT\","
    "\"startTimeUnixNano\":1700000000010000000,"
    "\"endTimeUnixNano\":\"1700000000020000000\","
    "\"status\":{\"code\":2,\"message\":\"boom\"},"
    "\"events\":[{\"timeUnixNano\":\"1700000000015000000\","
    "\"name\":\"exception\",\"attributes\":[{\"key\":"
    "\"exception.message\",\"value\":{\"stringValue\":\"timeout\"}}]}],"
    "\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
    "\"spanId\":\"0000000000000007\",\"traceState\":\"congo=t61\","
    "\"flags\":769,\"attributes\":[{\"key\":\"exception.message\","
    "\"value\":{\"stringValue\":\"timeout\"}}]}],"
    "\"futureField\":[1,2,3]}]}]}]}";

static const hs_ing_kv *find_attr(const hs_ing_span *s, const char *key) {
  for (uint32_t i = 0; i < s->nattrs; i++)
    if (strcmp(s->attrs[i].key, key) == 0)
      return &s->attrs[i];
  return NULL;
}

/* What both encodings of the request must decode to. */
static void check_golden(const hs_ing_batch *b) {
  assert_int_equal(b->nspans, 2);
  const hs_ing_span *r = &b->spans[0], *c = &b->spans[1];
  assert_true(r->trace_id_high == UINT64_C(0x4bf92f3577b34da6));
  assert_true(r->trace_id_low == UINT64_C(0xa3ce929d0e0e4736));
  assert_true(r->span_id == 42);
  assert_true(r->parent_id == 0);
  assert_string_equal(r->service, "checkout");
  assert_string_equal(r->name, "http.request");
  assert_string_equal(r->resource, "POST /checkout");
  assert_string_equal(r->type, "web");
  assert_int_equal(r->kind, 2);
  assert_true(r->start_ns == INT64_C(1700000000000000000));
  assert_true(r->duration_ns == 250000000);
  assert_int_equal(r->error, 0);
  assert_string_equal(find_attr(r, "http.method")->str, "POST");
  assert_null(find_attr(r, "http.status_code")->str);
  assert_true(find_attr(r, "http.status_code")->num == 200.0);
  assert_true(find_attr(r, "ratio")->num == 0.25);
  assert_string_equal(find_attr(r, "cached")->str, "true");
  /* Past 2^53 a double would round: the exact text is kept. */
  assert_string_equal(find_attr(r, "big")->str, "9007199254740993");
  assert_string_equal(find_attr(r, "blob")->str, "aGkh");
  assert_string_equal(find_attr(r, "tags")->str, "[\"a\",1]");

  assert_true(c->span_id == UINT64_C(0x00f067aa0ba902b7));
  assert_true(c->parent_id == 42);
  assert_string_equal(c->name, "SELECT orders");
  assert_string_equal(c->resource, "SELECT orders");
  assert_null(c->type);
  assert_int_equal(c->kind, 3);
  assert_true(c->duration_ns == 10000000);
  assert_int_equal(c->error, 1);
  assert_int_equal(c->nattrs, 0);

  /* Both spans carry their resource's attributes. */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(b->spans[i].nresource_attrs, 1);
    assert_string_equal(b->spans[i].resource_attrs[0].key, "service.name");
    assert_string_equal(b->spans[i].resource_attrs[0].str, "checkout");
  }
  assert_int_equal(r->nevents, 0);
  assert_int_equal(r->nlinks, 0);
  assert_int_equal(r->dropped_events, 2);
  assert_int_equal(r->dropped_links, 5);
  assert_int_equal(c->nevents, 1);
  assert_true(c->events[0].time_ns == INT64_C(1700000000015000000));
  assert_string_equal(c->events[0].name, "exception");
  assert_int_equal(c->events[0].nattrs, 1);
  assert_string_equal(c->events[0].attrs[0].key, "exception.message");
  assert_string_equal(c->events[0].attrs[0].str, "timeout");
  assert_int_equal(c->nlinks, 1);
  assert_true(c->links[0].trace_id_high == UINT64_C(0x0102030405060708));
  assert_true(c->links[0].trace_id_low == UINT64_C(0x090a0b0c0d0e0f10));
  assert_true(c->links[0].span_id == 7);
  assert_string_equal(c->links[0].tracestate, "congo=t61");
  assert_int_equal(c->links[0].flags, 0x301);
  assert_int_equal(c->links[0].nattrs, 1);
  assert_int_equal(c->dropped_events, 0);
  assert_int_equal(c->dropped_links, 0);
}

static void test_protobuf_golden(void **state) {
  (void)state;
  uint8_t *p;
  size_t n = build_request(&p);
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_otlp(p, n, NULL, &d, err, sizeof(err)),
                   HS_AGENT_OK);
  check_golden(&d.batch);
  hs_agent_decoded_free(&d);
  /* An empty request is valid and has no spans. */
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(
      hs_agent_decode_otlp((const uint8_t *)"", 0, NULL, &d, err, sizeof(err)),
      HS_AGENT_OK);
  assert_int_equal(d.batch.nspans, 0);
  hs_agent_decoded_free(&d);
  free(p);
}

static void test_json_golden(void **state) {
  (void)state;
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  int rc = hs_agent_decode_otlp_json(
      (const uint8_t *)JSON_REQ, strlen(JSON_REQ), NULL, &d, err, sizeof(err));
  if (rc)
    fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, HS_AGENT_OK);
  check_golden(&d.batch);
  hs_agent_decoded_free(&d);
  /* {} and snake_case names are accepted too. */
  const char *snake =
      "{\"resource_spans\":[{\"scope_spans\":[{\"spans\":[{\"trace_id\":"
      "\"0000000000000000000000000000000a\",\"span_id\":\"000000000000000b\","
      "\"start_time_unix_nano\":5,\"end_time_unix_nano\":7}]}]}]}";
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_otlp_json((const uint8_t *)snake,
                                             strlen(snake), NULL, &d, err,
                                             sizeof(err)),
                   HS_AGENT_OK);
  assert_int_equal(d.batch.nspans, 1);
  assert_string_equal(d.batch.spans[0].service, "unknown_service");
  assert_true(d.batch.spans[0].trace_id_low == 10);
  assert_true(d.batch.spans[0].duration_ns == 2);
  hs_agent_decoded_free(&d);
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_otlp_json((const uint8_t *)"{}", 2, NULL, &d,
                                             err, sizeof(err)),
                   HS_AGENT_OK);
  assert_int_equal(d.batch.nspans, 0);
  hs_agent_decoded_free(&d);
}

typedef int (*decode_fn)(const uint8_t *, size_t, const hs_agent_limits *,
                         hs_agent_decoded *, char *, size_t);

/* Decodes and checks the contract: a documented code, and a message with
 * every error. Returns the code. */
static int decode_checked(decode_fn fn, const uint8_t *p, size_t n,
                          const hs_agent_limits *lim, size_t *nspans) {
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, lim);
  int rc = fn(p, n, lim, &d, err, sizeof(err));
  assert_true(rc == HS_AGENT_OK || rc == HS_AGENT_EINVAL ||
              rc == HS_AGENT_ETOOBIG);
  if (rc)
    assert_true(err[0] != 0);
  if (nspans)
    *nspans = d.batch.nspans;
  hs_agent_decoded_free(&d);
  return rc;
}

static void test_truncation(void **state) {
  (void)state;
  uint8_t *p;
  size_t n = build_request(&p);
  /* A protobuf cut at a field boundary can still be valid (fewer fields),
   * so a prefix either fails or gives at most the full request's spans;
   * a cut inside the resource or a span is an error (ids missing). */
  for (size_t i = 0; i < n; i++) {
    uint8_t *cut = malloc(i ? i : 1);
    memcpy(cut, p, i);
    size_t ns = 0;
    if (decode_checked(hs_agent_decode_otlp, cut, i, NULL, &ns) == 0)
      assert_true(ns <= 2);
    free(cut);
  }
  free(p);
  /* Every proper prefix of a JSON document is invalid. */
  size_t jn = strlen(JSON_REQ);
  for (size_t i = 0; i < jn; i++) {
    char *cut = malloc(i ? i : 1);
    memcpy(cut, JSON_REQ, i);
    assert_int_equal(decode_checked(hs_agent_decode_otlp_json,
                                    (const uint8_t *)cut, i, NULL, NULL),
                     HS_AGENT_EINVAL);
    free(cut);
  }
}

static void test_garbage(void **state) {
  (void)state;
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  uint8_t buf[512];
  uint8_t *p;
  size_t n = build_request(&p);
  for (int round = 0; round < 3000; round++) {
    size_t len = (size_t)(round % 512);
    for (size_t i = 0; i < len; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      buf[i] = (uint8_t)x;
    }
    decode_checked(hs_agent_decode_otlp, buf, len, NULL, NULL);
    decode_checked(hs_agent_decode_otlp_json, buf, len, NULL, NULL);
    /* A valid request with one byte flipped. */
    uint8_t *m = malloc(n);
    memcpy(m, p, n);
    m[x % n] ^= (uint8_t)(x >> 8 | 1);
    decode_checked(hs_agent_decode_otlp, m, n, NULL, NULL);
    free(m);
    /* And the JSON with one byte changed. */
    size_t jn = strlen(JSON_REQ);
    char *j = malloc(jn);
    memcpy(j, JSON_REQ, jn);
    j[x % jn] = (char)(x >> 16);
    decode_checked(hs_agent_decode_otlp_json, (const uint8_t *)j, jn, NULL,
                   NULL);
    free(j);
  }
  free(p);
}

/* Writes a varint; returns its length. */
static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return n;
}

static void test_hostile(void **state) {
  (void)state;
  /* AnyValue arrays nested 200000 deep inside one attribute: refused by
   * the depth check, not by a stack overflow in protobuf-c. Built from the
   * inside out: each level is AnyValue{array_value{values: <inner>}}. */
  size_t depth = 200000, cap = depth * 16 + 64;
  uint8_t *a = malloc(cap), *b = malloc(cap);
  size_t len = 0;
  for (size_t i = 0; i < depth; i++) {
    uint8_t hdr[24];
    size_t h = 0;
    /* ArrayValue.values (1) = inner AnyValue */
    uint8_t arr[16];
    size_t al = 0;
    arr[al++] = 0x0a;
    al += put_varint(arr + al, len);
    /* AnyValue.array_value (5) = ArrayValue */
    hdr[h++] = 0x2a;
    h += put_varint(hdr + h, al + len);
    memcpy(b, hdr, h);
    memcpy(b + h, arr, al);
    memcpy(b + h + al, a, len);
    len += h + al;
    uint8_t *t = a;
    a = b;
    b = t;
  }
  /* Wrap: KeyValue{key "k", value} in Span.attributes in ScopeSpans in
   * ResourceSpans in the request. */
  const uint8_t wrap_tags[] = {
      0x12 /* KeyValue.value */, 0x4a /* Span.attributes */,
      0x12 /* ScopeSpans.spans */, 0x12 /* ResourceSpans.scope_spans */,
      0x0a /* request.resource_spans */};
  for (size_t w = 0; w < sizeof(wrap_tags); w++) {
    size_t h = 0;
    b[h++] = wrap_tags[w];
    h += put_varint(b + h, len);
    memcpy(b + h, a, len);
    len += h;
    uint8_t *t = a;
    a = b;
    b = t;
  }
  expect_pb_error(a, len, "nested");
  free(a);
  free(b);

  /* A length past the end, a group wire type, field number 0. */
  const uint8_t past[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
  const uint8_t group[] = {0x0b, 0x0c};
  const uint8_t zero[] = {0x00, 0x01};
  assert_int_equal(
      decode_checked(hs_agent_decode_otlp, past, sizeof(past), NULL, NULL),
      HS_AGENT_EINVAL);
  assert_int_equal(
      decode_checked(hs_agent_decode_otlp, group, sizeof(group), NULL, NULL),
      HS_AGENT_EINVAL);
  assert_int_equal(
      decode_checked(hs_agent_decode_otlp, zero, sizeof(zero), NULL, NULL),
      HS_AGENT_EINVAL);

  /* Memory limits: a valid request decoded with a tiny budget. */
  uint8_t *p;
  size_t n = build_request(&p);
  hs_agent_limits tiny = {1 << 20, 256};
  assert_int_equal(decode_checked(hs_agent_decode_otlp, p, n, &tiny, NULL),
                   HS_AGENT_ETOOBIG);
  assert_int_equal(decode_checked(hs_agent_decode_otlp_json,
                                  (const uint8_t *)JSON_REQ, strlen(JSON_REQ),
                                  &tiny, NULL),
                   HS_AGENT_ETOOBIG);
  free(p);
}

/* A link whose ids are not 16 and 8 bytes is refused, naming the link. */
static void test_protobuf_bad_link(void **state) {
  (void)state;
  static const uint8_t short_trace[15] = {1};
  Opentelemetry__Proto__Trace__V1__Span__Link lk =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
  lk.trace_id.data = (uint8_t *)short_trace;
  lk.trace_id.len = 15;
  lk.span_id.data = (uint8_t *)SPAN_ID;
  lk.span_id.len = 8;
  Opentelemetry__Proto__Trace__V1__Span__Link *lks[] = {&lk};
  Opentelemetry__Proto__Trace__V1__Span sp =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  sp.trace_id.data = (uint8_t *)TRACE_ID;
  sp.trace_id.len = 16;
  sp.span_id.data = (uint8_t *)SPAN_ID;
  sp.span_id.len = 8;
  sp.links = lks;
  sp.n_links = 1;
  Opentelemetry__Proto__Trace__V1__Span *spans[] = {&sp};
  uint8_t *buf;
  size_t n = pack_spans(spans, 1, NULL, &buf);
  expect_pb_error(buf, n, "link with a 15-byte trace_id");
  free(buf);
}

static void expect_json_error(const char *doc, const char *needle) {
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  int rc = hs_agent_decode_otlp_json((const uint8_t *)doc, strlen(doc), NULL,
                                     &d, err, sizeof(err));
  if (rc != HS_AGENT_EINVAL || !strstr(err, needle))
    fprintf(stderr, "doc %s: rc %d err '%s' (want '%s')\n", doc, rc, err,
            needle);
  assert_int_equal(rc, HS_AGENT_EINVAL);
  assert_non_null(strstr(err, needle));
  hs_agent_decoded_free(&d);
}

#define SPAN_DOC(fields)                                                       \
  "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{" fields "}]}]}]}"

static void test_json_bad(void **state) {
  (void)state;
  expect_json_error("[]", "request must be an object");
  expect_json_error("{\"resourceSpans\":{}}", "expected an array");
  expect_json_error(SPAN_DOC("\"spanId\":\"000000000000000b\""),
                    "without traceId");
  /* Base64 ids (the plain protobuf JSON mapping) are not OTLP JSON. */
  expect_json_error(SPAN_DOC("\"traceId\":\"S/kvNXezTaajzpKdDg5HNg==\","
                             "\"spanId\":\"000000000000000b\""),
                    "traceId must have 32 hex digits");
  expect_json_error(SPAN_DOC("\"traceId\":\"zz000000000000000000000000000000\","
                             "\"spanId\":\"000000000000000b\""),
                    "traceId must be a hex string");
  expect_json_error(SPAN_DOC("\"traceId\":\"00000000000000000000000000000000\","
                             "\"spanId\":\"000000000000000b\""),
                    "all-zero");
  expect_json_error(SPAN_DOC("\"traceId\":\"0000000000000000000000000000000a\","
                             "\"spanId\":\"000000000000000b\","
                             "\"startTimeUnixNano\":1.5"),
                    "startTimeUnixNano");
  expect_json_error(SPAN_DOC("\"traceId\":\"0000000000000000000000000000000a\","
                             "\"spanId\":\"000000000000000b\","
                             "\"endTimeUnixNano\":\"99999999999999999999\""),
                    "endTimeUnixNano");
  expect_json_error(SPAN_DOC("\"traceId\":\"0000000000000000000000000000000a\","
                             "\"spanId\":\"000000000000000b\",\"kind\":true"),
                    "kind");
  expect_json_error(SPAN_DOC("\"traceId\":\"0000000000000000000000000000000a\","
                             "\"spanId\":\"000000000000000b\","
                             "\"attributes\":[{\"value\":{}}]"),
                    "string key");
  expect_json_error(SPAN_DOC("\"traceId\":\"0000000000000000000000000000000a\","
                             "\"spanId\":\"000000000000000b\","
                             "\"attributes\":[{\"key\":\"x\",\"value\":"
                             "{\"intValue\":\"12a\"}}]"),
                    "intValue");
  /* Events and links. */
#define IDS                                                                    \
  "\"traceId\":\"0000000000000000000000000000000a\","                          \
  "\"spanId\":\"000000000000000b\","
  expect_json_error(SPAN_DOC(IDS "\"events\":{}"), "expected an array");
  expect_json_error(SPAN_DOC(IDS "\"events\":[1]"), "event must be an object");
  expect_json_error(SPAN_DOC(IDS "\"events\":[{\"timeUnixNano\":-1}]"),
                    "timeUnixNano");
  expect_json_error(SPAN_DOC(IDS "\"events\":[{\"name\":7}]"),
                    "event name must be a string");
  expect_json_error(
      SPAN_DOC(IDS "\"links\":[{\"spanId\":\"000000000000000b\"}]"),
      "link without traceId");
  expect_json_error(
      SPAN_DOC(IDS
               "\"links\":[{\"traceId\":\"0000000000000000000000000000000a\","
               "\"spanId\":\"0b\"}]"),
      "link spanId must have 16 hex digits");
  expect_json_error(
      SPAN_DOC(IDS
               "\"links\":[{\"traceId\":\"0000000000000000000000000000000a\","
               "\"spanId\":\"000000000000000b\",\"flags\":-1}]"),
      "link flags");
  expect_json_error(SPAN_DOC(IDS "\"droppedLinksCount\":4294967296"),
                    "dropped count");
#undef IDS
  /* Duplicate keys are ambiguous: the strict reader refuses them. */
  expect_json_error("{\"resourceSpans\":[],\"resourceSpans\":[]}", "duplicate");
  /* Deep nesting stops at the reader's depth cap. */
  char deep[400];
  size_t k = 0;
  for (int i = 0; i < 150; i++)
    deep[k++] = '[';
  for (int i = 0; i < 150; i++)
    deep[k++] = ']';
  deep[k] = 0;
  expect_json_error(deep, "otlp json");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protobuf_golden),
      cmocka_unit_test(test_json_golden),
      cmocka_unit_test(test_protobuf_bad_link),
      cmocka_unit_test(test_truncation),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_json_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
