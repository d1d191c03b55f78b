/* hello_trace: one traced request, start to finish, with the public API.
 *
 * It continues a trace that arrives in a W3C traceparent header, serves a
 * request in a server span with two child spans (one fails), propagates the
 * context to a downstream call, and then prints the trace that the file
 * sink wrote, as a tree.
 *
 *   ./hello_trace [output-dir]     (default: a new temporary directory)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotspan/hotspan.h"

static void busy_ms(int ms) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000 +
               (now.tv_nsec - start.tv_nsec) / 1000000 <
           ms);
}

static int print_header(void *carrier, const char *name, const char *value) {
  (void)carrier;
  printf("  -> %s: %s\n", name, value);
  return 0;
}

/* Prints traces.jsonl as "name  resource  duration" lines, children
 * indented under their parents (small traces only: quadratic). */
typedef struct line {
  char span_id[17], parent_id[17], text[512];
  int printed;
} line;

static const char *json_field(const char *json, const char *key, char *out,
                              size_t n) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(json, pat);
  out[0] = '\0';
  if (p == NULL)
    return out;
  p += strlen(pat);
  size_t i = 0;
  if (*p == '"') {
    for (p++; *p && *p != '"' && i + 1 < n; p++)
      out[i++] = *p;
  } else {
    for (; *p && *p != ',' && *p != '}' && i + 1 < n; p++)
      out[i++] = *p;
  }
  out[i] = '\0';
  return out;
}

static void print_tree(line *l, size_t n, const char *parent, int depth) {
  for (size_t i = 0; i < n; i++) {
    if (l[i].printed || strcmp(l[i].parent_id, parent) != 0)
      continue;
    l[i].printed = 1;
    printf("%*s%s\n", depth * 2, "", l[i].text);
    print_tree(l, n, l[i].span_id, depth + 1);
  }
}

int main(int argc, char **argv) {
  char dir[256];
  if (argc > 1) {
    snprintf(dir, sizeof dir, "%s", argv[1]);
  } else {
    snprintf(dir, sizeof dir, "/tmp/hotspan-hello-XXXXXX");
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 1;
    }
  }

  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "hello-service";
  cfg.version = "1.0.0";
  cfg.output_dir = dir;
  hotspan_tracer *tracer = NULL;
  int rc = hotspan_tracer_new(&cfg, &tracer);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_tracer_new: %s\n", hotspan_strerror(rc));
    return 1;
  }

  /* An incoming request, as an HTTP server would see its headers. */
  const char *incoming[] = {
      "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "User-Agent", "curl/8.0"};
  hotspan_context parent;
  rc = hotspan_extract_pairs(tracer, incoming, 2, &parent);
  printf("incoming context: %s\n", rc == HOTSPAN_OK ? "continued" : "new");

  hotspan_span_options opts;
  hotspan_span_options_init(&opts);
  opts.remote_parent = rc == HOTSPAN_OK ? &parent : NULL;
  opts.kind = HOTSPAN_KIND_SERVER;
  opts.type = "web";
  opts.activate = 1;
  hotspan_span *req = hotspan_span_start(tracer, "http.request", &opts);
  hotspan_span_set_resource(req, "GET /hello"); /* the endpoint */
  hotspan_span_set_tag_str(req, "http.method", "GET");

  hotspan_span_options child;
  hotspan_span_options_init(&child);
  child.activate = 1;
  hotspan_span *render = hotspan_span_start(tracer, "render", &child);
  busy_ms(20);
  hotspan_span_finish(render);

  child.kind = HOTSPAN_KIND_CLIENT;
  child.resource = "GET /quotes";
  hotspan_span *call = hotspan_span_start(tracer, "http.client", &child);
  printf("outgoing headers:\n");
  hotspan_carrier_writer w = {print_header};
  hotspan_inject(tracer, call, &w, NULL);
  busy_ms(5);
  hotspan_span_set_error(call, "TimeoutError", "quotes service timed out",
                         NULL);
  hotspan_span_finish(call);

  hotspan_span_set_tag_int(req, "http.status_code", 200);
  hotspan_span_finish(req);
  hotspan_tracer_free(tracer); /* flushes to DIR/traces.jsonl */

  char path[512];
  snprintf(path, sizeof path, "%s/traces.jsonl", dir);
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  line lines[64];
  size_t n = 0;
  char buf[8192], name[128], res[128], dur[32], err[8];
  while (n < 64 && fgets(buf, sizeof buf, f) != NULL) {
    json_field(buf, "span_id", lines[n].span_id, sizeof lines[n].span_id);
    json_field(buf, "parent_id", lines[n].parent_id, sizeof lines[n].parent_id);
    json_field(buf, "name", name, sizeof name);
    json_field(buf, "resource", res, sizeof res);
    json_field(buf, "duration", dur, sizeof dur);
    json_field(buf, "error", err, sizeof err);
    snprintf(lines[n].text, sizeof lines[n].text, "%-14s %-12s %7.2f ms%s",
             name, res, strtod(dur, NULL) / 1e6,
             strcmp(err, "1") == 0 ? "  ERROR" : "");
    lines[n].printed = 0;
    n++;
  }
  fclose(f);
  char trace_id[40];
  json_field(buf, "trace_id", trace_id, sizeof trace_id);
  printf("\ntrace %s (%zu spans, from %s):\n", trace_id, n, path);
  /* Roots: spans whose parent is not in the file (here: the remote one). */
  for (size_t i = 0; i < n; i++) {
    int has_parent = 0;
    for (size_t j = 0; j < n; j++)
      if (strcmp(lines[i].parent_id, lines[j].span_id) == 0)
        has_parent = 1;
    if (!has_parent && !lines[i].printed) {
      lines[i].printed = 1;
      printf("%s\n", lines[i].text);
      print_tree(lines, n, lines[i].span_id, 1);
    }
  }
  return 0;
}
