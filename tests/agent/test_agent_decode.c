/* The agent's decoders: golden decodes of payloads built here with the
 * same libraries real tracers use (msgpack-c's packer, protobuf-c from the
 * generated pprof structs, zlib, zstd), and bad input of every kind:
 * truncated, garbage, wrong types, hostile lengths, decompression bombs.
 * Every bad input must give an error code and a message, never a crash
 * (the ASan/UBSan build checks the "never reads out of bounds" part). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>
#include <zlib.h>
#include <zstd.h>

#include "agent/compress.h"
#include "agent/decode.h"
#include "agent/multipart.h"
#include "profile.pb-c.h"
#include "support/gzip.h"
#include "support/msgpack.h"

/* ------------------------------------------------------------ helpers */

/* Packs one span map; extra_key/extra adds a key packed by the caller. */
static void pk_span(msgpack_packer *pk, uint64_t trace, uint64_t span,
                    uint64_t parent, const char *name, int with_tid) {
  msgpack_pack_map(pk, 13);
  ts_pack_str(pk, "service");
  ts_pack_str(pk, "checkout");
  ts_pack_str(pk, "name");
  ts_pack_str(pk, name);
  ts_pack_str(pk, "resource");
  ts_pack_str(pk, "POST /checkout");
  ts_pack_str(pk, "type");
  ts_pack_str(pk, "web");
  ts_pack_str(pk, "trace_id");
  msgpack_pack_uint64(pk, trace);
  ts_pack_str(pk, "span_id");
  msgpack_pack_uint64(pk, span);
  ts_pack_str(pk, "parent_id");
  msgpack_pack_uint64(pk, parent);
  ts_pack_str(pk, "start");
  msgpack_pack_int64(pk, 1700000000123456789LL);
  ts_pack_str(pk, "duration");
  msgpack_pack_int64(pk, 1800000000LL);
  ts_pack_str(pk, "error");
  msgpack_pack_int32(pk, parent ? 1 : 0);
  ts_pack_str(pk, "meta");
  msgpack_pack_map(pk, with_tid ? 2 : 1);
  ts_pack_str(pk, "http.method");
  ts_pack_str(pk, "POST");
  if (with_tid) {
    ts_pack_str(pk, "_dd.p.tid");
    ts_pack_str(pk, "6553f1000000abcd");
  }
  ts_pack_str(pk, "metrics");
  msgpack_pack_map(pk, 2);
  ts_pack_str(pk, "_sampling_priority_v1");
  msgpack_pack_int32(pk, 1);
  ts_pack_str(pk, "_dd.top_level");
  msgpack_pack_double(pk, 0.5);
  ts_pack_str(pk, "unknown_future_key");
  msgpack_pack_array(pk, 1);
  msgpack_pack_nil(pk);
}

static int decode_mp(const void *p, size_t n, hs_agent_decoded *d, char *err,
                     const hs_agent_limits *lim) {
  hs_agent_decoded_init(d, lim);
  return hs_agent_decode_dd_msgpack(p, n, lim, d, err, 256);
}

/* ------------------------------------------------------------ msgpack */

static void test_dd_msgpack_golden(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_array(&pk, 2);
  pk_span(&pk, 42, 1, 0, "http.request", 1);
  pk_span(&pk, 42, 2, 1, "serialize_cart", 0);
  msgpack_pack_array(&pk, 1);
  pk_span(&pk, 43, 3, 0, "other", 0);

  hs_agent_decoded d;
  char err[256] = "";
  assert_int_equal(decode_mp(sb.data, sb.size, &d, err, NULL), HS_AGENT_OK);
  assert_int_equal(d.batch.nspans, 3);
  const hs_ing_span *s = &d.batch.spans[0];
  assert_string_equal(s->service, "checkout");
  assert_string_equal(s->name, "http.request");
  assert_string_equal(s->resource, "POST /checkout");
  assert_string_equal(s->type, "web");
  assert_int_equal(s->trace_id_low, 42);
  assert_int_equal(s->trace_id_high, 0x6553f1000000abcdULL);
  assert_int_equal(s->span_id, 1);
  assert_int_equal(s->parent_id, 0);
  assert_int_equal(s->start_ns, 1700000000123456789LL);
  assert_int_equal(s->duration_ns, 1800000000LL);
  assert_int_equal(s->error, 0);
  assert_int_equal(s->nattrs, 4);
  assert_string_equal(s->attrs[0].key, "http.method");
  assert_string_equal(s->attrs[0].str, "POST");
  assert_string_equal(s->attrs[1].key, "_dd.p.tid");
  assert_string_equal(s->attrs[2].key, "_sampling_priority_v1");
  assert_null(s->attrs[2].str);
  assert_true(s->attrs[2].num == 1.0);
  assert_true(s->attrs[3].num == 0.5);
  s = &d.batch.spans[1];
  assert_string_equal(s->name, "serialize_cart");
  assert_int_equal(s->parent_id, 1);
  assert_int_equal(s->error, 1);
  /* Tracers send _dd.p.tid on one span of a chunk: the others of the same
   * trace get it too, but not another trace's spans. */
  assert_int_equal(s->trace_id_high, 0x6553f1000000abcdULL);
  assert_int_equal(d.batch.spans[2].trace_id_low, 43);
  assert_int_equal(d.batch.spans[2].trace_id_high, 0);
  hs_agent_decoded_free(&d);

  /* Every truncation is an error, never a crash. */
  for (size_t n = 0; n < sb.size; n++) {
    assert_int_equal(decode_mp(sb.data, n, &d, err, NULL), HS_AGENT_EINVAL);
    assert_true(err[0] != 0);
    hs_agent_decoded_free(&d);
  }
  /* Trailing bytes are an error too. */
  char *more = malloc(sb.size + 1);
  memcpy(more, sb.data, sb.size);
  more[sb.size] = 0x00;
  assert_int_equal(decode_mp(more, sb.size + 1, &d, err, NULL),
                   HS_AGENT_EINVAL);
  assert_non_null(strstr(err, "trailing"));
  hs_agent_decoded_free(&d);
  /* A memory limit below the tree's size is 413 material. */
  hs_agent_limits tiny = {0, 256};
  assert_int_equal(decode_mp(sb.data, sb.size, &d, err, &tiny),
                   HS_AGENT_ETOOBIG);
  hs_agent_decoded_free(&d);
  free(more);
  msgpack_sbuffer_destroy(&sb);
}

/* One span whose meta holds the given key/value pairs (n of them). */
static void pk_meta_span(msgpack_packer *pk, const char *const *kv, int n) {
  msgpack_pack_map(pk, 4);
  ts_pack_str(pk, "trace_id");
  msgpack_pack_uint64(pk, 7);
  ts_pack_str(pk, "span_id");
  msgpack_pack_uint64(pk, 8);
  ts_pack_str(pk, "service");
  ts_pack_str(pk, "svc");
  ts_pack_str(pk, "meta");
  msgpack_pack_map(pk, (size_t)n);
  for (int i = 0; i < 2 * n; i++)
    ts_pack_str(pk, kv[i]);
}

static hs_ing_span *decode_meta_span(hs_agent_decoded *d, const char *const *kv,
                                     int n) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_array(&pk, 1);
  pk_meta_span(&pk, kv, n);
  char err[256] = "";
  assert_int_equal(decode_mp(sb.data, sb.size, d, err, NULL), HS_AGENT_OK);
  msgpack_sbuffer_destroy(&sb);
  assert_int_equal(d->batch.nspans, 1);
  return &d->batch.spans[0];
}

/* Span events and links in meta, as hotspan's and Datadog's tracers send
 * them, become events and links; the meta entries are not kept as
 * attributes then. Anything else under those keys stays an attribute. */
static void test_dd_msgpack_events_links(void **state) {
  (void)state;
  hs_agent_decoded d;
  /* hotspan's exporter: 32-digit trace id, flags with bit 31. */
  const char *const ours[] = {
      "events",
      "[{\"name\":\"exception\",\"time_unix_nano\":1700000000123456789,"
      "\"attributes\":{\"exception.message\":\"boom\",\"retry\":3,"
      "\"fatal\":false,\"codes\":[1,2],\"gone\":null}},"
      "{\"name\":\"bare\",\"time_unix_nano\":5}]",
      "_dd.span_links",
      "[{\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\","
      "\"span_id\":\"00f067aa0ba902b7\",\"tracestate\":\"rojo=1\","
      "\"flags\":2147483649,\"attributes\":{\"link.kind\":\"batch\"}}]",
      "http.method",
      "GET"};
  hs_ing_span *s = decode_meta_span(&d, ours, 3);
  assert_int_equal(s->nattrs, 1);
  assert_string_equal(s->attrs[0].key, "http.method");
  assert_int_equal(s->nevents, 2);
  assert_true(s->events[0].time_ns == INT64_C(1700000000123456789));
  assert_string_equal(s->events[0].name, "exception");
  assert_int_equal(s->events[0].nattrs, 4); /* null left out */
  assert_string_equal(s->events[0].attrs[0].str, "boom");
  assert_null(s->events[0].attrs[1].str);
  assert_true(s->events[0].attrs[1].num == 3.0);
  assert_string_equal(s->events[0].attrs[2].str, "false");
  assert_string_equal(s->events[0].attrs[3].str, "[1,2]");
  assert_int_equal(s->events[1].time_ns, 5);
  assert_int_equal(s->events[1].nattrs, 0);
  assert_int_equal(s->nlinks, 1);
  assert_true(s->links[0].trace_id_high == UINT64_C(0x0af7651916cd43dd));
  assert_true(s->links[0].trace_id_low == UINT64_C(0x8448eb211c80319c));
  assert_true(s->links[0].span_id == UINT64_C(0x00f067aa0ba902b7));
  assert_string_equal(s->links[0].tracestate, "rojo=1");
  assert_int_equal(s->links[0].flags, 1);
  assert_string_equal(s->links[0].attrs[0].str, "batch");
  hs_agent_decoded_free(&d);

  /* dd-trace-js: a 16-digit trace id, the flags byte alone. */
  const char *const js[] = {
      "_dd.span_links",
      "[{\"trace_id\":\"000000000000002a\",\"span_id\":\"000000000000002b\","
      "\"attributes\":{\"k\":\"v\"},\"flags\":1}]"};
  s = decode_meta_span(&d, js, 1);
  assert_int_equal(s->nattrs, 0);
  assert_int_equal(s->nlinks, 1);
  assert_true(s->links[0].trace_id_high == 0);
  assert_true(s->links[0].trace_id_low == 42);
  assert_int_equal(s->links[0].flags, 1);
  assert_null(s->links[0].tracestate);
  hs_agent_decoded_free(&d);

  /* Not such lists: kept as they came, as string attributes. */
  const char *const other[] = {
      "events", "42",
      /* cut short, as a tracer's meta length limit leaves it */
      "_dd.span_links",
      "[{\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",...", "x", "y"};
  s = decode_meta_span(&d, other, 3);
  assert_int_equal(s->nevents, 0);
  assert_int_equal(s->nlinks, 0);
  assert_int_equal(s->nattrs, 3);
  assert_string_equal(s->attrs[0].str, "42");
  hs_agent_decoded_free(&d);
  const char *const bad_items[] = {
      "events", "[{\"name\":1}]", "_dd.span_links",
      "[{\"trace_id\":\"xyz\",\"span_id\":\"000000000000002b\"}]"};
  s = decode_meta_span(&d, bad_items, 2);
  assert_int_equal(s->nevents + s->nlinks, 0);
  assert_int_equal(s->nattrs, 2);
  hs_agent_decoded_free(&d);

  /* A valid list over 1 MiB is not parsed (the JSON reader's memory would
   * be ~50 times that): it stays an attribute. */
  size_t big = (1u << 20) + 64;
  char *text = malloc(big + 1);
  assert_non_null(text);
  const char *head = "[{\"name\":\"";
  const char *tail = "\",\"time_unix_nano\":1}]";
  size_t hl = strlen(head), tl = strlen(tail);
  memcpy(text, head, hl);
  memset(text + hl, 'x', big - hl - tl);
  memcpy(text + big - tl, tail, tl + 1);
  const char *const huge[] = {"events", text};
  s = decode_meta_span(&d, huge, 1);
  assert_int_equal(s->nevents, 0);
  assert_int_equal(s->nattrs, 1);
  assert_int_equal(strlen(s->attrs[0].str), big);
  hs_agent_decoded_free(&d);
  /* Just under the limit it is parsed. */
  size_t ok = (1u << 20) - 64;
  memset(text + hl, 'x', ok - hl - tl);
  memcpy(text + ok - tl, tail, tl + 1);
  s = decode_meta_span(&d, huge, 1);
  assert_int_equal(s->nevents, 1);
  assert_int_equal(s->nattrs, 0);
  hs_agent_decoded_free(&d);
  free(text);
}

/* A span with a native "span_links" array (the Datadog Agent's SpanLink
 * fields) and a meta "_dd.span_links" too: the native links win, the meta
 * string stays an attribute. kind 1 packs a bad links value instead. */
static size_t pk_native_links(msgpack_sbuffer *sb, int kind) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_map(&pk, 4);
  ts_pack_str(&pk, "trace_id");
  msgpack_pack_uint64(&pk, 7);
  ts_pack_str(&pk, "span_id");
  msgpack_pack_uint64(&pk, 8);
  ts_pack_str(&pk, "meta");
  msgpack_pack_map(&pk, 1);
  ts_pack_str(&pk, "_dd.span_links");
  ts_pack_str(&pk, "[{\"trace_id\":\"000000000000002a\","
                   "\"span_id\":\"000000000000002b\"}]");
  ts_pack_str(&pk, "span_links");
  if (kind == 1) {
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 1);
    ts_pack_str(&pk, "attributes");
    ts_pack_str(&pk, "not a map");
    return sb->size;
  }
  msgpack_pack_array(&pk, 1);
  msgpack_pack_map(&pk, 6);
  ts_pack_str(&pk, "trace_id");
  msgpack_pack_uint64(&pk, UINT64_C(0x8448eb211c80319c));
  ts_pack_str(&pk, "trace_id_high");
  msgpack_pack_uint64(&pk, UINT64_C(0x0af7651916cd43dd));
  ts_pack_str(&pk, "span_id");
  msgpack_pack_uint64(&pk, UINT64_C(0x00f067aa0ba902b7));
  ts_pack_str(&pk, "attributes");
  msgpack_pack_map(&pk, 1);
  ts_pack_str(&pk, "link.kind");
  ts_pack_str(&pk, "retry");
  ts_pack_str(&pk, "tracestate");
  ts_pack_str(&pk, "dd=s:1");
  ts_pack_str(&pk, "flags");
  msgpack_pack_uint32(&pk, 0x80000001u);
  return sb->size;
}

static void test_dd_msgpack_native_span_links(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  pk_native_links(&sb, 0);
  hs_agent_decoded d;
  char err[256] = "";
  assert_int_equal(decode_mp(sb.data, sb.size, &d, err, NULL), HS_AGENT_OK);
  const hs_ing_span *s = &d.batch.spans[0];
  assert_int_equal(s->nlinks, 1);
  assert_true(s->links[0].trace_id_high == UINT64_C(0x0af7651916cd43dd));
  assert_true(s->links[0].trace_id_low == UINT64_C(0x8448eb211c80319c));
  assert_true(s->links[0].span_id == UINT64_C(0x00f067aa0ba902b7));
  assert_string_equal(s->links[0].tracestate, "dd=s:1");
  assert_int_equal(s->links[0].flags, 1);
  assert_int_equal(s->links[0].nattrs, 1);
  assert_string_equal(s->links[0].attrs[0].str, "retry");
  assert_int_equal(s->nattrs, 1);
  assert_string_equal(s->attrs[0].key, "_dd.span_links");
  hs_agent_decoded_free(&d);
  /* Every truncation is an error, never a crash. */
  for (size_t n = 0; n < sb.size; n++) {
    assert_int_equal(decode_mp(sb.data, n, &d, err, NULL), HS_AGENT_EINVAL);
    hs_agent_decoded_free(&d);
  }
  msgpack_sbuffer_clear(&sb);
  pk_native_links(&sb, 1);
  assert_int_equal(decode_mp(sb.data, sb.size, &d, err, NULL), HS_AGENT_EINVAL);
  assert_non_null(strstr(err, "span_links.attributes"));
  hs_agent_decoded_free(&d);
  msgpack_sbuffer_destroy(&sb);
}

static void test_dd_msgpack_empty_and_wrong_types(void **state) {
  (void)state;
  hs_agent_decoded d;
  char err[256];
  /* [] is what tracers send to probe the endpoint. */
  assert_int_equal(decode_mp("\x90", 1, &d, err, NULL), HS_AGENT_OK);
  assert_int_equal(d.batch.nspans, 0);
  hs_agent_decoded_free(&d);

  struct {
    const char *key;
    int kind; /* 0 int where a string belongs, 1 string where an int, 2
                 meta value int, 3 negative span_id, 4 bad _dd.p.tid */
  } cases[] = {{"service", 0}, {"resource", 0}, {"span_id", 1},  {"start", 1},
               {"meta", 2},    {"span_id", 3},  {"_dd.p.tid", 4}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 1);
    if (cases[i].kind == 2 || cases[i].kind == 4) {
      ts_pack_str(&pk, "meta");
      msgpack_pack_map(&pk, 1);
      ts_pack_str(&pk, cases[i].kind == 4 ? "_dd.p.tid" : "k");
      if (cases[i].kind == 4)
        ts_pack_str(&pk, "xyz");
      else
        msgpack_pack_int32(&pk, 5);
    } else {
      ts_pack_str(&pk, cases[i].key);
      if (cases[i].kind == 0)
        msgpack_pack_int32(&pk, 7);
      else if (cases[i].kind == 1)
        ts_pack_str(&pk, "7");
      else
        msgpack_pack_int32(&pk, -7);
    }
    assert_int_equal(decode_mp(sb.data, sb.size, &d, err, NULL),
                     HS_AGENT_EINVAL);
    /* The message names the offending key. */
    assert_non_null(strstr(err, cases[i].key));
    hs_agent_decoded_free(&d);
    msgpack_sbuffer_destroy(&sb);
  }
  /* Not an array of arrays. */
  assert_int_equal(decode_mp("\x91\x01", 2, &d, err, NULL), HS_AGENT_EINVAL);
  hs_agent_decoded_free(&d);
  assert_int_equal(decode_mp("\x81\xa1x\x01", 4, &d, err, NULL),
                   HS_AGENT_EINVAL);
  hs_agent_decoded_free(&d);
}

static void test_dd_msgpack_hostile(void **state) {
  (void)state;
  hs_agent_decoded d;
  char err[256];
  /* An array32 header claiming 4 billion elements in 5 bytes. */
  assert_int_equal(decode_mp("\xdd\xff\xff\xff\xff", 5, &d, err, NULL),
                   HS_AGENT_EINVAL);
  assert_non_null(strstr(err, "more elements"));
  hs_agent_decoded_free(&d);
  /* A str32 header claiming 4 GB. */
  assert_int_equal(
      decode_mp("\x91\x91\x81\xdb\xff\xff\xff\xff", 8, &d, err, NULL),
      HS_AGENT_EINVAL);
  hs_agent_decoded_free(&d);
  /* Nested 1000 deep. */
  char deep[1000];
  memset(deep, 0x91, sizeof(deep));
  deep[999] = 0x90;
  assert_int_equal(decode_mp(deep, sizeof(deep), &d, err, NULL),
                   HS_AGENT_EINVAL);
  assert_non_null(strstr(err, "deep"));
  hs_agent_decoded_free(&d);
  /* The never-used type byte and random garbage. */
  assert_int_equal(decode_mp("\xc1", 1, &d, err, NULL), HS_AGENT_EINVAL);
  hs_agent_decoded_free(&d);
  assert_int_equal(decode_mp("", 0, &d, err, NULL), HS_AGENT_EINVAL);
  hs_agent_decoded_free(&d);
  unsigned seed = 12345;
  unsigned char junk[512];
  for (int round = 0; round < 2000; round++) {
    size_t n = (size_t)(rand_r(&seed) % sizeof(junk)) + 1;
    for (size_t i = 0; i < n; i++)
      junk[i] = (unsigned char)rand_r(&seed);
    if (round % 2)
      junk[0] = 0x91; /* make it look like an array of traces */
    int rc = decode_mp(junk, n, &d, err, NULL);
    assert_true(rc == HS_AGENT_OK || rc == HS_AGENT_EINVAL);
    hs_agent_decoded_free(&d);
  }
}

/* ------------------------------------------------------------ pprof */

typedef Perftools__Profiles__Profile Profile;

/* A profile with two sample types (samples/count, <kind>/nanoseconds),
 * two functions, a mapping, three locations (one with an inlined call)
 * and two samples. Packed into a malloc'd buffer. */
static uint8_t *build_pprof(const char *kind, int counts_only, int pyro,
                            size_t *len) {
  static char *strs[] = {"",
                         "samples",
                         "count",
                         "cpu",
                         "nanoseconds",
                         "json_encode",
                         "encode.c",
                         "serialize_cart",
                         "cart.c",
                         "/usr/bin/app",
                         "span id",
                         "local root span id",
                         "trace endpoint",
                         "POST /checkout",
                         "thread id",
                         "thread name",
                         "worker-1",
                         "wall",
                         "span_id",
                         "00000000000000ff",
                         "trace_id",
                         "6553f1000000abcd00000000000000aa"};
  Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
  p.n_string_table = sizeof(strs) / sizeof(strs[0]);
  p.string_table = strs;
  Perftools__Profiles__ValueType vt0 = PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
                                 vt1 = PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
                                 per = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
  int64_t kind_idx = strcmp(kind, "cpu") == 0 ? 3 : 17;
  vt0.type = 1, vt0.unit = 2;
  vt1.type = kind_idx, vt1.unit = 4;
  per.type = kind_idx, per.unit = 4;
  Perftools__Profiles__ValueType *vts[] = {&vt0, &vt1};
  p.n_sample_type = counts_only ? 1 : 2;
  p.sample_type = vts;
  p.period_type = &per;
  p.period = 10000000;
  p.time_nanos = 1700000000000000000LL;
  p.duration_nanos = 60000000000LL;

  Perftools__Profiles__Function f1 = PERFTOOLS__PROFILES__FUNCTION__INIT,
                                f2 = PERFTOOLS__PROFILES__FUNCTION__INIT;
  f1.id = 1, f1.name = 5, f1.filename = 6;
  f2.id = 2, f2.name = 7, f2.filename = 8;
  Perftools__Profiles__Function *fns[] = {&f1, &f2};
  p.n_function = 2;
  p.function = fns;
  Perftools__Profiles__Mapping m = PERFTOOLS__PROFILES__MAPPING__INIT;
  m.id = 1, m.filename = 9;
  Perftools__Profiles__Mapping *maps[] = {&m};
  p.n_mapping = 1;
  p.mapping = maps;
  /* location 10: json_encode inlined into serialize_cart */
  Perftools__Profiles__Line l1 = PERFTOOLS__PROFILES__LINE__INIT,
                            l2 = PERFTOOLS__PROFILES__LINE__INIT,
                            l3 = PERFTOOLS__PROFILES__LINE__INIT;
  l1.function_id = 1, l1.line = 77;
  l2.function_id = 2, l2.line = 12;
  l3.function_id = 2, l3.line = 30;
  Perftools__Profiles__Line *lines10[] = {&l1, &l2}, *lines20[] = {&l3};
  Perftools__Profiles__Location loc10 = PERFTOOLS__PROFILES__LOCATION__INIT,
                                loc20 = PERFTOOLS__PROFILES__LOCATION__INIT,
                                loc30 = PERFTOOLS__PROFILES__LOCATION__INIT;
  loc10.id = 10, loc10.mapping_id = 1, loc10.n_line = 2, loc10.line = lines10;
  loc20.id = 20, loc20.mapping_id = 1, loc20.n_line = 1, loc20.line = lines20;
  loc30.id = 30, loc30.mapping_id = 1, loc30.address = 0x4010;
  Perftools__Profiles__Location *locs[] = {&loc10, &loc20, &loc30};
  p.n_location = 3;
  p.location = locs;

  Perftools__Profiles__Label lb[6];
  for (int i = 0; i < 6; i++)
    perftools__profiles__label__init(&lb[i]);
  lb[0].key = 10, lb[0].num = 255;
  lb[1].key = 11, lb[1].num = 1;
  lb[2].key = 12, lb[2].str = 13;
  lb[3].key = 14, lb[3].num = 4242;
  lb[4].key = 15, lb[4].str = 16;
  if (pyro) {
    lb[0].key = 18, lb[0].num = 0, lb[0].str = 19;
    lb[1].key = 20, lb[1].num = 0, lb[1].str = 21;
  }
  Perftools__Profiles__Label *lbp[] = {&lb[0], &lb[1], &lb[2], &lb[3], &lb[4]};
  uint64_t st1[] = {10, 30}, st2[] = {20};
  int64_t v1[] = {3, 30000000}, v2[] = {1, 10000000};
  Perftools__Profiles__Sample s1 = PERFTOOLS__PROFILES__SAMPLE__INIT,
                              s2 = PERFTOOLS__PROFILES__SAMPLE__INIT;
  s1.n_location_id = 2, s1.location_id = st1;
  s1.n_value = p.n_sample_type, s1.value = v1;
  s1.n_label = 5, s1.label = lbp;
  s2.n_location_id = 1, s2.location_id = st2;
  s2.n_value = p.n_sample_type, s2.value = v2;
  Perftools__Profiles__Sample *samples[] = {&s1, &s2};
  p.n_sample = 2;
  p.sample = samples;
  *len = perftools__profiles__profile__get_packed_size(&p);
  uint8_t *buf = malloc(*len);
  perftools__profiles__profile__pack(&p, buf);
  return buf;
}

static uint8_t *zstd_bytes(const uint8_t *in, size_t n, size_t *outlen) {
  size_t cap = ZSTD_compressBound(n);
  uint8_t *out = malloc(cap);
  *outlen = ZSTD_compress(out, cap, in, n, 3);
  assert_false(ZSTD_isError(*outlen));
  return out;
}

static void check_golden_samples(const hs_ing_batch *b, uint8_t type) {
  assert_int_equal(b->nsamples, 2);
  const hs_ing_sample *s = &b->samples[0];
  assert_int_equal(s->type, type);
  assert_int_equal(s->value, 30000000);
  assert_int_equal(s->time_ns, 1700000000000000000LL);
  assert_int_equal(s->span_id, 255);
  assert_int_equal(s->local_root_span_id, 1);
  assert_string_equal(s->endpoint, "POST /checkout");
  assert_int_equal(s->thread_id, 4242);
  assert_string_equal(s->thread_name, "worker-1");
  /* leaf first, the inlined json_encode before its caller */
  assert_int_equal(s->nframes, 3);
  assert_string_equal(s->frames[0].function, "json_encode");
  assert_string_equal(s->frames[0].file, "encode.c");
  assert_int_equal(s->frames[0].line, 77);
  assert_string_equal(s->frames[0].mapping, "/usr/bin/app");
  assert_string_equal(s->frames[1].function, "serialize_cart");
  assert_int_equal(s->frames[1].line, 12);
  assert_string_equal(s->frames[2].function, "0x4010");
  assert_null(s->frames[2].file);
  s = &b->samples[1];
  assert_int_equal(s->value, 10000000);
  assert_int_equal(s->span_id, 0);
  assert_null(s->endpoint);
  assert_int_equal(s->nframes, 1);
  assert_string_equal(s->frames[0].function, "serialize_cart");
  assert_int_equal(b->profile_start_ns, 1700000000000000000LL);
  assert_int_equal(b->profile_end_ns, 1700000060000000000LL);
}

static void test_pprof_golden_plain_gzip_zstd(void **state) {
  (void)state;
  size_t n;
  uint8_t *raw = build_pprof("cpu", 0, 0, &n);
  size_t gn, zn;
  uint8_t *gz = ts_gzip(raw, n, 9, &gn);
  uint8_t *zs = zstd_bytes(raw, n, &zn);
  const uint8_t *inputs[] = {raw, gz, zs};
  size_t lens[] = {n, gn, zn};
  for (int i = 0; i < 3; i++) {
    hs_agent_decoded d;
    char err[256] = "";
    hs_agent_decoded_init(&d, NULL);
    assert_int_equal(
        hs_agent_decode_pprof(inputs[i], lens[i], NULL, &d, err, 256),
        HS_AGENT_OK);
    check_golden_samples(&d.batch, HS_PT_CPU);
    hs_agent_decoded_free(&d);
  }
  /* Truncated compressed and plain profiles: errors. */
  for (size_t k = 1; k < gn; k += 7) {
    hs_agent_decoded d;
    char err[256] = "";
    hs_agent_decoded_init(&d, NULL);
    assert_int_not_equal(hs_agent_decode_pprof(gz, k, NULL, &d, err, 256),
                         HS_AGENT_OK);
    assert_true(err[0] != 0);
    hs_agent_decoded_free(&d);
  }
  for (size_t k = 1; k < n; k++) {
    hs_agent_decoded d;
    char err[256] = "";
    hs_agent_decoded_init(&d, NULL);
    int rc = hs_agent_decode_pprof(raw, k, NULL, &d, err, 256);
    /* A protobuf cut at a field boundary is still a valid message; it
     * then fails the checks (dangling ids) or decodes fewer samples. */
    if (rc == HS_AGENT_OK)
      assert_true(d.batch.nsamples <= 2);
    else
      assert_true(err[0] != 0);
    hs_agent_decoded_free(&d);
  }
  free(raw);
  free(gz);
  free(zs);
}

static void test_pprof_counts_and_pyroscope_labels(void **state) {
  (void)state;
  size_t n;
  /* Only counts, wall period 10 ms: value = count × period. */
  uint8_t *raw = build_pprof("wall", 1, 0, &n);
  hs_agent_decoded d;
  char err[256];
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pprof(raw, n, NULL, &d, err, 256),
                   HS_AGENT_OK);
  assert_int_equal(d.batch.nsamples, 2);
  assert_int_equal(d.batch.samples[0].type, HS_PT_WALL);
  assert_int_equal(d.batch.samples[0].value, 30000000);
  hs_agent_decoded_free(&d);
  free(raw);

  raw = build_pprof("cpu", 0, 1, &n);
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pprof(raw, n, NULL, &d, err, 256),
                   HS_AGENT_OK);
  assert_int_equal(d.batch.samples[0].span_id, 0xff);
  assert_int_equal(d.batch.samples[0].trace_id_high, 0x6553f1000000abcdULL);
  assert_int_equal(d.batch.samples[0].trace_id_low, 0xaa);
  hs_agent_decoded_free(&d);
  free(raw);
}

/* Re-packs a profile after a change made by fn. */
static void bad_profile_case(void (*fn)(Profile *), const char *expect) {
  size_t n;
  uint8_t *raw = build_pprof("cpu", 0, 0, &n);
  Profile *p = perftools__profiles__profile__unpack(NULL, n, raw);
  assert_non_null(p);
  fn(p);
  size_t m = perftools__profiles__profile__get_packed_size(p);
  uint8_t *buf = malloc(m);
  perftools__profiles__profile__pack(p, buf);
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pprof(buf, m, NULL, &d, err, 256),
                   HS_AGENT_EINVAL);
  if (!strstr(err, expect))
    fail_msg("error \"%s\" lacks \"%s\"", err, expect);
  hs_agent_decoded_free(&d);
  perftools__profiles__profile__free_unpacked(p, NULL);
  free(buf);
  free(raw);
}

static void mut_loc(Profile *p) {
  p->sample[0]->location_id[0] = 99;
}
static void mut_fn(Profile *p) {
  p->location[0]->line[0]->function_id = 7;
}
static void mut_str(Profile *p) {
  p->function[0]->name = 1000;
}
static void mut_neg_str(Profile *p) {
  p->sample[0]->label[0]->key = -1;
}
static void mut_map(Profile *p) {
  p->location[1]->mapping_id = 5;
}
static void mut_dup(Profile *p) {
  p->location[1]->id = 10;
}
static void mut_nvalues(Profile *p) {
  p->sample[1]->n_value = 1;
}
static void mut_label(Profile *p) {
  /* "span_id" must be 16 hex digits */
  p->sample[0]->label[0]->key = 18;
  p->sample[0]->label[0]->str = 13;
}

/* Datadog's Node profiler (dd-trace 5) labels samples of threads it
 * cannot name "thread id" = "NA": the profile is accepted, the thread is
 * unknown (0), and the other labels of the sample still count. A span id
 * that is not a number still refuses the profile (see mut_label). */
static void test_pprof_thread_id_not_a_number(void **state) {
  (void)state;
  size_t n;
  uint8_t *raw = build_pprof("wall", 0, 0, &n);
  Profile *p = perftools__profiles__profile__unpack(NULL, n, raw);
  assert_non_null(p);
  assert_string_equal(p->string_table[p->sample[0]->label[3]->key],
                      "thread id");
  p->sample[0]->label[3]->num = 0;
  p->sample[0]->label[3]->str = 17; /* "wall": not a number */
  size_t m = perftools__profiles__profile__get_packed_size(p);
  uint8_t *buf = malloc(m);
  perftools__profiles__profile__pack(p, buf);
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pprof(buf, m, NULL, &d, err, 256),
                   HS_AGENT_OK);
  assert_int_equal(d.batch.nsamples, 2);
  const hs_ing_sample *s = &d.batch.samples[0];
  assert_int_equal(s->type, HS_PT_WALL);
  assert_int_equal(s->value, 30000000);
  assert_int_equal(s->thread_id, 0);
  assert_int_equal(s->span_id, 255);
  assert_int_equal(s->local_root_span_id, 1);
  assert_string_equal(s->endpoint, "POST /checkout");
  assert_string_equal(s->thread_name, "worker-1");
  hs_agent_decoded_free(&d);

  /* The same label with a number is read as before. */
  p->sample[0]->label[3]->str = 0;
  p->sample[0]->label[3]->num = 77;
  m = perftools__profiles__profile__get_packed_size(p);
  perftools__profiles__profile__pack(p, buf);
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pprof(buf, m, NULL, &d, err, 256),
                   HS_AGENT_OK);
  assert_int_equal(d.batch.samples[0].thread_id, 77);
  hs_agent_decoded_free(&d);
  perftools__profiles__profile__free_unpacked(p, NULL);
  free(buf);
  free(raw);
}

static void test_pprof_bad_indices(void **state) {
  (void)state;
  bad_profile_case(mut_loc, "unknown location 99");
  bad_profile_case(mut_fn, "unknown function 7");
  bad_profile_case(mut_str, "out of range");
  bad_profile_case(mut_neg_str, "out of range");
  bad_profile_case(mut_map, "unknown mapping 5");
  bad_profile_case(mut_dup, "duplicate");
  bad_profile_case(mut_nvalues, "values");
  bad_profile_case(mut_label, "span_id");
}

static void test_pprof_garbage_and_bombs(void **state) {
  (void)state;
  hs_agent_decoded d;
  char err[256];
  unsigned seed = 99;
  uint8_t junk[300];
  for (int round = 0; round < 2000; round++) {
    size_t n = (size_t)(rand_r(&seed) % sizeof(junk)) + 1;
    for (size_t i = 0; i < n; i++)
      junk[i] = (uint8_t)rand_r(&seed);
    hs_agent_decoded_init(&d, NULL);
    int rc = hs_agent_decode_pprof(junk, n, NULL, &d, err, 256);
    assert_true(rc == HS_AGENT_OK || rc == HS_AGENT_EINVAL);
    hs_agent_decoded_free(&d);
  }
  /* 8 MiB of zeros gzipped to ~8 KiB, against a 1 MiB cap. */
  size_t big = 8 << 20, gn, zn;
  uint8_t *zeros = calloc(1, big);
  uint8_t *gz = ts_gzip(zeros, big, 9, &gn);
  uint8_t *zs = zstd_bytes(zeros, big, &zn);
  assert_true(gn < 64 << 10);
  hs_agent_limits lim = {1 << 20, 0};
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pprof(gz, gn, &lim, &d, err, 256),
                   HS_AGENT_ETOOBIG);
  assert_non_null(strstr(err, "exceeds"));
  hs_agent_decoded_free(&d);
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pprof(zs, zn, &lim, &d, err, 256),
                   HS_AGENT_ETOOBIG);
  hs_agent_decoded_free(&d);
  free(zeros);
  free(gz);
  free(zs);

  /* Many empty samples: small input, large protobuf-c structs; the
   * memory budget stops it. */
  size_t ns = 200000;
  uint8_t *many = malloc(ns * 2);
  for (size_t i = 0; i < ns; i++) {
    many[2 * i] = 0x12; /* field 2 (sample), length-delimited */
    many[2 * i + 1] = 0x00;
  }
  hs_agent_limits small = {0, 1 << 20};
  hs_agent_decoded_init(&d, &small);
  assert_int_equal(hs_agent_decode_pprof(many, ns * 2, &small, &d, err, 256),
                   HS_AGENT_ETOOBIG);
  hs_agent_decoded_free(&d);
  free(many);
}

static void test_compress_members_and_truncation(void **state) {
  (void)state;
  const char *text = "hello, profile";
  size_t n1, n2;
  uint8_t *g1 = ts_gzip((const uint8_t *)text, 7, 9, &n1);
  uint8_t *g2 = ts_gzip((const uint8_t *)text + 7, strlen(text) - 7, 9, &n2);
  uint8_t *both = malloc(n1 + n2 + 1);
  memcpy(both, g1, n1);
  memcpy(both + n1, g2, n2);
  uint8_t *out;
  size_t outlen;
  char err[200];
  assert_int_equal(hs_agent_decompress(HS_AGENT_COMP_GZIP, both, n1 + n2, 1024,
                                       &out, &outlen, err, 200),
                   HS_AGENT_OK);
  assert_int_equal(outlen, strlen(text));
  assert_memory_equal(out, text, outlen);
  free(out);
  both[n1 + n2] = 'x';
  assert_int_equal(hs_agent_decompress(HS_AGENT_COMP_GZIP, both, n1 + n2 + 1,
                                       1024, &out, &outlen, err, 200),
                   HS_AGENT_EINVAL);
  assert_int_equal(hs_agent_decompress(HS_AGENT_COMP_GZIP, both, n1 - 3, 1024,
                                       &out, &outlen, err, 200),
                   HS_AGENT_EINVAL);
  assert_non_null(strstr(err, "truncated"));
  /* Exactly at the cap passes, one byte less fails. */
  assert_int_equal(hs_agent_decompress(HS_AGENT_COMP_GZIP, both, n1 + n2,
                                       strlen(text), &out, &outlen, err, 200),
                   HS_AGENT_OK);
  free(out);
  assert_int_equal(hs_agent_decompress(HS_AGENT_COMP_GZIP, both, n1 + n2,
                                       strlen(text) - 1, &out, &outlen, err,
                                       200),
                   HS_AGENT_ETOOBIG);
  size_t zn;
  uint8_t *zs = zstd_bytes((const uint8_t *)text, strlen(text), &zn);
  assert_int_equal(hs_agent_decompress(HS_AGENT_COMP_ZSTD, zs, zn - 2, 1024,
                                       &out, &outlen, err, 200),
                   HS_AGENT_EINVAL);
  free(zs);
  free(g1);
  free(g2);
  free(both);
}

/* ------------------------------------------------------------ multipart */

typedef struct mp {
  char *data;
  size_t len, cap;
} mp;

static void mp_add(mp *m, const void *p, size_t n) {
  if (m->len + n > m->cap) {
    m->cap = (m->len + n) * 2;
    m->data = realloc(m->data, m->cap);
  }
  memcpy(m->data + m->len, p, n);
  m->len += n;
}

static void mp_str(mp *m, const char *s) {
  mp_add(m, s, strlen(s));
}

static void mp_part(mp *m, const char *name, const char *filename,
                    const void *p, size_t n) {
  char hdr[300];
  snprintf(hdr, sizeof(hdr),
           "--XyZ-b0undary\r\nContent-Disposition: form-data; name=\"%s\"%s%s%s"
           "\r\nContent-Type: application/octet-stream\r\n\r\n",
           name, filename ? "; filename=\"" : "", filename ? filename : "",
           filename ? "\"" : "");
  mp_str(m, hdr);
  mp_add(m, p, n);
  mp_str(m, "\r\n");
}

static const char *const MP_CT =
    "multipart/form-data; boundary=\"XyZ-b0undary\"";

static mp build_dd_upload(const char *event) {
  size_t n, gn, zn;
  uint8_t *raw = build_pprof("cpu", 0, 0, &n);
  uint8_t *gz = ts_gzip(raw, n, 9, &gn);
  uint8_t *wall = build_pprof("wall", 0, 0, &n);
  uint8_t *zs = zstd_bytes(wall, n, &zn);
  mp m = {0};
  mp_str(&m, "preamble to ignore\r\n");
  mp_part(&m, "event", "event.json", event, strlen(event));
  mp_part(&m, "cpu.pprof", "cpu.pprof", gz, gn);
  mp_part(&m, "wall.pprof", "wall.pprof", zs, zn);
  mp_str(&m, "--XyZ-b0undary--\r\n");
  free(raw);
  free(gz);
  free(wall);
  free(zs);
  return m;
}

static const char *const GOOD_EVENT =
    "{\"attachments\":[\"cpu.pprof\",\"wall.pprof\"],"
    "\"tags_profiler\":\"service:checkout,env:prod,version:1.2.3,host:a\","
    "\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:14:20.5Z\","
    "\"family\":\"native\",\"version\":\"4\"}";

static void test_dd_profile_golden(void **state) {
  (void)state;
  mp m = build_dd_upload(GOOD_EVENT);
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  int rc = hs_agent_decode_dd_profile(MP_CT, (uint8_t *)m.data, m.len, NULL, &d,
                                      err, 256);
  if (rc)
    fail_msg("%s", err);
  assert_string_equal(d.batch.service, "checkout");
  assert_string_equal(d.batch.env, "prod");
  assert_string_equal(d.batch.version, "1.2.3");
  assert_int_equal(d.batch.profile_start_ns, 1700000000000000000LL);
  assert_int_equal(d.batch.profile_end_ns, 1700000060500000000LL);
  assert_int_equal(d.batch.nsamples, 4);
  assert_int_equal(d.batch.samples[0].type, HS_PT_CPU);
  assert_int_equal(d.batch.samples[2].type, HS_PT_WALL);
  assert_string_equal(d.batch.samples[2].frames[0].function, "json_encode");
  hs_agent_decoded_free(&d);

  /* Each truncation is an error and never a crash. */
  for (size_t k = 0; k < m.len; k += 13) {
    hs_agent_decoded_init(&d, NULL);
    rc = hs_agent_decode_dd_profile(MP_CT, (uint8_t *)m.data, k, NULL, &d, err,
                                    256);
    assert_int_not_equal(rc, HS_AGENT_OK);
    hs_agent_decoded_free(&d);
  }
  free(m.data);
}

/* An event listing one attachment many times (and by its file name as
 * well as its part name) decodes each part once: the batch holds the
 * samples of the two parts, not one copy per mention. Checked against
 * decoding every mention (4 + 4 * 2000 samples). */
static void test_dd_profile_repeated_attachments(void **state) {
  (void)state;
  mp ev = {0};
  mp_str(&ev, "{\"attachments\":[\"wall.pprof\"");
  for (int i = 0; i < 2000; i++)
    mp_str(&ev, ",\"cpu.pprof\"");
  mp_str(&ev, "]}");
  mp_add(&ev, "", 1);
  mp m = build_dd_upload(ev.data);
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  int rc = hs_agent_decode_dd_profile(MP_CT, (uint8_t *)m.data, m.len, NULL, &d,
                                      err, 256);
  if (rc)
    fail_msg("%s", err);
  assert_int_equal(d.batch.nsamples, 4);
  hs_agent_decoded_free(&d);
  free(m.data);
  free(ev.data);
}

static void expect_dd_error(const char *ct, const char *body, size_t len,
                            const char *expect) {
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_dd_profile(ct, (const uint8_t *)body, len,
                                              NULL, &d, err, 256),
                   HS_AGENT_EINVAL);
  if (!strstr(err, expect))
    fail_msg("error \"%s\" lacks \"%s\"", err, expect);
  hs_agent_decoded_free(&d);
}

static void test_dd_profile_bad(void **state) {
  (void)state;
  mp m = build_dd_upload(GOOD_EVENT);
  expect_dd_error("multipart/form-data", m.data, m.len, "boundary");
  expect_dd_error("multipart/form-data; boundary=", m.data, m.len, "boundary");
  expect_dd_error("application/json", m.data, m.len, "multipart");
  expect_dd_error("multipart/form-data; boundary=other", m.data, m.len,
                  "opening boundary");
  free(m.data);
  const char *unterminated = "--XyZ-b0undary\r\nContent-Disposition: "
                             "form-data; name=\"event\"\r\n\r\n{}";
  expect_dd_error(MP_CT, unterminated, strlen(unterminated), "not terminated");
  const char *no_headers_end =
      "--XyZ-b0undary\r\nContent-Disposition: form-data; name=\"event\"";
  expect_dd_error(MP_CT, no_headers_end, strlen(no_headers_end),
                  "headers not terminated");
  const char *no_name = "--XyZ-b0undary\r\nContent-Disposition: form-data\r\n"
                        "\r\n{}\r\n--XyZ-b0undary--";
  expect_dd_error(MP_CT, no_name, strlen(no_name), "no name");

  m = build_dd_upload("{\"attachments\":[\"heap.pprof\"]}");
  expect_dd_error(MP_CT, m.data, m.len, "heap.pprof");
  free(m.data);
  m = build_dd_upload(
      "{\"attachments\":[\"cpu.pprof\"],\"start\":\"yesterday\"}");
  expect_dd_error(MP_CT, m.data, m.len, "start");
  free(m.data);
  m = build_dd_upload("{\"attachments\":[\"cpu.pprof\"],}");
  expect_dd_error(MP_CT, m.data, m.len, "profile event");
  free(m.data);
  m = build_dd_upload("{\"attachments\":\"cpu.pprof\"}");
  expect_dd_error(MP_CT, m.data, m.len, "attachments");
  free(m.data);
  /* A corrupt attachment names the attachment. */
  mp c = {0};
  mp_part(&c, "event", "event.json", "{\"attachments\":[\"cpu.pprof\"]}", 29);
  mp_part(&c, "cpu.pprof", "cpu.pprof", "\x1f\x8b\x08\x00garbage", 11);
  mp_str(&c, "--XyZ-b0undary--");
  expect_dd_error(MP_CT, c.data, c.len, "cpu.pprof");
  free(c.data);
}

static void test_rfc3339(void **state) {
  (void)state;
  int64_t ns;
  assert_int_equal(hs_agent_parse_rfc3339("1970-01-01T00:00:00Z", 20, &ns), 0);
  assert_int_equal(ns, 0);
  const char *s = "2023-11-14T23:13:20.000000001+01:00";
  assert_int_equal(hs_agent_parse_rfc3339(s, strlen(s), &ns), 0);
  assert_int_equal(ns, 1700000000000000001LL);
  assert_int_equal(hs_agent_parse_rfc3339("2024-02-29T00:00:00Z", 20, &ns), 0);
  assert_int_equal(ns, 1709164800000000000LL);
  const char *bad[] = {"2023-13-01T00:00:00Z",  "2023-11-14T22:13:20",
                       "2023-11-14 22:13",      "2023-02-30T00:00:00Z",
                       "2023-11-14T22:13:20.Z", "2023-02-29T00:00:00Z",
                       "0000-01-01T00:00:00Z",  "9999-12-31T23:59:59Z"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(hs_agent_parse_rfc3339(bad[i], strlen(bad[i]), &ns), -1);
}

/* ------------------------------------------------------------ pyroscope */

static void test_pyroscope_golden(void **state) {
  (void)state;
  size_t n;
  uint8_t *raw = build_pprof("cpu", 0, 1, &n);
  const char *q = "name=my-app.cpu%7Benv%3Dprod%2Cversion%3D2.0%7D&from="
                  "1700000000&until=1700000010&format=pprof&spyName=x";
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, NULL);
  int rc = hs_agent_decode_pyroscope(q, "application/octet-stream", raw, n,
                                     NULL, &d, err, 256);
  if (rc)
    fail_msg("%s", err);
  assert_string_equal(d.batch.service, "my-app");
  assert_string_equal(d.batch.env, "prod");
  assert_string_equal(d.batch.version, "2.0");
  assert_int_equal(d.batch.profile_start_ns, 1700000000000000000LL);
  assert_int_equal(d.batch.profile_end_ns, 1700000010000000000LL);
  assert_int_equal(d.batch.nsamples, 2);
  assert_int_equal(d.batch.samples[0].span_id, 0xff);
  hs_agent_decoded_free(&d);

  /* The same profile in a multipart form's "profile" part. */
  mp m = {0};
  mp_part(&m, "profile", "profile.pprof", raw, n);
  mp_str(&m, "--XyZ-b0undary--\r\n");
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(hs_agent_decode_pyroscope("name=svc", MP_CT,
                                             (uint8_t *)m.data, m.len, NULL, &d,
                                             err, 256),
                   HS_AGENT_OK);
  assert_string_equal(d.batch.service, "svc");
  assert_int_equal(d.batch.nsamples, 2);
  hs_agent_decoded_free(&d);
  free(m.data);

  struct {
    const char *q;
    const char *expect;
  } bad[] = {{"from=1", "name"},
             {"name=app%zz", "percent"},
             {"name=app%4", "percent"},
             {"name=app.cpu&format=folded", "folded"},
             {"name=app&from=20&until=10", "before"},
             {"name=app&from=-5", "from"},
             {"name=app.cpu{env", "label"},
             {"name={env=x}", "empty"}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    hs_agent_decoded_init(&d, NULL);
    assert_int_equal(
        hs_agent_decode_pyroscope(bad[i].q, NULL, raw, n, NULL, &d, err, 256),
        HS_AGENT_EINVAL);
    if (!strstr(err, bad[i].expect))
      fail_msg("query %s: error \"%s\" lacks \"%s\"", bad[i].q, err,
               bad[i].expect);
    hs_agent_decoded_free(&d);
  }
  hs_agent_decoded_init(&d, NULL);
  assert_int_equal(
      hs_agent_decode_pyroscope("name=a", MP_CT, raw, n, NULL, &d, err, 256),
      HS_AGENT_EINVAL);
  hs_agent_decoded_free(&d);
  free(raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dd_msgpack_golden),
      cmocka_unit_test(test_dd_msgpack_events_links),
      cmocka_unit_test(test_dd_msgpack_native_span_links),
      cmocka_unit_test(test_dd_msgpack_empty_and_wrong_types),
      cmocka_unit_test(test_dd_msgpack_hostile),
      cmocka_unit_test(test_pprof_golden_plain_gzip_zstd),
      cmocka_unit_test(test_pprof_counts_and_pyroscope_labels),
      cmocka_unit_test(test_pprof_thread_id_not_a_number),
      cmocka_unit_test(test_pprof_bad_indices),
      cmocka_unit_test(test_pprof_garbage_and_bombs),
      cmocka_unit_test(test_compress_members_and_truncation),
      cmocka_unit_test(test_dd_profile_golden),
      cmocka_unit_test(test_dd_profile_bad),
      cmocka_unit_test(test_dd_profile_repeated_attachments),
      cmocka_unit_test(test_rfc3339),
      cmocka_unit_test(test_pyroscope_golden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
