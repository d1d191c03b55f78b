/* OTLP/HTTP trace exporter: encoder golden bytes and mapping, ids,
 * configuration parsing (endpoint, headers, compression, timeout),
 * partial-success responses, gzip, and the sink end to end with a
 * capturing send function (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "exporter/otlp.h"
#include "hotspan/hotspan.h"
#include "otlp_trace_service.pb-c.h"
#include "support/gzip.h"
#include "tracer/internal.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    pb_request;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;

/* ------------------------------------------------------------ fixtures */

typedef struct one_span {
  hs_trace trace;
  hotspan_span span;
  hs_chunk chunk;
} one_span;

static void one_span_init(one_span *f) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->trace.mu, NULL);
  f->trace.id_high = 1;
  f->trace.id_low = 2;
  f->trace.priority = 1;
  f->span.trace = &f->trace;
  f->span.span_id = 3;
  f->span.is_local_root = 1;
  f->span.name = "n";
  f->span.service = "s";
  f->span.kind = HOTSPAN_KIND_SERVER;
  f->span.start_ns = 10;
  f->span.duration_ns = 5;
  f->chunk.trace = &f->trace;
  f->chunk.spans = &f->span;
  f->chunk.nspans = 1;
}

static pb_request *encode_unpack(hs_otlp_encoder *e) {
  uint8_t *body = NULL;
  size_t len = 0;
  assert_int_equal(hs_otlp_encoder_finish(e, &body, &len), HOTSPAN_OK);
  assert_non_null(body);
  pb_request *r = (pb_request *)protobuf_c_message_unpack(
      &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
      NULL, len, body);
  free(body);
  assert_non_null(r);
  return r;
}

static const pb_kv *find_attr(pb_kv **kv, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(kv[i]->key, key) == 0)
      return kv[i];
  return NULL;
}

/* ------------------------------------------------------------ golden */

static void test_golden_tiny_span(void **state) {
  (void)state;
  one_span f;
  one_span_init(&f);
  hs_otlp_encoder *e = hs_otlp_encoder_new(NULL, "s", "1");
  assert_non_null(e);
  assert_int_equal(hs_otlp_encoder_add_chunk(e, &f.chunk), HOTSPAN_OK);
  uint8_t *body = NULL;
  size_t len = 0;
  assert_int_equal(hs_otlp_encoder_finish(e, &body, &len), HOTSPAN_OK);
  /* Derived by hand from the wire format (tag = field << 3 | wire type;
   * 2 = length-delimited, 0 = varint, 1 = fixed64, 5 = fixed32). */
  static const uint8_t want[] = {
      0x0a, 0x7d, /* request.resource_spans (1), 125 bytes */
      0x0a, 0x15, /*  resource_spans.resource (1), 21 bytes */
      0x0a, 0x13, /*   resource.attributes (1), 19 bytes */
      0x0a, 0x0c, 's',  'e',  'r', 'v', 'i', 'c', 'e', '.', 'n', 'a', 'm',
      'e',             /* key (1) "service.name" */
      0x12, 0x03,      /* value (2): AnyValue, 3 bytes */
      0x0a, 0x01, 's', /* string_value (1) "s" */
      0x12, 0x64,      /*  resource_spans.scope_spans (2), 100 bytes */
      0x0a, 0x0c,      /*   scope (1), 12 bytes */
      0x0a, 0x07, 'h',  'o',  't', 's', 'p', 'a', 'n', /* name "hotspan" */
      0x12, 0x01, '1',                                 /* version "1" */
      0x12, 0x54, /*   spans (2), 84 bytes */
      0x0a, 0x10, /*    trace_id (1): high 64 then low 64, big-endian */
      0,    0,    0,    0,    0,   0,   0,   1,   0,   0,   0,   0,   0,
      0,    0,    2,                                      /* */
      0x12, 0x08, 0,    0,    0,   0,   0,   0,   0,   3, /* span_id (2) */
      0x1a, 0x19, /* trace_state (3), 25 bytes: the W3C tracestate this
                     span propagates (priority 1, p: its own id) */
      'd',  'd',  '=',  's',  ':', '1', ';', 'p', ':', '0', '0', '0', '0',
      '0',  '0',  '0',  '0',  '0', '0', '0', '0', '0', '0', '0', '3', /* no
                                                                         parent
                                                                         (4) */
      0x2a, 0x01, 'n',                               /* name (5) */
      0x30, 0x02,                                    /* kind (6) SERVER */
      0x39, 10,   0,    0,    0,   0,   0,   0,   0, /* start_time_unix_nano (7)
                                                        fixed64 */
      0x41, 15,   0,    0,    0,   0,   0,   0,   0, /* end_time_unix_nano (8) =
                                                        10 + 5 */
      0x85, 0x01, /* flags (16) fixed32: 16 << 3 | 5 = 133, varint 2 bytes */
      0x01, 0x01, 0x00, 0x00, /* 0x101: sampled, HAS_IS_REMOTE, not remote */
  };
  assert_int_equal(len, sizeof want);
  assert_memory_equal(body, want, sizeof want);
  free(body);
  /* The encoder is empty again: nothing to send. */
  assert_int_equal(hs_otlp_encoder_finish(e, &body, &len), HOTSPAN_OK);
  assert_null(body);
  assert_int_equal(len, 0);
  hs_otlp_encoder_free(e);
  pthread_mutex_destroy(&f.trace.mu);
}

static void test_ids_big_endian(void **state) {
  (void)state;
  uint8_t t[16], s[8];
  hs_otlp_trace_id_bytes(0x0123456789abcdefull, 0xfedcba9876543210ull, t);
  static const uint8_t wt[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                                 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98,
                                 0x76, 0x54, 0x32, 0x10};
  assert_memory_equal(t, wt, 16);
  hs_otlp_span_id_bytes(0x7fffffff00000001ull, s);
  static const uint8_t ws[8] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1};
  assert_memory_equal(s, ws, 8);
}

/* Tags of every type, resource/type attributes, error status, remote
 * parent flags, another service in its own ResourceSpans. */
static void test_mapping(void **state) {
  (void)state;
  one_span f;
  one_span_init(&f);
  hotspan_span child;
  memset(&child, 0, sizeof child);
  hs_tag tags[5] = {
      {"http.method", HS_TAG_STR, 11, {.s = "GET"}},
      {"http.status_code", HS_TAG_INT, 16, {.i = -500}},
      {"ratio", HS_TAG_DOUBLE, 5, {.d = 0.25}},
      {"cache.hit", HS_TAG_BOOL, 9, {.i = 1}},
      {"error.message", HS_TAG_STR, 13, {.s = "boom"}},
  };
  f.trace.has_remote = 1;
  snprintf(f.trace.tracestate_other, sizeof f.trace.tracestate_other,
           "ot=x:1,rojo=00f067aa0ba902b7");
  snprintf(f.trace.origin, sizeof f.trace.origin, "synthetics");
  snprintf(f.trace.propagated_tags, sizeof f.trace.propagated_tags,
           "_dd.p.dm=-3,_dd.p.tid=0000000000000001");
  f.span.parent_id = 0x99; /* remote parent */
  f.span.resource = "GET /x";
  f.span.type = "web";
  f.span.tags = tags;
  f.span.ntags = 5;
  f.span.error = 1;
  f.span.next = &child;
  child.trace = &f.trace;
  child.span_id = 4;
  child.parent_id = 3;
  child.name = "db";
  child.resource = "db"; /* same as the name: no resource.name */
  child.service = "other-db";
  child.kind = 7; /* out of range: UNSPECIFIED */
  f.chunk.nspans = 2;

  hs_otlp_resource res;
  memset(&res, 0, sizeof res);
  assert_int_equal(hs_otlp_resource_add_str(&res, "host.name", "h1"),
                   HOTSPAN_OK);
  assert_int_equal(hs_otlp_resource_add_int(&res, "process.pid", 77),
                   HOTSPAN_OK);
  hs_otlp_encoder *e = hs_otlp_encoder_new(&res, "s", "0.1.0");
  hs_otlp_resource_free(&res);
  assert_int_equal(hs_otlp_encoder_add_chunk(e, &f.chunk), HOTSPAN_OK);
  assert_int_equal(hs_otlp_encoder_spans(e), 2);
  pb_request *r = encode_unpack(e);
  assert_int_equal(r->n_resource_spans, 2);
  const pb_span *sp = r->resource_spans[0]->scope_spans[0]->spans[0];
  assert_int_equal(r->resource_spans[0]->scope_spans[0]->n_spans, 1);
  assert_string_equal(r->resource_spans[0]->scope_spans[0]->scope->name,
                      "hotspan");
  const Opentelemetry__Proto__Resource__V1__Resource *res0 =
      r->resource_spans[0]->resource;
  assert_string_equal(
      find_attr(res0->attributes, res0->n_attributes, "service.name")
          ->value->string_value,
      "s");
  assert_int_equal(
      find_attr(res0->attributes, res0->n_attributes, "process.pid")
          ->value->int_value,
      (int64_t)getpid());             /* refreshed at each payload */
  assert_int_equal(sp->flags, 0x301); /* sampled, remote parent */
  assert_int_equal(sp->parent_span_id.len, 8);
  assert_int_equal(sp->parent_span_id.data[7], 0x99);
  /* The tracestate the span would propagate: the dd member (priority,
   * its own id, origin, propagated tags but the trace id's high half),
   * then the other vendors' members as extracted. */
  assert_string_equal(sp->trace_state, "dd=s:1;p:0000000000000003;"
                                       "o:synthetics;t.dm:-3,"
                                       "ot=x:1,rojo=00f067aa0ba902b7");
  assert_int_equal(sp->kind, 2);
  assert_int_equal(sp->n_attributes, 7);
  assert_int_equal(
      sp->attributes[0]->value->value_case,
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
  assert_int_equal(sp->attributes[1]->value->int_value, -500);
  assert_true(sp->attributes[2]->value->double_value == 0.25);
  assert_int_equal(
      sp->attributes[3]->value->value_case,
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
  assert_true(sp->attributes[3]->value->bool_value);
  assert_string_equal(
      find_attr(sp->attributes, sp->n_attributes, "resource.name")
          ->value->string_value,
      "GET /x");
  assert_string_equal(find_attr(sp->attributes, sp->n_attributes, "span.type")
                          ->value->string_value,
                      "web");
  assert_non_null(sp->status);
  assert_int_equal(sp->status->code, 2);
  assert_string_equal(sp->status->message, "boom");

  /* The child of another service: its own resource, same other attrs. */
  const Opentelemetry__Proto__Resource__V1__Resource *res1 =
      r->resource_spans[1]->resource;
  assert_string_equal(
      find_attr(res1->attributes, res1->n_attributes, "service.name")
          ->value->string_value,
      "other-db");
  assert_string_equal(
      find_attr(res1->attributes, res1->n_attributes, "host.name")
          ->value->string_value,
      "h1");
  const pb_span *c = r->resource_spans[1]->scope_spans[0]->spans[0];
  assert_int_equal(c->flags, 0x101); /* local parent */
  assert_string_equal(c->trace_state, "dd=s:1;p:0000000000000004;"
                                      "o:synthetics;t.dm:-3,"
                                      "ot=x:1,rojo=00f067aa0ba902b7");
  assert_int_equal(c->kind, 0);
  assert_int_equal(c->n_attributes, 0);
  assert_null(c->status);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  hs_otlp_encoder_free(e);
  pthread_mutex_destroy(&f.trace.mu);
}

/* Events, links, drop counts and every attribute type, read back by
 * protobuf-c's generated decoder: the encoder writes the wire format by
 * hand, so this checks it field by field against code it does not share. */
static void test_events_links_decoded(void **state) {
  (void)state;
  one_span f;
  one_span_init(&f);
  hs_tag eattrs[5] = {
      {"s", HS_TAG_STR, 1, {.s = ""}},
      {"neg", HS_TAG_INT, 3, {.i = -1}},
      {"big", HS_TAG_INT, 3, {.i = INT64_MAX}},
      {"d", HS_TAG_DOUBLE, 1, {.d = -2.5}},
      {"no", HS_TAG_BOOL, 2, {.i = 0}},
  };
  hs_tag lattr = {"link.kind", HS_TAG_STR, 9, {.s = "follows"}};
  hs_span_event ev2 = {NULL, "second", 0, NULL, 0};
  hs_span_event ev1 = {&ev2, "exception", 1700000000000000001ull, eattrs, 5};
  /* Three links: a context of unknown origin, one from a local span, one
   * extracted from another process (not sampled). */
  hs_span_link lk3 = {.trace_id_low = 0x5,
                      .span_id = 0x6,
                      .trace_flags = 0,
                      .remote = HOTSPAN_CONTEXT_REMOTE};
  hs_span_link lk2 = {.next = &lk3,
                      .trace_id_low = 0x4,
                      .span_id = 0x5,
                      .trace_flags = 1,
                      .remote = HOTSPAN_CONTEXT_LOCAL};
  hs_span_link lk = {.next = &lk2,
                     .trace_id_high = 0x1111,
                     .trace_id_low = 0x2222,
                     .span_id = 0x3333,
                     .trace_flags = 1,
                     .remote = HOTSPAN_CONTEXT_UNKNOWN,
                     .tracestate = "congo=t61",
                     .attrs = &lattr,
                     .nattrs = 1};
  f.span.events = &ev1;
  f.span.nevents = 2;
  f.span.dropped_events = 3;
  f.span.links = &lk;
  f.span.nlinks = 3;
  f.span.dropped_links = 1;
  f.span.name = "";
  f.span.kind = 0;
  hs_otlp_encoder *e = hs_otlp_encoder_new(NULL, "s", "");
  assert_non_null(e);
  assert_int_equal(hs_otlp_encoder_add_chunk(e, &f.chunk), HOTSPAN_OK);
  assert_true(hs_otlp_encoder_bytes(e) > 0);
  pb_request *r = encode_unpack(e);
  assert_int_equal(r->n_resource_spans, 1);
  const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
      r->resource_spans[0]->scope_spans[0];
  assert_string_equal(ss->scope->name, "hotspan");
  assert_string_equal(ss->scope->version, ""); /* empty: left out */
  assert_int_equal(ss->n_spans, 1);
  const pb_span *sp = ss->spans[0];
  assert_string_equal(sp->name, "");
  assert_int_equal(sp->kind, 0);
  assert_int_equal(sp->n_events, 2);
  assert_int_equal(sp->dropped_events_count, 3);
  const Opentelemetry__Proto__Trace__V1__Span__Event *x = sp->events[0];
  assert_true(x->time_unix_nano == 1700000000000000001ull);
  assert_string_equal(x->name, "exception");
  assert_int_equal(x->n_attributes, 5);
  assert_string_equal(x->attributes[0]->key, "s");
  assert_int_equal(
      x->attributes[0]->value->value_case,
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
  assert_string_equal(x->attributes[0]->value->string_value, "");
  assert_true(x->attributes[1]->value->int_value == -1);
  assert_true(x->attributes[2]->value->int_value == INT64_MAX);
  assert_true(x->attributes[3]->value->double_value == -2.5);
  assert_int_equal(
      x->attributes[4]->value->value_case,
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
  assert_false(x->attributes[4]->value->bool_value);
  assert_true(sp->events[1]->time_unix_nano == 0);
  assert_string_equal(sp->events[1]->name, "second");
  assert_int_equal(sp->events[1]->n_attributes, 0);
  assert_int_equal(sp->n_links, 3);
  assert_int_equal(sp->dropped_links_count, 1);
  const Opentelemetry__Proto__Trace__V1__Span__Link *l = sp->links[0];
  assert_int_equal(l->trace_id.len, 16);
  assert_int_equal(l->trace_id.data[7], 0x11);
  assert_int_equal(l->trace_id.data[15], 0x22);
  assert_int_equal(l->span_id.len, 8);
  assert_int_equal(l->span_id.data[6], 0x33);
  assert_string_equal(l->trace_state, "congo=t61");
  assert_int_equal(l->flags, 1); /* sampled; origin unknown */
  assert_int_equal(l->n_attributes, 1);
  assert_string_equal(l->attributes[0]->value->string_value, "follows");
  /* Local: sampled + HAS_IS_REMOTE. Remote: HAS_IS_REMOTE + IS_REMOTE, and
   * no tracestate or attributes. */
  assert_int_equal(sp->links[1]->span_id.data[7], 0x05);
  assert_int_equal(sp->links[1]->flags, 0x101);
  assert_int_equal(sp->links[2]->span_id.data[7], 0x06);
  assert_int_equal(sp->links[2]->flags, 0x300);
  assert_string_equal(sp->links[2]->trace_state, "");
  assert_int_equal(sp->links[2]->n_attributes, 0);
  assert_int_equal(sp->flags, 0x101);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  hs_otlp_encoder_free(e);
  pthread_mutex_destroy(&f.trace.mu);
}

/* ------------------------------------------------------------ config */

static void test_endpoint(void **state) {
  (void)state;
  char out[128], err[256];
  assert_int_equal(
      hs_otlp_resolve_endpoint(NULL, NULL, out, sizeof out, err, sizeof err),
      HOTSPAN_OK);
  assert_string_equal(out, "http://localhost:4318/v1/traces");
  assert_int_equal(
      hs_otlp_resolve_endpoint("", "", out, sizeof out, err, sizeof err),
      HOTSPAN_OK);
  assert_string_equal(out, "http://localhost:4318/v1/traces");
  /* The signal's endpoint is used as is, even without /v1/traces. */
  assert_int_equal(hs_otlp_resolve_endpoint("https://c:1/custom",
                                            "http://base:4318", out, sizeof out,
                                            err, sizeof err),
                   HOTSPAN_OK);
  assert_string_equal(out, "https://c:1/custom");
  assert_int_equal(hs_otlp_resolve_endpoint(NULL, "http://base:4318", out,
                                            sizeof out, err, sizeof err),
                   HOTSPAN_OK);
  assert_string_equal(out, "http://base:4318/v1/traces");
  assert_int_equal(hs_otlp_resolve_endpoint(NULL, "http://base:4318/p//", out,
                                            sizeof out, err, sizeof err),
                   HOTSPAN_OK);
  assert_string_equal(out, "http://base:4318/p/v1/traces");
  /* Bad input: clear message naming the variable. */
  assert_int_equal(hs_otlp_resolve_endpoint("localhost:4318", NULL, out,
                                            sizeof out, err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
  assert_int_equal(hs_otlp_resolve_endpoint(NULL, "http://", out, sizeof out,
                                            err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_ENDPOINT"));
  assert_int_equal(hs_otlp_resolve_endpoint("http://a\r\nX: y", NULL, out,
                                            sizeof out, err, sizeof err),
                   HOTSPAN_ECONFIG);
  char tiny[20];
  assert_int_equal(hs_otlp_resolve_endpoint(NULL, "http://long-host:4318", tiny,
                                            sizeof tiny, err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_non_null(strstr(err, "too long"));
}

static void test_headers(void **state) {
  (void)state;
  hs_otlp_headers h;
  memset(&h, 0, sizeof h);
  char err[256];
  assert_int_equal(
      hs_otlp_parse_headers(" api-key = se%20cret ,, x-b=a%3Db ,Empty=", &h,
                            err, sizeof err),
      HOTSPAN_OK);
  assert_int_equal(h.n, 3);
  assert_string_equal(h.lines[0], "api-key: se cret");
  assert_string_equal(h.lines[1], "x-b: a=b");
  assert_string_equal(h.lines[2], "Empty: ");
  assert_null(h.lines[3]);
  /* A later variable replaces a header of the same name. */
  assert_int_equal(hs_otlp_parse_headers("API-KEY=two", &h, err, sizeof err),
                   HOTSPAN_OK);
  assert_int_equal(h.n, 3);
  assert_string_equal(h.lines[0], "API-KEY: two");
  /* Malformed entries are left out and named; the good one is kept. */
  assert_int_equal(hs_otlp_parse_headers("novalue,=v,bad key=1,x=%0d%0aY: z,"
                                         "p=%4,q=%zz,ok=1",
                                         &h, err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_int_equal(h.n, 4);
  assert_string_equal(h.lines[3], "ok: 1");
  assert_non_null(strstr(err, "'novalue'"));
  assert_non_null(strstr(err, "'=v'"));
  assert_non_null(strstr(err, "'bad key=1'"));
  assert_non_null(strstr(err, "'x=%0d%0aY: z'"));
  assert_non_null(strstr(err, "'p=%4'"));
  assert_non_null(strstr(err, "'q=%zz'"));
  for (size_t i = 0; i < h.n; i++)
    assert_null(strpbrk(h.lines[i], "\r\n"));
  /* Too many headers: the rest is refused, nothing overflows. */
  char many[4096] = "";
  for (int i = 0; i < HS_OTLP_MAX_HEADERS + 5; i++)
    snprintf(many + strlen(many), sizeof many - strlen(many), "h%d=v,", i);
  assert_int_equal(hs_otlp_parse_headers(many, &h, err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_int_equal(h.n, HS_OTLP_MAX_HEADERS);
  assert_null(h.lines[HS_OTLP_MAX_HEADERS]);
  hs_otlp_headers_free(&h);
  assert_int_equal(hs_otlp_parse_headers(NULL, &h, err, sizeof err),
                   HOTSPAN_OK);
  assert_int_equal(h.n, 0);
}

static void test_compression_timeout(void **state) {
  (void)state;
  int gz = -1, ms = 0;
  char err[128];
  assert_int_equal(hs_otlp_parse_compression(" GZIP ", &gz, err, sizeof err),
                   HOTSPAN_OK);
  assert_int_equal(gz, 1);
  assert_int_equal(hs_otlp_parse_compression("none", &gz, err, sizeof err),
                   HOTSPAN_OK);
  assert_int_equal(gz, 0);
  assert_int_equal(hs_otlp_parse_compression("zstd", &gz, err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_non_null(strstr(err, "zstd"));
  assert_int_equal(gz, 0);
  assert_int_equal(hs_otlp_parse_timeout("2500", &ms, err, sizeof err),
                   HOTSPAN_OK);
  assert_int_equal(ms, 2500);
  const char *bad[] = {
      "", "0", "-1", "10s", "1.5", "99999999999999999999", "3600001"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(hs_otlp_parse_timeout(bad[i], &ms, err, sizeof err),
                     HOTSPAN_ECONFIG);
    assert_int_equal(ms, 2500);
  }
}

static void test_config_from_env(void **state) {
  (void)state;
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2", 1);
  setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=3,bad", 1);
  setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
  setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "nope", 1);
  setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3000", 1);
  hs_otlp_config c;
  assert_int_equal(hs_otlp_config_from_env(&c), HOTSPAN_OK);
  assert_string_equal(c.endpoint, "http://collector:4318/v1/traces");
  assert_int_equal(c.headers.n, 2);
  assert_string_equal(c.headers.lines[1], "b: 3");
  assert_int_equal(c.gzip, 1);
  /* The traces variable is set but bad: the default, not the generic. */
  assert_int_equal(c.timeout_ms, HS_OTLP_DEFAULT_TIMEOUT_MS);
  hs_otlp_config_free(&c);
  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
  unsetenv("OTEL_EXPORTER_OTLP_COMPRESSION");
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
  unsetenv("OTEL_EXPORTER_OTLP_TIMEOUT");
}

/* ------------------------------------------------------------ response */

static size_t pack_response(int with_partial, int64_t rejected, const char *msg,
                            uint8_t *buf) {
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
  Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess p =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
  p.rejected_spans = rejected;
  p.error_message = (char *)msg;
  if (with_partial)
    r.partial_success = &p;
  return protobuf_c_message_pack(&r.base, buf);
}

static void test_decode_response(void **state) {
  (void)state;
  uint8_t buf[256];
  int64_t rej = -1;
  char msg[16];
  size_t n = pack_response(1, 7, "too many attributes here", buf);
  assert_int_equal(hs_otlp_decode_response(buf, n, &rej, msg, sizeof msg), 2);
  assert_int_equal(rej, 7);
  assert_string_equal(msg, "too many attrib"); /* cut to the buffer */
  assert_int_equal(hs_otlp_decode_response(buf, 0, &rej, msg, sizeof msg), 1);
  assert_int_equal(rej, 0);
  assert_string_equal(msg, "");
  n = pack_response(1, -3, NULL, buf);
  assert_int_equal(hs_otlp_decode_response(buf, n, &rej, NULL, 0), 2);
  assert_int_equal(rej, 0);
  /* Truncated at every length: never a crash, never a wrong count. */
  n = pack_response(1, 7, "bad spans", buf);
  for (size_t k = 1; k < n; k++) {
    int rc = hs_otlp_decode_response(buf, k, &rej, msg, sizeof msg);
    assert_true(rc == 0 || (rc >= 1 && (rej == 0 || rej == 7)));
  }
  assert_int_equal(hs_otlp_decode_response(buf, n - 1, &rej, msg, sizeof msg),
                   0);
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  assert_int_equal(
      hs_otlp_decode_response(garbage, sizeof garbage, &rej, msg, sizeof msg),
      0);
  static const char html[] = "<html>502 Bad Gateway</html>";
  assert_int_equal(hs_otlp_decode_response((const uint8_t *)html,
                                           sizeof html - 1, &rej, msg,
                                           sizeof msg),
                   0);
}

/* ------------------------------------------------------------ gzip */

static void test_gzip_roundtrip(void **state) {
  (void)state;
  uint8_t in[5000];
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (uint8_t)(i * 7 % 13);
  uint8_t *z = NULL;
  size_t zl = 0;
  assert_int_equal(hs_otlp_gzip(in, sizeof in, 6, &z, &zl), HOTSPAN_OK);
  assert_true(zl > 18 && zl < sizeof in);
  assert_int_equal(z[0], 0x1f); /* gzip magic */
  assert_int_equal(z[1], 0x8b);
  size_t outn;
  uint8_t *out = ts_gunzip(z, zl, &outn);
  assert_int_equal(outn, sizeof in);
  assert_memory_equal(out, in, sizeof in);
  free(out);
  free(z);
  assert_int_equal(hs_otlp_gzip(in, 0, 6, &z, &zl), HOTSPAN_OK);
  assert_true(zl >= 20);
  free(z);
}

/* ------------------------------------------------------------ sink */

typedef struct captured {
  int payloads;
  uint32_t spans;
  uint8_t *last;
  size_t last_len;
  int refuse;
} captured;

static int capture_send(void *arg, char *body, size_t len, uint32_t spans) {
  captured *c = arg;
  if (c->refuse) {
    free(body);
    return HOTSPAN_EFULL;
  }
  c->payloads++;
  c->spans += spans;
  free(c->last);
  c->last = (uint8_t *)body;
  c->last_len = len;
  return HOTSPAN_OK;
}

static hotspan_tracer *new_tracer(void) {
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.ignore_environment = 1;
  cfg.log_level = 1;
  cfg.service = "checkout";
  cfg.env = "prod";
  cfg.sample_rate = 1.0;
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_OK);
  return t;
}

static void test_sink_batches_and_counts(void **state) {
  (void)state;
  hotspan_tracer *t = new_tracer();
  captured cap = {0};
  hs_otlp_trace_options o;
  memset(&o, 0, sizeof o);
  o.compression = 1;
  o.batch_spans = 3;
  o.send = capture_send;
  o.send_arg = &cap;
  hs_trace_sink *sink = hs_otlp_trace_sink_new(hs_tracer_sink_host(t), &o);
  assert_non_null(sink);
  assert_int_equal(hs_tracer_add_sink(t, sink), HOTSPAN_OK);
  for (int i = 0; i < 4; i++) {
    hotspan_span *s = hotspan_span_start(t, "op", NULL);
    hotspan_span_set_tag_int(s, "i", i);
    hotspan_span_finish(s);
  }
  assert_int_equal(hotspan_tracer_flush(t, 5000), HOTSPAN_OK);
  /* 3 by size, 1 by the forced flush. */
  assert_int_equal(cap.payloads, 2);
  assert_int_equal(cap.spans, 4);
  /* The body is gzip of a request with the last span. */
  size_t rl;
  uint8_t *raw = ts_gunzip(cap.last, cap.last_len, &rl);
  pb_request *r = (pb_request *)protobuf_c_message_unpack(
      &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
      NULL, rl, raw);
  free(raw);
  assert_non_null(r);
  const Opentelemetry__Proto__Resource__V1__Resource *res =
      r->resource_spans[0]->resource;
  assert_string_equal(
      find_attr(res->attributes, res->n_attributes, "service.name")
          ->value->string_value,
      "checkout");
  assert_string_equal(find_attr(res->attributes, res->n_attributes,
                                "deployment.environment.name")
                          ->value->string_value,
                      "prod");
  assert_string_equal(
      find_attr(res->attributes, res->n_attributes, "telemetry.sdk.name")
          ->value->string_value,
      "hotspan");
  assert_non_null(
      find_attr(res->attributes, res->n_attributes, "process.command_line"));
  const pb_span *sp = r->resource_spans[0]->scope_spans[0]->spans[0];
  assert_int_equal(sp->attributes[0]->value->int_value, 3);
  protobuf_c_message_free_unpacked(&r->base, NULL);

  /* Responses: partial success counted, garbage counted as unreadable,
   * error statuses left to the transport. */
  uint8_t buf[128];
  size_t n = pack_response(1, 5, "quota", buf);
  hs_otlp_on_response(sink, 200, (const char *)buf, n);
  hs_otlp_on_response(sink, 200, (const char *)buf, n);
  hs_otlp_on_response(sink, 200, "\xff\xff", 2);
  hs_otlp_on_response(sink, 200, (const char *)buf, n - 2);
  hs_otlp_on_response(sink, 503, "\xff\xff", 2);
  hs_otlp_on_response(sink, 200, NULL, 0);
  /* A send the transport refuses: the spans are counted as dropped. */
  cap.refuse = 1;
  hotspan_span_finish(hotspan_span_start(t, "lost", NULL));
  assert_int_equal(hotspan_tracer_flush(t, 5000), HOTSPAN_OK);
  hs_otlp_trace_stats st;
  hs_otlp_trace_sink_stats(sink, &st);
  assert_int_equal(st.payloads, 2);
  assert_int_equal(st.spans_encoded, 4);
  assert_int_equal(st.rejected_spans, 10);
  assert_int_equal(st.partial_success, 2);
  assert_int_equal(st.responses_unreadable, 2);
  assert_int_equal(st.payloads_failed, 1);
  assert_int_equal(st.spans_dropped, 1);
  hotspan_tracer_free(t);
  free(cap.last);
}

static void test_sink_bad_options(void **state) {
  (void)state;
  hotspan_tracer *t = new_tracer();
  hs_otlp_trace_options o;
  memset(&o, 0, sizeof o);
  o.compression = -1;
  o.endpoint = "collector:4318"; /* no scheme */
  assert_null(hs_otlp_trace_sink_new(hs_tracer_sink_host(t), &o));
  hotspan_tracer_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_tiny_span),
      cmocka_unit_test(test_ids_big_endian),
      cmocka_unit_test(test_mapping),
      cmocka_unit_test(test_events_links_decoded),
      cmocka_unit_test(test_endpoint),
      cmocka_unit_test(test_headers),
      cmocka_unit_test(test_compression_timeout),
      cmocka_unit_test(test_config_from_env),
      cmocka_unit_test(test_decode_response),
      cmocka_unit_test(test_gzip_roundtrip),
      cmocka_unit_test(test_sink_batches_and_counts),
      cmocka_unit_test(test_sink_bad_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
