/* A program that says who it is only in code: service, env and version in
 * hotspan_config, nothing in the environment. The profiler is started
 * from the environment (HOTSPAN_PROFILING_ENABLED=1) before main(), so
 * before the tracer exists: the case where a profiler that resolved its
 * identity once would report the program's name.
 *
 *   identity_app <agent-url>
 *
 * Serves one request, "GET /checkout", burning about 400 ms of CPU in
 * burn_checkout() under its span, then flushes, stops the profiler (which
 * uploads the last profiles) and exits. */
#include <stdio.h>
#include <time.h>

#include "hotspan/hotspan.h"

static volatile double sink;

static unsigned long long cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (unsigned long long)t.tv_sec * 1000000000u +
         (unsigned long long)t.tv_nsec;
}

__attribute__((noinline)) static void burn_checkout(unsigned ms) {
  unsigned long long until = cpu_ns() + ms * 1000000ull;
  double x = 1;
  while (cpu_ns() < until)
    for (int i = 0; i < 100000; i++)
      x = x * 1.0000001 + 0.25;
  sink = x;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: identity_app <agent-url>\n");
    return 2;
  }
  if (!hotspan_profiler_running()) {
    fprintf(stderr, "identity_app: the profiler did not start\n");
    return 1;
  }
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "checkout";
  cfg.env = "prod-eu";
  cfg.version = "2.4.1";
  cfg.agent_url = argv[1];
  cfg.sample_rate = 1.0;
  hotspan_tracer *t = NULL;
  if (hotspan_tracer_new(&cfg, &t) != HOTSPAN_OK)
    return 1;
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.activate = 1;
  o.kind = HOTSPAN_KIND_SERVER;
  hotspan_span *s = hotspan_span_start(t, "http.request", &o);
  hotspan_span_set_resource(s, "GET /checkout");
  hotspan_span_set_endpoint(s, "GET /checkout");
  burn_checkout(400);
  hotspan_span_finish(s);
  if (hotspan_tracer_flush(t, 5000) != HOTSPAN_OK)
    return 1;
  if (hotspan_profiler_stop() != HOTSPAN_OK)
    return 1;
  hotspan_tracer_free(t);
  return 0;
}
