/* Helpers shared by the benchmark programs (C and C++): clock, statistics
 * over batches, command-line options, result lines, malloc counting.
 *
 * Method (see docs/PERFORMANCE.md): every variant runs in batches of many
 * operations; the variants of one program are interleaved batch by batch so
 * that a noisy neighbour slows them all alike; a program reports the median
 * (and spread) of its per-batch ns/op. Result lines have one fixed form,
 *   result <name> median_ns=<x> p10_ns=<x> p90_ns=<x> batches=<n> ops=<n>
 *   count <name> per_op=<x> total=<n> ops=<n>
 * which bench/run.sh parses. Nothing here is thread-safe except the malloc
 * counter. */
#ifndef HOTSPAN_BENCH_COMMON_H
#define HOTSPAN_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A span benchmark's trace: one root and this many children; the child
 * operation is what is timed, the root's share is included. */
#define BENCH_CHILDREN_PER_TRACE 100

/* Allocation calls of the span variant, split between the children (start,
 * two tags, finish) and the rest of each trace (root start and finish, which
 * hands the trace on). */
typedef struct bench_span_mallocs {
  uint64_t child, children;
  uint64_t trace, traces;
} bench_span_mallocs;

/* Monotonic clock in ns. */
uint64_t bench_now_ns(void);

/* Options common to every bench program. */
typedef struct bench_opts {
  int batches;      /* measured batches per variant (default 21) */
  long ops;         /* operations per batch of the slowest variants */
  long warmup;      /* operations per variant before measuring */
  int check;        /* --check: exit 1 if a steady-state malloc count is > 0 */
  const char *only; /* comma-separated variant names; NULL: all */
} bench_opts;

/* Parses argv into *o (defaults first). --smoke selects a tiny run for CI.
 * Prints usage and exits 2 on an unknown option. */
void bench_parse_opts(int argc, char **argv, bench_opts *o);

/* Nonzero if variant name is selected by --only (exact names). */
int bench_selected(const bench_opts *o, const char *name);

/* Per-variant sample store: ns/op of each batch. */
typedef struct bench_series {
  const char *name;
  double *ns_per_op; /* capacity: batches */
  int n;
  long ops; /* ops per batch */
} bench_series;

/* Allocates room for o->batches samples; exits 1 if out of memory (before
 * measuring, with counting not yet relevant). */
void bench_series_init(bench_series *s, const char *name, int batches,
                       long ops);
void bench_series_add(bench_series *s, uint64_t elapsed_ns);
/* Prints the "result" line and frees the samples. */
void bench_series_report(bench_series *s);

/* Prints a "count" line: total events over ops operations. */
void bench_report_count(const char *name, uint64_t total, uint64_t ops);

/* Malloc counting. The bench programs define malloc, calloc, realloc and
 * the aligned allocators (bench/malloc_count.c) and forward them to glibc;
 * every call, from any thread, increments one counter. Not available in
 * sanitizer builds (the sanitizers own malloc there). */
int bench_malloc_counting(void); /* nonzero if counting works */
uint64_t bench_malloc_calls(void);

/* An HTTP-header-like carrier for propagation benchmarks: a fixed array of
 * name/value slots (no allocation). It always starts with the ordinary
 * headers a request carries anyway (host, user-agent, accept, ...), which
 * extract must skip over. set() appends, or replaces the value of an
 * existing name (case-insensitive), as a header map does. Values longer
 * than a slot are truncated, which the benches never produce (propagation
 * values are bounded well below). */
#define BENCH_CARRIER_SLOTS 16
#define BENCH_CARRIER_NAME_MAX 64
#define BENCH_CARRIER_VALUE_MAX 1024
typedef struct bench_carrier {
  int n;
  int nbase; /* the ordinary headers are slots [0, nbase) */
  size_t name_len[BENCH_CARRIER_SLOTS];
  size_t value_len[BENCH_CARRIER_SLOTS];
  char name[BENCH_CARRIER_SLOTS][BENCH_CARRIER_NAME_MAX];
  char value[BENCH_CARRIER_SLOTS][BENCH_CARRIER_VALUE_MAX];
} bench_carrier;

/* Fills c with the ordinary headers only. */
void bench_carrier_init(bench_carrier *c);
/* Drops every header after the ordinary ones (what a new request would
 * hold before inject); O(1). */
void bench_carrier_reset(bench_carrier *c);
/* Returns 0, or -1 when all slots are taken. */
int bench_carrier_set(bench_carrier *c, const char *name, size_t name_len,
                      const char *value, size_t value_len);

/* Prints "info carrier <label> <name>=<value> ..." for the headers after
 * the ordinary ones, to show what a style injected. */
void bench_carrier_print(const bench_carrier *c, const char *label);

/* Keeps the compiler from dropping a value. */
void bench_sink_ptr(const void *p);

#ifdef __cplusplus
}
#endif
#endif /* HOTSPAN_BENCH_COMMON_H */
