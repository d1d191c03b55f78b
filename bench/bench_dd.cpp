// The baseline for bench_span: the same operations with Datadog's C++
// tracer (dd-opentracing-cpp, Debian's libdd-opentracing), in a separate
// process so that neither library's allocator state or caches help the other.
//
// The tracer comes from makeTracerAndEncoder: finished traces go to an
// in-memory encoder instead of a background HTTP writer, and the bench
// discards them (clearTraces) after each trace, without encoding -- the
// counterpart of hotspan's discarding sink. Sampling is left at the default
// (priority sampling, agent rate 1.0: every trace auto-kept).
//
// Variants (names match bench_span's where the operation is the same):
//   span               start a child of the trace's root (ChildOf), set two
//                      string tags, finish; a trace is a root and
//                      BENCH_CHILDREN_PER_TRACE children, and the root's
//                      start/finish is counted in the per-child time
//   datadog_inject     Inject (Datadog headers) into an HTTP-header carrier
//   datadog_extract    Extract from that carrier
//   datadog_roundtrip  inject into a fresh carrier, then extract
#include <datadog/opentracing.h>
#include <opentracing/propagation.h>
#include <opentracing/tracer.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <tuple>

#include "bench_common.h"

namespace {

namespace dd = datadog::opentracing;

class Writer : public ot::HTTPHeadersWriter {
public:
  explicit Writer(bench_carrier *c) : c_(c) {}
  ot::expected<void> Set(ot::string_view key,
                         ot::string_view value) const override {
    if (bench_carrier_set(c_, key.data(), key.size(), value.data(),
                          value.size()) != 0)
      return ot::make_unexpected(ot::invalid_carrier_error);
    return {};
  }

private:
  bench_carrier *c_;
};

class Reader : public ot::HTTPHeadersReader {
public:
  explicit Reader(const bench_carrier *c) : c_(c) {}
  ot::expected<void> ForeachKey(
      std::function<ot::expected<void>(ot::string_view, ot::string_view)> f)
      const override {
    for (int i = 0; i < c_->n; i++) {
      auto r = f(ot::string_view(c_->name[i], c_->name_len[i]),
                 ot::string_view(c_->value[i], c_->value_len[i]));
      if (!r)
        return r;
    }
    return {};
  }

private:
  const bench_carrier *c_;
};

struct Bench {
  std::shared_ptr<ot::Tracer> tracer;
  std::shared_ptr<dd::TraceEncoder> encoder;
  std::unique_ptr<ot::Span> prop_span; // context for the propagation variants
  bench_carrier carrier;
  bench_span_mallocs span_mallocs = {0, 0, 0, 0};
  long extract_failures = 0;
};

void run_span(Bench &b, long ops) {
  for (long i = 0; i < ops;) {
    uint64_t m0 = bench_malloc_calls();
    auto root = b.tracer->StartSpan("bench.request");
    uint64_t m1 = bench_malloc_calls();
    long n =
        ops - i < BENCH_CHILDREN_PER_TRACE ? ops - i : BENCH_CHILDREN_PER_TRACE;
    for (long j = 0; j < n; j++) {
      auto child =
          b.tracer->StartSpan("bench.child", {ot::ChildOf(&root->context())});
      child->SetTag("component", "bench");
      child->SetTag("peer.service", "inventory-db");
      child->Finish();
    }
    uint64_t m2 = bench_malloc_calls();
    root->Finish();
    root.reset();
    b.encoder->clearTraces();
    uint64_t m3 = bench_malloc_calls();
    i += n;
    b.span_mallocs.child += m2 - m1;
    b.span_mallocs.trace += (m1 - m0) + (m3 - m2);
    b.span_mallocs.children += (uint64_t)n;
    b.span_mallocs.traces++;
  }
}

void run_inject(Bench &b, long ops) {
  Writer w(&b.carrier);
  for (long i = 0; i < ops; i++) {
    bench_carrier_reset(&b.carrier);
    b.tracer->Inject(b.prop_span->context(), w);
  }
}

void run_extract(Bench &b, long ops) {
  Reader r(&b.carrier);
  for (long i = 0; i < ops; i++) {
    auto ctx = b.tracer->Extract(r);
    if (!ctx || *ctx == nullptr)
      b.extract_failures++;
  }
}

void run_roundtrip(Bench &b, long ops) {
  Writer w(&b.carrier);
  Reader r(&b.carrier);
  for (long i = 0; i < ops; i++) {
    bench_carrier_reset(&b.carrier);
    b.tracer->Inject(b.prop_span->context(), w);
    auto ctx = b.tracer->Extract(r);
    if (!ctx || *ctx == nullptr)
      b.extract_failures++;
  }
}

struct Variant {
  const char *name;
  void (*run)(Bench &, long);
  bench_series series;
  int count_mallocs;
  uint64_t mallocs;
  uint64_t counted_ops;
};

} // namespace

int main(int argc, char **argv) {
  bench_opts o;
  bench_parse_opts(argc, argv, &o);

  dd::TracerOptions topt;
  topt.service = "bench";
  topt.log_func = [](dd::LogLevel level, ot::string_view msg) {
    if (level == dd::LogLevel::error)
      std::fprintf(stderr, "dd: %.*s\n", (int)msg.size(), msg.data());
  };
  Bench b;
  std::tie(b.tracer, b.encoder) = dd::makeTracerAndEncoder(topt);
  if (!b.tracer) {
    std::fprintf(stderr, "makeTracerAndEncoder failed\n");
    return 1;
  }
  // The span variant must measure traces that reach the encoder.
  run_span(b, 3);
  if (b.encoder->pendingTraces() != 0) {
    std::fprintf(stderr, "dd encoder kept traces after clearTraces\n");
    return 1;
  }
  {
    auto root = b.tracer->StartSpan("bench.request");
    b.tracer->StartSpan("bench.child", {ot::ChildOf(&root->context())})
        ->Finish();
    root->Finish();
    if (b.encoder->pendingTraces() != 1) {
      std::fprintf(stderr, "dd tracer did not hand a finished trace to the "
                           "encoder\n");
      return 1;
    }
    b.encoder->clearTraces();
  }

  b.prop_span = b.tracer->StartSpan("bench.client");
  b.prop_span->SetTag("span.kind", "client");

  // A first round trip, checked: the benchmark must measure a working path.
  bench_carrier_init(&b.carrier);
  if (!b.tracer->Inject(b.prop_span->context(), Writer(&b.carrier))) {
    std::fprintf(stderr, "dd Inject failed\n");
    return 1;
  }
  bench_carrier_print(&b.carrier, "datadog");
  {
    auto ctx = b.tracer->Extract(Reader(&b.carrier));
    if (!ctx || *ctx == nullptr ||
        (*ctx)->ToTraceID() != b.prop_span->context().ToTraceID()) {
      std::fprintf(stderr, "dd Extract did not return the injected trace\n");
      return 1;
    }
  }

  Variant vs[] = {
      {"span", run_span, {}, 1, 0, 0},
      {"datadog_inject", run_inject, {}, 0, 0, 0},
      {"datadog_extract", run_extract, {}, 0, 0, 0},
      {"datadog_roundtrip", run_roundtrip, {}, 1, 0, 0},
  };
  const int nv = sizeof vs / sizeof vs[0];
  for (auto &v : vs)
    bench_series_init(&v.series, v.name, o.batches, o.ops);

  std::printf("info program=dd tracer=dd-opentracing-cpp children_per_trace=%d "
              "malloc_counting=%d\n",
              BENCH_CHILDREN_PER_TRACE, bench_malloc_counting());
  for (auto &v : vs)
    if (bench_selected(&o, v.name)) {
      if (v.run == run_extract) {
        bench_carrier_reset(&b.carrier);
        b.tracer->Inject(b.prop_span->context(), Writer(&b.carrier));
      }
      v.run(b, o.warmup);
    }
  b.span_mallocs = bench_span_mallocs{0, 0, 0, 0};

  // Interleaved: batch k of every variant runs before batch k+1 of any.
  for (int k = 0; k < o.batches; k++) {
    for (auto &v : vs) {
      if (!bench_selected(&o, v.name))
        continue;
      if (v.run == run_extract) { // extract reads what inject left
        bench_carrier_reset(&b.carrier);
        b.tracer->Inject(b.prop_span->context(), Writer(&b.carrier));
      }
      uint64_t m0 = bench_malloc_calls();
      uint64_t t0 = bench_now_ns();
      v.run(b, o.ops);
      uint64_t t1 = bench_now_ns();
      v.mallocs += bench_malloc_calls() - m0;
      v.counted_ops += (uint64_t)o.ops;
      bench_series_add(&v.series, t1 - t0);
    }
  }
  for (int i = 0; i < nv; i++)
    bench_series_report(&vs[i].series);
  if (bench_malloc_counting() && b.span_mallocs.traces > 0) {
    bench_report_count("mallocs_child_span", b.span_mallocs.child,
                       b.span_mallocs.children);
    bench_report_count("mallocs_trace", b.span_mallocs.trace,
                       b.span_mallocs.traces);
  }
  if (bench_malloc_counting())
    for (auto &v : vs)
      if (v.count_mallocs && v.counted_ops)
        bench_report_count((std::string("mallocs_") + v.name).c_str(),
                           v.mallocs, v.counted_ops);
  b.prop_span->Finish();
  if (b.extract_failures) {
    std::fprintf(stderr, "dd Extract failed %ld times\n", b.extract_failures);
    return 1;
  }
  return 0;
}
