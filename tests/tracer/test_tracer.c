/* Tracer core: spans, ids, parents, active context, tags, endpoint,
 * trace assembly, partial flush, unfinished spans, stats, configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "context/endpoints.h"
#include "hotspan/hotspan.h"
#include "support/capture_sink.h"

static void flush(hotspan_tracer *t) {
  assert_int_equal(hotspan_tracer_flush(t, 5000), HOTSPAN_OK);
}

static void test_root_and_child(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  assert_non_null(t);
  uint64_t before = hs_now_unix_ns();
  hotspan_span *root = hotspan_span_start(t, "http.request", NULL);
  assert_non_null(root);
  assert_int_equal(hotspan_span_activate(root), HOTSPAN_OK);
  hotspan_span *child = hotspan_span_start(t, "db.query", NULL);
  assert_non_null(child);
  assert_int_equal(hotspan_span_trace_id_low(child),
                   hotspan_span_trace_id_low(root));
  assert_int_equal(hotspan_span_local_root_id(child), hotspan_span_id(root));
  /* Span ids: nonzero, top bit clear, distinct. */
  assert_true(hotspan_span_id(root) != 0);
  assert_true((hotspan_span_id(root) >> 63) == 0);
  assert_true((hotspan_span_id(child) >> 63) == 0);
  assert_true(hotspan_span_id(root) != hotspan_span_id(child));
  /* 128-bit trace id: high 64 bits are Unix seconds << 32. */
  uint64_t hi = hotspan_span_trace_id_high(root);
  assert_int_equal(hi & 0xffffffffu, 0);
  assert_true((hi >> 32) >= before / 1000000000u);
  assert_true((hi >> 32) <= hs_now_unix_ns() / 1000000000u);

  hotspan_span_finish(child);
  flush(t);
  assert_int_equal(cs->n, 0); /* nothing before the local root finishes */
  assert_int_equal(hotspan_span_deactivate(root), HOTSPAN_OK);
  hotspan_span_finish(root);
  flush(t);
  assert_int_equal(cs->n, 2);
  assert_int_equal(cs->chunks, 1);
  const cap_span *r = cap_find(cs, "http.request");
  const cap_span *c = cap_find(cs, "db.query");
  assert_non_null(r);
  assert_non_null(c);
  assert_int_equal(c->parent_id, r->span_id);
  assert_int_equal(r->parent_id, 0);
  assert_true(r->is_root);
  /* Start times come from the monotonic clock plus a cached offset to
   * Unix time: allow a millisecond of skew against a direct read. */
  assert_true(r->start + 1000000 >= before);
  assert_true(c->start >= r->start);
  assert_int_equal(r->priority, HOTSPAN_PRIORITY_AUTO_KEEP);
  assert_non_null(strstr(r->propagated, "_dd.p.dm=-0"));

  hotspan_tracer_stats st = {.struct_size = sizeof st};
  assert_int_equal(hotspan_tracer_get_stats(t, &st), HOTSPAN_OK);
  assert_int_equal(st.spans_created, 2);
  assert_int_equal(st.spans_finished, 2);
  assert_int_equal(st.traces_kept, 1);
  assert_int_equal(st.traces_dropped, 0);
  hotspan_tracer_free(t);
}

static void test_parent_options(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *a = hotspan_span_start(t, "a", NULL);
  hotspan_span_activate(a);
  /* root = 1 ignores the active span. */
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.root = 1;
  hotspan_span *other = hotspan_span_start(t, "other", &o);
  assert_true(hotspan_span_trace_id_low(other) != hotspan_span_trace_id_low(a));
  assert_int_equal(hotspan_span_local_root_id(other), hotspan_span_id(other));
  hotspan_span_deactivate(a);
  /* Explicit parent without anything active (async code). */
  hotspan_span_options_init(&o);
  o.parent = a;
  o.kind = HOTSPAN_KIND_CLIENT;
  o.resource = "SELECT 1";
  o.service = "postgres";
  o.type = "sql";
  o.start_ns = 1700000000000000000ull;
  hotspan_span *b = hotspan_span_start(t, "b", &o);
  assert_int_equal(hotspan_span_trace_id_low(b), hotspan_span_trace_id_low(a));
  hotspan_span_finish_at(b, 1700000000000001234ull);
  hotspan_span_finish(other);
  hotspan_span_finish(a);
  flush(t);
  const cap_span *cb = cap_find(cs, "b");
  assert_non_null(cb);
  assert_int_equal(cb->parent_id, cap_find(cs, "a")->span_id);
  assert_int_equal(cb->start, 1700000000000000000ull);
  assert_int_equal(cb->duration, 1234);
  assert_string_equal(cb->resource, "SELECT 1");
  assert_string_equal(cb->service, "postgres");
  assert_string_equal(cb->type, "sql");
  assert_int_equal(cb->kind, HOTSPAN_KIND_CLIENT);
  assert_int_equal(cs->chunks, 2);
  hotspan_tracer_free(t);
}

static void test_remote_parent(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_context ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.trace_id_high = 0x6553f10000000000ull;
  ctx.trace_id_low = 0x1122334455667788ull;
  ctx.span_id = 4242;
  ctx.sampling_priority = HOTSPAN_PRIORITY_USER_KEEP;
  strcpy(ctx.origin, "synthetics");
  strcpy(ctx.propagated_tags, "_dd.p.dm=-4,_dd.p.usr.id=7");
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.remote_parent = &ctx;
  o.kind = HOTSPAN_KIND_SERVER;
  hotspan_span *s = hotspan_span_start(t, "server", &o);
  hotspan_context out;
  assert_int_equal(hotspan_span_context(s, &out), HOTSPAN_OK);
  assert_int_equal(out.trace_id_high, ctx.trace_id_high);
  assert_int_equal(out.trace_id_low, ctx.trace_id_low);
  assert_int_equal(out.span_id, hotspan_span_id(s));
  assert_int_equal(out.remote, HOTSPAN_CONTEXT_LOCAL);
  assert_int_equal(out.sampling_priority, HOTSPAN_PRIORITY_USER_KEEP);
  assert_string_equal(out.origin, "synthetics");
  assert_string_equal(out.propagated_tags, "_dd.p.dm=-4,_dd.p.usr.id=7");
  hotspan_span_finish(s);
  flush(t);
  assert_int_equal(cs->n, 1);
  assert_int_equal(cs->spans[0].parent_id, 4242);
  assert_int_equal(cs->spans[0].priority, HOTSPAN_PRIORITY_USER_KEEP);
  /* Upstream's decision maker is kept, not replaced. */
  assert_string_equal(cs->spans[0].propagated, "_dd.p.dm=-4,_dd.p.usr.id=7");

  /* A remote context that was dropped upstream stays dropped. */
  ctx.sampling_priority = HOTSPAN_PRIORITY_AUTO_REJECT;
  s = hotspan_span_start(t, "dropped", &o);
  hotspan_span_finish(s);
  flush(t);
  assert_null(cap_find(cs, "dropped"));
  /* An all-zero remote context starts a new trace instead. */
  memset(&ctx, 0, sizeof ctx);
  s = hotspan_span_start(t, "fresh", &o);
  assert_true(hotspan_span_trace_id_low(s) != 0);
  hotspan_span_finish(s);
  flush(t);
  assert_int_equal(cap_find(cs, "fresh")->parent_id, 0);
  hotspan_tracer_free(t);
}

static void test_activation_rules(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  assert_null(hotspan_active_span());
  hotspan_span *a = hotspan_span_start(t, "a", NULL);
  hotspan_span *b = hotspan_span_start(t, "b", NULL);
  assert_int_equal(hotspan_span_activate(a), HOTSPAN_OK);
  assert_int_equal(hotspan_span_activate(a), HOTSPAN_ESTATE); /* already */
  assert_int_equal(hotspan_span_activate(b), HOTSPAN_OK);
  assert_ptr_equal(hotspan_active_span(), b);
  /* Out of order: a is not the active span. */
  assert_int_equal(hotspan_span_deactivate(a), HOTSPAN_ESTATE);
  assert_ptr_equal(hotspan_active_span(), b);
  assert_int_equal(hotspan_span_deactivate(b), HOTSPAN_OK);
  assert_ptr_equal(hotspan_active_span(), a);
  /* Finishing the active span restores the one before it. */
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.activate = 1;
  hotspan_span *c = hotspan_span_start(t, "c", &o);
  assert_ptr_equal(hotspan_active_span(), c);
  hotspan_span_finish(c);
  assert_ptr_equal(hotspan_active_span(), a);
  /* enter/leave: switch and restore; finishing an entered span leaves
   * nothing active until leave restores the caller's span. */
  hotspan_span *prev = hotspan_enter(b);
  assert_ptr_equal(prev, a);
  assert_ptr_equal(hotspan_active_span(), b);
  hotspan_span_finish(b);
  assert_null(hotspan_active_span());
  hotspan_leave(prev);
  assert_ptr_equal(hotspan_active_span(), a);
  assert_int_equal(hotspan_span_deactivate(a), HOTSPAN_OK);
  assert_null(hotspan_active_span());
  hotspan_span_finish(a);
  hotspan_tracer_free(t);
}

static void test_tags_and_errors(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *s = hotspan_span_start(t, "tagged", NULL);
  assert_int_equal(hotspan_span_set_tag_str(s, "http.method", "GET"), 0);
  assert_int_equal(hotspan_span_set_tag_str(s, "http.method", "POST"), 0);
  assert_int_equal(hotspan_span_set_tag_int(s, "http.status_code", 503), 0);
  assert_int_equal(hotspan_span_set_tag_double(s, "ratio", 0.25), 0);
  assert_int_equal(hotspan_span_set_tag_bool(s, "cache.hit", 7), 0);
  /* Limits: a huge value or key is refused, nothing else changes. */
  char *big = malloc(HS_TAG_VALUE_MAX + 2);
  memset(big, 'x', HS_TAG_VALUE_MAX + 1);
  big[HS_TAG_VALUE_MAX + 1] = '\0';
  assert_int_equal(hotspan_span_set_tag_str(s, "big", big), HOTSPAN_ETOOBIG);
  assert_int_equal(hotspan_span_set_tag_str(s, big, "v"), HOTSPAN_ETOOBIG);
  big[HS_TAG_VALUE_MAX] = '\0'; /* exactly the limit is fine */
  assert_int_equal(hotspan_span_set_tag_str(s, "max", big), HOTSPAN_OK);
  free(big);
  assert_int_equal(hotspan_span_set_tag_str(s, "", "v"), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_set_tag_str(s, "k", NULL), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_set_error(s, "TimeoutError", "upstream slow",
                                          "at main.c:12"),
                   HOTSPAN_OK);
  assert_int_equal(hotspan_span_set_kind(s, (hotspan_span_kind)9),
                   HOTSPAN_EINVAL);
  /* Many tags: past the inline slots. */
  for (int i = 0; i < 100; i++) {
    char k[32];
    snprintf(k, sizeof k, "k%d", i);
    assert_int_equal(hotspan_span_set_tag_int(s, k, i), HOTSPAN_OK);
  }
  hotspan_span_finish(s);
  /* After finish the span is no longer modifiable. */
  flush(t);
  const cap_span *c = cap_find(cs, "tagged");
  assert_non_null(c);
  assert_string_equal(cap_tag(c, "http.method"), "POST");
  assert_string_equal(cap_tag(c, "http.status_code"), "i:503");
  assert_string_equal(cap_tag(c, "ratio"), "d:0.25");
  assert_string_equal(cap_tag(c, "cache.hit"), "b:1");
  assert_null(cap_tag(c, "big"));
  assert_int_equal(c->error, 1);
  /* Error details are among the first 16 tags captured. */
  assert_string_equal(cap_tag(c, "error.type"), "TimeoutError");
  assert_string_equal(cap_tag(c, "error.message"), "upstream slow");
  assert_string_equal(cap_tag(c, "error.stack"), "at main.c:12");
  hotspan_tracer_free(t);
}

static void test_null_safety(void **state) {
  (void)state;
  hotspan_span_finish(NULL);
  hotspan_span_finish_at(NULL, 5);
  assert_int_equal(hotspan_span_set_tag_str(NULL, "a", "b"), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_set_tag_int(NULL, "a", 1), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_set_resource(NULL, "r"), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_set_endpoint(NULL, "r"), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_set_error(NULL, "a", "b", "c"), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_activate(NULL), HOTSPAN_EINVAL);
  assert_int_equal(hotspan_span_context(NULL, NULL), HOTSPAN_EINVAL);
  assert_null(hotspan_span_start(NULL, "x", NULL));
  assert_int_equal(hotspan_span_id(NULL), 0);
  assert_int_equal(hotspan_tracer_new(NULL, NULL), HOTSPAN_EINVAL);
  hotspan_tracer_free(NULL);
  assert_string_equal(hotspan_strerror(HOTSPAN_ETOOBIG), "value too large");
  assert_string_equal(hotspan_err_name(HOTSPAN_ENOCTX), "HOTSPAN_ENOCTX");
  assert_string_equal(hotspan_strerror(-999), "unknown error");
  hotspan_config bad;
  memset(&bad, 0, sizeof bad); /* not initialised with hotspan_config_init */
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&bad, &t), HOTSPAN_EINVAL);
  assert_null(t);
  /* A finished span's double finish is ignored. */
  capture_sink *cs = NULL;
  t = capture_tracer(&cs, NULL);
  hotspan_span *s = hotspan_span_start(t, "once", NULL);
  hotspan_span_finish(s);
  flush(t);
  assert_int_equal(cs->n, 1);
  hotspan_tracer_free(t);
}

static void test_endpoint(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.activate = 1;
  hotspan_span *root = hotspan_span_start(t, "http.request", &o);
  hs_thread_ctx *rec = hs_thread_ctx_peek();
  assert_non_null(rec);
  hs_ctx_value v;
  assert_int_equal(hs_thread_ctx_read(rec, &v), 1);
  assert_int_equal(v.endpoint_id, 0);
  assert_int_equal(v.span_id, hotspan_span_id(root));
  assert_int_equal(hotspan_span_set_resource(root, "GET /checkout"), 0);
  assert_int_equal(hs_thread_ctx_read(rec, &v), 1);
  assert_string_equal(hs_endpoint_name(v.endpoint_id), "GET /checkout");
  /* A child sees the endpoint and can change it (router decides late). */
  hotspan_span *child = hotspan_span_start(t, "handler", &o);
  assert_int_equal(hs_thread_ctx_read(rec, &v), 1);
  assert_int_equal(v.span_id, hotspan_span_id(child));
  assert_int_equal(v.local_root_span_id, hotspan_span_id(root));
  assert_string_equal(hs_endpoint_name(v.endpoint_id), "GET /checkout");
  assert_int_equal(hotspan_span_set_endpoint(child, "POST /checkout"), 0);
  assert_int_equal(hs_thread_ctx_read(rec, &v), 1);
  assert_string_equal(hs_endpoint_name(v.endpoint_id), "POST /checkout");
  /* OTEP layout: big-endian ids in the published part. */
  uint64_t sid = 0;
  for (int i = 0; i < 8; i++)
    sid = (sid << 8) | rec->otel.span_id[i];
  assert_int_equal(sid, hotspan_span_id(child));
  assert_int_equal(rec->otel.valid, 1);
  hotspan_span_finish(child);
  hotspan_span_finish(root);
  assert_int_equal(hs_thread_ctx_read(rec, &v), 0); /* nothing active */
  flush(t);
  assert_string_equal(cap_find(cs, "http.request")->resource, "POST /checkout");
  hotspan_tracer_free(t);
}

static void test_manual_drop(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *root = hotspan_span_start(t, "health", NULL);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.parent = root;
  hotspan_span *c = hotspan_span_start(t, "child", &o);
  assert_int_equal(hotspan_span_set_sampling_priority(c, 5), HOTSPAN_EINVAL);
  assert_int_equal(
      hotspan_span_set_sampling_priority(c, HOTSPAN_PRIORITY_USER_REJECT), 0);
  hotspan_span_finish(c);
  hotspan_span_finish(root);
  flush(t);
  assert_int_equal(cs->n, 0);
  hotspan_tracer_stats st = {.struct_size = sizeof st};
  hotspan_tracer_get_stats(t, &st);
  assert_int_equal(st.traces_dropped, 1);
  assert_int_equal(st.spans_dropped, 2);
  hotspan_tracer_free(t);
}

static void test_partial_flush(void **state) {
  (void)state;
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.partial_flush_min_spans = 10;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, &cfg);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  hotspan_span *root = hotspan_span_start(t, "batch", NULL);
  o.parent = root;
  for (int i = 0; i < 25; i++)
    hotspan_span_finish(hotspan_span_start(t, "item", &o));
  flush(t);
  assert_int_equal(cs->n, 20); /* two partial chunks of 10 */
  assert_int_equal(cs->chunks, 2);
  assert_int_equal(cs->spans[0].partial, 1);
  hotspan_span_finish(root);
  flush(t);
  assert_int_equal(cs->n, 26);
  assert_int_equal(cs->chunks, 3);
  hotspan_tracer_stats st = {.struct_size = sizeof st};
  hotspan_tracer_get_stats(t, &st);
  assert_int_equal(st.chunks_partial, 2);
  hotspan_tracer_free(t);
}

static void test_unfinished_spans(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *root = hotspan_span_start(t, "root", NULL);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.parent = root;
  hotspan_span *late = hotspan_span_start(t, "late", &o);
  hotspan_span *never = hotspan_span_start(t, "never", &o);
  assert_int_equal(hotspan_span_set_tag_str(never, "k", "memory to reclaim"),
                   0);
  hotspan_span_finish(root);
  flush(t);
  assert_int_equal(cs->n, 1); /* the root went out without waiting */
  hotspan_tracer_stats st = {.struct_size = sizeof st};
  hotspan_tracer_get_stats(t, &st);
  assert_int_equal(st.spans_unfinished, 2);
  /* A span finishing after its root is still delivered, on its own. */
  hotspan_span_finish(late);
  flush(t);
  assert_int_equal(cs->n, 2);
  const cap_span *l = cap_find(cs, "late");
  assert_non_null(l);
  assert_int_equal(l->parent_id, cap_find(cs, "root")->span_id);
  assert_int_equal(l->partial, 1);
  /* "never" is reclaimed by hotspan_tracer_free (ASan checks the leak). */
  hotspan_tracer_free(t);
}

static void test_config_precedence(void **state) {
  (void)state;
  setenv("HOTSPAN_SERVICE", "from-hotspan", 1);
  setenv("DD_SERVICE", "from-dd", 1);
  setenv("OTEL_SERVICE_NAME", "from-otel", 1);
  setenv("DD_ENV", "staging", 1);
  setenv("DD_TAGS", "team:core, region:eu ,bad", 1);
  setenv("OTEL_RESOURCE_ATTRIBUTES",
         "service.version=1.2%2E3,deployment.environment=prod,team=otel,"
         "host.name=h%",
         1);
  setenv("DD_TRACE_PARTIAL_FLUSH_MIN_SPANS", "abc", 1); /* invalid */
  setenv("HOTSPAN_LOG_LEVEL", "error", 1);
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  hs_tracer_settings st;
  char err[128];
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err), HOTSPAN_OK);
  assert_string_equal(st.service, "from-hotspan");
  assert_string_equal(st.env, "staging"); /* DD_ENV beats OTEL attrs */
  assert_string_equal(st.version, "1.2.3");
  assert_int_equal(st.partial_flush_min_spans, 1000); /* bad env ignored */
  int team = -1, region = -1, host = -1;
  for (size_t i = 0; i < st.ntags; i++) {
    if (strcmp(st.tags[i].key, "team") == 0)
      team = (int)i;
    if (strcmp(st.tags[i].key, "region") == 0)
      region = (int)i;
    if (strcmp(st.tags[i].key, "host.name") == 0)
      host = (int)i;
  }
  assert_true(team >= 0 && region >= 0);
  assert_string_equal(st.tags[team].value, "core"); /* DD_TAGS over OTEL */
  assert_string_equal(st.tags[region].value, "eu");
  assert_int_equal(host, -1); /* bad percent-encoding: skipped */
  hs_settings_free(&st);

  /* Code wins over every variable. */
  cfg.service = "from-code";
  cfg.tags = "team:code";
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err), HOTSPAN_OK);
  assert_string_equal(st.service, "from-code");
  for (size_t i = 0; i < st.ntags; i++)
    if (strcmp(st.tags[i].key, "team") == 0)
      assert_string_equal(st.tags[i].value, "code");
  hs_settings_free(&st);

  unsetenv("HOTSPAN_SERVICE");
  cfg.service = NULL;
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err), HOTSPAN_OK);
  assert_string_equal(st.service, "from-dd");
  hs_settings_free(&st);
  unsetenv("DD_SERVICE");
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err), HOTSPAN_OK);
  assert_string_equal(st.service, "from-otel");
  hs_settings_free(&st);

  /* A bad value in code is an error, not a silent default. */
  cfg.sample_rate = 1.5;
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_non_null(strstr(err, "sample_rate"));
  hs_settings_free(&st);
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_ECONFIG);
  assert_null(t);
  cfg.sample_rate = -1;
  cfg.log_level = 9;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_ECONFIG);

  /* ignore_environment: defaults only. */
  hotspan_config_init(&cfg);
  cfg.ignore_environment = 1;
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err), HOTSPAN_OK);
  assert_null(st.env);
  assert_int_equal(st.ntags, 0);
  hs_settings_free(&st);
  unsetenv("OTEL_SERVICE_NAME");
  unsetenv("DD_ENV");
  unsetenv("DD_TAGS");
  unsetenv("OTEL_RESOURCE_ATTRIBUTES");
  unsetenv("DD_TRACE_PARTIAL_FLUSH_MIN_SPANS");
}

static void test_fork_unique_ids(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *warm = hotspan_span_start(t, "warm", NULL);
  hotspan_span_finish(warm);
  enum { N = 64 };
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
      hotspan_span *s = hotspan_span_start(t, "child-span", NULL);
      ids[i] = hotspan_span_id(s) ^ hotspan_span_trace_id_low(s);
      hotspan_span_finish(s);
    }
    /* The child's writer works: its spans reach its sink. */
    int ok = hotspan_tracer_flush(t, 5000) == HOTSPAN_OK &&
             cap_find(cs, "child-span") != NULL;
    ssize_t w = write(fds[1], ids, sizeof ids);
    _exit(ok && w == (ssize_t)sizeof ids ? 0 : 3);
  }
  uint64_t mine[N], theirs[N];
  for (int i = 0; i < N; i++) {
    hotspan_span *s = hotspan_span_start(t, "parent-span", NULL);
    mine[i] = hotspan_span_id(s) ^ hotspan_span_trace_id_low(s);
    hotspan_span_finish(s);
  }
  assert_int_equal(read(fds[0], theirs, sizeof theirs), (ssize_t)sizeof theirs);
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      assert_true(mine[i] != theirs[j]);
  close(fds[0]);
  close(fds[1]);
  hotspan_tracer_free(t);
}

static void test_out_of_order_finish(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *a = hotspan_span_start(t, "a", NULL);
  hotspan_span *b = hotspan_span_start(t, "b", NULL);
  hotspan_span_activate(a);
  hotspan_span_activate(b);
  hotspan_span_finish(a); /* not innermost */
  assert_ptr_equal(hotspan_active_span(), b);
  /* Finishing b must not bring back the finished a. */
  hotspan_span_finish(b);
  assert_null(hotspan_active_span());
  hs_ctx_value v;
  assert_int_equal(hs_thread_ctx_read(hs_thread_ctx_peek(), &v), 0);
  flush(t);
  assert_int_equal(cs->n, 2);
  hotspan_tracer_free(t);
}

static void test_back_dated_start(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.start_ns = hs_now_unix_ns() - 1000000000ull; /* began a second ago */
  hotspan_span *s = hotspan_span_start(t, "queued", &o);
  hotspan_span_finish(s);
  flush(t);
  assert_true(cs->spans[0].duration >= 999000000ull);
  assert_true(cs->spans[0].duration < 60000000000ull);
  hotspan_tracer_free(t);
}

static int count_header(void *carrier, const char *name, const char *value) {
  if (strcmp(name, "x-datadog-tags") == 0)
    snprintf((char *)carrier, 256, "%s", value);
  return 0;
}

static void test_manual_decision_maker(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *s = hotspan_span_start(t, "root", NULL);
  char tags[256] = "";
  hotspan_carrier_writer w = {count_header};
  assert_int_equal(hotspan_inject(t, s, &w, tags), HOTSPAN_OK);
  assert_non_null(strstr(tags, "_dd.p.dm=-0")); /* automatic keep */
  hotspan_span_set_sampling_priority(s, HOTSPAN_PRIORITY_USER_KEEP);
  assert_int_equal(hotspan_inject(t, s, &w, tags), HOTSPAN_OK);
  assert_non_null(strstr(tags, "_dd.p.dm=-4")); /* replaced, not added */
  assert_null(strstr(tags, "_dd.p.dm=-0"));
  hotspan_span_finish(s);
  flush(t);
  assert_int_equal(cs->spans[0].priority, HOTSPAN_PRIORITY_USER_KEEP);
  hotspan_tracer_free(t);
}

static void test_free_flushes_open_traces(void **state) {
  (void)state;
  char dir[] = "/tmp/hotspan-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.ignore_environment = 1;
  cfg.log_level = 1;
  cfg.output_dir = dir;
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_OK);
  hotspan_span *root = hotspan_span_start(t, "never-finished-root", NULL);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.parent = root;
  hotspan_span *done = hotspan_span_start(t, "finished-child", &o);
  hotspan_span_set_tag_str(done, "k", "v");
  hotspan_span_finish(done);
  hotspan_span *open = hotspan_span_start(t, "open-child", &o);
  hotspan_span_set_tag_str(open, "big", "memory that must be reclaimed");
  hotspan_tracer_stats st = {.struct_size = sizeof st};
  hotspan_tracer_free(t); /* LeakSanitizer checks the reclaim */
  (void)st;
  char path[128], line[4096];
  snprintf(path, sizeof path, "%s/traces.jsonl", dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  int finished = 0, others = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strstr(line, "\"finished-child\"") != NULL)
      finished++;
    else
      others++;
  }
  fclose(f);
  unlink(path);
  rmdir(dir);
  assert_int_equal(finished, 1); /* what finished is not lost */
  assert_int_equal(others, 0);   /* what never finished is not invented */
}

static void test_bad_env_rules_ignored(void **state) {
  (void)state;
  setenv("DD_TRACE_SAMPLING_RULES", "[{\"sample_rate\": 2", 1);
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.log_level = 1;
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_OK);
  hotspan_tracer_free(t);
  /* The same rules in code are the programmer's error. */
  cfg.sampling_rules = "[{\"sample_rate\": 2";
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_ECONFIG);
  unsetenv("DD_TRACE_SAMPLING_RULES");
}

static void test_struct_size_prefix(void **state) {
  (void)state;
  /* A caller built against a shorter hotspan_config (up to "tags"). */
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "old-abi";
  cfg.struct_size = (uint32_t)offsetof(hotspan_config, sample_rate);
  cfg.sample_rate = 0.0; /* beyond the prefix: must be ignored */
  capture_sink *cs = NULL;
  cfg.ignore_environment = 1; /* also beyond the prefix: ignored */
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_OK);
  cs = capture_sink_new();
  hs_tracer_add_sink(t, &cs->base);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.struct_size = (uint32_t)offsetof(hotspan_span_options, kind);
  o.resource = "in the prefix";
  o.kind = HOTSPAN_KIND_SERVER; /* beyond: default kind */
  hotspan_span *s = hotspan_span_start(t, "x", &o);
  assert_non_null(s);
  hotspan_span_finish(s);
  flush(t);
  assert_int_equal(cs->n, 1); /* kept: the 0.0 rate was not read */
  assert_string_equal(cs->spans[0].resource, "in the prefix");
  assert_int_equal(cs->spans[0].kind, HOTSPAN_KIND_UNSPECIFIED);
  o.struct_size = 3; /* garbage */
  assert_null(hotspan_span_start(t, "y", &o));
  hotspan_tracer_free(t);
}

static void test_tag_cap(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  hotspan_span *s = hotspan_span_start(t, "many", NULL);
  char k[32];
  int rc = HOTSPAN_OK, i;
  for (i = 0; i < 5000 && rc == HOTSPAN_OK; i++) {
    snprintf(k, sizeof k, "k%d", i);
    rc = hotspan_span_set_tag_bool(s, k, 1);
  }
  assert_int_equal(rc, HOTSPAN_EFULL);
  assert_int_equal(i - 1, HS_SPAN_MAX_TAGS);
  assert_int_equal(hotspan_span_set_tag_int(s, "k7", 3), HOTSPAN_OK);
  hotspan_span_finish(s);
  hotspan_tracer_free(t);
}

/* Sampling and propagation settings read from the environment reach the
 * tracer's decisions and headers. */
static int collect_header(void *carrier, const char *name, const char *value) {
  char *buf = carrier;
  size_t n = strlen(buf);
  snprintf(buf + n, 1024 - n, "%s=%s;", name, value);
  return 0;
}

static int env_trace_kept(void) {
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.log_level = 1;
  hotspan_tracer *t = NULL;
  assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_OK);
  capture_sink *cs = capture_sink_new();
  hs_tracer_add_sink(t, &cs->base);
  for (int i = 0; i < 50; i++)
    hotspan_span_finish(hotspan_span_start(t, "env", NULL));
  flush(t);
  int kept = (int)cs->n;
  hotspan_tracer_free(t);
  return kept;
}

static void test_env_sampling_and_styles(void **state) {
  (void)state;
  setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
  setenv("OTEL_TRACES_SAMPLER_ARG", "0", 1);
  assert_int_equal(env_trace_kept(), 0);
  setenv("DD_TRACE_SAMPLE_RATE", "1", 1); /* DD_* beats OTEL_* */
  assert_int_equal(env_trace_kept(), 50);
  setenv("HOTSPAN_TRACE_SAMPLE_RATE", "0", 1); /* HOTSPAN_* beats DD_* */
  assert_int_equal(env_trace_kept(), 0);
  setenv("HOTSPAN_TRACE_SAMPLE_RATE", "not-a-number", 1); /* ignored */
  assert_int_equal(env_trace_kept(), 50);
  unsetenv("HOTSPAN_TRACE_SAMPLE_RATE");
  unsetenv("DD_TRACE_SAMPLE_RATE");
  unsetenv("OTEL_TRACES_SAMPLER");
  unsetenv("OTEL_TRACES_SAMPLER_ARG");
  setenv("DD_TRACE_SAMPLING_RULES",
         "[{\"service\":\"nomatch\",\"sample_rate\":1},"
         "{\"name\":\"env\",\"sample_rate\":0}]",
         1);
  assert_int_equal(env_trace_kept(), 0);
  unsetenv("DD_TRACE_SAMPLING_RULES");

  /* Styles: OTEL_PROPAGATORS < DD_TRACE_PROPAGATION_STYLE <
   * HOTSPAN_PROPAGATION_STYLE_INJECT. */
  setenv("OTEL_PROPAGATORS", "b3multi", 1);
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.log_level = 1;
  hotspan_tracer *t = NULL;
  char headers[1024];
  hotspan_carrier_writer w = {collect_header};
  const char *expect[] = {
      "x-b3-traceid=", "traceparent=", "x-datadog-trace-id="};
  const char *var[] = {NULL, "DD_TRACE_PROPAGATION_STYLE",
                       "HOTSPAN_PROPAGATION_STYLE_INJECT"};
  const char *val[] = {NULL, "tracecontext", "datadog"};
  for (int i = 0; i < 3; i++) {
    if (var[i] != NULL)
      setenv(var[i], val[i], 1);
    assert_int_equal(hotspan_tracer_new(&cfg, &t), HOTSPAN_OK);
    hotspan_span *s = hotspan_span_start(t, "client", NULL);
    headers[0] = '\0';
    assert_int_equal(hotspan_inject(t, s, &w, headers), HOTSPAN_OK);
    assert_non_null(strstr(headers, expect[i]));
    for (int j = 0; j < 3; j++)
      if (j != i)
        assert_null(strstr(headers, expect[j]));
    hotspan_span_finish(s);
    hotspan_tracer_free(t);
  }
  unsetenv("OTEL_PROPAGATORS");
  unsetenv("DD_TRACE_PROPAGATION_STYLE");
  unsetenv("HOTSPAN_PROPAGATION_STYLE_INJECT");
}

/* Last: fills the process-wide endpoint registry. */
static void test_endpoint_overflow(void **state) {
  (void)state;
  capture_sink *cs = NULL;
  hotspan_tracer *t = capture_tracer(&cs, NULL);
  char name[32];
  for (int i = 0; i < HS_ENDPOINT_MAX + 10; i++) {
    snprintf(name, sizeof name, "GET /e%d", i);
    hs_endpoint_intern(name, strlen(name));
  }
  assert_int_equal(hs_endpoint_intern("GET /new", 8), HS_ENDPOINT_OVERFLOW);
  assert_string_equal(hs_endpoint_name(HS_ENDPOINT_OVERFLOW), "other");
  hotspan_span *root = hotspan_span_start(t, "req", NULL);
  hotspan_span_set_resource(root, "GET /kept");
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.parent = root;
  hotspan_span *c = hotspan_span_start(t, "child", &o);
  hotspan_span_set_endpoint(c, "GET /late");
  hotspan_span_finish(c);
  hotspan_span_finish(root);
  flush(t);
  /* The resource keeps its real name; only the endpoint id is "other". */
  assert_string_equal(cap_find(cs, "req")->resource, "GET /kept");
  assert_int_equal(cap_find(cs, "req")->endpoint_id, HS_ENDPOINT_OVERFLOW);
  hotspan_tracer_free(t);
}

/* Which exporters run: code > HOTSPAN_TRACES_EXPORTER > OTEL_TRACES_EXPORTER
 * > the addresses configured > Datadog by default. */
static unsigned exporters_for(const hotspan_config *cfg) {
  hs_tracer_settings st;
  char err[200] = "";
  int rc = hs_settings_load(cfg, &st, err, sizeof err);
  assert_int_equal(rc, HOTSPAN_OK);
  unsigned m = st.exporters;
  hs_settings_free(&st);
  return m;
}

static void test_exporter_selection(void **state) {
  (void)state;
  static const char *const vars[] = {
      "HOTSPAN_TRACES_EXPORTER",     "OTEL_TRACES_EXPORTER",
      "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
      "DD_TRACE_AGENT_URL",          "DD_AGENT_HOST",
      "DD_TRACE_AGENT_PORT",         NULL};
  for (const char *const *v = vars; *v != NULL; v++)
    unsetenv(*v);
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.log_level = 1;
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_DATADOG);
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_OTLP);
  setenv("DD_AGENT_HOST", "agent", 1);
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_OTLP | HS_EXPORT_DATADOG);
  setenv("OTEL_TRACES_EXPORTER", "none", 1);
  assert_int_equal(exporters_for(&cfg), 0);
  setenv("HOTSPAN_TRACES_EXPORTER", " Datadog , otlp ", 1);
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_OTLP | HS_EXPORT_DATADOG);
  /* A bad value in the environment is ignored (next source wins)... */
  setenv("HOTSPAN_TRACES_EXPORTER", "zipkin", 1);
  unsetenv("OTEL_TRACES_EXPORTER");
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_OTLP | HS_EXPORT_DATADOG);
  /* ...while code wins over everything, and a bad value there is an error. */
  cfg.exporters = "otlp";
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_OTLP);
  cfg.exporters = "otlp,jaeger";
  hs_tracer_settings st;
  char err[200] = "";
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err),
                   HOTSPAN_ECONFIG);
  assert_non_null(strstr(err, "jaeger"));
  hs_settings_free(&st);
  cfg.exporters = "";
  assert_int_equal(hs_settings_load(&cfg, &st, err, sizeof err),
                   HOTSPAN_ECONFIG);
  hs_settings_free(&st);
  /* ignore_environment: only code and the default count. */
  cfg.exporters = NULL;
  cfg.ignore_environment = 1;
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_DATADOG);
  cfg.otlp_endpoint = "http://c:4318/v1/traces";
  assert_int_equal(exporters_for(&cfg), HS_EXPORT_OTLP);
  for (const char *const *v = vars; *v != NULL; v++)
    unsetenv(*v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_root_and_child),
      cmocka_unit_test(test_parent_options),
      cmocka_unit_test(test_remote_parent),
      cmocka_unit_test(test_activation_rules),
      cmocka_unit_test(test_tags_and_errors),
      cmocka_unit_test(test_null_safety),
      cmocka_unit_test(test_endpoint),
      cmocka_unit_test(test_manual_drop),
      cmocka_unit_test(test_partial_flush),
      cmocka_unit_test(test_unfinished_spans),
      cmocka_unit_test(test_config_precedence),
      cmocka_unit_test(test_fork_unique_ids),
      cmocka_unit_test(test_out_of_order_finish),
      cmocka_unit_test(test_back_dated_start),
      cmocka_unit_test(test_manual_decision_maker),
      cmocka_unit_test(test_free_flushes_open_traces),
      cmocka_unit_test(test_bad_env_rules_ignored),
      cmocka_unit_test(test_struct_size_prefix),
      cmocka_unit_test(test_tag_cap),
      cmocka_unit_test(test_env_sampling_and_styles),
      cmocka_unit_test(test_endpoint_overflow),
      cmocka_unit_test(test_exporter_selection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
