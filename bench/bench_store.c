/* The agent's store: ingest rate and the two correlation queries that must
 * stay interactive, on a temporary database filled to a given size.
 *
 *   bench_store [--spans N] [--samples N] [--batch N] [--keep PATH]
 *   bench_store --smoke        (tiny run for ctest; no timing assertion)
 *
 * Data: traces of 10 spans over 20 endpoints, spread over 6 hours; each
 * sample (CPU or wall, 10 ms) belongs to a random span and carries the
 * span's endpoint; stacks are drawn from 2000 distinct stacks of depth
 * 8-24 over 500 functions. Prints the ingest rate (spans and samples per
 * second, batches of --batch spans with their samples, one transaction
 * each), then the median time of one span's hotspots (with children) and
 * of one endpoint's profile over one hour. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/query.h"

#define NFUNCS 500
#define NSTACKS 2000
#define NENDPOINTS 20
#define SPAN_PER_TRACE 10
#define HOURS 6
#define T0 (1700000000LL * 1000000000LL)
#define HOUR_NS (3600LL * 1000000000LL)

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static char fnames[NFUNCS][32];
static hs_ing_frame frames[NFUNCS];
static hs_ing_frame stacks[NSTACKS][24];
static uint32_t depth[NSTACKS];
static char epnames[NENDPOINTS][32];

/* Span i of the data set: its trace, id, endpoint and start. */
static uint64_t span_id_of(long i) {
  return 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
}
static int64_t trace_start(long trace, long ntraces) {
  return T0 + (int64_t)((double)trace / (double)ntraces * HOURS * HOUR_NS);
}

int main(int argc, char **argv) {
  long nspans = 100000, nsamples = 500000, batch = 1000;
  int cache_mib = 0;
  const char *keep = NULL;
  int smoke = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--smoke")) {
      smoke = 1;
      nspans = 2000;
      nsamples = 10000;
    } else if (!strcmp(argv[i], "--spans") && i + 1 < argc) {
      nspans = atol(argv[++i]);
    } else if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
      nsamples = atol(argv[++i]);
    } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
      batch = atol(argv[++i]);
    } else if (!strcmp(argv[i], "--keep") && i + 1 < argc) {
      keep = argv[++i];
    } else if (!strcmp(argv[i], "--cache-mib") && i + 1 < argc) {
      cache_mib = atoi(argv[++i]);
    } else {
      fprintf(stderr,
              "usage: %s [--smoke] [--spans N] [--samples N] [--batch N]"
              " [--keep PATH] [--cache-mib N]\n",
              argv[0]);
      return 2;
    }
  }
  if (nspans < SPAN_PER_TRACE || batch < SPAN_PER_TRACE) {
    fprintf(stderr, "need at least %d spans and batch\n", SPAN_PER_TRACE);
    return 2;
  }
  batch -= batch % SPAN_PER_TRACE;
  nspans -= nspans % SPAN_PER_TRACE;

  for (int i = 0; i < NFUNCS; i++) {
    snprintf(fnames[i], sizeof fnames[i], "module%d::function_%d", i % 17, i);
    frames[i] = (hs_ing_frame){fnames[i], "src/module.c", i * 3 + 1, "app"};
  }
  for (int s = 0; s < NSTACKS; s++) {
    depth[s] = 8 + (uint32_t)(rnd() % 17);
    for (uint32_t d = 0; d < depth[s]; d++)
      /* Shared roots, varied leaves: like real call trees. */
      stacks[s][depth[s] - 1 - d] = frames[d < 3 ? d : (rnd() % NFUNCS)];
  }
  for (int e = 0; e < NENDPOINTS; e++)
    snprintf(epnames[e], sizeof epnames[e], "GET /api/v1/item%d", e);

  char dir[] = "/tmp/hs_bench_store_XXXXXX";
  char path[256];
  if (keep) {
    snprintf(path, sizeof path, "%s", keep);
  } else {
    if (!mkdtemp(dir)) {
      perror("mkdtemp");
      return 1;
    }
    snprintf(path, sizeof path, "%s/agent.db", dir);
  }
  char err[512];
  hs_store_sqlite_opts so = {0};
  so.cache_mib = cache_mib; /* 0: the store's default */
  hs_store *st = hs_store_open_sqlite(path, &so, err, sizeof err);
  if (!st) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }

  long ntraces = nspans / SPAN_PER_TRACE;
  hs_ing_span *spans = calloc((size_t)batch, sizeof *spans);
  long samples_per_batch = (long)((double)nsamples * batch / nspans) + 1;
  hs_ing_sample *smp = calloc((size_t)samples_per_batch, sizeof *smp);
  hs_ing_kv kv[2] = {{"http.method", "GET", 0},
                     {"http.status_code", NULL, 200}};
  if (!spans || !smp)
    return 1;
  long done_spans = 0, done_samples = 0;
  double t_spans = 0, t_samples = 0;
  while (done_spans < nspans) {
    long n = nspans - done_spans < batch ? nspans - done_spans : batch;
    for (long k = 0; k < n; k++) {
      long i = done_spans + k;
      long trace = i / SPAN_PER_TRACE, pos = i % SPAN_PER_TRACE;
      int64_t ts = trace_start(trace, ntraces);
      hs_ing_span *s = &spans[k];
      memset(s, 0, sizeof *s);
      s->trace_id_high = 0x1234;
      s->trace_id_low = (uint64_t)trace + 1;
      s->span_id = span_id_of(i);
      s->parent_id = pos ? span_id_of(i - pos) : 0;
      s->service = "shop";
      s->name = pos ? "db.query" : "http.request";
      s->resource = pos ? "SELECT * FROM items" : epnames[trace % NENDPOINTS];
      s->type = pos ? "db" : "web";
      s->start_ns = ts + pos * 1000000;
      s->duration_ns = pos ? 1000000 : 20000000 + (int64_t)(rnd() % 80000000);
      s->attrs = kv;
      s->nattrs = 2;
    }
    long m =
        (long)((double)nsamples * (done_spans + n) / nspans) - done_samples;
    if (m > samples_per_batch)
      m = samples_per_batch;
    for (long k = 0; k < m; k++) {
      long i = done_spans + (long)(rnd() % (uint64_t)n);
      long trace = i / SPAN_PER_TRACE;
      hs_ing_sample *x = &smp[k];
      memset(x, 0, sizeof *x);
      x->time_ns = trace_start(trace, ntraces);
      x->type = (rnd() & 1) ? HS_PT_CPU : HS_PT_WALL;
      x->value = 10000000;
      x->span_id = span_id_of(i);
      x->local_root_span_id = span_id_of(i - i % SPAN_PER_TRACE);
      x->trace_id_high = 0x1234;
      x->trace_id_low = (uint64_t)trace + 1;
      x->endpoint = epnames[trace % NENDPOINTS];
      x->thread_id = 1 + rnd() % 8;
      x->thread_name = "worker";
      int sidx = (int)(rnd() % NSTACKS);
      x->frames = stacks[sidx];
      x->nframes = depth[sidx];
    }
    /* Spans and samples as two requests (two transactions), as they
     * come from tracers and profilers, so each rate is its own. */
    hs_ing_batch bs = {.spans = spans, .nspans = (size_t)n};
    hs_ing_batch bp = {
        .samples = smp, .nsamples = (size_t)m, .service = "shop"};
    double t = now_s();
    if (hs_store_ingest(st, &bs, err, sizeof err) != HS_STORE_OK) {
      fprintf(stderr, "ingest: %s\n", err);
      return 1;
    }
    double t1 = now_s();
    if (hs_store_ingest(st, &bp, err, sizeof err) != HS_STORE_OK) {
      fprintf(stderr, "ingest: %s\n", err);
      return 1;
    }
    t_spans += t1 - t;
    t_samples += now_s() - t1;
    done_spans += n;
    done_samples += m;
  }
  printf("ingest spans: %ld in %.2f s: %.0f spans/s (batches of %ld)\n",
         done_spans, t_spans, done_spans / t_spans, batch);
  printf("ingest samples: %ld in %.2f s: %.0f samples/s (batches of ~%ld)\n",
         done_samples, t_samples, done_samples / t_samples, samples_per_batch);
  /* SQLite checkpoints the WAL in whichever commit crosses its threshold,
   * a span batch's or a sample batch's: the split above moves with row
   * sizes, the sum does not. */
  printf("ingest total: %.2f s for the spans and samples\n",
         t_spans + t_samples);
  printf("database: %.1f MB (page cache %d MiB)\n",
         (double)hs_store_sqlite_size(st) / 1e6,
         cache_mib > 0 ? cache_mib : 64);

  int reps = smoke ? 3 : 21;
  double *tq = calloc((size_t)reps, sizeof *tq);
  hs_query_opts o = {.with_children = 1};
  long nonempty = 0;
  for (int r = 0; r < reps; r++) {
    long root = (long)(rnd() % (uint64_t)ntraces) * SPAN_PER_TRACE;
    hs_query_hotspots h;
    double t = now_s();
    int rc =
        hs_query_span_hotspots(st, span_id_of(root), &o, &h, err, sizeof err);
    tq[r] = now_s() - t;
    if (rc != HS_STORE_OK) {
      fprintf(stderr, "hotspots: %s\n", err);
      return 1;
    }
    nonempty += h.cpu.samples + h.wall.samples > 0;
    hs_query_hotspots_free(&h);
  }
  qsort(tq, (size_t)reps, sizeof *tq, cmp_d);
  printf("span hotspots (root + 9 children): median %.2f ms, max %.2f ms"
         " (%d spans, %ld with samples)\n",
         tq[reps / 2] * 1e3, tq[reps - 1] * 1e3, reps, nonempty);
  int64_t samples_seen = 0;
  for (int r = 0; r < reps; r++) {
    int e = (int)(rnd() % NENDPOINTS);
    int64_t from = T0 + (int64_t)(rnd() % (HOURS - 1)) * HOUR_NS;
    hs_query_endpoint_profile p;
    double t = now_s();
    int rc = hs_query_endpoint_profile_query(st, "shop", epnames[e], from,
                                             from + HOUR_NS, NULL, &p, err,
                                             sizeof err);
    tq[r] = now_s() - t;
    if (rc != HS_STORE_OK) {
      fprintf(stderr, "endpoint profile: %s\n", err);
      return 1;
    }
    samples_seen += p.cpu.samples + p.wall.samples;
    hs_query_endpoint_profile_free(&p);
  }
  qsort(tq, (size_t)reps, sizeof *tq, cmp_d);
  printf("endpoint profile (1 hour): median %.2f ms, max %.2f ms (%d"
         " queries, %.0f samples each on average)\n",
         tq[reps / 2] * 1e3, tq[reps - 1] * 1e3, reps,
         (double)samples_seen / reps);
  free(tq);
  free(spans);
  free(smp);
  hs_store_close(st);
  if (!keep) {
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
      char p[300];
      snprintf(p, sizeof p, "%s%s", path, suffix[i]);
      unlink(p);
    }
    rmdir(dir);
  }
  return 0;
}
