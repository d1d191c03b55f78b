/* Datadog msgpack encoding speed: chunks of 10 spans, each with 5 tags (3
 * strings, an int, a double), a kind and env/version from the settings,
 * the first one a local root with the trace-level values. The encoder
 * fills 1 MiB payloads as the sink does; each full payload is handed over
 * and freed (its free is part of the cost). Reports ns per span and spans
 * per second, and the malloc calls per span in steady state.
 * Usage: bench_export_dd [--smoke] [--batches N] [--ops N] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "exporter/dd_msgpack.h"
#include "hotspan/version.h"
#include "tracer/internal.h"

#define CHUNK 10
#define PAYLOAD_BYTES ((size_t)1 << 20)

typedef struct fixture {
  hs_tracer_settings st;
  hs_trace tr;
  hotspan_span spans[CHUNK];
  hs_chunk chunk;
  hs_dd_encoder enc;
  uint64_t payloads;
  uint64_t bytes;
  double span_bytes; /* encoded size of one span, on average */
} fixture;

static void tag(hotspan_span *s, const char *k, int type, const char *sv,
                int64_t iv, double dv) {
  hs_tag *t = &s->tags[s->ntags++];
  t->key = k;
  t->klen = (uint16_t)strlen(k);
  t->type = (uint8_t)type;
  if (type == HS_TAG_STR)
    t->v.s = sv;
  else if (type == HS_TAG_INT)
    t->v.i = iv;
  else
    t->v.d = dv;
}

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof *f);
  f->st.service = "checkout";
  f->st.env = "prod";
  f->st.version = "1.4.2";
  memcpy(f->st.runtime_id, "2f0c5a3e-8c1b-4d6e-9a7f-0123456789ab", 37);
  pthread_mutex_init(&f->tr.mu, NULL);
  f->tr.id_high = UINT64_C(0x6655443300000000);
  f->tr.id_low = UINT64_C(0x1234567890abcdef);
  f->tr.priority = 1;
  f->tr.rule_rate = f->tr.limit_rate = f->tr.agent_rate = -1;
  snprintf(f->tr.propagated_tags, sizeof f->tr.propagated_tags, "_dd.p.dm=-0");
  for (int i = 0; i < CHUNK; i++) {
    hotspan_span *s = &f->spans[i];
    s->trace = &f->tr;
    s->span_id = UINT64_C(0x100000000) + (uint64_t)i;
    s->parent_id = i == 0 ? 0 : UINT64_C(0x100000000);
    s->is_local_root = i == 0;
    s->start_ns = UINT64_C(1700000000000000000) + (uint64_t)i * 1000;
    s->duration_ns = 250000 + (uint64_t)i;
    s->name = i == 0 ? "http.request" : "db.query";
    s->resource = i == 0 ? "POST /checkout" : "SELECT * FROM carts WHERE id=?";
    s->service = f->st.service;
    s->type = i == 0 ? "web" : "sql";
    s->kind = i == 0 ? 2 : 3;
    s->tags = s->inline_tags;
    s->cap_tags = HS_SPAN_INLINE_TAGS;
    tag(s, "http.method", HS_TAG_STR, "POST", 0, 0);
    tag(s, "http.url", HS_TAG_STR, "https://shop.example.com/checkout", 0, 0);
    tag(s, "component", HS_TAG_STR, "libcurl", 0, 0);
    tag(s, "http.status_code", HS_TAG_INT, NULL, 200, 0);
    tag(s, "cart.total", HS_TAG_DOUBLE, NULL, 0, 123.45);
    s->next = i + 1 < CHUNK ? &f->spans[i + 1] : NULL;
  }
  f->chunk.trace = &f->tr;
  f->chunk.spans = &f->spans[0];
  f->chunk.nspans = CHUNK;
  hs_dd_encoder_init(&f->enc, &f->st, 0);
  size_t before = hs_dd_encoder_size(&f->enc);
  if (hs_dd_encoder_add(&f->enc, &f->chunk) != HOTSPAN_OK)
    exit(1);
  f->span_bytes = (double)(hs_dd_encoder_size(&f->enc) - before) / CHUNK;
  hs_dd_encoder_begin(&f->enc);
}

/* Encodes ops spans (rounded up to whole chunks). */
static void run(fixture *f, long ops) {
  for (long done = 0; done < ops; done += CHUNK) {
    if (hs_dd_encoder_add(&f->enc, &f->chunk) != HOTSPAN_OK) {
      fprintf(stderr, "bench_export_dd: encoding failed\n");
      exit(1);
    }
    if (hs_dd_encoder_size(&f->enc) >= PAYLOAD_BYTES) {
      char *body;
      size_t len;
      if (hs_dd_encoder_finish(&f->enc, &body, &len, NULL, NULL) != HOTSPAN_OK)
        exit(1);
      f->payloads++;
      f->bytes += len;
      bench_sink_ptr(body);
      free(body);
    }
  }
}

int main(int argc, char **argv) {
  bench_opts o;
  bench_parse_opts(argc, argv, &o);
  fixture *f = malloc(sizeof *f);
  if (f == NULL)
    return 1;
  fixture_init(f);
  long ops = o.ops * 10; /* encoding is cheaper than a span's life */
  bench_series series;
  bench_series_init(&series, "dd_encode_span", o.batches, ops);
  printf("info program=bench_export_dd tracer=hotspan-%s chunk_spans=%d "
         "tags_per_span=5 malloc_counting=%d\n",
         HOTSPAN_VERSION_STRING, CHUNK, bench_malloc_counting());
  run(f, o.warmup * 10);
  uint64_t m0 = bench_malloc_calls(), counted = 0;
  for (int k = 0; k < o.batches; k++) {
    uint64_t t0 = bench_now_ns();
    run(f, ops);
    uint64_t t1 = bench_now_ns();
    counted += (uint64_t)ops;
    bench_series_add(&series, t1 - t0);
  }
  uint64_t mallocs = bench_malloc_calls() - m0;
  /* Median ns per span → spans per second, for the docs. */
  double *v = series.ns_per_op;
  int n = series.n;
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  double median = n > 0 ? v[n / 2] : 0;
  bench_series_report(&series);
  if (bench_malloc_counting())
    bench_report_count("mallocs_per_span", mallocs, counted);
  if (median > 0)
    printf("info spans_per_second=%.0f bytes_per_span=%.1f payloads=%llu\n",
           1e9 / median, f->span_bytes, (unsigned long long)f->payloads);
  hs_dd_encoder_free(&f->enc);
  pthread_mutex_destroy(&f->tr.mu);
  free(f);
  return 0;
}
