/* Datadog v0.4 msgpack encoder: golden bytes for small spans, the type of
 * every key (decoded with msgpack-c's unpacker), 128-bit ids, trace-level
 * tags, top-level marking, events and links JSON, hostile strings, and
 * payload limits. Spans are built by hand so each case states exactly
 * what the encoder sees. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/json_read.h"
#include "exporter/dd_msgpack.h"
#include "exporter/dd_trace_sink.h"
#include "hotspan/error.h"
#include "tracer/internal.h"

/* ------------------------------------------------------------ fixtures */

#define MAX_SPANS 64

typedef struct fixture {
  hs_trace tr;
  hotspan_span spans[MAX_SPANS];
  int n;
  hs_chunk chunk;
  hs_tracer_settings st;
} fixture;

static fixture *fx_new(void) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  pthread_mutex_init(&f->tr.mu, NULL);
  f->tr.id_low = 1;
  f->tr.priority = HOTSPAN_PRIORITY_UNSET;
  f->tr.rule_rate = f->tr.limit_rate = f->tr.agent_rate = -1;
  f->st.service = "s";
  return f;
}

static void fx_free(fixture *f) {
  pthread_mutex_destroy(&f->tr.mu);
  free(f);
}

/* Adds a span (chunk order = order of adding). */
static hotspan_span *fx_span(fixture *f, uint64_t id, uint64_t parent,
                             const char *name) {
  assert_true(f->n < MAX_SPANS);
  hotspan_span *s = &f->spans[f->n];
  s->trace = &f->tr;
  s->span_id = id;
  s->parent_id = parent;
  s->name = name;
  s->service = f->st.service;
  s->tags = s->inline_tags;
  s->cap_tags = HS_SPAN_INLINE_TAGS;
  if (f->n > 0)
    f->spans[f->n - 1].next = s;
  f->n++;
  f->chunk.trace = &f->tr;
  f->chunk.spans = &f->spans[0];
  f->chunk.nspans = (uint32_t)f->n;
  return s;
}

static void tag_str(hotspan_span *s, const char *k, const char *v) {
  assert_true(s->ntags < HS_SPAN_INLINE_TAGS);
  hs_tag *t = &s->tags[s->ntags++];
  t->key = k;
  t->klen = (uint16_t)strlen(k);
  t->type = HS_TAG_STR;
  t->v.s = v;
}
static void tag_int(hotspan_span *s, const char *k, int64_t v) {
  hs_tag *t = &s->tags[s->ntags++];
  t->key = k;
  t->klen = (uint16_t)strlen(k);
  t->type = HS_TAG_INT;
  t->v.i = v;
}
static void tag_double(hotspan_span *s, const char *k, double v) {
  hs_tag *t = &s->tags[s->ntags++];
  t->key = k;
  t->klen = (uint16_t)strlen(k);
  t->type = HS_TAG_DOUBLE;
  t->v.d = v;
}
static void tag_bool(hotspan_span *s, const char *k, int v) {
  hs_tag *t = &s->tags[s->ntags++];
  t->key = k;
  t->klen = (uint16_t)strlen(k);
  t->type = HS_TAG_BOOL;
  t->v.i = v;
}

static void encode(fixture *f, hs_buf *out) {
  hs_buf_init(out, 0);
  assert_int_equal(hs_dd_encode_chunk(&f->st, &f->chunk, out), HOTSPAN_OK);
}

/* ------------------------------------------------------------ decoding */

typedef struct decoded {
  msgpack_unpacked u;
  const msgpack_object *traces; /* array */
} decoded;

/* Decodes a payload with msgpack-c: exactly one object, no bytes left. */
static void decode(const hs_buf *b, decoded *d) {
  msgpack_unpacked_init(&d->u);
  size_t off = 0;
  assert_int_equal(msgpack_unpack_next(&d->u, b->data, b->len, &off),
                   MSGPACK_UNPACK_SUCCESS);
  assert_int_equal(off, b->len);
  assert_int_equal(d->u.data.type, MSGPACK_OBJECT_ARRAY);
  d->traces = &d->u.data;
}

static const msgpack_object *span_at(const decoded *d, uint32_t trace,
                                     uint32_t span) {
  assert_true(trace < d->traces->via.array.size);
  const msgpack_object *t = &d->traces->via.array.ptr[trace];
  assert_int_equal(t->type, MSGPACK_OBJECT_ARRAY);
  assert_true(span < t->via.array.size);
  return &t->via.array.ptr[span];
}

static int key_is(const msgpack_object *k, const char *s) {
  return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
         memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

/* Member of a map, NULL if absent; fails on a key seen twice. */
static const msgpack_object *get(const msgpack_object *map, const char *key) {
  assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
  const msgpack_object *found = NULL;
  for (uint32_t i = 0; i < map->via.map.size; i++)
    if (key_is(&map->via.map.ptr[i].key, key)) {
      assert_null(found);
      found = &map->via.map.ptr[i].val;
    }
  return found;
}

/* meta[key] as a NUL-terminated copy in buf, NULL if absent. */
static const char *meta(const msgpack_object *span, const char *key, char *buf,
                        size_t n) {
  const msgpack_object *v = get(get(span, "meta"), key);
  if (v == NULL)
    return NULL;
  assert_int_equal(v->type, MSGPACK_OBJECT_STR);
  assert_true(v->via.str.size < n);
  memcpy(buf, v->via.str.ptr, v->via.str.size);
  buf[v->via.str.size] = '\0';
  return buf;
}

static int has_metric(const msgpack_object *span, const char *key,
                      double *out) {
  const msgpack_object *v = get(get(span, "metrics"), key);
  if (v == NULL)
    return 0;
  assert_int_equal(v->type, MSGPACK_OBJECT_FLOAT64);
  if (out != NULL)
    *out = v->via.f64;
  return 1;
}

static uint64_t uint_of(const msgpack_object *span, const char *key) {
  const msgpack_object *v = get(span, key);
  assert_non_null(v);
  assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
  return v->via.u64;
}

/* Strict UTF-8 check (RFC 3629), independent of the encoder's. */
static int valid_utf8(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    size_t len;
    unsigned cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (i + len > n)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static const unsigned minimum[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minimum[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += len;
  }
  return 1;
}

/* Every string in o (keys included) is valid UTF-8. */
static void assert_all_utf8(const msgpack_object *o) {
  switch (o->type) {
  case MSGPACK_OBJECT_STR:
    assert_true(valid_utf8(o->via.str.ptr, o->via.str.size));
    break;
  case MSGPACK_OBJECT_ARRAY:
    for (uint32_t i = 0; i < o->via.array.size; i++)
      assert_all_utf8(&o->via.array.ptr[i]);
    break;
  case MSGPACK_OBJECT_MAP:
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      assert_all_utf8(&o->via.map.ptr[i].key);
      assert_all_utf8(&o->via.map.ptr[i].val);
    }
    break;
  default:
    break;
  }
}

/* ------------------------------------------------------------ golden */

static void assert_bytes(const hs_buf *b, const unsigned char *want, size_t n) {
  if (b->len != n || memcmp(b->data, want, n) != 0) {
    for (size_t i = 0; i < b->len || i < n; i++) {
      int got = i < b->len ? (unsigned char)b->data[i] : -1;
      int exp = i < n ? want[i] : -1;
      if (got != exp) {
        print_error("first difference at byte %zu: got %d, want %d\n", i, got,
                    exp);
        break;
      }
    }
  }
  assert_int_equal(b->len, n);
  assert_memory_equal(b->data, want, n);
}

/* The smallest span: not a local root, parent outside the chunk, service
 * the tracer's own, no tags, no sampling values, no 128-bit id. */
static void test_golden_minimal(void **state) {
  (void)state;
  fixture *f = fx_new();
  hotspan_span *s = fx_span(f, 2, 3, "n");
  s->resource = "r";
  s->start_ns = 4;
  s->duration_ns = 5;
  hs_buf b;
  encode(f, &b);
  static const unsigned char want[] = {
      0xdd, 0,   0,   0,    1, /* array32: 1 trace (count patched at the end) */
      0x91,                    /* fixarray: 1 span */
      0x8c,                    /* fixmap: 12 keys */
      0xa7, 's', 'e', 'r',  'v',  'i',  'c', 'e', 0xa1, 's', /* service: "s" */
      0xa4, 'n', 'a', 'm',  'e',  0xa1, 'n',                 /* name: "n" */
      0xa8, 'r', 'e', 's',  'o',  'u',  'r', 'c', 'e',  0xa1, 'r',
      0xa4, 't', 'y', 'p',  'e',  0xa0, /* type: "" (none) */
      0xa8, 't', 'r', 'a',  'c',  'e',  '_', 'i', 'd',  0x01, /* fixint 1 */
      0xa7, 's', 'p', 'a',  'n',  '_',  'i', 'd', 0x02, 0xa9, 'p',
      'a',  'r', 'e', 'n',  't',  '_',  'i', 'd', 0x03, 0xa5, 's',
      't',  'a', 'r', 't',  0x04, 0xa8, 'd', 'u', 'r',  'a',  't',
      'i',  'o', 'n', 0x05, 0xa5, 'e',  'r', 'r', 'o',  'r',  0x00,
      0xa4, 'm', 'e', 't',  'a',  0x80,                /* empty map */
      0xa7, 'm', 'e', 't',  'r',  'i',  'c', 's', 0x80 /* empty map */
  };
  assert_bytes(&b, want, sizeof want);
  hs_buf_free(&b);
  fx_free(f);
}

static void put_be64(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (unsigned char)v;
    v >>= 8;
  }
}

static void put_double(unsigned char *p, double d) {
  uint64_t v;
  memcpy(&v, &d, sizeof v);
  put_be64(p, v);
}

/* A local root: one string and one int tag, env, a server kind, a 128-bit
 * id, priority 1. The process id is the only value not fixed in advance;
 * it is written into the expected bytes as a float64. */
static void test_golden_root(void **state) {
  (void)state;
  fixture *f = fx_new();
  f->st.env = "e";
  memcpy(f->st.runtime_id, "rid", 4);
  f->tr.id_high = 0xab;
  f->tr.id_low = 0x100; /* uint16 */
  f->tr.priority = 1;
  hotspan_span *s = fx_span(f, 7, 0, "n");
  s->is_local_root = 1;
  s->kind = HOTSPAN_KIND_SERVER;
  s->type = "web";
  s->error = 1;
  s->start_ns = 1000000000000000000ull; /* > 2^32: uint64 */
  s->duration_ns = 300;                 /* uint16 */
  tag_str(s, "k", "v");
  tag_int(s, "i", 7);
  hs_buf b;
  encode(f, &b);
  unsigned char want[] = {
      0xdd, 0, 0, 0, 1, 0x91, 0x8c, 0xa7, 's', 'e', 'r', 'v', 'i', 'c', 'e',
      0xa1, 's', 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'n',
      /* no resource: the name stands in */
      0xa8, 'r', 'e', 's', 'o', 'u', 'r', 'c', 'e', 0xa1, 'n', 0xa4, 't', 'y',
      'p', 'e', 0xa3, 'w', 'e', 'b', 0xa8, 't', 'r', 'a', 'c', 'e', '_', 'i',
      'd', 0xcd, 0x01, 0x00, 0xa7, 's', 'p', 'a', 'n', '_', 'i', 'd', 0x07,
      0xa9, 'p', 'a', 'r', 'e', 'n', 't', '_', 'i', 'd', 0x00,
      /* 10^18 = 0x0de0b6b3a7640000, uint64 */
      0xa5, 's', 't', 'a', 'r', 't', 0xcf, 0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64,
      0x00, 0x00, 0xa8, 'd', 'u', 'r', 'a', 't', 'i', 'o', 'n', 0xcd, 0x01,
      0x2c, 0xa5, 'e', 'r', 'r', 'o', 'r', 0x01,
      /* meta: k, env, span.kind, _dd.p.tid, runtime-id, language */
      0xa4, 'm', 'e', 't', 'a', 0x86, 0xa1, 'k', 0xa1, 'v', 0xa3, 'e', 'n', 'v',
      0xa1, 'e', 0xa9, 's', 'p', 'a', 'n', '.', 'k', 'i', 'n', 'd', 0xa6, 's',
      'e', 'r', 'v', 'e', 'r', 0xa9, '_', 'd', 'd', '.', 'p', '.', 't', 'i',
      'd', 0xb0, '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
      '0', '0', 'a', 'b', 0xaa, 'r', 'u', 'n', 't', 'i', 'm', 'e', '-', 'i',
      'd', 0xa3, 'r', 'i', 'd', 0xa8, 'l', 'a', 'n', 'g', 'u', 'a', 'g', 'e',
      0xa3, 'c', 'p', 'p',
      /* metrics: i, _sampling_priority_v1, _dd.top_level, process_id */
      0xa7, 'm', 'e', 't', 'r', 'i', 'c', 's', 0x84, 0xa1, 'i', 0xcb, 0x40,
      0x1c, 0, 0, 0, 0, 0, 0, /* 7.0 */
      0xb5, '_', 's', 'a', 'm', 'p', 'l', 'i', 'n', 'g', '_', 'p', 'r', 'i',
      'o', 'r', 'i', 't', 'y', '_', 'v', '1', 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0,
      0, /* 1.0 */
      0xad, '_', 'd', 'd', '.', 't', 'o', 'p', '_', 'l', 'e', 'v', 'e', 'l',
      0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xaa, 'p', 'r', 'o', 'c', 'e', 's',
      's', '_', 'i', 'd', 0xcb, 0, 0, 0, 0, 0, 0, 0,
      0 /* the pid, filled in below */
  };
  put_double(want + sizeof want - 8, (double)getpid());
  assert_bytes(&b, want, sizeof want);
  hs_buf_free(&b);
  fx_free(f);
}

/* ------------------------------------------------------------ keys */

/* Every span map has the 12 keys with Datadog's types. */
static void assert_span_shape(const msgpack_object *sp) {
  assert_int_equal(sp->type, MSGPACK_OBJECT_MAP);
  assert_int_equal(sp->via.map.size, 12);
  static const char *const strs[] = {"service", "name", "resource", "type"};
  for (size_t i = 0; i < 4; i++) {
    const msgpack_object *v = get(sp, strs[i]);
    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_STR);
  }
  static const char *const ints[] = {"trace_id", "span_id",  "parent_id",
                                     "start",    "duration", "error"};
  for (size_t i = 0; i < 6; i++) {
    const msgpack_object *v = get(sp, ints[i]);
    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
  }
  assert_true(uint_of(sp, "error") <= 1);
  const msgpack_object *m = get(sp, "meta");
  assert_non_null(m);
  assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
  for (uint32_t i = 0; i < m->via.map.size; i++) {
    assert_int_equal(m->via.map.ptr[i].key.type, MSGPACK_OBJECT_STR);
    assert_int_equal(m->via.map.ptr[i].val.type, MSGPACK_OBJECT_STR);
  }
  m = get(sp, "metrics");
  assert_non_null(m);
  assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
  for (uint32_t i = 0; i < m->via.map.size; i++) {
    assert_int_equal(m->via.map.ptr[i].key.type, MSGPACK_OBJECT_STR);
    assert_int_equal(m->via.map.ptr[i].val.type, MSGPACK_OBJECT_FLOAT64);
  }
  assert_all_utf8(sp);
}

static void test_tags_and_trace_values(void **state) {
  (void)state;
  fixture *f = fx_new();
  f->st.env = "prod";
  f->st.version = "1.2";
  hs_kv globals[2] = {{"team", "core"}, {"k", "global"}};
  f->st.tags = globals;
  f->st.ntags = 2;
  memcpy(f->st.runtime_id, "0b5c4b1e-0000-4000-8000-000000000001", 37);
  f->tr.id_high = UINT64_C(0x0123456789abcdef);
  f->tr.id_low = UINT64_C(0xfedcba9876543210);
  f->tr.priority = 2;
  f->tr.rule_rate = 0.25;
  f->tr.limit_rate = 0.5;
  f->tr.agent_rate = -1;
  snprintf(f->tr.origin, sizeof f->tr.origin, "synthetics");
  snprintf(f->tr.propagated_tags, sizeof f->tr.propagated_tags,
           "_dd.p.dm=-3,_dd.p.usr.id=abc,_dd.p.tid=ffffffffffffffff");
  hotspan_span *root = fx_span(f, 10, 99, "root"); /* remote parent 99 */
  root->is_local_root = 1;
  tag_str(root, "k", "own"); /* wins over the global tag k */
  tag_bool(root, "b1", 1);
  tag_bool(root, "b0", 0);
  tag_int(root, "int", -5);
  tag_double(root, "dbl", 2.5);
  tag_double(root, "nan", NAN);    /* not sendable: left out */
  tag_str(root, "_dd.p.dm", "-9"); /* the trace's value wins */
  tag_str(root, "version", "span-version");
  hotspan_span *child = fx_span(f, 11, 10, "child");
  child->kind = HOTSPAN_KIND_CLIENT;
  hotspan_span *other = fx_span(f, 12, 11, "other");
  other->service = "db"; /* another service: top-level */
  hotspan_span *late = fx_span(f, 13, 555, "late"); /* parent elsewhere */
  (void)late;
  hs_buf b;
  encode(f, &b);
  decoded d;
  decode(&b, &d);
  assert_int_equal(d.traces->via.array.size, 1);
  char buf[256];
  double v;
  for (uint32_t i = 0; i < 4; i++) {
    const msgpack_object *sp = span_at(&d, 0, i);
    assert_span_shape(sp);
    /* trace_id: low 64 bits; origin and env on every span. */
    assert_true(uint_of(sp, "trace_id") == UINT64_C(0xfedcba9876543210));
    assert_string_equal(meta(sp, "_dd.origin", buf, sizeof buf), "synthetics");
    assert_string_equal(meta(sp, "env", buf, sizeof buf), "prod");
    assert_string_equal(meta(sp, "team", buf, sizeof buf), "core");
  }
  const msgpack_object *r = span_at(&d, 0, 0);
  assert_true(uint_of(r, "parent_id") == 99);
  assert_string_equal(meta(r, "_dd.p.tid", buf, sizeof buf),
                      "0123456789abcdef");
  assert_string_equal(meta(r, "_dd.p.dm", buf, sizeof buf), "-3");
  assert_string_equal(meta(r, "_dd.p.usr.id", buf, sizeof buf), "abc");
  assert_string_equal(meta(r, "k", buf, sizeof buf), "own");
  assert_string_equal(meta(r, "version", buf, sizeof buf), "span-version");
  assert_string_equal(meta(r, "b1", buf, sizeof buf), "true");
  assert_string_equal(meta(r, "b0", buf, sizeof buf), "false");
  assert_string_equal(meta(r, "language", buf, sizeof buf), "cpp");
  assert_string_equal(meta(r, "runtime-id", buf, sizeof buf),
                      "0b5c4b1e-0000-4000-8000-000000000001");
  assert_null(meta(r, "span.kind", buf, sizeof buf));
  assert_true(has_metric(r, "int", &v) && v == -5.0);
  assert_true(has_metric(r, "dbl", &v) && v == 2.5);
  assert_false(has_metric(r, "nan", NULL));
  assert_true(has_metric(r, "_sampling_priority_v1", &v) && v == 2.0);
  assert_true(has_metric(r, "_dd.top_level", &v) && v == 1.0);
  assert_true(has_metric(r, "_dd.rule_psr", &v) && v == 0.25);
  assert_true(has_metric(r, "_dd.limit_psr", &v) && v == 0.5);
  assert_false(has_metric(r, "_dd.agent_psr", NULL));
  assert_true(has_metric(r, "process_id", &v) && v == (double)getpid());

  const msgpack_object *c = span_at(&d, 0, 1);
  assert_string_equal(meta(c, "span.kind", buf, sizeof buf), "client");
  assert_string_equal(meta(c, "version", buf, sizeof buf), "1.2");
  assert_string_equal(meta(c, "k", buf, sizeof buf), "global");
  assert_null(meta(c, "_dd.p.tid", buf, sizeof buf)); /* not first/root */
  assert_null(meta(c, "_dd.p.dm", buf, sizeof buf));
  assert_null(meta(c, "language", buf, sizeof buf));
  assert_false(has_metric(c, "_dd.top_level", NULL)); /* parent same svc */
  assert_false(has_metric(c, "_sampling_priority_v1", NULL));
  assert_false(has_metric(c, "process_id", NULL));

  const msgpack_object *o = span_at(&d, 0, 2);
  assert_true(has_metric(o, "_dd.top_level", &v) && v == 1.0);
  const msgpack_object *l = span_at(&d, 0, 3);
  assert_false(has_metric(l, "_dd.top_level", NULL)); /* tracer's service */
  msgpack_unpacked_destroy(&d.u);
  hs_buf_free(&b);

  /* A partial chunk (no local root in it) carries the priority and the
   * propagated tags on its first span; the agent's rate shows on roots. */
  f->chunk.partial = 1;
  f->chunk.spans = &f->spans[1];
  f->chunk.nspans = 3;
  encode(f, &b);
  decode(&b, &d);
  c = span_at(&d, 0, 0);
  assert_true(has_metric(c, "_sampling_priority_v1", &v) && v == 2.0);
  assert_string_equal(meta(c, "_dd.p.tid", buf, sizeof buf),
                      "0123456789abcdef");
  assert_string_equal(meta(c, "_dd.p.usr.id", buf, sizeof buf), "abc");
  assert_false(has_metric(c, "_dd.rule_psr", NULL));
  assert_false(has_metric(span_at(&d, 0, 1), "_sampling_priority_v1", NULL));
  msgpack_unpacked_destroy(&d.u);
  hs_buf_free(&b);
  fx_free(f);
}

static void test_agent_psr_and_large_chunk(void **state) {
  (void)state;
  fixture *f = fx_new();
  f->tr.priority = 0;
  f->tr.agent_rate = 0.75;
  hotspan_span *root = fx_span(f, 1, 0, "root");
  root->is_local_root = 1;
  /* 40 spans (above the linear-search size): each one's parent is the
   * previous span; every tenth changes service. */
  for (uint64_t i = 2; i <= 40; i++) {
    hotspan_span *s =
        fx_span(f, i * 1000003, i == 2 ? 1 : (i - 1) * 1000003, "op");
    s->service = (i % 10 == 0) ? "svc-b" : "s";
  }
  hs_buf b;
  encode(f, &b);
  decoded d;
  decode(&b, &d);
  double v;
  assert_true(has_metric(span_at(&d, 0, 0), "_dd.agent_psr", &v) && v == 0.75);
  assert_true(has_metric(span_at(&d, 0, 0), "_sampling_priority_v1", &v) &&
              v == 0.0);
  for (uint32_t i = 1; i < 40; i++) {
    uint64_t id = (uint64_t)(i + 1);
    /* top-level where the service changes: i+1 = 10, 20, 30, 40, and
     * right after them (back to "s") */
    int want = (id % 10 == 0) || ((id - 1) % 10 == 0 && id > 2);
    assert_int_equal(has_metric(span_at(&d, 0, i), "_dd.top_level", NULL),
                     want);
  }
  msgpack_unpacked_destroy(&d.u);
  hs_buf_free(&b);
  fx_free(f);
}

/* ------------------------------------------------------------ JSON */

static const hs_json_value *
parse_meta_json(const msgpack_object *sp, const char *key, hs_json_doc **doc) {
  const msgpack_object *v = get(get(sp, "meta"), key);
  assert_non_null(v);
  assert_true(v->via.str.size <= HS_TAG_VALUE_MAX);
  char err[128];
  if (hs_json_parse(v->via.str.ptr, v->via.str.size, NULL, doc, err, sizeof err,
                    NULL) != 0)
    fail_msg("%s is not JSON: %s", key, err);
  const hs_json_value *root = hs_json_root(*doc);
  assert_int_equal(root->type, HS_JSON_ARRAY);
  return root;
}

static void test_events_and_links(void **state) {
  (void)state;
  fixture *f = fx_new();
  hotspan_span *s = fx_span(f, 1, 0, "op");
  s->is_local_root = 1;
  hs_tag eattrs[4] = {{"str", HS_TAG_STR, 3, {.s = "v\"q"}},
                      {"int", HS_TAG_INT, 3, {.i = -42}},
                      {"dbl", HS_TAG_DOUBLE, 3, {.d = 0.5}},
                      {"bool", HS_TAG_BOOL, 4, {.i = 1}}};
  hs_span_event ev2 = {NULL, "second", 20, NULL, 0};
  hs_span_event ev1 = {&ev2, "exception", 1700000000000000001ull, eattrs, 4};
  s->events = &ev1;
  s->nevents = 2;
  hs_span_link l2 = {.trace_id_low = 5, .span_id = 6};
  hs_span_link l1 = {.next = &l2,
                     .trace_id_high = UINT64_C(0x0123456789abcdef),
                     .trace_id_low = UINT64_C(0x1111111111111111),
                     .span_id = UINT64_C(0x2222),
                     .trace_flags = 1,
                     .remote = HOTSPAN_CONTEXT_REMOTE,
                     .tracestate = "dd=s:1,x=y",
                     .attrs = eattrs,
                     .nattrs = 4};
  s->links = &l1;
  s->nlinks = 2;
  hs_buf b;
  encode(f, &b);
  decoded d;
  decode(&b, &d);
  const msgpack_object *sp = span_at(&d, 0, 0);
  hs_json_doc *doc = NULL;
  const hs_json_value *a = parse_meta_json(sp, "events", &doc);
  assert_int_equal(a->u.array.len, 2);
  const hs_json_value *e = &a->u.array.items[0];
  assert_string_equal(hs_json_get(e, "name")->u.string.ptr, "exception");
  uint64_t t;
  assert_int_equal(hs_json_as_u64(hs_json_get(e, "time_unix_nano"), &t), 0);
  assert_true(t == 1700000000000000001ull);
  const hs_json_value *at = hs_json_get(e, "attributes");
  assert_string_equal(hs_json_get(at, "str")->u.string.ptr, "v\"q");
  int64_t iv;
  assert_int_equal(hs_json_as_i64(hs_json_get(at, "int"), &iv), 0);
  assert_int_equal(iv, -42);
  assert_true(hs_json_get(at, "dbl")->u.number.value == 0.5);
  assert_int_equal(hs_json_get(at, "bool")->type, HS_JSON_BOOL);
  assert_null(hs_json_get(&a->u.array.items[1], "attributes"));
  hs_json_free(doc);

  a = parse_meta_json(sp, "_dd.span_links", &doc);
  assert_int_equal(a->u.array.len, 2);
  const hs_json_value *l = &a->u.array.items[0];
  assert_string_equal(hs_json_get(l, "trace_id")->u.string.ptr,
                      "0123456789abcdef1111111111111111");
  assert_string_equal(hs_json_get(l, "span_id")->u.string.ptr,
                      "0000000000002222");
  assert_string_equal(hs_json_get(l, "tracestate")->u.string.ptr, "dd=s:1,x=y");
  uint64_t flags;
  assert_int_equal(hs_json_as_u64(hs_json_get(l, "flags"), &flags), 0);
  assert_true(flags == UINT64_C(0x80000001)); /* bit 31: flags are set */
  at = hs_json_get(l, "attributes");
  /* Link attributes are strings. */
  assert_string_equal(hs_json_get(at, "int")->u.string.ptr, "-42");
  assert_string_equal(hs_json_get(at, "dbl")->u.string.ptr, "0.5");
  assert_string_equal(hs_json_get(at, "bool")->u.string.ptr, "true");
  l = &a->u.array.items[1];
  assert_string_equal(hs_json_get(l, "trace_id")->u.string.ptr,
                      "00000000000000000000000000000005");
  assert_null(hs_json_get(l, "tracestate"));
  hs_json_free(doc);
  msgpack_unpacked_destroy(&d.u);
  hs_buf_free(&b);
  fx_free(f);
}

/* ------------------------------------------------------------ hostile */

static void test_hostile_strings(void **state) {
  (void)state;
  fixture *f = fx_new();
  static char huge[HS_TAG_VALUE_MAX + 1];
  memset(huge, 0xff, HS_TAG_VALUE_MAX); /* every byte invalid */
  static char big_ascii[HS_TAG_VALUE_MAX + 1];
  memset(big_ascii, 'a', HS_TAG_VALUE_MAX);
  static char key[HS_TAG_KEY_MAX + 1];
  memset(key, 0xc3, HS_TAG_KEY_MAX); /* lead bytes without continuation */
  hotspan_span *s = fx_span(f, 1, 0, "bad\xc3\x28name");
  s->is_local_root = 1;
  s->service = "\xed\xa0\x80surrogate"; /* encoded surrogate: invalid */
  s->resource = "\xf0\x9f\x98\x80 ok";  /* valid 4-byte character */
  s->type = "\xc0\xaf";                 /* overlong '/' */
  tag_str(s, "huge", huge);
  tag_str(s, "ascii", big_ascii);
  tag_str(s, key, "v");
  tag_str(s, "trunc", "abc\xe2\x82"); /* cut in the middle of a character */
  /* Events with 25000-byte attributes: the JSON stays under the meta
   * value limit by leaving out whole events. */
  hs_tag attr = {"a", HS_TAG_STR, 1, {.s = big_ascii}};
  hs_span_event evs[3];
  for (int i = 0; i < 3; i++) {
    evs[i] = (hs_span_event){i < 2 ? &evs[i + 1] : NULL, "e", 1, &attr, 1};
  }
  hs_span_event small = {&evs[0], "small\xff", 1, NULL, 0};
  s->events = &small;
  hs_buf b;
  encode(f, &b);
  decoded d;
  decode(&b, &d);
  const msgpack_object *sp = span_at(&d, 0, 0);
  assert_span_shape(sp); /* includes: every string valid UTF-8 */
  const msgpack_object *v = get(sp, "resource");
  assert_int_equal(v->via.str.size, 7);
  assert_memory_equal(v->via.str.ptr, "\xf0\x9f\x98\x80 ok", 7);
  v = get(sp, "name");
  assert_int_equal(v->via.str.size, 11); /* "bad" U+FFFD "(name" */
  assert_memory_equal(v->via.str.ptr, "bad\xef\xbf\xbd(name", 11);
  v = get(get(sp, "meta"), "huge");
  assert_int_equal(v->via.str.size, 3 * HS_TAG_VALUE_MAX);
  v = get(get(sp, "meta"), "ascii");
  assert_int_equal(v->via.str.size, HS_TAG_VALUE_MAX);
  hs_json_doc *doc = NULL;
  const hs_json_value *a = parse_meta_json(sp, "events", &doc);
  assert_int_equal(a->u.array.len, 1); /* only "small" fits */
  assert_string_equal(hs_json_get(&a->u.array.items[0], "name")->u.string.ptr,
                      "small\xc3\xbf"); /* the byte as \u00ff */
  hs_json_free(doc);
  msgpack_unpacked_destroy(&d.u);
  hs_buf_free(&b);
  fx_free(f);
}

/* ------------------------------------------------------------ payload */

static void test_payload_limits(void **state) {
  (void)state;
  fixture *f = fx_new();
  static char big[HS_TAG_VALUE_MAX + 1];
  memset(big, 'x', HS_TAG_VALUE_MAX);
  hotspan_span *s = fx_span(f, 1, 0, "op");
  s->is_local_root = 1;
  hs_dd_encoder e;
  hs_dd_encoder_init(&e, &f->st, 4096);
  /* An empty payload is an empty array. */
  char *body;
  size_t len;
  uint32_t nt, ns;
  assert_int_equal(hs_dd_encoder_finish(&e, &body, &len, &nt, &ns), HOTSPAN_OK);
  assert_int_equal(len, 5);
  assert_memory_equal(body, "\xdd\0\0\0\0", 5);
  assert_int_equal(nt, 0);
  free(body);
  /* Three small traces, then one that does not fit 4096 bytes: it is left
   * out, the payload still holds the three. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(hs_dd_encoder_add(&e, &f->chunk), HOTSPAN_OK);
  tag_str(s, "big", big);
  size_t before = hs_dd_encoder_size(&e);
  assert_int_equal(hs_dd_encoder_add(&e, &f->chunk), HOTSPAN_ETOOBIG);
  assert_int_equal(hs_dd_encoder_size(&e), before);
  assert_int_equal(e.chunks_dropped, 1);
  assert_int_equal(e.spans_dropped, 1);
  assert_int_equal(hs_dd_encoder_add(&e, NULL), HOTSPAN_EINVAL);
  s->ntags = 0;
  assert_int_equal(hs_dd_encoder_add(&e, &f->chunk), HOTSPAN_OK);
  assert_int_equal(hs_dd_encoder_finish(&e, &body, &len, &nt, &ns), HOTSPAN_OK);
  assert_int_equal(nt, 4);
  assert_int_equal(ns, 4);
  hs_buf b = {body, len, len, len, 0};
  decoded d;
  decode(&b, &d);
  assert_int_equal(d.traces->via.array.size, 4);
  msgpack_unpacked_destroy(&d.u);
  free(body);
  /* The encoder starts over after finish. */
  assert_int_equal(hs_dd_encoder_size(&e), 5);
  hs_dd_encoder_free(&e);
  hs_dd_encoder_free(NULL);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_minimal),
      cmocka_unit_test(test_golden_root),
      cmocka_unit_test(test_tags_and_trace_values),
      cmocka_unit_test(test_agent_psr_and_large_chunk),
      cmocka_unit_test(test_events_and_links),
      cmocka_unit_test(test_hostile_strings),
      cmocka_unit_test(test_payload_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
