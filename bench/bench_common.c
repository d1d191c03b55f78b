#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--batches N] [--ops N] [--warmup N] [--only LIST]\n"
          "          [--check] [--smoke]\n"
          "  --batches N  measured batches per variant (default 21)\n"
          "  --ops N      operations per batch (default 100000; cheap\n"
          "               variants run a fixed multiple of it)\n"
          "  --warmup N   unmeasured operations per variant first (2 x ops)\n"
          "  --only LIST  run only the variants named in LIST (a,b,...)\n"
          "  --check      exit 1 if a steady-state malloc count is not 0\n"
          "  --smoke      tiny run for CI (3 batches of 2000 ops)\n",
          prog);
}

static long parse_long(const char *prog, const char *s) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || v <= 0) {
    usage(prog);
    exit(2);
  }
  return v;
}

void bench_parse_opts(int argc, char **argv, bench_opts *o) {
  o->batches = 21;
  o->ops = 100000;
  o->warmup = -1;
  o->check = 0;
  o->only = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_arg = i + 1 < argc;
    if (strcmp(a, "--batches") == 0 && has_arg) {
      o->batches = (int)parse_long(argv[0], argv[++i]);
    } else if (strcmp(a, "--ops") == 0 && has_arg) {
      o->ops = parse_long(argv[0], argv[++i]);
    } else if (strcmp(a, "--warmup") == 0 && has_arg) {
      o->warmup = parse_long(argv[0], argv[++i]);
    } else if (strcmp(a, "--only") == 0 && has_arg) {
      o->only = argv[++i];
    } else if (strcmp(a, "--check") == 0) {
      o->check = 1;
    } else if (strcmp(a, "--smoke") == 0) {
      o->batches = 3;
      o->ops = 2000;
    } else {
      usage(argv[0]);
      exit(2);
    }
  }
  if (o->warmup < 0)
    o->warmup = 2 * o->ops;
}

int bench_selected(const bench_opts *o, const char *name) {
  if (o->only == NULL)
    return 1;
  size_t len = strlen(name);
  for (const char *p = o->only; *p;) {
    size_t n = strcspn(p, ",");
    if (n == len && strncmp(p, name, n) == 0)
      return 1;
    p += n + (p[n] == ',');
  }
  return 0;
}

void bench_series_init(bench_series *s, const char *name, int batches,
                       long ops) {
  s->name = name;
  s->n = 0;
  s->ops = ops;
  s->ns_per_op = calloc((size_t)batches, sizeof *s->ns_per_op);
  if (s->ns_per_op == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
}

void bench_series_add(bench_series *s, uint64_t elapsed_ns) {
  s->ns_per_op[s->n++] = (double)elapsed_ns / (double)s->ops;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int n, double p) {
  int i = (int)(p * (n - 1) + 0.5);
  return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

void bench_series_report(bench_series *s) {
  if (s->n == 0) {
    free(s->ns_per_op);
    return;
  }
  qsort(s->ns_per_op, (size_t)s->n, sizeof *s->ns_per_op, cmp_double);
  double med = s->n % 2
                   ? s->ns_per_op[s->n / 2]
                   : (s->ns_per_op[s->n / 2 - 1] + s->ns_per_op[s->n / 2]) / 2;
  printf("result %s median_ns=%.2f p10_ns=%.2f p90_ns=%.2f batches=%d "
         "ops=%ld\n",
         s->name, med, pct(s->ns_per_op, s->n, 0.1),
         pct(s->ns_per_op, s->n, 0.9), s->n, s->ops);
  fflush(stdout);
  free(s->ns_per_op);
  s->ns_per_op = NULL;
}

void bench_report_count(const char *name, uint64_t total, uint64_t ops) {
  printf("count %s per_op=%.6g total=%llu ops=%llu\n", name,
         ops ? (double)total / (double)ops : 0.0, (unsigned long long)total,
         (unsigned long long)ops);
  fflush(stdout);
}

void bench_sink_ptr(const void *p) {
  /* An empty asm that claims to read p: the value must be computed. */
  __asm__ volatile("" : : "r"(p) : "memory");
}

/* Ordinary request headers present before any propagation header. */
static const char *const base_headers[][2] = {
    {"host", "shop.example.com"},
    {"user-agent", "curl/7.88.1"},
    {"accept", "application/json"},
    {"content-type", "application/json; charset=utf-8"},
};

void bench_carrier_init(bench_carrier *c) {
  c->n = 0;
  for (size_t i = 0; i < sizeof base_headers / sizeof base_headers[0]; i++)
    bench_carrier_set(c, base_headers[i][0], strlen(base_headers[i][0]),
                      base_headers[i][1], strlen(base_headers[i][1]));
  c->nbase = c->n;
}

void bench_carrier_reset(bench_carrier *c) {
  c->n = c->nbase;
}

static size_t copy_trunc(char *dst, size_t cap, const char *src, size_t len) {
  if (len >= cap)
    len = cap - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
  return len;
}

int bench_carrier_set(bench_carrier *c, const char *name, size_t name_len,
                      const char *value, size_t value_len) {
  int i = 0;
  while (i < c->n && !(c->name_len[i] == name_len &&
                       strncasecmp(c->name[i], name, name_len) == 0))
    i++;
  if (i == c->n) {
    if (c->n == BENCH_CARRIER_SLOTS)
      return -1;
    c->name_len[i] =
        copy_trunc(c->name[i], BENCH_CARRIER_NAME_MAX, name, name_len);
    c->n++;
  }
  c->value_len[i] =
      copy_trunc(c->value[i], BENCH_CARRIER_VALUE_MAX, value, value_len);
  return 0;
}

void bench_carrier_print(const bench_carrier *c, const char *label) {
  printf("info carrier %s", label);
  for (int i = c->nbase; i < c->n; i++)
    printf(" %s=%s", c->name[i], c->value[i]);
  printf("\n");
}
