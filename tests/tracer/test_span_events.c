/* Span events and links: what the API accepts and refuses, the limits, and
 * what a sink receives (order, copies, attributes, dropped counts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "exporter/file_sink.h"
#include "hotspan/hotspan.h"
#include "tracer/internal.h"

/* A sink keeping the JSON of each span (events and links included). */
typedef struct json_sink {
  hs_trace_sink base;
  char *lines[16];
  int n;
  uint16_t nevents[16], nlinks[16], dropped_events[16], dropped_links[16];
} json_sink;

static void js_write(hs_trace_sink *self, const hs_chunk *c) {
  json_sink *js = (json_sink *)self;
  for (const hotspan_span *s = c->spans; s != NULL && js->n < 16; s = s->next) {
    hs_buf b;
    hs_buf_init(&b, 0);
    hs_span_to_json(s, &c->trace->tracer->settings, &b);
    js->lines[js->n] = strdup(hs_buf_cstr(&b));
    js->nevents[js->n] = s->nevents;
    js->nlinks[js->n] = s->nlinks;
    js->dropped_events[js->n] = s->dropped_events;
    js->dropped_links[js->n] = s->dropped_links;
    js->n++;
    hs_buf_free(&b);
  }
}

static void js_destroy(hs_trace_sink *self) {
  json_sink *js = (json_sink *)self;
  for (int i = 0; i < js->n; i++)
    free(js->lines[i]);
  free(js);
}

static hotspan_tracer *new_tracer(json_sink **out) {
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.ignore_environment = 1;
  cfg.log_level = 1;
  cfg.exporters = "none";
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_OK);
  json_sink *js = calloc(1, sizeof *js);
  js->base.name = "json";
  js->base.write = js_write;
  js->base.destroy = js_destroy;
  assert_int_equal(hs_tracer_add_sink(t, &js->base), HOTSPAN_OK);
  *out = js;
  return t;
}

static hotspan_attribute str_attr(const char *k, const char *v) {
  hotspan_attribute a = {.key = k, .type = HOTSPAN_ATTR_STRING};
  a.value.s = v;
  return a;
}

static void test_events_seen_by_sink(void **state) {
  (void)state;
  json_sink *js;
  hotspan_tracer *t = new_tracer(&js);
  hotspan_span *s = hotspan_span_start(t, "work", NULL);
  char val[16] = "first";
  hotspan_attribute a[2];
  a[0] = str_attr("k", val);
  a[1] = (hotspan_attribute){.key = "b", .type = HOTSPAN_ATTR_BOOL};
  a[1].value.b = 5;
  assert_int_equal(hotspan_span_add_event(s, "one", 1000, a, 2), HOTSPAN_OK);
  strcpy(val, "changed");
  assert_int_equal(hotspan_span_add_event(s, "two", 0, NULL, 0), HOTSPAN_OK);
  hotspan_span_finish(s);
  assert_int_equal(hotspan_tracer_flush(t, 5000), HOTSPAN_OK);
  assert_int_equal(js->n, 1);
  assert_int_equal(js->nevents[0], 2);
  const char *line = js->lines[0];
  assert_non_null(strstr(line, "\"events\":[{\"name\":\"one\","
                               "\"time_unix_nano\":1000,\"attributes\":"
                               "{\"k\":\"first\",\"b\":true}},"
                               "{\"name\":\"two\""));
  /* time 0 means now: after the span's start. */
  const char *two = strstr(line, "\"name\":\"two\",\"time_unix_nano\":");
  assert_non_null(two);
  unsigned long long ts = strtoull(two + strlen("\"name\":\"two\","
                                                "\"time_unix_nano\":"),
                                   NULL, 10);
  assert_true(ts > 1000000000ull * 1000000000ull);
  assert_null(strstr(line, "\"links\""));
  hotspan_tracer_free(t);
}

static void test_event_bad_input(void **state) {
  (void)state;
  json_sink *js;
  hotspan_tracer *t = new_tracer(&js);
  hotspan_span *s = hotspan_span_start(t, "work", NULL);
  hotspan_attribute ok = str_attr("k", "v");
  assert_int_equal(hotspan_span_add_event(NULL, "e", 0, NULL, 0),
                   HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_add_event(s, NULL, 0, NULL, 0), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_add_event(s, "", 0, NULL, 0), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_add_event(s, "e", 0, NULL, 1), HOTSPAN_EINVAL);
  hotspan_attribute bad[2] = {ok, str_attr("", "v")};
  assert_int_equal(hotspan_span_add_event(s, "e", 0, bad, 2), HOTSPAN_EINVAL);
  bad[1] = str_attr("k", NULL);
  assert_int_equal(hotspan_span_add_event(s, "e", 0, bad, 2), HOTSPAN_EINVAL);
  bad[1] = (hotspan_attribute){.key = "k", .type = (hotspan_attr_type)99};
  assert_int_equal(hotspan_span_add_event(s, "e", 0, bad, 2), HOTSPAN_EINVAL);
  char *huge = malloc(30000);
  memset(huge, 'a', 29999);
  huge[29999] = '\0';
  bad[1] = str_attr("k", huge);
  assert_int_equal(hotspan_span_add_event(s, "e", 0, bad, 2), HOTSPAN_ETOOBIG);
  assert_int_equal(hotspan_span_add_event(s, huge, 0, NULL, 0),
                   HOTSPAN_ETOOBIG);
  huge[250] = '\0';
  bad[1] = str_attr(huge, "v");
  assert_int_equal(hotspan_span_add_event(s, "e", 0, bad, 2), HOTSPAN_ETOOBIG);
  free(huge);
  hotspan_attribute many[HS_SPAN_MAX_ATTRS + 1];
  for (int i = 0; i <= HS_SPAN_MAX_ATTRS; i++)
    many[i] = ok;
  assert_int_equal(
      hotspan_span_add_event(s, "e", 0, many, HS_SPAN_MAX_ATTRS + 1),
      HOTSPAN_EFULL);
  assert_int_equal(hotspan_span_add_event(s, "e", 0, many, HS_SPAN_MAX_ATTRS),
                   HOTSPAN_OK);
  hotspan_span_finish(s);
  /* A finished span takes no events. */
  hotspan_span *s2 = hotspan_span_start(t, "later", NULL);
  assert_int_equal(hotspan_tracer_flush(t, 5000), HOTSPAN_OK);
  assert_int_equal(js->n, 1);
  assert_int_equal(js->nevents[0], 1); /* only the good one was added */
  hotspan_span_finish(s2);
  hotspan_tracer_free(t);
}

static void test_event_limit_counts_dropped(void **state) {
  (void)state;
  json_sink *js;
  hotspan_tracer *t = new_tracer(&js);
  hotspan_span *s = hotspan_span_start(t, "work", NULL);
  for (int i = 0; i < HS_SPAN_MAX_EVENTS; i++)
    assert_int_equal(hotspan_span_add_event(s, "e", 0, NULL, 0), HOTSPAN_OK);
  for (int i = 0; i < 5; i++)
    assert_int_equal(hotspan_span_add_event(s, "e", 0, NULL, 0), HOTSPAN_EFULL);
  hotspan_context ctx;
  hotspan_span *other = hotspan_span_start(t, "other", NULL);
  assert_int_equal(hotspan_span_context(other, &ctx), HOTSPAN_OK);
  for (int i = 0; i < HS_SPAN_MAX_LINKS; i++)
    assert_int_equal(hotspan_span_add_link(s, &ctx, NULL, 0), HOTSPAN_OK);
  assert_int_equal(hotspan_span_add_link(s, &ctx, NULL, 0), HOTSPAN_EFULL);
  hotspan_span_finish(other);
  hotspan_span_finish(s);
  assert_int_equal(hotspan_tracer_flush(t, 5000), HOTSPAN_OK);
  int found = 0;
  for (int i = 0; i < js->n; i++) {
    if (js->nevents[i] == HS_SPAN_MAX_EVENTS) {
      found = 1;
      assert_int_equal(js->dropped_events[i], 5);
      assert_int_equal(js->nlinks[i], HS_SPAN_MAX_LINKS);
      assert_int_equal(js->dropped_links[i], 1);
    }
  }
  assert_true(found);
  hotspan_tracer_free(t);
}

static void test_links(void **state) {
  (void)state;
  json_sink *js;
  hotspan_tracer *t = new_tracer(&js);
  hotspan_context ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.trace_id_high = 0x0123456789abcdefull;
  ctx.trace_id_low = 0xfedcba9876543210ull;
  ctx.span_id = 0x1122334455667788ull;
  ctx.trace_flags = 1;
  snprintf(ctx.tracestate_other, sizeof ctx.tracestate_other, "rojo=00f0");
  hotspan_span *s = hotspan_span_start(t, "job", NULL);
  hotspan_attribute a = {.key = "n", .type = HOTSPAN_ATTR_INT};
  a.value.i = 3;
  assert_int_equal(hotspan_span_add_link(s, &ctx, &a, 1), HOTSPAN_OK);
  /* Invalid contexts are refused. */
  hotspan_context bad = ctx;
  bad.span_id = 0;
  assert_int_equal(hotspan_span_add_link(s, &bad, NULL, 0), HOTSPAN_EINVAL);
  bad = ctx;
  bad.trace_id_low = 0;
  assert_int_equal(hotspan_span_add_link(s, &bad, NULL, 0), HOTSPAN_EINVAL);
  bad = ctx;
  memset(bad.tracestate_other, 'x', sizeof bad.tracestate_other);
  assert_int_equal(hotspan_span_add_link(s, &bad, NULL, 0), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_add_link(s, NULL, NULL, 0), HOTSPAN_EINVAL);
  hotspan_span_finish(s);
  assert_int_equal(hotspan_tracer_flush(t, 5000), HOTSPAN_OK);
  assert_int_equal(js->n, 1);
  assert_int_equal(js->nlinks[0], 1);
  assert_non_null(strstr(js->lines[0],
                         "\"links\":[{\"trace_id\":"
                         "\"0123456789abcdeffedcba9876543210\","
                         "\"span_id\":\"1122334455667788\","
                         "\"tracestate\":\"rojo=00f0\",\"flags\":1,"
                         "\"attributes\":{\"n\":3}}]"));
  /* Datadog's form: string attributes, bit 31 marks given flags. */
  hs_buf b;
  hs_buf_init(&b, 0);
  hotspan_span fake;
  memset(&fake, 0, sizeof fake);
  hs_tag tag = {.key = "n", .klen = 1, .type = HS_TAG_INT};
  tag.v.i = 3;
  hs_span_link l = {.trace_id_high = 1,
                    .trace_id_low = 2,
                    .span_id = 3,
                    .trace_flags = 1,
                    .attrs = &tag,
                    .nattrs = 1};
  fake.links = &l;
  hs_span_links_json(&fake, &b, 1);
  assert_string_equal(hs_buf_cstr(&b),
                      "[{\"trace_id\":\"00000000000000010000000000000002\","
                      "\"span_id\":\"0000000000000003\",\"flags\":2147483649,"
                      "\"attributes\":{\"n\":\"3\"}}]");
  hs_buf_free(&b);
  hotspan_tracer_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_events_seen_by_sink),
      cmocka_unit_test(test_event_bad_input),
      cmocka_unit_test(test_event_limit_counts_dropped),
      cmocka_unit_test(test_links),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
