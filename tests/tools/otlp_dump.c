/* Builds real spans with the tracer (every tag type, an error, events,
 * links, every kind, a remote parent, a child of another service), encodes
 * them with the OTLP encoder and writes the ExportTraceServiceRequest to
 * argv[1]. Prints the ids it used as protoc's text format writes bytes
 * (octal escapes), one "name value" per line, for
 * tests/scripts/test_otlp_decode.sh to compare. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter/otlp.h"
#include "hotspan/hotspan.h"
#include "tracer/internal.h"

/* Captures the chunks' encoding inside the writer thread. */
typedef struct enc_sink {
  hs_trace_sink base;
  hs_otlp_encoder *enc;
  int failed;
} enc_sink;

static void enc_write(hs_trace_sink *self, const hs_chunk *c) {
  enc_sink *s = (enc_sink *)self;
  if (hs_otlp_encoder_add_chunk(s->enc, c) != HOTSPAN_OK)
    s->failed = 1;
}

static void enc_destroy(hs_trace_sink *self) {
  (void)self;
}

/* protoc prints bytes fields as C-escaped strings: printable ASCII as is
 * (with \" \' \\ escaped), \n \r \t by name, everything else as
 * 3-digit octal. */
static void print_escaped(const char *label, const uint8_t *b, size_t n) {
  printf("%s ", label);
  for (size_t i = 0; i < n; i++) {
    unsigned c = b[i];
    if (c == '"' || c == '\'' || c == '\\')
      printf("\\%c", c);
    else if (c == '\n')
      printf("\\n");
    else if (c == '\r')
      printf("\\r");
    else if (c == '\t')
      printf("\\t");
    else if (c >= 0x20 && c < 0x7f)
      putchar((int)c);
    else
      printf("\\%03o", c);
  }
  putchar('\n');
}

static void print_ids(const char *label, uint64_t hi, uint64_t lo) {
  uint8_t t[16];
  hs_otlp_trace_id_bytes(hi, lo, t);
  print_escaped(label, t, 16);
}

static void print_span_id(const char *label, uint64_t id) {
  uint8_t s[8];
  hs_otlp_span_id_bytes(id, s);
  print_escaped(label, s, 8);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: otlp_dump OUT.pb\n");
    return 2;
  }
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.ignore_environment = 1;
  cfg.log_level = 1;
  cfg.service = "shop";
  cfg.env = "staging";
  cfg.version = "1.2.3";
  cfg.sample_rate = 1.0;
  hotspan_tracer *t = NULL;
  if (hotspan_tracer_new(&cfg, &t) != HOTSPAN_OK)
    return 1;
  hs_otlp_resource res;
  if (hs_otlp_resource_init(&res, &t->settings) != HOTSPAN_OK)
    return 1;
  enc_sink *sink = calloc(1, sizeof *sink);
  sink->enc = hs_otlp_encoder_new(&res, t->settings.service, "0.1.0");
  hs_otlp_resource_free(&res);
  sink->base.name = "otlp-dump";
  sink->base.write = enc_write;
  sink->base.destroy = enc_destroy;
  if (sink->enc == NULL || hs_tracer_add_sink(t, &sink->base) != HOTSPAN_OK)
    return 1;

  /* A remote parent with another vendor's tracestate. */
  hotspan_context remote;
  memset(&remote, 0, sizeof remote);
  remote.trace_id_high = 0x0af7651916cd43ddull;
  remote.trace_id_low = 0x8448eb211c80319cull;
  remote.span_id = 0x00f067aa0ba902b7ull;
  remote.sampling_priority = 1;
  remote.trace_flags = 1;
  snprintf(remote.tracestate_other, sizeof remote.tracestate_other,
           "rojo=00f067aa0ba902b7");
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.remote_parent = &remote;
  o.kind = HOTSPAN_KIND_SERVER;
  o.resource = "GET /cart";
  o.type = "web";
  hotspan_span *root = hotspan_span_start(t, "http.request", &o);
  hotspan_span_set_tag_str(root, "http.method", "GET");
  hotspan_span_set_tag_int(root, "http.status_code", 500);
  hotspan_span_set_tag_double(root, "sample.ratio", 0.5);
  hotspan_span_set_tag_bool(root, "cache.hit", 1);
  hotspan_span_set_error(root, "IOError", "disk on fire", NULL);
  hotspan_attribute ea[2] = {
      {.key = "retry.count", .type = HOTSPAN_ATTR_INT, .value.i = 3},
      {.key = "retry.reason",
       .type = HOTSPAN_ATTR_STRING,
       .value.s = "timeout"}};
  hotspan_span_add_event(root, "retry", 1700000000123456789ull, ea, 2);
  /* The linked context arrives in another request's W3C headers. */
  static const char *const link_hdrs[] = {
      "traceparent", "00-11111111111111112222222222222222-3333333333333333-01",
      "tracestate", "congo=t61rcWkgMzE"};
  hotspan_context linked;
  if (hotspan_extract_pairs(t, link_hdrs, 2, &linked) != HOTSPAN_OK)
    return 1;
  hotspan_attribute la = {
      .key = "link.kind", .type = HOTSPAN_ATTR_STRING, .value.s = "batch"};
  hotspan_span_add_link(root, &linked, &la, 1);

  static const hotspan_span_kind kinds[] = {
      HOTSPAN_KIND_INTERNAL, HOTSPAN_KIND_CLIENT, HOTSPAN_KIND_PRODUCER,
      HOTSPAN_KIND_CONSUMER};
  static const char *const names[] = {"internal.op", "client.op", "producer.op",
                                      "consumer.op"};
  hotspan_span *kids[4];
  for (int i = 0; i < 4; i++) {
    hotspan_span_options_init(&o);
    o.parent = root;
    o.kind = kinds[i];
    if (i == 1)
      o.service = "shop-db"; /* another service */
    kids[i] = hotspan_span_start(t, names[i], &o);
    hotspan_span_finish(kids[i]);
  }
  print_ids("trace_id", hotspan_span_trace_id_high(root),
            hotspan_span_trace_id_low(root));
  print_span_id("root_span_id", hotspan_span_id(root));
  print_span_id("remote_parent_id", remote.span_id);
  print_span_id("db_span_id", hotspan_span_id(kids[1]));
  print_ids("link_trace_id", linked.trace_id_high, linked.trace_id_low);
  print_span_id("link_span_id", linked.span_id);
  hotspan_span_finish(root);
  if (hotspan_tracer_flush(t, 5000) != HOTSPAN_OK || sink->failed)
    return 1;
  uint8_t *body = NULL;
  size_t len = 0;
  if (hs_otlp_encoder_finish(sink->enc, &body, &len) != HOTSPAN_OK || len == 0)
    return 1;
  FILE *f = fopen(argv[1], "wb");
  if (f == NULL || fwrite(body, 1, len, f) != len || fclose(f) != 0)
    return 1;
  free(body);
  hotspan_tracer_free(t);
  hs_otlp_encoder_free(sink->enc);
  free(sink);
  return 0;
}
