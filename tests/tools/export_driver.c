/* Drives a tracer that exports to a backend, one command per stdin line, so
 * that a test script can change what the backend does between steps and
 * check what the application saw. Public API only.
 *
 *   export_driver [--exporters LIST] [--agent URL] [--otlp URL]
 *
 * Commands (one reply line each, JSON):
 *   spans N     run N traces of a root and a child with 5 tags each, on a
 *               tracer exporting as configured, then the same on a tracer
 *               exporting nowhere (baseline), interleaved in 10 rounds;
 *               reply {"ns_per_trace":x,"base_ns_per_trace":y}, the
 *               fastest round of each
 *   paced N R   N traces at R traces/s on the exporting tracer only, so
 *               that the tracer's writer keeps up and memory growth is
 *               the exporter's; reply {"seconds":x}
 *   tagged ID   one trace whose root carries tag "driver.id" = ID
 *   flush MS    hotspan_tracer_flush; {"rc":rc}
 *   stats       {"exporters":[{name, counters...}], "rss_kb":n}
 *   quit        hotspan_tracer_free of both; {"free_ms":x}, then exit 0
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hotspan/hotspan.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kb;
}

static void one_trace(hotspan_tracer *t, uint64_t i, const char *id) {
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.root = 1;
  o.kind = HOTSPAN_KIND_SERVER;
  o.resource = "GET /load";
  hotspan_span *root = hotspan_span_start(t, "http.request", &o);
  if (id != NULL)
    hotspan_span_set_tag_str(root, "driver.id", id);
  hotspan_span_options_init(&o);
  o.parent = root;
  hotspan_span *child = hotspan_span_start(t, "db.query", &o);
  hotspan_span_set_tag_str(child, "db.system", "postgresql");
  hotspan_span_set_tag_str(child, "db.statement", "SELECT * FROM t WHERE id=?");
  hotspan_span_set_tag_int(child, "db.rows", (int64_t)(i % 100));
  hotspan_span_set_tag_double(child, "db.cost", 1.5);
  hotspan_span_set_tag_bool(child, "db.cached", (int)(i & 1));
  hotspan_span_finish(child);
  hotspan_span_set_tag_str(root, "http.method", "GET");
  hotspan_span_set_tag_str(root, "http.url", "/load");
  hotspan_span_set_tag_int(root, "http.status_code", 200);
  hotspan_span_set_tag_str(root, "component", "driver");
  hotspan_span_set_tag_str(root, "peer.hostname", "localhost");
  hotspan_span_finish(root);
}

static double run(hotspan_tracer *t, uint64_t n) {
  uint64_t t0 = now_ns();
  for (uint64_t i = 0; i < n; i++)
    one_trace(t, i, NULL);
  return (double)(now_ns() - t0) / (double)(n ? n : 1);
}

static void print_stats(hotspan_tracer *t) {
  printf("{\"exporters\":[");
  for (size_t i = 0;; i++) {
    hotspan_exporter_stats s;
    s.struct_size = sizeof s;
    if (hotspan_tracer_get_exporter_stats(t, i, &s) != HOTSPAN_OK)
      break;
    printf("%s{\"name\":\"%s\",\"payloads_sent\":%" PRIu64
           ",\"items_sent\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
           ",\"retries\":%" PRIu64 ",\"dropped_budget\":%" PRIu64
           ",\"dropped_attempts\":%" PRIu64 ",\"dropped_rejected\":%" PRIu64
           ",\"dropped_shutdown\":%" PRIu64 ",\"items_dropped\":%" PRIu64
           ",\"bytes_queued\":%" PRIu64 ",\"bytes_budget\":%" PRIu64
           ",\"last_status\":%" PRId64 "}",
           i ? "," : "", s.name, s.payloads_sent, s.items_sent, s.bytes_sent,
           s.retries, s.dropped_budget, s.dropped_attempts, s.dropped_rejected,
           s.dropped_shutdown, s.items_dropped, s.bytes_queued, s.bytes_budget,
           s.last_status);
  }
  hotspan_tracer_stats ts;
  ts.struct_size = sizeof ts;
  hotspan_tracer_get_stats(t, &ts);
  printf("],\"spans_finished\":%" PRIu64 ",\"spans_dropped\":%" PRIu64
         ",\"rss_kb\":%ld}\n",
         ts.spans_finished, ts.spans_dropped, rss_kb());
}

int main(int argc, char **argv) {
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "export-driver";
  cfg.env = "test";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--exporters") == 0)
      cfg.exporters = argv[i + 1];
    else if (strcmp(argv[i], "--agent") == 0)
      cfg.agent_url = argv[i + 1];
    else if (strcmp(argv[i], "--otlp") == 0)
      cfg.otlp_endpoint = argv[i + 1];
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  hotspan_tracer *t = NULL, *base = NULL;
  if (hotspan_tracer_new(&cfg, &t) != HOTSPAN_OK)
    return 1;
  hotspan_config bcfg;
  hotspan_config_init(&bcfg);
  bcfg.ignore_environment = 1;
  bcfg.exporters = "none";
  if (hotspan_tracer_new(&bcfg, &base) != HOTSPAN_OK)
    return 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
    unsigned long long n = 0, rate = 0;
    char arg[128];
    if (sscanf(line, "spans %llu", &n) == 1) {
      /* Ten interleaved rounds; the fastest of each side is its cost:
       * a round slowed down by another process on the machine says
       * nothing about the exporter, and taking the minimum of both sides
       * keeps the comparison fair. */
      double a = 0, b = 0;
      for (int r = 0; r < 10; r++) {
        double x = run(t, n / 10), y = run(base, n / 10);
        a = r == 0 || x < a ? x : a;
        b = r == 0 || y < b ? y : b;
      }
      printf("{\"ns_per_trace\":%.1f,\"base_ns_per_trace\":%.1f}\n", a, b);
    } else if (sscanf(line, "paced %llu %llu", &n, &rate) == 2 && rate > 0) {
      uint64_t t0 = now_ns();
      for (uint64_t i = 0; i < n; i++) {
        one_trace(t, i, NULL);
        uint64_t due = t0 + (i + 1) * 1000000000ull / rate;
        uint64_t now = now_ns();
        if (due > now + 200000) {
          struct timespec d = {0, (long)(due - now)};
          nanosleep(&d, NULL);
        }
      }
      printf("{\"seconds\":%.2f}\n", (double)(now_ns() - t0) / 1e9);
    } else if (sscanf(line, "tagged %127s", arg) == 1) {
      one_trace(t, 0, arg);
      printf("{\"ok\":true}\n");
    } else if (sscanf(line, "flush %llu", &n) == 1) {
      printf("{\"rc\":%d}\n", hotspan_tracer_flush(t, (int)n));
    } else if (strncmp(line, "stats", 5) == 0) {
      print_stats(t);
    } else if (strncmp(line, "quit", 4) == 0) {
      uint64_t t0 = now_ns();
      hotspan_tracer_free(t);
      double ms = (double)(now_ns() - t0) / 1e6;
      hotspan_tracer_free(base);
      printf("{\"free_ms\":%.1f}\n", ms);
      return 0;
    } else {
      printf("{\"error\":\"unknown command\"}\n");
    }
  }
  hotspan_tracer_free(t);
  hotspan_tracer_free(base);
  return 0;
}
