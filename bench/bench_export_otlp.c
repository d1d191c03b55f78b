/* OTLP trace encoding rate: spans with 5 tags (two strings, an int, a
 * double, a bool), in chunks of 10 spans of one trace, encoded into
 * payloads of BENCH_PAYLOAD_SPANS spans as the OTLP sink does (copy into
 * the encoder's arena, then one get_packed_size + pack per payload).
 *
 * Variants:
 *   encode       add_chunk for every chunk of a payload, then finish
 *   encode_gzip  the same, then gzip the body (level 6, as the sink)
 *
 * Each batch is one payload; "result" lines give ns per span and an
 * "info" line the spans per second of the median. "count mallocs_<v>"
 * reports allocation calls per payload in the steady state: the body (and
 * gzip's state and output) only; --check fails the run if encode makes
 * more than one per payload. The spans are built by hand (not through the
 * tracer) so that only encoding is timed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "exporter/otlp.h"
#include "hotspan/error.h"
#include "tracer/internal.h"

#define CHUNK_SPANS 10
#define BENCH_PAYLOAD_SPANS 2000
#define NCHUNKS (BENCH_PAYLOAD_SPANS / CHUNK_SPANS)

typedef struct fixture {
  hs_trace trace;
  hotspan_span spans[CHUNK_SPANS];
  hs_tag tags[CHUNK_SPANS][5];
  hs_chunk chunk;
} fixture;

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->trace.mu, NULL);
  f->trace.id_high = 0x67a1b2c300000000ull;
  f->trace.id_low = 0x1122334455667788ull;
  f->trace.priority = 1;
  for (int i = 0; i < CHUNK_SPANS; i++) {
    hotspan_span *s = &f->spans[i];
    s->trace = &f->trace;
    s->span_id = 0x1000u + (uint64_t)i;
    s->parent_id = i == 0 ? 0 : 0x1000u;
    s->is_local_root = i == 0;
    s->start_ns = 1700000000000000000ull + (uint64_t)i * 1000;
    s->duration_ns = 250000;
    s->name = "http.request";
    s->resource = "GET /api/v1/orders/{id}";
    s->service = "bench";
    s->type = "web";
    s->kind = i == 0 ? 2 : 3;
    hs_tag *t = f->tags[i];
    t[0] = (hs_tag){"http.method", HS_TAG_STR, 11, {.s = "GET"}};
    t[1] = (hs_tag){"http.url",
                    HS_TAG_STR,
                    8,
                    {.s = "https://shop.example.com/api/v1/orders/12345"}};
    t[2] = (hs_tag){"http.status_code", HS_TAG_INT, 16, {.i = 200}};
    t[3] = (hs_tag){"db.rows", HS_TAG_DOUBLE, 7, {.d = 12.5}};
    t[4] = (hs_tag){"cache.hit", HS_TAG_BOOL, 9, {.i = 1}};
    s->tags = t;
    s->ntags = 5;
    s->next = i + 1 < CHUNK_SPANS ? &f->spans[i + 1] : NULL;
  }
  f->chunk.trace = &f->trace;
  f->chunk.spans = &f->spans[0];
  f->chunk.nspans = CHUNK_SPANS;
}

static size_t last_len;

static void one_payload(hs_otlp_encoder *e, fixture *f, int gz) {
  for (int c = 0; c < NCHUNKS; c++) {
    /* Every chunk is another trace. */
    f->trace.id_low++;
    if (hs_otlp_encoder_add_chunk(e, &f->chunk) != HOTSPAN_OK) {
      fprintf(stderr, "add_chunk failed\n");
      exit(1);
    }
  }
  uint8_t *body = NULL;
  size_t len = 0;
  if (hs_otlp_encoder_finish(e, &body, &len) != HOTSPAN_OK || len == 0) {
    fprintf(stderr, "finish failed\n");
    exit(1);
  }
  if (gz) {
    uint8_t *z = NULL;
    size_t zl = 0;
    if (hs_otlp_gzip(body, len, 6, &z, &zl) != HOTSPAN_OK) {
      fprintf(stderr, "gzip failed\n");
      exit(1);
    }
    free(body);
    body = z;
    len = zl;
  }
  last_len = len;
  bench_sink_ptr(body);
  free(body);
}

int main(int argc, char **argv) {
  bench_opts o;
  bench_parse_opts(argc, argv, &o);
  fixture *f = malloc(sizeof *f);
  if (f == NULL)
    return 1;
  fixture_init(f);
  hs_otlp_resource res;
  memset(&res, 0, sizeof res);
  hs_otlp_resource_add_str(&res, "deployment.environment", "prod");
  hs_otlp_resource_add_str(&res, "telemetry.sdk.name", "hotspan");
  hs_otlp_resource_add_int(&res, "process.pid", 4242);
  hs_otlp_encoder *e = hs_otlp_encoder_new(&res, "bench", "0.1.0");
  hs_otlp_resource_free(&res);
  if (e == NULL)
    return 1;

  const char *names[2] = {"encode", "encode_gzip"};
  bench_series series[2];
  uint64_t mallocs[2] = {0, 0};
  int batches = o.batches;
  for (int v = 0; v < 2; v++) {
    bench_series_init(&series[v], names[v], batches, BENCH_PAYLOAD_SPANS);
    if (bench_selected(&o, names[v]))
      for (int w = 0; w < 3; w++) /* warm the arena and the caches */
        one_payload(e, f, v);
  }
  size_t plain_len = 0, gz_len = 0;
  for (int b = 0; b < batches; b++)
    for (int v = 0; v < 2; v++) {
      if (!bench_selected(&o, names[v]))
        continue;
      uint64_t m0 = bench_malloc_calls();
      uint64_t t0 = bench_now_ns();
      one_payload(e, f, v);
      uint64_t t1 = bench_now_ns();
      mallocs[v] += bench_malloc_calls() - m0;
      bench_series_add(&series[v], t1 - t0);
      *(v ? &gz_len : &plain_len) = last_len;
    }
  int fail = 0;
  for (int v = 0; v < 2; v++) {
    if (!bench_selected(&o, names[v]))
      continue;
    /* Median ns per span → spans per second, before report frees it. */
    double *x = series[v].ns_per_op;
    int n = series[v].n;
    for (int i = 1; i < n; i++)
      for (int j = i; j > 0 && x[j - 1] > x[j]; j--) {
        double tmp = x[j];
        x[j] = x[j - 1];
        x[j - 1] = tmp;
      }
    double med = n > 0 ? x[n / 2] : 0;
    printf("info %s spans_per_s=%.0f payload_spans=%d body_bytes=%zu\n",
           names[v], med > 0 ? 1e9 / med : 0, BENCH_PAYLOAD_SPANS,
           v ? gz_len : plain_len);
    bench_series_report(&series[v]);
    if (bench_malloc_counting()) {
      bench_report_count(v ? "mallocs_payload_gzip" : "mallocs_payload",
                         mallocs[v], (uint64_t)batches);
      if (o.check && v == 0 && mallocs[v] > (uint64_t)batches) {
        fprintf(stderr, "check: encode made %llu allocations in %d payloads\n",
                (unsigned long long)mallocs[v], batches);
        fail = 1;
      }
    }
  }
  hs_otlp_encoder_free(e);
  pthread_mutex_destroy(&f->trace.mu);
  free(f);
  return fail;
}
