/* The correlation engine: the questions hotspan answers about stored
 * traces and profiles ("which code made this slow span slow"), asked
 * through the store interface (store/store.h) so that any store
 * implementation answers them. Each query fills a result struct that the
 * caller frees with the matching *_free (NULL-safe, leaves it zeroed), and
 * each result has a JSON writer so the agent's HTTP API and the CLI's
 * --json print the same document (docs/store.md describes the fields).
 *
 * Queries return HS_STORE_OK, HS_STORE_NOTFOUND (the span, trace or
 * endpoint does not exist; err says which) or HS_STORE_ERR with err set.
 * On failure the result is left empty (freeing it is still fine). Not
 * thread-safe: one store handle per thread. Time ranges are half-open
 * [from_ns, to_ns) in Unix ns; to_ns == 0 means "no upper bound". */
#ifndef HS_BACKEND_QUERY_H
#define HS_BACKEND_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "backend/store.h"
#include "common/buf.h"

/* ----------------------------------------------------------------- ids */

/* Parses a span or trace id: decimal ("1234", up to 2^128-1), hex with a
 * 0x prefix ("0x4d2"), or bare hex of exactly 16 or 32 digits (the W3C
 * forms; a 16- or 32-character string is read as hex even if it has only
 * decimal digits), or bare hex containing a-f. Surrounding spaces are not
 * accepted. Returns 0 with *hi and *lo set (hi = 0 for 64-bit ids), -1 if s is
 * not an id or overflows 128 bits. */
int hs_query_parse_id(const char *s, uint64_t *hi, uint64_t *lo);

/* ---------------------------------------------------------- endpoints */

typedef struct hs_query_latency {
  int64_t requests, errors;
  int64_t p50_ns, p95_ns, p99_ns, max_ns;
} hs_query_latency;

typedef struct hs_query_endpoint_stat {
  char *endpoint;
  hs_query_latency lat;
} hs_query_endpoint_stat;

typedef struct hs_query_service_stat {
  char *service;
  hs_query_latency lat;              /* over all of the service's requests */
  hs_query_endpoint_stat *endpoints; /* by endpoint name */
  size_t nendpoints;
} hs_query_service_stat;

typedef struct hs_query_services {
  int64_t from_ns, to_ns;
  hs_query_service_stat *services; /* by service name */
  size_t nservices;
} hs_query_services;

/* Nearest-rank percentile (p in (0, 100]) of n ascending values: the value
 * at rank ceil(p / 100 * n). 0 when n == 0. */
int64_t hs_query_percentile(const int64_t *sorted, size_t n, double p);

/* Services and their endpoints with request counts (one request = one
 * trace whose root started in the range), error counts and root-duration
 * percentiles. */
int hs_query_services_query(hs_store *s, int64_t from_ns, int64_t to_ns,
                            hs_query_services *out, char *err, size_t errlen);
void hs_query_services_free(hs_query_services *r);
void hs_query_services_json(const hs_query_services *r, hs_buf *b);

/* ------------------------------------------------------------- traces */

typedef struct hs_query_trace_row {
  uint64_t trace_id_high, trace_id_low, root_span_id;
  int root_known;
  char *service, *endpoint;
  int64_t start_ns, duration_ns;
  int error;
  int64_t span_count;
} hs_query_trace_row;

typedef struct hs_query_traces {
  hs_query_trace_row *rows; /* longest first */
  size_t n;
} hs_query_traces;

/* Traces matching f (by_duration is implied; limit 0 means 100). */
int hs_query_traces_query(hs_store *s, const hs_store_trace_filter *f,
                          hs_query_traces *out, char *err, size_t errlen);
void hs_query_traces_free(hs_query_traces *r);
void hs_query_traces_json(const hs_query_traces *r, hs_buf *b);

typedef struct hs_query_span {
  uint64_t trace_id_high, trace_id_low, span_id, parent_id;
  char *service, *name, *resource, *type, *attrs_json;
  char *events_json, *links_json; /* JSON arrays; NULL when none */
  char *resource_json;            /* JSON object; NULL when unknown */
  int64_t dropped_events, dropped_links;
  int kind, error;
  int64_t start_ns, duration_ns;
  int depth; /* in the trace tree; 0 for roots and orphans */
} hs_query_span;

typedef struct hs_query_trace {
  hs_query_trace_row trace;
  hs_query_span *spans; /* tree order: parents before children, siblings
                          by start time (depth-first) */
  size_t n;
} hs_query_trace;

int hs_query_trace_query(hs_store *s, uint64_t hi, uint64_t lo,
                         hs_query_trace *out, char *err, size_t errlen);
void hs_query_trace_free(hs_query_trace *r);
void hs_query_trace_json(const hs_query_trace *r, hs_buf *b);

/* ----------------------------------------------------------- profiles */

typedef struct hs_query_func {
  char *name;                 /* function, or "function file:line" with lines */
  int64_t self, total;        /* summed sample values (ns) */
  double self_pct, total_pct; /* of the profile's total, 0..100 */
} hs_query_func;

typedef struct hs_query_flame {
  char *name; /* "root" for the top node */
  int64_t value;
  struct hs_query_flame *children; /* by value, largest first */
  size_t nchildren, cap;
} hs_query_flame;

typedef struct hs_query_profile {
  int type;             /* HS_PT_CPU or HS_PT_WALL */
  int64_t total;        /* sum of sample values (ns) */
  int64_t samples;      /* number of samples */
  hs_query_func *funcs; /* by self, largest first; at most top */
  size_t nfuncs;
  hs_query_flame flame;
} hs_query_profile;

typedef struct hs_query_opts {
  int lines;         /* key functions by file:line too */
  int with_children; /* span: include descendant spans' samples */
  size_t top;        /* functions listed per profile; 0 = 50 */
} hs_query_opts;

/* The verdict rule (docs/store.md): ratio = cpu / wall, where cpu is the
 * CPU sample total and wall the wall sample total, or the span's duration
 * when there are no wall samples. ratio >= 0.5: "cpu-bound"; <= 0.1:
 * "waiting"; else "mixed"; no samples at all: "no-samples". */
const char *hs_query_verdict(int64_t cpu_ns, int64_t wall_ns, double *ratio);

typedef struct hs_query_hotspots {
  hs_query_span span;
  int with_children;
  size_t nspans; /* spans whose samples count (1 without children) */
  hs_query_profile cpu, wall;
  const char *verdict; /* static string */
  double cpu_wall_ratio;
  int wall_from_duration; /* no wall samples: the span's duration used */
} hs_query_hotspots;

/* Code hotspots of one span (by span id). */
int hs_query_span_hotspots(hs_store *s, uint64_t span_id,
                           const hs_query_opts *o, hs_query_hotspots *out,
                           char *err, size_t errlen);
void hs_query_hotspots_free(hs_query_hotspots *r);
void hs_query_hotspots_json(const hs_query_hotspots *r, hs_buf *b);

typedef struct hs_query_endpoint_profile {
  char *service; /* NULL: any service */
  char *endpoint;
  int64_t from_ns, to_ns;
  int64_t requests; /* traces of the endpoint that started in the range */
  hs_query_profile cpu, wall;
  int no_per_request; /* set by the caller: the JSON omits per-request
                         values */
} hs_query_endpoint_profile;

/* The aggregated profile of an endpoint's samples in a range. The JSON
 * adds per-request values (value / requests) when requests > 0. */
int hs_query_endpoint_profile_query(hs_store *s, const char *service,
                                    const char *endpoint, int64_t from_ns,
                                    int64_t to_ns, const hs_query_opts *o,
                                    hs_query_endpoint_profile *out, char *err,
                                    size_t errlen);
void hs_query_endpoint_profile_free(hs_query_endpoint_profile *r);
void hs_query_endpoint_profile_json(const hs_query_endpoint_profile *r,
                                    hs_buf *b);

typedef struct hs_query_diff_row {
  char *name;
  /* Per request (value / the range's request count; the plain sum when a
   * range has no requests). */
  double before_self, after_self, before_total, after_total;
  double delta_self, delta_total; /* after - before */
} hs_query_diff_row;

typedef struct hs_query_diff {
  char *service, *endpoint;
  int type;
  int64_t before_from, before_to, after_from, after_to;
  char *before_version, *after_version; /* NULL: any version */
  int64_t before_requests, after_requests;
  hs_query_diff_row *rows; /* by delta_self, largest growth first */
  size_t n;
} hs_query_diff;

/* Per-function comparison of one endpoint between two ranges, for one
 * profile type (HS_PT_CPU or HS_PT_WALL). o->top bounds the rows (0 =
 * 50). */
int hs_query_endpoint_diff(hs_store *s, const char *service,
                           const char *endpoint, int type, int64_t before_from,
                           int64_t before_to, int64_t after_from,
                           int64_t after_to, const hs_query_opts *o,
                           hs_query_diff *out, char *err, size_t errlen);

/* One side of a version diff: the samples and requests of a version,
 * within [from_ns, to_ns) (0, 0: all stored data). */
typedef struct hs_query_diff_side {
  int64_t from_ns, to_ns; /* to_ns 0: no upper bound */
  const char *version;    /* NULL: any version (a plain range) */
} hs_query_diff_side;

/* hs_query_endpoint_diff with a version per side. Both versions or
 * neither: one alone is HS_STORE_ERR. A side's request count is the
 * number of traces of the endpoint, started in its range, whose root span
 * carried its version (docs/store.md); its samples are those of profiles
 * tagged with that version. A version unknown for the service (any
 * service when service is NULL), or one with no requests and no samples
 * of the endpoint in the range, is HS_STORE_NOTFOUND with err naming it. */
int hs_query_endpoint_diff_sides(hs_store *s, const char *service,
                                 const char *endpoint, int type,
                                 const hs_query_diff_side *before,
                                 const hs_query_diff_side *after,
                                 const hs_query_opts *o, hs_query_diff *out,
                                 char *err, size_t errlen);
void hs_query_diff_free(hs_query_diff *r);
void hs_query_diff_json(const hs_query_diff *r, hs_buf *b);

/* ----------------------------------------------------------- versions */

typedef struct hs_query_version {
  char *service, *version;
  int64_t requests, samples;
  int64_t first_ns, last_ns;
} hs_query_version;

typedef struct hs_query_versions {
  char *service;       /* as asked; NULL: every service */
  hs_query_version *v; /* by service, then first seen */
  size_t n;
} hs_query_versions;

/* The versions known for a service (NULL: every service) that still have
 * traces or samples stored. HS_STORE_NOTFOUND when a service is given and
 * has none; an empty list otherwise. */
int hs_query_versions_query(hs_store *s, const char *service,
                            hs_query_versions *out, char *err, size_t errlen);
void hs_query_versions_free(hs_query_versions *r);
void hs_query_versions_json(const hs_query_versions *r, hs_buf *b);

/* ------------------------------------------------------------- export */

/* What to export: a span (span_id != 0, with or without its descendants)
 * or else an endpoint over a range; one profile type. */
typedef struct hs_query_selection {
  uint64_t span_id;
  int with_children;
  const char *service; /* NULL: any */
  const char *endpoint;
  int64_t from_ns, to_ns;
  int type; /* HS_PT_CPU or HS_PT_WALL */
  int lines;
} hs_query_selection;

/* Folded stacks appended to out: one line per distinct stack, "root;...;
 * leaf <value>" with the summed sample value in ns, lines sorted
 * bytewise. Frame names containing ';' or newlines have them replaced by
 * '_'. */
int hs_query_export_folded(hs_store *s, const hs_query_selection *sel,
                           hs_buf *out, char *err, size_t errlen);

/* gzip-compressed pprof (perftools.profiles.Profile) appended to out:
 * sample types samples/count and cpu|wall/nanoseconds, one sample per
 * distinct stack. */
int hs_query_export_pprof(hs_store *s, const hs_query_selection *sel,
                          hs_buf *out, char *err, size_t errlen);

#endif
