/* demo_server: a small traced and profiled service that drives its own
 * load, for trying hotspan end to end (scripts/demo.sh).
 *
 * K worker threads serve requests in a loop for N seconds, alternating
 * between two endpoints:
 *
 *   GET /checkout  CPU-bound: the root span parses the cart, its child
 *                  span "pricing" runs compute_price_rules(), a hot loop.
 *   GET /report    mostly waiting: its child span "ledger.fetch" sits in
 *                  wait_for_ledger(), which sleeps and polls; one request
 *                  in ten fails.
 *
 * Every request is a server span whose resource is the endpoint, activated
 * on the worker's thread, so the profiler's samples carry the span and the
 * endpoint. Traces go where the tracer's default exporters send them
 * (hotspan-agent or a Datadog Agent at DD_TRACE_AGENT_URL, default
 * http://localhost:8126); the profiler writes a profile every 2 seconds
 * so that a short run already has several.
 *
 *   ./demo_server [--seconds N] [--threads K] [--service NAME] [--work W]
 *
 * --work multiplies the checkout's pricing work (default 1): longer
 * checkouts get more profile samples each.
 *
 * Public API only. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotspan/hotspan.h"

static hotspan_tracer *tracer;
static atomic_int stop;
static atomic_long served_checkout, served_report, failed_report;
static long work_scale = 1; /* --work */

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The functions the demo is about must stay frames of their own, under
 * their own names: not inlined, and not cloned by GCC's interprocedural
 * optimisations (which would rename compute_price_rules to
 * compute_price_rules.isra.0). */
#if defined(__clang__)
#define DEMO_FRAME __attribute__((noinline))
#else
#define DEMO_FRAME __attribute__((noinline, noclone))
#endif

/* A result the compiler must compute: keeps the loops below from being
 * optimised away. */
static volatile double sink;

/* The checkout's hot spot: pure CPU, proportional to rules. Not inlined so
 * that it is a frame of its own in every profile. */
DEMO_FRAME static double compute_price_rules(long rules) {
  double price = 100.0;
  for (long i = 0; i < rules; i++) {
    price = price * 1.0000001 + (double)(i % 7) * 0.001;
    if (price > 1e9)
      price /= 3.0;
  }
  sink = price;
  return price;
}

/* A little CPU before the pricing starts. */
DEMO_FRAME static void parse_cart(long items) {
  double total = 0;
  for (long i = 0; i < items; i++)
    total += (double)(i * 31 % 97);
  sink = total;
}

/* The report's wait: polls a "ledger" that answers after ms
 * milliseconds, sleeping between polls, as a client of a slow service
 * would. */
DEMO_FRAME static void wait_for_ledger(int ms) {
  uint64_t until = mono_ms() + (uint64_t)ms;
  struct timespec step = {0, 2 * 1000 * 1000};
  while (mono_ms() < until)
    nanosleep(&step, NULL);
}

DEMO_FRAME static void format_report(long rows) {
  parse_cart(rows);
}

/* A cheap per-thread PRNG (xorshift) for request sizes. */
static uint32_t next_rand(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static hotspan_span *start_root(const char *endpoint) {
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.kind = HOTSPAN_KIND_SERVER;
  o.type = "web";
  o.root = 1;
  o.activate = 1;
  o.resource = endpoint;
  hotspan_span *s = hotspan_span_start(tracer, "http.request", &o);
  hotspan_span_set_resource(s, endpoint); /* the trace's endpoint */
  hotspan_span_set_tag_str(s, "http.method", "GET");
  hotspan_span_set_tag_str(s, "http.route", endpoint + 4);
  return s;
}

static hotspan_span *start_child(const char *name) {
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.activate = 1; /* child of the active span, and active itself */
  return hotspan_span_start(tracer, name, &o);
}

/* The calling thread's CPU time, or the monotonic clock, in ns. */
static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void serve_checkout(uint32_t *rnd) {
  hotspan_span *req = start_root("GET /checkout");
  /* The request's own CPU and wall time, measured by the thread itself,
   * go into the root span as demo.cpu_ns and demo.wall_ns: the truth the
   * profile's CPU/wall ratio for the request can be compared with
   * (tests/scripts/test_demo_e2e.sh). */
  int64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  int64_t wall0 = clock_ns(CLOCK_MONOTONIC);
  parse_cart(200000 + next_rand(rnd) % 100000);
  hotspan_span *pricing = start_child("pricing");
  /* 10..40 million iterations (times --work): some requests are much
   * slower. */
  compute_price_rules(work_scale *
                      (10000000L + (long)(next_rand(rnd) % 30000000u)));
  hotspan_span_finish(pricing);
  hotspan_span_set_tag_int(req, "http.status_code", 200);
  hotspan_span_set_tag_int(req, "demo.cpu_ns",
                           clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0);
  hotspan_span_set_tag_int(req, "demo.wall_ns",
                           clock_ns(CLOCK_MONOTONIC) - wall0);
  hotspan_span_finish(req);
  atomic_fetch_add(&served_checkout, 1);
}

static void serve_report(uint32_t *rnd) {
  hotspan_span *req = start_root("GET /report");
  hotspan_span *fetch = start_child("ledger.fetch");
  wait_for_ledger(30 + (int)(next_rand(rnd) % 60));
  int fail = next_rand(rnd) % 10 == 0;
  if (fail)
    hotspan_span_set_error(fetch, "LedgerTimeout",
                           "the ledger did not answer in time", NULL);
  hotspan_span_finish(fetch);
  format_report(100000);
  hotspan_span_set_tag_int(req, "http.status_code", fail ? 504 : 200);
  if (fail) {
    hotspan_span_set_error(req, "LedgerTimeout", "upstream timeout", NULL);
    atomic_fetch_add(&failed_report, 1);
  }
  hotspan_span_finish(req);
  atomic_fetch_add(&served_report, 1);
}

static void *worker(void *arg) {
  uint32_t rnd = 2463534242u ^ (uint32_t)(uintptr_t)arg * 2654435761u;
  for (unsigned long n = (uintptr_t)arg; !atomic_load(&stop); n++) {
    if (n % 2 == 0)
      serve_checkout(&rnd);
    else
      serve_report(&rnd);
  }
  return NULL;
}

static int positive(const char *s, long max, long *out) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 1 || v > max)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  long seconds = 8, threads = 4;
  const char *service = "demo-shop";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--seconds") == 0 && v && positive(v, 3600, &seconds) == 0)
      i++;
    else if (strcmp(a, "--threads") == 0 && v && positive(v, 64, &threads) == 0)
      i++;
    else if (strcmp(a, "--service") == 0 && v && *v)
      service = argv[++i];
    else if (strcmp(a, "--work") == 0 && v &&
             positive(v, 100, &work_scale) == 0)
      i++;
    else {
      fprintf(stderr, "usage: demo_server [--seconds N (1..3600)] [--threads K "
                      "(1..64)] [--service NAME] [--work W (1..100)]\n");
      return 2;
    }
  }

  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = service;
  cfg.version = "1.0.0";
  int rc = hotspan_tracer_new(&cfg, &tracer);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_tracer_new: %s\n", hotspan_strerror(rc));
    return 1;
  }
  hotspan_profiler_config pc;
  hotspan_profiler_config_init(&pc);
  pc.export_period_ms = 2000;
  rc = hotspan_profiler_start(&pc);
  if (rc != HOTSPAN_OK && rc != HOTSPAN_ESTATE) /* ESTATE: already on */
    fprintf(stderr, "hotspan_profiler_start: %s (running without profiles)\n",
            hotspan_strerror(rc));

  pthread_t tids[64];
  for (long i = 0; i < threads; i++)
    if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
      fprintf(stderr, "cannot start worker %ld\n", i);
      threads = i;
      break;
    }
  uint64_t end = mono_ms() + (uint64_t)seconds * 1000u;
  while (mono_ms() < end) {
    struct timespec t = {0, 100 * 1000 * 1000};
    nanosleep(&t, NULL);
  }
  atomic_store(&stop, 1);
  for (long i = 0; i < threads; i++)
    pthread_join(tids[i], NULL);

  hotspan_profiler_stop(); /* writes the last profile */
  hotspan_tracer_flush(tracer, 5000);
  hotspan_tracer_free(tracer);
  printf("demo_server: %ld s, %ld threads: %ld GET /checkout, %ld GET "
         "/report (%ld failed)\n",
         seconds, threads, atomic_load(&served_checkout),
         atomic_load(&served_report), atomic_load(&failed_report));
  return 0;
}
