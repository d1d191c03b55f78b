/* hotspan tracer benchmarks: span start/finish, enter/leave, propagation.
 * bench_dd runs the same span and Datadog-propagation operations with
 * Datadog's C++ tracer; bench/run.sh runs both and prints the ratios.
 *
 * Variants:
 *   span               start a child of the active span (the trace's root),
 *                      set two string tags, finish; a trace is a root and
 *                      BENCH_CHILDREN_PER_TRACE children, sampled (rate 1,
 *                      no rate limit), handed to a sink that discards it;
 *                      the root's start/finish is counted in the per-child
 *                      time, as in bench_dd
 *   enter_leave        hotspan_enter + hotspan_leave, alternating between
 *                      two spans (an event loop switching requests)
 *   call_pair          baseline for enter_leave: two out-of-line calls that
 *                      swap a thread-local pointer, the least any
 *                      enter/leave through a library call can cost
 *   <style>_inject     hotspan_inject into an HTTP-header carrier
 *   <style>_extract    hotspan_extract from that carrier
 *   <style>_roundtrip  inject into a fresh carrier, then extract
 * with <style> "w3c" (tracecontext) and "datadog".
 *
 * Steady-state heap use: every allocation call of the process is counted
 * during the measured batches (bench/malloc_count.c); "count mallocs_<v>"
 * lines report calls per operation, and for the span variant separately
 * per child span (mallocs_child_span: start, tags, finish) and per trace
 * (mallocs_trace: root start and finish, handing the trace on). --check
 * fails the run if the child-span or enter/leave counts are not zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "hotspan/hotspan.h"
#include "tracer/internal.h"

typedef struct bench {
  hotspan_tracer *tracer;       /* spans; styles: both */
  hotspan_tracer *w3c;          /* propagation: tracecontext only */
  hotspan_tracer *dd;           /* propagation: datadog only */
  hotspan_span *switch_span[2]; /* enter/leave targets */
  hotspan_span *w3c_span;       /* context to inject, per style */
  hotspan_span *dd_span;
  bench_carrier carrier;
  bench_span_mallocs span_mallocs;
  long failures;
} bench;

/* ---------------------------------------------------------------- carrier */

static int carrier_set(void *carrier, const char *name, const char *value) {
  return bench_carrier_set(carrier, name, strlen(name), value, strlen(value));
}

static int carrier_foreach(void *carrier, hotspan_header_visit_fn visit,
                           void *arg) {
  const bench_carrier *c = carrier;
  for (int i = 0; i < c->n; i++)
    if (visit(arg, c->name[i], c->name_len[i], c->value[i], c->value_len[i]))
      break;
  return 0;
}

static const hotspan_carrier_writer writer = {carrier_set};
static const hotspan_carrier_reader reader = {carrier_foreach};

/* ---------------------------------------------------------------- setup */

static hotspan_tracer *new_tracer(const char *styles) {
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "bench";
  cfg.sample_rate = 1.0;
  cfg.rate_limit = 0; /* keep every trace: measure the sampled path */
  cfg.propagation_style_inject = styles;
  cfg.propagation_style_extract = styles;
  cfg.log_level = 1;
  cfg.ignore_environment = 1;
  cfg.exporters = "none"; /* the tracer core only (see bench_export_*) */
  hotspan_tracer *t = NULL;
  int rc = hotspan_tracer_new(&cfg, &t);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_tracer_new: %s\n", hotspan_strerror(rc));
    exit(1);
  }
  /* Kept traces go through the whole pipeline (chunk, writer queue, writer
   * thread) and are dropped by the last stage only. */
  hs_trace_sink *sink = hs_sink_discard_new();
  if (sink == NULL || hs_tracer_add_sink(t, sink) != HOTSPAN_OK) {
    fprintf(stderr, "cannot add the discarding sink\n");
    exit(1);
  }
  return t;
}

static hotspan_span *new_root(hotspan_tracer *t, const char *name,
                              int activate) {
  hotspan_span_options so;
  hotspan_span_options_init(&so);
  so.root = 1;
  so.activate = activate;
  hotspan_span *s = hotspan_span_start(t, name, &so);
  if (s == NULL) {
    fprintf(stderr, "hotspan_span_start(%s) failed\n", name);
    exit(1);
  }
  return s;
}

/* The benchmark must measure a working path: one checked round trip. */
/* Every span batch starts from the same state: the writer has handed all
 * earlier traces to the sink and their spans are back in the pools.
 * Outside the timed region. */
static void drain(bench *b) {
  if (hotspan_tracer_flush(b->tracer, 10000) != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_tracer_flush timed out\n");
    exit(1);
  }
}

static void check_roundtrip(bench *b, hotspan_tracer *t, hotspan_span *s,
                            const char *label) {
  bench_carrier_reset(&b->carrier);
  int rc = hotspan_inject(t, s, &writer, &b->carrier);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "%s inject: %s\n", label, hotspan_strerror(rc));
    exit(1);
  }
  bench_carrier_print(&b->carrier, label);
  hotspan_context ctx;
  rc = hotspan_extract(t, &reader, &b->carrier, &ctx);
  if (rc != HOTSPAN_OK || ctx.trace_id_low != hotspan_span_trace_id_low(s) ||
      ctx.span_id != hotspan_span_id(s)) {
    fprintf(stderr, "%s extract did not return the injected context (%s)\n",
            label, hotspan_strerror(rc));
    exit(1);
  }
}

/* ---------------------------------------------------------------- variants */

static void run_span(bench *b, long ops) {
  static const char *const tags[2][2] = {{"component", "bench"},
                                         {"peer.service", "inventory-db"}};
  for (long i = 0; i < ops;) {
    /* Allocation calls are counted apart for the children (the per-span
     * contract) and for the trace around them (root, flush to the sink). */
    uint64_t m0 = bench_malloc_calls();
    hotspan_span *root = new_root(b->tracer, "bench.request", 1);
    uint64_t m1 = bench_malloc_calls();
    long n =
        ops - i < BENCH_CHILDREN_PER_TRACE ? ops - i : BENCH_CHILDREN_PER_TRACE;
    for (long j = 0; j < n; j++) {
      hotspan_span *child = hotspan_span_start(b->tracer, "bench.child", NULL);
      if (child == NULL) {
        b->failures++;
        continue;
      }
      hotspan_span_set_tag_str(child, tags[0][0], tags[0][1]);
      hotspan_span_set_tag_str(child, tags[1][0], tags[1][1]);
      hotspan_span_finish(child);
    }
    uint64_t m2 = bench_malloc_calls();
    hotspan_span_finish(root);
    uint64_t m3 = bench_malloc_calls();
    i += n;
    b->span_mallocs.child += m2 - m1;
    b->span_mallocs.trace += (m1 - m0) + (m3 - m2);
    b->span_mallocs.children += (uint64_t)n;
    b->span_mallocs.traces++;
  }
}

/* Grows the span pool to what a batch of run_span can need at once: pools
 * grow to the peak number of live spans (tracer/pool.c), and that peak
 * depends on when the writer thread gets to release a batch's spans, up to
 * every span of the batch. With n spans alive at once here, later batches
 * of at most n - 512 spans never find the pool empty (the writer's and
 * this thread's caches keep up to 256 objects between them), so the
 * steady-state malloc count does not depend on scheduling. */
static void grow_span_pool(bench *b, long n) {
  hotspan_span *root = new_root(b->tracer, "bench.pool", 0);
  hotspan_span **open = calloc((size_t)n, sizeof *open);
  if (open == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  hotspan_span_options so;
  hotspan_span_options_init(&so);
  so.parent = root;
  for (long i = 0; i < n; i++)
    open[i] = hotspan_span_start(b->tracer, "bench.pool.child", &so);
  for (long i = 0; i < n; i++)
    hotspan_span_finish(open[i]);
  hotspan_span_finish(root);
  free(open);
}

static void run_enter_leave(bench *b, long ops) {
  for (long i = 0; i < ops; i++) {
    hotspan_span *prev = hotspan_enter(b->switch_span[i & 1]);
    hotspan_leave(prev);
  }
}

static _Thread_local void *baseline_current;

__attribute__((noinline)) static void *baseline_enter(void *s) {
  void *prev = baseline_current;
  baseline_current = s;
  __asm__ volatile("" ::: "memory");
  return prev;
}

__attribute__((noinline)) static void baseline_leave(void *prev) {
  baseline_current = prev;
  __asm__ volatile("" ::: "memory");
}

static void run_call_pair(bench *b, long ops) {
  for (long i = 0; i < ops; i++)
    baseline_leave(baseline_enter(b->switch_span[i & 1]));
}

static void inject_n(bench *b, hotspan_tracer *t, hotspan_span *s, long ops) {
  for (long i = 0; i < ops; i++) {
    bench_carrier_reset(&b->carrier);
    if (hotspan_inject(t, s, &writer, &b->carrier) != HOTSPAN_OK)
      b->failures++;
  }
}

static void extract_n(bench *b, hotspan_tracer *t, long ops) {
  hotspan_context ctx;
  for (long i = 0; i < ops; i++)
    if (hotspan_extract(t, &reader, &b->carrier, &ctx) != HOTSPAN_OK)
      b->failures++;
}

static void roundtrip_n(bench *b, hotspan_tracer *t, hotspan_span *s,
                        long ops) {
  hotspan_context ctx;
  for (long i = 0; i < ops; i++) {
    bench_carrier_reset(&b->carrier);
    if (hotspan_inject(t, s, &writer, &b->carrier) != HOTSPAN_OK ||
        hotspan_extract(t, &reader, &b->carrier, &ctx) != HOTSPAN_OK)
      b->failures++;
  }
}

static void run_w3c_inject(bench *b, long ops) {
  inject_n(b, b->w3c, b->w3c_span, ops);
}
static void run_w3c_extract(bench *b, long ops) {
  extract_n(b, b->w3c, ops);
}
static void run_w3c_roundtrip(bench *b, long ops) {
  roundtrip_n(b, b->w3c, b->w3c_span, ops);
}
static void run_dd_inject(bench *b, long ops) {
  inject_n(b, b->dd, b->dd_span, ops);
}
static void run_dd_extract(bench *b, long ops) {
  extract_n(b, b->dd, ops);
}
static void run_dd_roundtrip(bench *b, long ops) {
  roundtrip_n(b, b->dd, b->dd_span, ops);
}

/* Extract variants read what one inject of their style left. */
static void prepare_extract(bench *b, void (*run)(bench *, long)) {
  if (run == run_w3c_extract)
    inject_n(b, b->w3c, b->w3c_span, 1);
  else if (run == run_dd_extract)
    inject_n(b, b->dd, b->dd_span, 1);
}

typedef struct variant {
  const char *name;
  void (*run)(bench *, long);
  int ops_factor;    /* cheap variants run more ops per batch */
  int count_mallocs; /* 1: report; 2: report and --check it */
  bench_series series;
  uint64_t mallocs, counted_ops;
} variant;

int main(int argc, char **argv) {
  bench_opts o;
  bench_parse_opts(argc, argv, &o);

  bench b;
  memset(&b, 0, sizeof b);
  b.tracer = new_tracer("datadog,tracecontext");
  b.w3c = new_tracer("tracecontext");
  b.dd = new_tracer("datadog");
  bench_carrier_init(&b.carrier);
  b.switch_span[0] = new_root(b.tracer, "bench.conn.a", 0);
  b.switch_span[1] = new_root(b.tracer, "bench.conn.b", 0);
  b.w3c_span = new_root(b.w3c, "bench.client", 0);
  b.dd_span = new_root(b.dd, "bench.client", 0);
  check_roundtrip(&b, b.w3c, b.w3c_span, "w3c");
  check_roundtrip(&b, b.dd, b.dd_span, "datadog");

  variant vs[] = {
      {"span", run_span, 1, 1, {0}, 0, 0},
      {"enter_leave", run_enter_leave, 10, 2, {0}, 0, 0},
      {"call_pair", run_call_pair, 10, 0, {0}, 0, 0},
      {"w3c_inject", run_w3c_inject, 1, 0, {0}, 0, 0},
      {"w3c_extract", run_w3c_extract, 1, 0, {0}, 0, 0},
      {"w3c_roundtrip", run_w3c_roundtrip, 1, 1, {0}, 0, 0},
      {"datadog_inject", run_dd_inject, 1, 0, {0}, 0, 0},
      {"datadog_extract", run_dd_extract, 1, 0, {0}, 0, 0},
      {"datadog_roundtrip", run_dd_roundtrip, 1, 1, {0}, 0, 0},
  };
  const int nv = (int)(sizeof vs / sizeof vs[0]);
  for (int i = 0; i < nv; i++)
    bench_series_init(&vs[i].series, vs[i].name, o.batches,
                      o.ops * vs[i].ops_factor);

  printf("info program=hotspan tracer=hotspan-%s children_per_trace=%d "
         "malloc_counting=%d\n",
         HOTSPAN_VERSION_STRING, BENCH_CHILDREN_PER_TRACE,
         bench_malloc_counting());
  for (int i = 0; i < nv; i++)
    if (bench_selected(&o, vs[i].name)) {
      prepare_extract(&b, vs[i].run);
      vs[i].run(&b, o.warmup * vs[i].ops_factor);
      if (vs[i].run == run_span)
        grow_span_pool(&b, vs[i].series.ops + 512);
    }
  drain(&b);
  memset(&b.span_mallocs, 0, sizeof b.span_mallocs);

  /* Interleaved: batch k of every variant runs before batch k+1 of any. */
  for (int k = 0; k < o.batches; k++) {
    for (int i = 0; i < nv; i++) {
      variant *v = &vs[i];
      if (!bench_selected(&o, v->name))
        continue;
      prepare_extract(&b, v->run);
      uint64_t m0 = bench_malloc_calls();
      uint64_t t0 = bench_now_ns();
      v->run(&b, v->series.ops);
      uint64_t t1 = bench_now_ns();
      v->mallocs += bench_malloc_calls() - m0;
      v->counted_ops += (uint64_t)v->series.ops;
      bench_series_add(&v->series, t1 - t0);
      if (v->run == run_span)
        drain(&b);
    }
  }
  for (int i = 0; i < nv; i++)
    bench_series_report(&vs[i].series);

  int status = 0;
  if (bench_malloc_counting()) {
    bench_span_mallocs *sm = &b.span_mallocs;
    if (sm->traces > 0) {
      bench_report_count("mallocs_child_span", sm->child, sm->children);
      bench_report_count("mallocs_trace", sm->trace, sm->traces);
    }
    for (int i = 0; i < nv; i++) {
      variant *v = &vs[i];
      if (!v->count_mallocs || v->counted_ops == 0)
        continue;
      char name[64];
      snprintf(name, sizeof name, "mallocs_%s", v->name);
      bench_report_count(name, v->mallocs, v->counted_ops);
      if (o.check && v->count_mallocs == 2 && v->mallocs != 0) {
        fprintf(stderr, "FAIL: %s called malloc %llu times in steady state\n",
                v->name, (unsigned long long)v->mallocs);
        status = 1;
      }
    }
    if (o.check && sm->child != 0) {
      fprintf(stderr,
              "FAIL: child spans called malloc %llu times in steady state\n",
              (unsigned long long)sm->child);
      status = 1;
    }
  } else if (o.check) {
    printf("info malloc check skipped: allocation counting is not available "
           "in this build\n");
  }

  hotspan_tracer_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  if (hotspan_tracer_get_stats(b.tracer, &st) == HOTSPAN_OK)
    printf("info stats spans_created=%llu spans_finished=%llu "
           "traces_kept=%llu traces_dropped=%llu traces_rate_limited=%llu "
           "chunks_queue_dropped=%llu\n",
           (unsigned long long)st.spans_created,
           (unsigned long long)st.spans_finished,
           (unsigned long long)st.traces_kept,
           (unsigned long long)st.traces_dropped,
           (unsigned long long)st.traces_rate_limited,
           (unsigned long long)st.chunks_queue_dropped);

  hotspan_span_finish(b.switch_span[0]);
  hotspan_span_finish(b.switch_span[1]);
  hotspan_span_finish(b.w3c_span);
  hotspan_span_finish(b.dd_span);
  hotspan_tracer_free(b.dd);
  hotspan_tracer_free(b.w3c);
  hotspan_tracer_free(b.tracer);
  if (b.failures) {
    fprintf(stderr, "FAIL: %ld operations returned an error\n", b.failures);
    status = 1;
  }
  return status;
}
