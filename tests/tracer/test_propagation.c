/* Propagation codecs (tracer/propagation_codec.h): style lists, extraction
 * per style with valid and hostile headers, precedence and tracestate
 * merging, injection, round trips, carrier failures.
 *
 * Header values in the tables may contain "<<N*c>>", which expands to N
 * copies of the character c (for oversized values). The test carrier hands
 * every name and value to the codec in an exactly sized heap buffer without
 * a NUL, so that a read past the given length is caught by ASan. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tracer/propagation_codec.h"

#define TP01 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TP00 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
#define HI 0x4bf92f3577b34da6ull
#define LO 0xa3ce929d0e0e4736ull
#define SPAN 0x00f067aa0ba902b7ull
#define LO_DEC "11803532876627986230"
#define SPAN_DEC "67667974448284343"
#define UNSET HOTSPAN_PRIORITY_UNSET

/* ------------------------------------------------------------------ */
/* Test carrier                                                        */
/* ------------------------------------------------------------------ */

typedef struct test_hdr {
  const char *name;
  const char *value;
} test_hdr;

#define MAX_HDRS 8

typedef struct test_carrier {
  const test_hdr *h;
  size_t n;
  int fail; /* foreach returns an error */
} test_carrier;

/* Expands "<<N*c>>" runs; returns an exact-size buffer (no NUL). */
static char *expand(const char *in, size_t *out_len) {
  size_t cap = strlen(in) + 1, n = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  for (const char *p = in; *p != '\0';) {
    unsigned long count;
    char c;
    int used = 0;
    if (p[0] == '<' && p[1] == '<' &&
        sscanf(p, "<<%lu*%c>>%n", &count, &c, &used) == 2 && used > 0) {
      if (n + count + 1 > cap) {
        cap = n + count + 1 + strlen(p);
        out = realloc(out, cap);
        assert_non_null(out);
      }
      memset(out + n, c, count);
      n += count;
      p += used;
    } else {
      if (n + 2 > cap) {
        cap = cap * 2 + 2;
        out = realloc(out, cap);
        assert_non_null(out);
      }
      out[n++] = *p++;
    }
  }
  *out_len = n;
  /* Shrink to the exact length so that any overread is out of bounds. */
  char *exact = malloc(n > 0 ? n : 1);
  assert_non_null(exact);
  memcpy(exact, out, n);
  free(out);
  return exact;
}

static int test_foreach(void *carrier, hotspan_header_visit_fn visit,
                        void *arg) {
  test_carrier *c = carrier;
  if (c->fail)
    return -1;
  for (size_t i = 0; i < c->n; i++) {
    size_t nl, vl;
    char *nb = expand(c->h[i].name, &nl);
    char *vb = expand(c->h[i].value, &vl);
    int stop = visit(arg, nb, nl, vb, vl);
    free(nb);
    free(vb);
    if (stop)
      break;
  }
  return 0;
}

static const hotspan_carrier_reader test_reader = {test_foreach};

/* Recording writer. */
#define REC_MAX 16
typedef struct rec {
  int n;
  int calls;
  int fail_at; /* index of the set call that fails; -1 never */
  char name[REC_MAX][64];
  char value[REC_MAX][1100];
} rec;

static void rec_init(rec *r) {
  memset(r, 0, sizeof *r);
  r->fail_at = -1;
}

static int rec_set(void *carrier, const char *name, const char *value) {
  rec *r = carrier;
  int call = r->calls++;
  if (r->fail_at >= 0 && call >= r->fail_at)
    return -1;
  assert_true(r->n < REC_MAX);
  assert_true(strlen(name) < sizeof r->name[0]);
  assert_true(strlen(value) < sizeof r->value[0]);
  strcpy(r->name[r->n], name);
  strcpy(r->value[r->n], value);
  r->n++;
  return 0;
}

static const hotspan_carrier_writer rec_writer = {rec_set};

static const char *rec_get(const rec *r, const char *name) {
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->name[i], name) == 0)
      return r->value[i];
  return NULL;
}

/* A reader over what a rec holds. */
static int rec_foreach(void *carrier, hotspan_header_visit_fn visit,
                       void *arg) {
  rec *r = carrier;
  for (int i = 0; i < r->n; i++)
    if (visit(arg, r->name[i], strlen(r->name[i]), r->value[i],
              strlen(r->value[i])) != 0)
      break;
  return 0;
}

static const hotspan_carrier_reader rec_reader = {rec_foreach};

static hs_prop_styles styles_of(const char *list) {
  hs_prop_styles s;
  assert_int_equal(hs_prop_parse_styles(list, &s), 0);
  return s;
}

/* ------------------------------------------------------------------ */
/* Table-driven extraction                                             */
/* ------------------------------------------------------------------ */

typedef struct xcase {
  const char *desc;
  test_hdr h[MAX_HDRS]; /* ends at the first NULL name */
  int rc;
  uint64_t hi, lo, span;
  int prio;
  int flags;                                       /* -1: not checked */
  const char *origin, *tags, *other, *last_parent; /* NULL means "" */
  uint64_t malformed;
} xcase;

static void str_check(const char *desc, const char *field, const char *got,
                      const char *want) {
  size_t wn;
  char *w = expand(want != NULL ? want : "", &wn);
  int same = strlen(got) == wn && memcmp(got, w, wn) == 0;
  free(w);
  if (!same)
    fail_msg("%s: %s is \"%s\", expected \"%s\"", desc, field, got,
             want != NULL ? want : "");
}

static void run_cases(const char *styles, const xcase *cases, size_t n) {
  hs_prop_styles st = styles_of(styles);
  for (size_t i = 0; i < n; i++) {
    const xcase *c = &cases[i];
    size_t nh = 0;
    while (nh < MAX_HDRS && c->h[nh].name != NULL)
      nh++;
    test_carrier car = {c->h, nh, 0};
    hotspan_context ctx;
    uint64_t malformed = 0;
    int rc = hs_prop_extract(&st, &test_reader, &car, &ctx, &malformed);
    if (rc != c->rc)
      fail_msg("%s: rc %d, expected %d", c->desc, rc, c->rc);
    if (malformed != c->malformed)
      fail_msg("%s: malformed %" PRIu64 ", expected %" PRIu64, c->desc,
               malformed, c->malformed);
    if (rc != HOTSPAN_OK) {
      if (ctx.trace_id_low != 0 || ctx.span_id != 0)
        fail_msg("%s: failed extract left ids in the context", c->desc);
      if (ctx.remote != HOTSPAN_CONTEXT_UNKNOWN)
        fail_msg("%s: failed extract marked the context remote", c->desc);
      continue;
    }
    if (ctx.remote != HOTSPAN_CONTEXT_REMOTE)
      fail_msg("%s: extracted context not marked remote", c->desc);
    if (ctx.trace_id_high != c->hi || ctx.trace_id_low != c->lo ||
        ctx.span_id != c->span)
      fail_msg("%s: ids %016" PRIx64 "%016" PRIx64 "/%016" PRIx64
               ", expected %016" PRIx64 "%016" PRIx64 "/%016" PRIx64,
               c->desc, ctx.trace_id_high, ctx.trace_id_low, ctx.span_id, c->hi,
               c->lo, c->span);
    if (ctx.sampling_priority != c->prio)
      fail_msg("%s: priority %d, expected %d", c->desc, ctx.sampling_priority,
               c->prio);
    if (c->flags >= 0 && ctx.trace_flags != c->flags)
      fail_msg("%s: flags %d, expected %d", c->desc, ctx.trace_flags, c->flags);
    str_check(c->desc, "origin", ctx.origin, c->origin);
    str_check(c->desc, "propagated_tags", ctx.propagated_tags, c->tags);
    str_check(c->desc, "tracestate_other", ctx.tracestate_other, c->other);
    str_check(c->desc, "last_dd_parent_id", ctx.last_dd_parent_id,
              c->last_parent);
  }
}

#define OK_W3C(prio_, flags_)                                                  \
  .rc = HOTSPAN_OK, .hi = HI, .lo = LO, .span = SPAN, .prio = (prio_),         \
  .flags = (flags_)
#define NOCTX(bad) .rc = HOTSPAN_ENOCTX, .malformed = (bad)

static const xcase w3c_cases[] = {
    {"sampled, no tracestate", {{"traceparent", TP01}}, OK_W3C(1, 1)},
    {"not sampled", {{"traceparent", TP00}}, OK_W3C(0, 0)},
    {"header name in mixed case", {{"TraceParent", TP01}}, OK_W3C(1, 1)},
    {"full dd member",
     {{"traceparent", TP01},
      {"tracestate", "dd=s:2;o:rum;p:0123456789abcdef;t.dm:-4;t.usr.id:baz64~~,"
                     "foo=bar"}},
     OK_W3C(2, 1),
     .origin = "rum",
     .tags = "_dd.p.dm=-4,_dd.p.usr.id=baz64==",
     .other = "foo=bar",
     .last_parent = "0123456789abcdef"},
    {"sampled flag wins over s:-1, dm reset to -0",
     {{"traceparent", TP01}, {"tracestate", "foo=1,dd=s:-1;t.dm:-4;t.a:b"}},
     OK_W3C(1, 1),
     .tags = "_dd.p.a=b,_dd.p.dm=-0",
     .other = "foo=1"},
    {"unsampled flag wins over s:2, dm dropped",
     {{"traceparent", TP00}, {"tracestate", "dd=s:2;t.dm:-4;t.usr:x"}},
     OK_W3C(0, 0),
     .tags = "_dd.p.usr=x"},
    {"s agrees with flag",
     {{"traceparent", TP00}, {"tracestate", "dd=s:-1"}},
     OK_W3C(-1, 0)},
    {"s not a number: flag decides",
     {{"traceparent", TP00}, {"tracestate", "dd=s:x;o:a~b"}},
     OK_W3C(0, 0),
     .origin = "a=b"},
    {"dd p: in uppercase is ignored",
     {{"traceparent", TP01}, {"tracestate", "dd=p:0123456789ABCDEF"}},
     OK_W3C(1, 1)},
    {"dd p: too short is ignored",
     {{"traceparent", TP01}, {"tracestate", "dd=p:0123"}},
     OK_W3C(1, 1)},
    {"dd t.tid is ignored (traceparent has the id)",
     {{"traceparent", TP01}, {"tracestate", "dd=t.tid:1111111111111111;t.x:y"}},
     OK_W3C(1, 1),
     .tags = "_dd.p.x=y"},
    {"spaces around dd values are dropped",
     {{"traceparent", TP01}, {"tracestate", "dd=o: web ;t.a: b c ;t.e: "}},
     OK_W3C(1, 1),
     .origin = "web",
     .tags = "_dd.p.a=b c"},
    {"unknown dd fields are skipped",
     {{"traceparent", TP01}, {"tracestate", "dd=zz;q:1;s:1;o:web"}},
     OK_W3C(1, 1),
     .origin = "web"},
    {"64-bit trace id (high zero)",
     {{"traceparent",
       "00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
     .rc = HOTSPAN_OK,
     .hi = 0,
     .lo = LO,
     .span = SPAN,
     .prio = 1,
     .flags = 1},
    {"other flag bits are kept for version 00",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"}},
     OK_W3C(1, 9)},
    {"future version with more fields",
     {{"traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"
                      "01-what-the-future-will-be-like"}},
     OK_W3C(1, 1)},
    {"future version, 00 length",
     {{"traceparent",
       "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"}},
     OK_W3C(1, 1)},
    {"leading and trailing OWS around traceparent",
     {{"traceparent", " \t" TP01 "\t "}},
     OK_W3C(1, 1)},
    {"OWS, empty members and several tracestate fields",
     {{"traceparent", TP01},
      {"tracestate", " foo=1 ,\t, "},
      {"tracestate", "dd=s:2;o:x , bar=2 "},
      {"tracestate", ""}},
     OK_W3C(2, 1),
     .origin = "x",
     .other = "foo=1,bar=2"},
    {"tracestate value keeps inner spaces",
     {{"traceparent", TP01}, {"tracestate", "a=b c,d@e=f"}},
     OK_W3C(1, 1),
     .other = "a=b c,d@e=f"},
    /* Invalid tracestate: dropped, the context stays. */
    {"tracestate key in uppercase",
     {{"traceparent", TP00}, {"tracestate", "dd=s:2,Foo=1"}},
     OK_W3C(0, 0)},
    {"tracestate duplicated key",
     {{"traceparent", TP01}, {"tracestate", "foo=1,dd=s:2,foo=2"}},
     OK_W3C(1, 1)},
    {"tracestate duplicated key across fields",
     {{"traceparent", TP01}, {"tracestate", "foo=1"}, {"tracestate", "foo=2"}},
     OK_W3C(1, 1)},
    {"tracestate member without '='",
     {{"traceparent", TP01}, {"tracestate", "foo=1,bar"}},
     OK_W3C(1, 1)},
    {"tracestate value with '='",
     {{"traceparent", TP01}, {"tracestate", "foo=a=b"}},
     OK_W3C(1, 1)},
    {"tracestate value with a control character",
     {{"traceparent", TP01}, {"tracestate", "foo=a\x01z"}},
     OK_W3C(1, 1)},
    {"tracestate 10 KB value",
     {{"traceparent", TP01}, {"tracestate", "dd=s:2,foo=<<10000*a>>"}},
     OK_W3C(1, 1)},
    {"tracestate 10 KB of empty members",
     {{"traceparent", TP01}, {"tracestate", "foo=1<<10000*,>>"}},
     OK_W3C(1, 1),
     .other = "foo=1"},
    {"tracestate key of 257 characters",
     {{"traceparent", TP01}, {"tracestate", "dd=s:2,<<257*k>>=v"}},
     OK_W3C(1, 1)},
    {"tracestate key of 256 characters is valid",
     {{"traceparent", TP01}, {"tracestate", "dd=s:2,<<256*k>>=v"}},
     OK_W3C(2, 1),
     .other = "<<256*k>>=v"},
    {"tracestate value of 256 characters is valid",
     {{"traceparent", TP01}, {"tracestate", "k=<<256*v>>"}},
     OK_W3C(1, 1),
     .other = "k=<<256*v>>"},
    {"tracestate value of 257 characters",
     {{"traceparent", TP01}, {"tracestate", "k=<<257*v>>"}},
     OK_W3C(1, 1)},
    /* Invalid traceparent: no context. */
    {"trace id in uppercase",
     {{"traceparent",
       "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"parent id in uppercase",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"}},
     NOCTX(1)},
    {"flags in uppercase",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"}},
     NOCTX(1)},
    {"non-hex trace id",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"all-zero trace id",
     {{"traceparent",
       "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"trace id with zero low half",
     {{"traceparent",
       "00-4bf92f3577b34da60000000000000000-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"all-zero parent id",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}},
     NOCTX(1)},
    {"version ff",
     {{"traceparent",
       "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"version 00 with trailing data",
     {{"traceparent", TP01 "-extra"}},
     NOCTX(1)},
    {"future version without '-' after the flags",
     {{"traceparent",
       "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01what"}},
     NOCTX(1)},
    {"future version, prohibitively large",
     {{"traceparent",
       "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-<<10000*a>>"}},
     NOCTX(1)},
    {"one character short",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"}},
     NOCTX(1)},
    {"trace id one character short",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"wrong separator",
     {{"traceparent",
       "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"wrong separator after the trace id",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"wrong separator before the flags",
     {{"traceparent",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01"}},
     NOCTX(1)},
    {"whitespace inside",
     {{"traceparent",
       "00- 4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
     NOCTX(1)},
    {"10 KB traceparent", {{"traceparent", "00-<<10000*a>>"}}, NOCTX(1)},
    {"empty traceparent", {{"traceparent", ""}}, NOCTX(1)},
    {"duplicated traceparent",
     {{"traceparent", TP01}, {"traceparent", TP01}},
     NOCTX(1)},
    {"tracestate alone", {{"tracestate", "dd=s:2"}}, NOCTX(0)},
    {"no headers", {{NULL, NULL}}, NOCTX(0)},
};

static void test_extract_tracecontext(void **state) {
  (void)state;
  run_cases("tracecontext", w3c_cases, sizeof w3c_cases / sizeof w3c_cases[0]);
}

#define DD_IDS                                                                 \
  {"x-datadog-trace-id", "123"}, {                                             \
    "x-datadog-parent-id", "456"                                               \
  }
#define OK_DD(prio_, flags_)                                                   \
  .rc = HOTSPAN_OK, .lo = 123, .span = 456, .prio = (prio_), .flags = (flags_)

static const xcase dd_cases[] = {
    {"all headers",
     {DD_IDS,
      {"x-datadog-sampling-priority", "2"},
      {"x-datadog-origin", "synthetics"},
      {"x-datadog-tags", "_dd.p.dm=-4,_dd.p.tid=640cfd8d00000000,other=1"}},
     OK_DD(2, 1),
     .hi = 0x640cfd8d00000000ull,
     .origin = "synthetics",
     .tags = "_dd.p.dm=-4"},
    {"ids only: priority unset", {DD_IDS}, OK_DD(UNSET, 0)},
    {"header names in uppercase",
     {{"X-DATADOG-TRACE-ID", "123"},
      {"X-Datadog-Parent-Id", "456"},
      {"X-Datadog-Sampling-Priority", "-1"}},
     OK_DD(-1, 0)},
    {"largest id",
     {{"x-datadog-trace-id", "18446744073709551615"},
      {"x-datadog-parent-id", "00000000000000000001"}},
     .rc = HOTSPAN_OK,
     .lo = UINT64_MAX,
     .span = 1,
     .prio = UNSET,
     .flags = 0},
    {"OWS around values",
     {{"x-datadog-trace-id", " 123\t"}, {"x-datadog-parent-id", "\t456 "}},
     OK_DD(UNSET, 0)},
    {"priority not a number is dropped",
     {DD_IDS, {"x-datadog-sampling-priority", "abc"}},
     OK_DD(UNSET, 0)},
    {"priority out of int range is dropped",
     {DD_IDS, {"x-datadog-sampling-priority", "99999999999"}},
     OK_DD(UNSET, 0)},
    {"priority repeated is dropped",
     {DD_IDS,
      {"x-datadog-sampling-priority", "1"},
      {"x-datadog-sampling-priority", "2"}},
     OK_DD(UNSET, 0)},
    {"origin of 63 bytes is kept",
     {DD_IDS, {"x-datadog-origin", "<<63*o>>"}},
     OK_DD(UNSET, 0),
     .origin = "<<63*o>>"},
    {"origin of 64 bytes is dropped",
     {DD_IDS, {"x-datadog-origin", "<<64*o>>"}},
     OK_DD(UNSET, 0)},
    {"origin of 10 KB is dropped",
     {DD_IDS, {"x-datadog-origin", "<<10000*o>>"}},
     OK_DD(UNSET, 0)},
    {"origin with a control character is dropped",
     {DD_IDS, {"x-datadog-origin", "rum\r\nx: y"}},
     OK_DD(UNSET, 0)},
    {"tags over 512 bytes are ignored, context kept",
     {DD_IDS,
      {"x-datadog-tags", "_dd.p.tid=640cfd8d00000000,_dd.p.a=<<500*x>>"}},
     OK_DD(UNSET, 0)},
    {"tags of 10 KB are ignored",
     {DD_IDS, {"x-datadog-tags", "<<10000*x>>"}},
     OK_DD(UNSET, 0)},
    {"malformed tags drop every tag, tid included",
     {DD_IDS, {"x-datadog-tags", "_dd.p.tid=640cfd8d00000000,_dd.p.dm"}},
     OK_DD(UNSET, 0)},
    {"tag key with a space is malformed",
     {DD_IDS, {"x-datadog-tags", "_dd.p.a b=1"}},
     OK_DD(UNSET, 0)},
    {"invalid tid is ignored alone",
     {DD_IDS, {"x-datadog-tags", "_dd.p.tid=XYZ,_dd.p.dm=-3"}},
     OK_DD(UNSET, 0),
     .tags = "_dd.p.dm=-3"},
    {"tid in uppercase is ignored",
     {DD_IDS, {"x-datadog-tags", "_dd.p.tid=640CFD8D00000000"}},
     OK_DD(UNSET, 0)},
    {"tid of 15 digits is ignored",
     {DD_IDS, {"x-datadog-tags", "_dd.p.tid=640cfd8d0000000"}},
     OK_DD(UNSET, 0)},
    {"only _dd.p.* tags are kept, empty members tolerated",
     {DD_IDS, {"x-datadog-tags", "a=1,,_dd.p.usr.id=baz64==,_dd.x=2,"}},
     OK_DD(UNSET, 0),
     .tags = "_dd.p.usr.id=baz64=="},
    {"spaces around tag members and values are dropped",
     {DD_IDS, {"x-datadog-tags", "_dd.p.a=1 , _dd.p.b= x y ,_dd.p.c=z"}},
     OK_DD(UNSET, 0),
     .tags = "_dd.p.a=1,_dd.p.b=x y,_dd.p.c=z"},
    {"tags repeated are ignored",
     {DD_IDS, {"x-datadog-tags", "_dd.p.a=1"}, {"x-datadog-tags", "_dd.p.b=1"}},
     OK_DD(UNSET, 0)},
    /* Rejected contexts. */
    {"trace id not decimal",
     {{"x-datadog-trace-id", "12a"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"trace id hex",
     {{"x-datadog-trace-id", "0x1f"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"trace id overflow",
     {{"x-datadog-trace-id", "18446744073709551616"},
      {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"trace id overflow that wraps to a valid value",
     {{"x-datadog-trace-id", "18446744073709551617"},
      {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"parent id of 20 nines",
     {{"x-datadog-trace-id", "123"},
      {"x-datadog-parent-id", "99999999999999999999"}},
     NOCTX(1)},
    {"trace id negative",
     {{"x-datadog-trace-id", "-1"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"trace id with a sign",
     {{"x-datadog-trace-id", "+1"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"trace id zero",
     {{"x-datadog-trace-id", "0"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"parent id zero",
     {{"x-datadog-trace-id", "123"}, {"x-datadog-parent-id", "000"}},
     NOCTX(1)},
    {"space inside the id",
     {{"x-datadog-trace-id", "1 23"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"empty trace id",
     {{"x-datadog-trace-id", ""}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"10 KB trace id",
     {{"x-datadog-trace-id", "<<10000*1>>"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"parent id missing", {{"x-datadog-trace-id", "123"}}, NOCTX(1)},
    {"trace id missing", {{"x-datadog-parent-id", "456"}}, NOCTX(1)},
    {"control characters do not pass for '-' in names",
     {{"x\rdatadog\rtrace\rid", "123"}, {"x-datadog-parent-id", "456"}},
     NOCTX(1)},
    {"trace id duplicated", {DD_IDS, {"x-datadog-trace-id", "123"}}, NOCTX(1)},
    {"origin and priority without ids",
     {{"x-datadog-origin", "rum"}, {"x-datadog-sampling-priority", "1"}},
     NOCTX(0)},
};

static void test_extract_datadog(void **state) {
  (void)state;
  run_cases("datadog", dd_cases, sizeof dd_cases / sizeof dd_cases[0]);
}

#define B3T128 "4bf92f3577b34da6a3ce929d0e0e4736"
#define B3T64 "a3ce929d0e0e4736"
#define B3S "00f067aa0ba902b7"
#define OK_B3(hi_, prio_, flags_)                                              \
  .rc = HOTSPAN_OK, .hi = (hi_), .lo = LO, .span = SPAN, .prio = (prio_),      \
  .flags = (flags_)

static const xcase b3multi_cases[] = {
    {"128-bit, sampled",
     {{"x-b3-traceid", B3T128}, {"x-b3-spanid", B3S}, {"x-b3-sampled", "1"}},
     OK_B3(HI, 1, 1)},
    {"64-bit, not sampled",
     {{"X-B3-TraceId", B3T64}, {"X-B3-SpanId", B3S}, {"X-B3-Sampled", "0"}},
     OK_B3(0, 0, 0)},
    {"debug flag",
     {{"x-b3-traceid", B3T64}, {"x-b3-spanid", B3S}, {"x-b3-flags", "1"}},
     OK_B3(0, 2, 1)},
    {"legacy true",
     {{"x-b3-traceid", B3T64}, {"x-b3-spanid", B3S}, {"x-b3-sampled", "true"}},
     OK_B3(0, 1, 1)},
    {"no sampling state: deferred",
     {{"x-b3-traceid", B3T64}, {"x-b3-spanid", B3S}},
     OK_B3(0, UNSET, 0)},
    {"unreadable sampling state: deferred",
     {{"x-b3-traceid", B3T64}, {"x-b3-spanid", B3S}, {"x-b3-sampled", "yes"}},
     OK_B3(0, UNSET, 0)},
    {"parent span id is ignored",
     {{"x-b3-traceid", B3T64},
      {"x-b3-spanid", B3S},
      {"x-b3-parentspanid", "zzzz"}},
     OK_B3(0, UNSET, 0)},
    {"repeated headers: the first wins",
     {{"x-b3-traceid", B3T64},
      {"x-b3-traceid", "1111111111111111"},
      {"x-b3-spanid", B3S}},
     OK_B3(0, UNSET, 0)},
    {"OWS around values",
     {{"x-b3-traceid", " " B3T64 " "}, {"x-b3-spanid", "\t" B3S}},
     OK_B3(0, UNSET, 0)},
    {"trace id of 15 digits",
     {{"x-b3-traceid", "a3ce929d0e0e473"}, {"x-b3-spanid", B3S}},
     NOCTX(1)},
    {"trace id of 20 digits",
     {{"x-b3-traceid", "a3ce929d0e0e47360000"}, {"x-b3-spanid", B3S}},
     NOCTX(1)},
    {"trace id in uppercase",
     {{"x-b3-traceid", "A3CE929D0E0E4736"}, {"x-b3-spanid", B3S}},
     NOCTX(1)},
    {"trace id zero",
     {{"x-b3-traceid", "0000000000000000"}, {"x-b3-spanid", B3S}},
     NOCTX(1)},
    {"span id zero",
     {{"x-b3-traceid", B3T64}, {"x-b3-spanid", "0000000000000000"}},
     NOCTX(1)},
    {"span id of 32 digits",
     {{"x-b3-traceid", B3T64}, {"x-b3-spanid", B3T128}},
     NOCTX(1)},
    {"span id missing", {{"x-b3-traceid", B3T64}}, NOCTX(1)},
    {"10 KB trace id",
     {{"x-b3-traceid", "<<10000*a>>"}, {"x-b3-spanid", B3S}},
     NOCTX(1)},
    {"sampling state alone", {{"x-b3-sampled", "0"}}, NOCTX(0)},
};

static void test_extract_b3multi(void **state) {
  (void)state;
  run_cases("b3multi", b3multi_cases,
            sizeof b3multi_cases / sizeof b3multi_cases[0]);
}

static const xcase b3single_cases[] = {
    {"all four fields",
     {{"b3", B3T128 "-" B3S "-1-0123456789abcdef"}},
     OK_B3(HI, 1, 1)},
    {"ids only", {{"b3", B3T64 "-" B3S}}, OK_B3(0, UNSET, 0)},
    {"debug", {{"b3", B3T64 "-" B3S "-d"}}, OK_B3(0, 2, 1)},
    {"deny", {{"B3", B3T64 "-" B3S "-0"}}, OK_B3(0, 0, 0)},
    {"OWS around the value",
     {{"b3", "  " B3T64 "-" B3S "-1 "}},
     OK_B3(0, 1, 1)},
    {"repeated: the first wins",
     {{"b3", B3T64 "-" B3S "-1"}, {"b3", "garbage"}},
     OK_B3(0, 1, 1)},
    {"deny alone: no context", {{"b3", "0"}}, NOCTX(0)},
    {"accept alone: no context", {{"b3", "1"}}, NOCTX(0)},
    {"unknown sampling state", {{"b3", B3T64 "-" B3S "-2"}}, NOCTX(1)},
    {"sampling state of two characters",
     {{"b3", B3T64 "-" B3S "-10"}},
     NOCTX(1)},
    {"dangling separator", {{"b3", B3T64 "-" B3S "-"}}, NOCTX(1)},
    {"empty parent id", {{"b3", B3T64 "-" B3S "-1-"}}, NOCTX(1)},
    {"short parent id", {{"b3", B3T64 "-" B3S "-1-0123"}}, NOCTX(1)},
    {"wrong separator before the parent id",
     {{"b3", B3T64 "-" B3S "-1_0123456789abcdef"}},
     NOCTX(1)},
    {"wrong separator before the sampling state",
     {{"b3", B3T64 "-" B3S "_1"}},
     NOCTX(1)},
    {"data after the parent id",
     {{"b3", B3T64 "-" B3S "-1-0123456789abcdef-x"}},
     NOCTX(1)},
    {"parent id in uppercase",
     {{"b3", B3T64 "-" B3S "-1-0123456789ABCDEF"}},
     NOCTX(1)},
    {"trace id in uppercase", {{"b3", "A3CE929D0E0E4736-" B3S}}, NOCTX(1)},
    {"trace id of 20 digits", {{"b3", "a3ce929d0e0e47360000-" B3S}}, NOCTX(1)},
    {"span id short", {{"b3", B3T64 "-00f067aa0ba902b"}}, NOCTX(1)},
    {"zero ids", {{"b3", "0000000000000000-0000000000000000-1"}}, NOCTX(1)},
    {"10 KB", {{"b3", "<<10000*a>>"}}, NOCTX(1)},
    {"empty", {{"b3", ""}}, NOCTX(1)},
};

static void test_extract_b3single(void **state) {
  (void)state;
  run_cases("b3", b3single_cases,
            sizeof b3single_cases / sizeof b3single_cases[0]);
}

/* Several styles: order, first valid wins, tracestate merge. */
#define DD_SAME_TRACE                                                          \
  {"x-datadog-trace-id", LO_DEC}, {"x-datadog-parent-id", "99"},               \
      {"x-datadog-sampling-priority", "2"}, {"x-datadog-origin", "rum"}, {     \
    "x-datadog-tags", "_dd.p.tid=4bf92f3577b34da6,_dd.p.dm=-3"                 \
  }
#define TS_FULL "dd=s:1;o:web;p:0123456789abcdef;t.dm:-4,foo=1,bar=2"

static const xcase multi_cases[] = {
    {"same trace id: datadog wins, tracestate merged",
     {DD_SAME_TRACE, {"traceparent", TP01}, {"tracestate", TS_FULL}},
     .rc = HOTSPAN_OK,
     .hi = HI,
     .lo = LO,
     .span = 99,
     .prio = 2,
     .flags = 1,
     .origin = "rum",
     .tags = "_dd.p.dm=-3",
     .other = "foo=1,bar=2",
     .last_parent = "0123456789abcdef"},
    {"different trace id: datadog wins, tracestate ignored",
     {{"x-datadog-trace-id", "123"},
      {"x-datadog-parent-id", "456"},
      {"traceparent", TP01},
      {"tracestate", TS_FULL}},
     OK_DD(UNSET, 0)},
    {"only the high half matches: not the same trace",
     {{"x-datadog-trace-id", "123"},
      {"x-datadog-parent-id", "456"},
      {"x-datadog-tags", "_dd.p.tid=4bf92f3577b34da6"},
      {"traceparent", TP01},
      {"tracestate", TS_FULL}},
     OK_DD(UNSET, 0),
     .hi = HI},
    {"only the low half matches: not the same trace",
     {{"x-datadog-trace-id", LO_DEC},
      {"x-datadog-parent-id", "456"},
      {"traceparent", TP01},
      {"tracestate", TS_FULL}},
     .rc = HOTSPAN_OK,
     .lo = LO,
     .span = 456,
     .prio = UNSET,
     .flags = 0},
    {"datadog malformed: tracecontext wins",
     {{"x-datadog-trace-id", "abc"},
      {"x-datadog-parent-id", "456"},
      {"traceparent", TP01},
      {"tracestate", TS_FULL}},
     OK_W3C(1, 1),
     .origin = "web",
     .tags = "_dd.p.dm=-4",
     .other = "foo=1,bar=2",
     .last_parent = "0123456789abcdef",
     .malformed = 1},
    {"datadog wins, traceparent malformed: counted, not merged",
     {{"x-datadog-trace-id", "123"},
      {"x-datadog-parent-id", "456"},
      {"traceparent", "00-xyz"},
      {"tracestate", TS_FULL}},
     OK_DD(UNSET, 0),
     .malformed = 1},
    {"both malformed",
     {{"x-datadog-trace-id", "0"},
      {"x-datadog-parent-id", "456"},
      {"traceparent", "00-xyz"}},
     NOCTX(2)},
    {"datadog absent: tracecontext", {{"traceparent", TP00}}, OK_W3C(0, 0)},
    {"unconfigured styles are not read",
     {{"b3", B3T64 "-" B3S "-1"}, {"x-b3-traceid", B3T64}},
     NOCTX(0)},
};

static void test_extract_precedence(void **state) {
  (void)state;
  run_cases("datadog,tracecontext", multi_cases,
            sizeof multi_cases / sizeof multi_cases[0]);
}

static const xcase tc_first_cases[] = {
    {"tracecontext first wins over datadog",
     {DD_SAME_TRACE, {"traceparent", TP01}, {"tracestate", TS_FULL}},
     OK_W3C(1, 1),
     .origin = "web",
     .tags = "_dd.p.dm=-4",
     .other = "foo=1,bar=2",
     .last_parent = "0123456789abcdef"},
    {"tracecontext malformed, datadog valid: one count, no merge",
     {{"x-datadog-trace-id", "123"},
      {"x-datadog-parent-id", "456"},
      {"traceparent",
       "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"tracestate", TS_FULL}},
     OK_DD(UNSET, 0),
     .malformed = 1},
};

static void test_extract_tracecontext_first(void **state) {
  (void)state;
  run_cases("tracecontext,datadog", tc_first_cases,
            sizeof tc_first_cases / sizeof tc_first_cases[0]);
}

static const xcase b3_first_cases[] = {
    {"b3 deny alone does not block datadog",
     {{"b3", "0"},
      {"x-datadog-trace-id", "123"},
      {"x-datadog-parent-id", "456"}},
     OK_DD(UNSET, 0)},
    {"b3 winner merges a matching tracestate",
     {{"b3", B3T128 "-" B3S "-1"},
      {"traceparent", TP00},
      {"tracestate", "dd=s:-1;p:0000000000000001,vendor=x"}},
     OK_B3(HI, 1, 1),
     .other = "vendor=x",
     .last_parent = "0000000000000001"},
    {"every style malformed",
     {{"b3", "zz"},
      {"x-datadog-trace-id", "x"},
      {"x-datadog-parent-id", "1"},
      {"traceparent", "zz"}},
     NOCTX(3)},
};

static void test_extract_b3_first(void **state) {
  (void)state;
  run_cases("b3,datadog,tracecontext", b3_first_cases,
            sizeof b3_first_cases / sizeof b3_first_cases[0]);
}

/* ------------------------------------------------------------------ */
/* tracestate limits                                                   */
/* ------------------------------------------------------------------ */

/* "k1=v1,...,kN=vN" starting at first. */
static void members(char *buf, size_t cap, int first, int n) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = first; i < first + n; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%sk%d=v%d",
                            len > 0 ? "," : "", i, i);
}

static int extract_tc(const char *ts, hotspan_context *ctx) {
  test_hdr h[2] = {{"traceparent", TP01}, {"tracestate", ts}};
  test_carrier car = {h, 2, 0};
  hs_prop_styles st = styles_of("tracecontext");
  return hs_prop_extract(&st, &test_reader, &car, ctx, NULL);
}

static void test_tracestate_32_members(void **state) {
  (void)state;
  char in[1024], want[1024];
  hotspan_context ctx;

  /* 32 members, dd last: all kept. */
  members(in, sizeof in, 1, 31);
  strcat(in, ",dd=s:2");
  assert_int_equal(extract_tc(in, &ctx), HOTSPAN_OK);
  members(want, sizeof want, 1, 31);
  assert_string_equal(ctx.tracestate_other, want);
  assert_int_equal(ctx.sampling_priority, 2);

  /* 32 other vendors: kept; inject keeps dd + the first 31. */
  members(in, sizeof in, 1, 32);
  assert_int_equal(extract_tc(in, &ctx), HOTSPAN_OK);
  assert_string_equal(ctx.tracestate_other, in);
  rec r;
  rec_init(&r);
  hs_prop_styles st = styles_of("tracecontext");
  assert_int_equal(hs_prop_inject(&st, &ctx, &rec_writer, &r), HOTSPAN_OK);
  const char *out = rec_get(&r, "tracestate");
  assert_non_null(out);
  int commas = 0;
  for (const char *p = out; *p; p++)
    commas += *p == ',';
  assert_int_equal(commas, 31);
  assert_true(strncmp(out, "dd=", 3) == 0);
  assert_non_null(strstr(out, ",k31=v31"));
  assert_null(strstr(out, "k32=v32"));

  /* 33 members: the list is invalid and dropped, the context stays. */
  members(in, sizeof in, 1, 32);
  strcat(in, ",dd=s:2");
  assert_int_equal(extract_tc(in, &ctx), HOTSPAN_OK);
  assert_string_equal(ctx.tracestate_other, "");
  assert_int_equal(ctx.sampling_priority, 1); /* from the flag, not s:2 */

  /* Split over two fields, 33 in all: also invalid. */
  test_hdr h[3] = {
      {"traceparent", TP01}, {"tracestate", NULL}, {"tracestate", NULL}};
  char a[512], b[512];
  members(a, sizeof a, 1, 16);
  members(b, sizeof b, 17, 17);
  h[1].value = a;
  h[2].value = b;
  test_carrier car = {h, 3, 0};
  hs_prop_styles tc = styles_of("tracecontext");
  assert_int_equal(hs_prop_extract(&tc, &test_reader, &car, &ctx, NULL),
                   HOTSPAN_OK);
  assert_string_equal(ctx.tracestate_other, "");
}

static void test_tracestate_truncation(void **state) {
  (void)state;
  hotspan_context ctx;
  char in[4096];
  /* Other vendors worth more than 511 characters: members over 128
   * characters go first (x too, although it would fit once a and c are
   * gone), then members from the end. */
  snprintf(in, sizeof in,
           "a=%0200d,b=%0100d,c=%0200d,d=%0100d,x=%0200d,e=%0100d,f=%0100d,"
           "g=1",
           0, 0, 0, 0, 0, 0, 0);
  assert_int_equal(extract_tc(in, &ctx), HOTSPAN_OK);
  char want[1024];
  snprintf(want, sizeof want, "b=%0100d,d=%0100d,e=%0100d,f=%0100d,g=1", 0, 0,
           0, 0);
  assert_string_equal(ctx.tracestate_other, want);

  /* Small members only: a prefix is kept. */
  snprintf(in, sizeof in, "a=%0120d,b=%0120d,c=%0120d,d=%0120d,e=1", 0, 0, 0,
           0);
  assert_int_equal(extract_tc(in, &ctx), HOTSPAN_OK);
  snprintf(want, sizeof want, "a=%0120d,b=%0120d,c=%0120d,d=%0120d", 0, 0, 0,
           0);
  /* 4 * 122 + 3 = 491 characters, and ",e=1" still fits in 511. */
  strcat(want, ",e=1");
  assert_string_equal(ctx.tracestate_other, want);
  snprintf(in, sizeof in, "a=%0126d,b=%0126d,c=%0126d,d=%0126d,e=1", 0, 0, 0,
           0);
  assert_int_equal(extract_tc(in, &ctx), HOTSPAN_OK);
  /* d does not fit after a-c (3 * 128 + 3 + 128 > 511) and no member is
   * over 128 characters: what is kept is a prefix, so the small e that
   * would fit is not taken either. */
  snprintf(want, sizeof want, "a=%0126d,b=%0126d,c=%0126d", 0, 0, 0);
  assert_string_equal(ctx.tracestate_other, want);
}

/* ------------------------------------------------------------------ */
/* Carriers that misbehave, lengths that must be honoured              */
/* ------------------------------------------------------------------ */

static void test_reader_failure(void **state) {
  (void)state;
  test_hdr h[1] = {{"traceparent", TP01}};
  test_carrier car = {h, 1, 1};
  hs_prop_styles st = styles_of("datadog,tracecontext");
  hotspan_context ctx;
  uint64_t bad = 0;
  assert_int_equal(hs_prop_extract(&st, &test_reader, &car, &ctx, &bad),
                   HOTSPAN_EIO);
  assert_int_equal(bad, 0);
  assert_int_equal(ctx.trace_id_low, 0);
}

/* Hands out prefixes of longer strings: the codec must stop at the given
 * length (the bytes after it would make every header invalid). */
static int prefix_foreach(void *carrier, hotspan_header_visit_fn visit,
                          void *arg) {
  (void)carrier;
  static const char names[] = "x-datadog-trace-idXXXX";
  static const char v1[] = "123456789";
  static const char names2[] = "x-datadog-parent-id-and-more";
  static const char v2[] = "4567 junk";
  static const char names3[] = "traceparentZ";
  static const char v3[] = TP01 "-and-more";
  visit(arg, names, 18, v1, 3);
  visit(arg, names2, 19, v2, 3);
  visit(arg, names3, 11, v3, 55);
  return 0;
}

static void test_lengths_honoured(void **state) {
  (void)state;
  hotspan_carrier_reader r = {prefix_foreach};
  hotspan_context ctx;
  hs_prop_styles dd = styles_of("datadog");
  assert_int_equal(hs_prop_extract(&dd, &r, NULL, &ctx, NULL), HOTSPAN_OK);
  assert_int_equal(ctx.trace_id_low, 123);
  assert_int_equal(ctx.span_id, 456);
  hs_prop_styles tc = styles_of("tracecontext");
  assert_int_equal(hs_prop_extract(&tc, &r, NULL, &ctx, NULL), HOTSPAN_OK);
  assert_int_equal(ctx.trace_id_low, LO);
}

static void test_extract_args(void **state) {
  (void)state;
  hs_prop_styles st = styles_of("datadog");
  hs_prop_styles none = styles_of("none");
  test_carrier car = {NULL, 0, 0};
  hotspan_context ctx;
  hotspan_carrier_reader empty = {NULL};
  assert_int_equal(hs_prop_extract(NULL, &test_reader, &car, &ctx, NULL),
                   HOTSPAN_EINVAL);
  assert_int_equal(hs_prop_extract(&st, NULL, &car, &ctx, NULL),
                   HOTSPAN_EINVAL);
  assert_int_equal(hs_prop_extract(&st, &empty, &car, &ctx, NULL),
                   HOTSPAN_EINVAL);
  assert_int_equal(hs_prop_extract(&st, &test_reader, &car, NULL, NULL),
                   HOTSPAN_EINVAL);
  assert_int_equal(hs_prop_extract(&none, &test_reader, &car, &ctx, NULL),
                   HOTSPAN_ENOCTX);
}

/* ------------------------------------------------------------------ */
/* Inject                                                              */
/* ------------------------------------------------------------------ */

static hotspan_context sample_ctx(void) {
  hotspan_context c;
  memset(&c, 0, sizeof c);
  c.trace_id_high = HI;
  c.trace_id_low = LO;
  c.span_id = SPAN;
  c.sampling_priority = 2;
  c.trace_flags = 1;
  strcpy(c.origin, "rum");
  strcpy(c.propagated_tags, "_dd.p.dm=-4,_dd.p.usr.id=baz64==");
  strcpy(c.tracestate_other, "foo=1,bar=2");
  return c;
}

static void expect_headers(const rec *r, const char *const *want) {
  int n = 0;
  for (; want[2 * n] != NULL; n++) {
    if (n >= r->n)
      fail_msg("header %s missing", want[2 * n]);
    if (strcmp(r->name[n], want[2 * n]) != 0 ||
        strcmp(r->value[n], want[2 * n + 1]) != 0)
      fail_msg("header %d is %s: %s, expected %s: %s", n, r->name[n],
               r->value[n], want[2 * n], want[2 * n + 1]);
  }
  if (r->n != n)
    fail_msg("%d headers written, expected %d (extra: %s)", r->n, n,
             r->name[n]);
}

static void inject_as(const char *styles, const hotspan_context *c, rec *r) {
  hs_prop_styles st = styles_of(styles);
  rec_init(r);
  assert_int_equal(hs_prop_inject(&st, c, &rec_writer, r), HOTSPAN_OK);
}

static void test_inject_datadog(void **state) {
  (void)state;
  hotspan_context c = sample_ctx();
  rec r;
  inject_as("datadog", &c, &r);
  const char *const want[] = {
      "x-datadog-trace-id",
      LO_DEC,
      "x-datadog-parent-id",
      SPAN_DEC,
      "x-datadog-sampling-priority",
      "2",
      "x-datadog-origin",
      "rum",
      "x-datadog-tags",
      "_dd.p.dm=-4,_dd.p.usr.id=baz64==,_dd.p.tid=4bf92f3577b34da6",
      NULL};
  expect_headers(&r, want);

  /* Undecided priority, no origin, no tags, 64-bit id: ids only. */
  c.trace_id_high = 0;
  c.sampling_priority = UNSET;
  c.origin[0] = '\0';
  c.propagated_tags[0] = '\0';
  inject_as("datadog", &c, &r);
  const char *const ids[] = {"x-datadog-trace-id", LO_DEC,
                             "x-datadog-parent-id", SPAN_DEC, NULL};
  expect_headers(&r, ids);

  /* A stray tid or non-propagated tag in the context is not sent; an
   * origin with a line break is not sent. */
  c = sample_ctx();
  strcpy(c.propagated_tags, "_dd.p.tid=1111111111111111,x=1,_dd.p.a=b");
  strcpy(c.origin, "a\r\nb");
  c.sampling_priority = -1;
  inject_as("datadog", &c, &r);
  const char *const filtered[] = {"x-datadog-trace-id",
                                  LO_DEC,
                                  "x-datadog-parent-id",
                                  SPAN_DEC,
                                  "x-datadog-sampling-priority",
                                  "-1",
                                  "x-datadog-tags",
                                  "_dd.p.a=b,_dd.p.tid=4bf92f3577b34da6",
                                  NULL};
  expect_headers(&r, filtered);
}

static void test_decimal_ids(void **state) {
  (void)state;
  static const uint64_t ids[] = {1,
                                 9,
                                 10,
                                 11,
                                 99,
                                 100,
                                 101,
                                 999,
                                 1000,
                                 4294967296ull,
                                 12345678901234567890ull,
                                 UINT64_MAX - 1,
                                 UINT64_MAX};
  hs_prop_styles st = styles_of("datadog");
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    hotspan_context c = sample_ctx(), out;
    c.trace_id_low = ids[i];
    c.span_id = ids[sizeof ids / sizeof ids[0] - 1 - i];
    rec r;
    inject_as("datadog", &c, &r);
    char want[32];
    snprintf(want, sizeof want, "%" PRIu64, ids[i]);
    assert_string_equal(rec_get(&r, "x-datadog-trace-id"), want);
    assert_int_equal(hs_prop_extract(&st, &rec_reader, &r, &out, NULL),
                     HOTSPAN_OK);
    assert_true(out.trace_id_low == c.trace_id_low);
    assert_true(out.span_id == c.span_id);
  }
}

static void test_inject_datadog_tags_limit(void **state) {
  (void)state;
  hotspan_context c = sample_ctx();
  /* 490 + 26 ("_dd.p.tid=" + 16) > 512: the whole header is left out. */
  memset(c.propagated_tags, 0, sizeof c.propagated_tags);
  strcpy(c.propagated_tags, "_dd.p.a=");
  memset(c.propagated_tags + 8, 'x', 482);
  rec r;
  inject_as("datadog", &c, &r);
  assert_null(rec_get(&r, "x-datadog-tags"));
  assert_non_null(rec_get(&r, "x-datadog-trace-id"));
  /* Exactly 512 with the tid: sent. */
  c.propagated_tags[8 + 475] = '\0'; /* 483 + 1 + 26 = 510 */
  c.propagated_tags[8 + 474] = 'y';
  strcat(c.propagated_tags, "zz"); /* 485 + 1 + 26 = 512 */
  inject_as("datadog", &c, &r);
  const char *t = rec_get(&r, "x-datadog-tags");
  assert_non_null(t);
  assert_int_equal(strlen(t), 512);
}

static void test_inject_tracecontext(void **state) {
  (void)state;
  hotspan_context c = sample_ctx();
  rec r;
  inject_as("tracecontext", &c, &r);
  const char *const want[] = {
      "traceparent", TP01, "tracestate",
      "dd=s:2;p:00f067aa0ba902b7;o:rum;t.dm:-4;t.usr.id:baz64~~,foo=1,bar=2",
      NULL};
  expect_headers(&r, want);

  /* Rejected priority: unsampled; escaping of origin as Datadog does it. */
  c.sampling_priority = -1;
  strcpy(c.origin, "synthetics~;=web,z");
  c.propagated_tags[0] = '\0';
  c.tracestate_other[0] = '\0';
  inject_as("tracecontext", &c, &r);
  const char *const esc[] = {"traceparent", TP00, "tracestate",
                             "dd=s:-1;p:00f067aa0ba902b7;o:synthetics__~web_z",
                             NULL};
  expect_headers(&r, esc);

  /* Undecided priority: the incoming flag is passed on, s: is left out. */
  c.sampling_priority = UNSET;
  c.trace_flags = 1;
  c.origin[0] = '\0';
  strcpy(c.tracestate_other, " foo=1 ,Bad=2,dd=s:1,x=a=b,,bar=2");
  inject_as("tracecontext", &c, &r);
  const char *const pass[] = {"traceparent", TP01, "tracestate",
                              "dd=p:00f067aa0ba902b7,foo=1,bar=2", NULL};
  expect_headers(&r, pass);
}

static void test_inject_tracecontext_dd_limit(void **state) {
  (void)state;
  hotspan_context c = sample_ctx();
  /* Six tags of ~60 characters: only those that keep the dd member within
   * 256 characters are written, in order, skipping the ones that do not
   * fit. */
  memset(c.propagated_tags, 0, sizeof c.propagated_tags);
  size_t n = 0;
  for (int i = 0; i < 6; i++) {
    n += (size_t)snprintf(c.propagated_tags + n, sizeof c.propagated_tags - n,
                          "%s_dd.p.k%d=%0*d", i ? "," : "", i, i == 4 ? 5 : 55,
                          0);
  }
  rec r;
  inject_as("tracecontext", &c, &r);
  const char *ts = rec_get(&r, "tracestate");
  assert_non_null(ts);
  const char *end = strchr(ts, ',');
  size_t dd_len = end != NULL ? (size_t)(end - ts) : strlen(ts);
  assert_true(dd_len <= 256);
  assert_non_null(strstr(ts, ";t.k0:"));
  assert_non_null(strstr(ts, ";t.k2:"));
  assert_null(strstr(ts, ";t.k3:"));
  assert_non_null(strstr(ts, ";t.k4:00000")); /* small one after a skip */
  assert_null(strstr(ts, ";t.k5:"));
  /* The other vendors still follow. */
  assert_non_null(strstr(ts, ",foo=1,bar=2"));
}

static void test_inject_b3(void **state) {
  (void)state;
  hotspan_context c = sample_ctx();
  rec r;
  inject_as("b3multi", &c, &r);
  const char *const debug[] = {"x-b3-traceid", B3T128, "x-b3-spanid", B3S,
                               "x-b3-flags",   "1",    NULL};
  expect_headers(&r, debug);
  inject_as("b3", &c, &r);
  const char *const sdebug[] = {"b3", B3T128 "-" B3S "-d", NULL};
  expect_headers(&r, sdebug);

  c.trace_id_high = 0;
  c.sampling_priority = 0;
  inject_as("b3multi", &c, &r);
  const char *const deny[] = {"x-b3-traceid", B3T64, "x-b3-spanid", B3S,
                              "x-b3-sampled", "0",   NULL};
  expect_headers(&r, deny);
  inject_as("b3", &c, &r);
  const char *const sdeny[] = {"b3", B3T64 "-" B3S "-0", NULL};
  expect_headers(&r, sdeny);

  c.sampling_priority = UNSET;
  inject_as("b3multi,b3", &c, &r);
  const char *const defer[] = {"x-b3-traceid", B3T64, "x-b3-spanid", B3S, "b3",
                               B3T64 "-" B3S,  NULL};
  expect_headers(&r, defer);
}

static void test_inject_writer_failure(void **state) {
  (void)state;
  hotspan_context c = sample_ctx();
  hs_prop_styles st = styles_of("datadog,tracecontext,b3multi,b3");
  rec r;
  rec_init(&r);
  assert_int_equal(hs_prop_inject(&st, &c, &rec_writer, &r), HOTSPAN_OK);
  int total = r.n;
  assert_int_equal(total, 5 + 2 + 3 + 1);
  /* A failure at any header stops the injection there. */
  for (int k = 0; k < total; k++) {
    rec_init(&r);
    r.fail_at = k;
    assert_int_equal(hs_prop_inject(&st, &c, &rec_writer, &r), HOTSPAN_EIO);
    assert_int_equal(r.calls, k + 1);
    assert_int_equal(r.n, k);
  }
}

static void test_inject_args(void **state) {
  (void)state;
  hotspan_context c = sample_ctx();
  hs_prop_styles st = styles_of("datadog");
  rec r;
  rec_init(&r);
  hotspan_carrier_writer none = {NULL};
  assert_int_equal(hs_prop_inject(NULL, &c, &rec_writer, &r), HOTSPAN_EINVAL);
  assert_int_equal(hs_prop_inject(&st, NULL, &rec_writer, &r), HOTSPAN_EINVAL);
  assert_int_equal(hs_prop_inject(&st, &c, NULL, &r), HOTSPAN_EINVAL);
  assert_int_equal(hs_prop_inject(&st, &c, &none, &r), HOTSPAN_EINVAL);
  c.trace_id_low = 0;
  assert_int_equal(hs_prop_inject(&st, &c, &rec_writer, &r), HOTSPAN_EINVAL);
  c = sample_ctx();
  c.span_id = 0;
  assert_int_equal(hs_prop_inject(&st, &c, &rec_writer, &r), HOTSPAN_EINVAL);
  assert_int_equal(r.calls, 0);
  /* No styles: nothing written, success. */
  hs_prop_styles empty = styles_of("none");
  c = sample_ctx();
  assert_int_equal(hs_prop_inject(&empty, &c, &rec_writer, &r), HOTSPAN_OK);
  assert_int_equal(r.calls, 0);
}

/* ------------------------------------------------------------------ */
/* Round trips                                                         */
/* ------------------------------------------------------------------ */

static void round_trip(const char *inject_styles, const char *extract_styles,
                       const hotspan_context *in, hotspan_context *out) {
  rec r;
  inject_as(inject_styles, in, &r);
  hs_prop_styles st = styles_of(extract_styles);
  uint64_t bad = 0;
  assert_int_equal(hs_prop_extract(&st, &rec_reader, &r, out, &bad),
                   HOTSPAN_OK);
  assert_int_equal(bad, 0);
  assert_true(out->trace_id_high == in->trace_id_high);
  assert_true(out->trace_id_low == in->trace_id_low);
  assert_true(out->span_id == in->span_id);
}

static void test_round_trips(void **state) {
  (void)state;
  static const int prios[] = {-1, 0, 1, 2};
  for (size_t i = 0; i < 4; i++) {
    hotspan_context in = sample_ctx(), out;
    in.sampling_priority = prios[i];
    in.trace_flags = prios[i] > 0;

    round_trip("datadog", "datadog", &in, &out);
    assert_int_equal(out.sampling_priority, prios[i]);
    assert_string_equal(out.origin, in.origin);
    assert_string_equal(out.propagated_tags, in.propagated_tags);

    round_trip("tracecontext", "tracecontext", &in, &out);
    assert_int_equal(out.sampling_priority, prios[i]);
    assert_int_equal(out.trace_flags, prios[i] > 0);
    assert_string_equal(out.origin, in.origin);
    assert_string_equal(out.propagated_tags, in.propagated_tags);
    assert_string_equal(out.tracestate_other, in.tracestate_other);
    assert_string_equal(out.last_dd_parent_id, "00f067aa0ba902b7");

    /* B3 carries no origin or tags, and -1 becomes a plain deny. */
    int b3prio = prios[i] < 0 ? 0 : prios[i];
    round_trip("b3multi", "b3multi", &in, &out);
    assert_int_equal(out.sampling_priority, b3prio);
    round_trip("b3", "b3", &in, &out);
    assert_int_equal(out.sampling_priority, b3prio);

    /* Everything injected, Datadog's default order extracted: datadog
     * wins and the tracestate of the same trace is merged. */
    round_trip("datadog,tracecontext,b3multi,b3", "datadog,tracecontext", &in,
               &out);
    assert_int_equal(out.sampling_priority, prios[i]);
    assert_string_equal(out.propagated_tags, in.propagated_tags);
    assert_string_equal(out.tracestate_other, "foo=1,bar=2");
    assert_string_equal(out.last_dd_parent_id, "00f067aa0ba902b7");
  }

  /* 64-bit ids survive every style too. */
  hotspan_context in = sample_ctx(), out;
  in.trace_id_high = 0;
  round_trip("datadog", "datadog", &in, &out);
  round_trip("tracecontext", "tracecontext", &in, &out);
  round_trip("b3multi", "b3multi", &in, &out);
  round_trip("b3", "b3", &in, &out);
}

/* ------------------------------------------------------------------ */
/* Style lists                                                         */
/* ------------------------------------------------------------------ */

typedef struct scase {
  const char *in;
  int rc;
  int n;
  uint8_t st[HS_PROP_MAX_STYLES];
} scase;

enum {
  DD = HS_STYLE_DATADOG,
  TC = HS_STYLE_TRACECONTEXT,
  BM = HS_STYLE_B3MULTI,
  BS = HS_STYLE_B3SINGLE
};

static const scase style_cases[] = {
    {"datadog,tracecontext", 0, 2, {DD, TC}},
    {"Datadog, TraceContext", 0, 2, {DD, TC}},
    {"datadog tracecontext", 0, 2, {DD, TC}},
    {"TRACECONTEXT,DATADOG", 0, 2, {TC, DD}},
    {"b3multi,b3", 0, 2, {BM, BS}},
    {"b3 single header", 0, 1, {BS}},
    {"B3 Single Header,datadog", 0, 2, {BS, DD}},
    {"b3,b3 single header", 0, 1, {BS}},
    {"tracecontext,b3multi,b3,datadog", 0, 4, {TC, BM, BS, DD}},
    {"datadog,datadog,tracecontext,datadog", 0, 2, {DD, TC}},
    {",, datadog ,,", 0, 1, {DD}},
    {"none", 0, 0, {0}},
    {"NONE", 0, 0, {0}},
    {"none,datadog", 0, 1, {DD}},
    {"", 0, 0, {0}},
    {"datadog,jaeger,tracecontext", -1, 2, {DD, TC}},
    {"baggage", -1, 0, {0}},
    {"b3 single", -1, 1, {BS}},
    {"b3single", -1, 0, {0}},
    {"datadogx", -1, 0, {0}},
};

static void test_parse_styles(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof style_cases / sizeof style_cases[0]; i++) {
    const scase *c = &style_cases[i];
    hs_prop_styles s;
    memset(&s, 0xee, sizeof s);
    int rc = hs_prop_parse_styles(c->in, &s);
    if (rc != c->rc || s.n != c->n)
      fail_msg("\"%s\": rc %d n %d, expected rc %d n %d", c->in, rc, s.n, c->rc,
               c->n);
    for (int k = 0; k < c->n; k++)
      if (s.style[k] != c->st[k])
        fail_msg("\"%s\": style[%d] = %d, expected %d", c->in, k, s.style[k],
                 c->st[k]);
  }
  hs_prop_styles s;
  assert_int_equal(hs_prop_parse_styles(NULL, &s), 0);
  assert_int_equal(s.n, 0);
  assert_int_equal(hs_prop_parse_styles("datadog", NULL), -1);
}

static void test_format_styles(void **state) {
  (void)state;
  char buf[64];
  hs_prop_styles s = styles_of("datadog,tracecontext");
  hs_prop_format_styles(&s, buf, sizeof buf);
  assert_string_equal(buf, "datadog,tracecontext");
  s = styles_of("b3 single header,b3multi");
  hs_prop_format_styles(&s, buf, sizeof buf);
  assert_string_equal(buf, "b3,b3multi");
  /* What format writes, parse reads back. */
  hs_prop_styles back = styles_of(buf);
  assert_int_equal(back.n, 2);
  assert_int_equal(back.style[0], BS);
  assert_int_equal(back.style[1], BM);
  s = styles_of("none");
  hs_prop_format_styles(&s, buf, sizeof buf);
  assert_string_equal(buf, "none");
  /* Small buffers: a NUL-terminated prefix, never an overflow. */
  s = styles_of("datadog,tracecontext");
  char small[10];
  memset(small, 'X', sizeof small);
  hs_prop_format_styles(&s, small, 8);
  assert_string_equal(small, "datadog");
  assert_int_equal(small[8], 'X');
  hs_prop_format_styles(&s, small, 10);
  assert_string_equal(small, "datadog,t");
  hs_prop_format_styles(&s, small, 1);
  assert_string_equal(small, "");
  hs_prop_format_styles(&s, small, 0); /* no write */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_styles),
      cmocka_unit_test(test_format_styles),
      cmocka_unit_test(test_extract_tracecontext),
      cmocka_unit_test(test_extract_datadog),
      cmocka_unit_test(test_extract_b3multi),
      cmocka_unit_test(test_extract_b3single),
      cmocka_unit_test(test_extract_precedence),
      cmocka_unit_test(test_extract_tracecontext_first),
      cmocka_unit_test(test_extract_b3_first),
      cmocka_unit_test(test_tracestate_32_members),
      cmocka_unit_test(test_tracestate_truncation),
      cmocka_unit_test(test_reader_failure),
      cmocka_unit_test(test_lengths_honoured),
      cmocka_unit_test(test_extract_args),
      cmocka_unit_test(test_inject_datadog),
      cmocka_unit_test(test_decimal_ids),
      cmocka_unit_test(test_inject_datadog_tags_limit),
      cmocka_unit_test(test_inject_tracecontext),
      cmocka_unit_test(test_inject_tracecontext_dd_limit),
      cmocka_unit_test(test_inject_b3),
      cmocka_unit_test(test_inject_writer_failure),
      cmocka_unit_test(test_inject_args),
      cmocka_unit_test(test_round_trips),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
