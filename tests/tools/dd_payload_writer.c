/* Builds real spans with the tracer (tags of every type, an error, events,
 * links, every span kind, a remote parent with propagated tags, a child of
 * another service) and writes what the Datadog encoder makes of them to
 * OUT (one /v0.4/traces payload), plus the values a decoder must find to
 * EXPECT as JSON. tests/scripts/test_dd_msgpack.sh decodes OUT with
 * python3-msgpack. Usage: dd_payload_writer OUT EXPECT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exporter/dd_msgpack.h"
#include "hotspan/hotspan.h"
#include "tracer/internal.h"

typedef struct payload_sink {
  hs_trace_sink base;
  hs_dd_encoder enc;
  const char *path;
  int written;
  int failed;
} payload_sink;

static void ps_write(hs_trace_sink *self, const hs_chunk *c) {
  payload_sink *ps = (payload_sink *)self;
  if (hs_dd_encoder_add(&ps->enc, c) != HOTSPAN_OK)
    ps->failed = 1;
}

/* The forced flush at hotspan_tracer_free writes the file. */
static void ps_flush(hs_trace_sink *self, int force) {
  payload_sink *ps = (payload_sink *)self;
  if (!force || ps->written || ps->enc.ntraces == 0)
    return;
  char *body;
  size_t len;
  if (hs_dd_encoder_finish(&ps->enc, &body, &len, NULL, NULL) != HOTSPAN_OK) {
    ps->failed = 1;
    return;
  }
  FILE *f = fopen(ps->path, "wb");
  if (f == NULL || fwrite(body, 1, len, f) != len)
    ps->failed = 1;
  if (f != NULL && fclose(f) != 0)
    ps->failed = 1;
  free(body);
  ps->written = 1;
}

static void ps_destroy(hs_trace_sink *self) {
  payload_sink *ps = (payload_sink *)self;
  hs_dd_encoder_free(&ps->enc);
}

static hotspan_span *start(hotspan_tracer *t, const char *name,
                           const hotspan_span *parent,
                           const hotspan_context *remote,
                           hotspan_span_kind kind, const char *service) {
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.parent = parent;
  o.remote_parent = remote;
  o.root = parent == NULL && remote == NULL;
  o.kind = kind;
  o.service = service;
  return hotspan_span_start(t, name, &o);
}

static void expect_span(FILE *f, const char *name, const hotspan_span *s,
                        uint64_t parent, const char *service, int last) {
  fprintf(f,
          "    \"%s\": {\"span_id\": %" PRIu64 ", \"parent_id\": %" PRIu64
          ", \"service\": \"%s\"}%s\n",
          name, hotspan_span_id(s), parent, service, last ? "" : ",");
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s OUT EXPECT\n", argv[0]);
    return 2;
  }
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.ignore_environment = 1;
  cfg.log_level = 1;
  cfg.service = "web";
  cfg.env = "test";
  cfg.version = "1.0";
  cfg.tags = "team:core";
  hotspan_tracer *t = NULL;
  if (hotspan_tracer_new(&cfg, &t) != HOTSPAN_OK)
    return 1;
  payload_sink ps;
  memset(&ps, 0, sizeof ps);
  ps.path = argv[1];
  hs_dd_encoder_init(&ps.enc, &t->settings, 0);
  ps.base.name = "payload";
  ps.base.write = ps_write;
  ps.base.flush = ps_flush;
  ps.base.destroy = ps_destroy;
  hs_tracer_add_sink(t, &ps.base);

  /* Trace 1: continues a remote trace. */
  static const char *const headers[] = {
      "x-datadog-trace-id",
      "1234567890123",
      "x-datadog-parent-id",
      "987654321",
      "x-datadog-sampling-priority",
      "2",
      "x-datadog-origin",
      "synthetics",
      "x-datadog-tags",
      "_dd.p.tid=640cfd8d00000000,_dd.p.usr.id=u42"};
  hotspan_context remote;
  if (hotspan_extract_pairs(t, headers, 5, &remote) != HOTSPAN_OK)
    return 1;
  hotspan_span *root =
      start(t, "http.request", NULL, &remote, HOTSPAN_KIND_SERVER, NULL);
  hotspan_span_set_resource(root, "GET /caf\xc3\xa9");
  hotspan_span_set_type(root, "web");
  hotspan_span_set_tag_str(root, "str", "hello \"world\"");
  hotspan_span_set_tag_str(root, "unicode", "\xe6\x97\xa5\xe6\x9c\xac");
  hotspan_span_set_tag_str(root, "bad.utf8",
                           "a\xff"
                           "b");
  hotspan_span_set_tag_int(root, "int", -42);
  hotspan_span_set_tag_int(root, "big", 4503599627370496LL); /* 2^52 */
  hotspan_span_set_tag_double(root, "dbl", 0.125);
  hotspan_span_set_tag_bool(root, "yes", 1);
  hotspan_span_set_tag_bool(root, "no", 0);
  /* Events and links go into the span's own lists, as the tracer keeps
   * them (tracer/internal.h); they live in this function's frame until
   * the tracer is freed. */
  static hs_tag attrs[4];
  attrs[0] = (hs_tag){"a.str", HS_TAG_STR, 5, {.s = "x"}};
  attrs[1] = (hs_tag){"a.int", HS_TAG_INT, 5, {.i = 7}};
  attrs[2] = (hs_tag){"a.dbl", HS_TAG_DOUBLE, 5, {.d = 1.5}};
  attrs[3] = (hs_tag){"a.bool", HS_TAG_BOOL, 6, {.i = 1}};
  static hs_span_event ev[2];
  ev[0] =
      (hs_span_event){&ev[1], "exception", 1700000000123456789ull, attrs, 4};
  ev[1] = (hs_span_event){NULL, "retry", 1700000000200000000ull, NULL, 0};
  root->events = &ev[0];
  root->events_tail = &ev[1];
  root->nevents = 2;
  static hs_span_link link;
  link = (hs_span_link){.trace_id_high = UINT64_C(0x0af7651916cd43dd),
                        .trace_id_low = UINT64_C(0x8448eb211c80319c),
                        .span_id = UINT64_C(0x00f067aa0ba902b7),
                        .trace_flags = 1,
                        .tracestate = "vendor=value",
                        .attrs = attrs,
                        .nattrs = 4};
  root->links = root->links_tail = &link;
  root->nlinks = 1;

  hotspan_span *child =
      start(t, "client.call", root, NULL, HOTSPAN_KIND_CLIENT, NULL);
  hotspan_span_set_error(child, "TimeoutError", "timed out after 2 s",
                         "frame 1\nframe 2");
  hotspan_span *db =
      start(t, "db.query", child, NULL, HOTSPAN_KIND_CLIENT, "web-db");
  hotspan_span *prod =
      start(t, "queue.send", root, NULL, HOTSPAN_KIND_PRODUCER, NULL);
  hotspan_span *cons =
      start(t, "queue.recv", root, NULL, HOTSPAN_KIND_CONSUMER, NULL);
  hotspan_span *internal =
      start(t, "compute", root, NULL, HOTSPAN_KIND_INTERNAL, NULL);
  uint64_t trace_low = hotspan_span_trace_id_low(root);
  uint64_t trace_high = hotspan_span_trace_id_high(root);

  FILE *ex = fopen(argv[2], "w");
  if (ex == NULL)
    return 1;
  fprintf(ex,
          "{\n  \"trace_id\": %" PRIu64 ",\n  \"tid\": \"%016" PRIx64
          "\",\n  \"pid\": %ld,\n  \"spans\": {\n",
          trace_low, trace_high, (long)getpid());
  expect_span(ex, "http.request", root, 987654321, "web", 0);
  expect_span(ex, "client.call", child, hotspan_span_id(root), "web", 0);
  expect_span(ex, "db.query", db, hotspan_span_id(child), "web-db", 0);
  expect_span(ex, "queue.send", prod, hotspan_span_id(root), "web", 0);
  expect_span(ex, "queue.recv", cons, hotspan_span_id(root), "web", 0);
  expect_span(ex, "compute", internal, hotspan_span_id(root), "web", 0);

  hotspan_span_finish(db);
  hotspan_span_finish(child);
  hotspan_span_finish(prod);
  hotspan_span_finish(cons);
  hotspan_span_finish(internal);
  hotspan_span_finish(root);

  /* Trace 2: a new trace of this process (128-bit id of its own). */
  hotspan_span *solo = start(t, "job", NULL, NULL, HOTSPAN_KIND_INTERNAL, NULL);
  fprintf(ex,
          "    \"job\": {\"span_id\": %" PRIu64 ", \"parent_id\": 0, "
          "\"service\": \"web\", \"trace_id\": %" PRIu64
          ", \"tid\": \"%016" PRIx64 "\"}\n  }\n}\n",
          hotspan_span_id(solo), hotspan_span_trace_id_low(solo),
          hotspan_span_trace_id_high(solo));
  hotspan_span_finish(solo);
  if (fclose(ex) != 0)
    return 1;
  hotspan_tracer_free(t);
  if (ps.failed || !ps.written) {
    fprintf(stderr, "dd_payload_writer: encoding or writing failed\n");
    return 1;
  }
  return 0;
}
