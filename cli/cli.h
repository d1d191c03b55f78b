/* The query side of the `hotspan` command: argument parsing (times,
 * durations, ids), the two backends that answer a query (the agent's JSON
 * API over HTTP, or a store file read through the correlation engine) and
 * the one rendering path that turns their JSON into tables.
 *
 * Everything here runs in the CLI's single thread. Output goes to the
 * streams a caller passes, so that tests capture it. */
#ifndef HS_CLI_CLI_H
#define HS_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/json_read.h"

/* Exit codes of the query commands (docs/cli.md). */
enum {
  HS_CLI_OK = 0,
  HS_CLI_NOTFOUND = 1, /* the span/trace/endpoint is unknown, or no rows */
  HS_CLI_USAGE = 2,
  HS_CLI_BACKEND = 3 /* agent unreachable or failing, store unreadable */
};

#define HS_CLI_DEFAULT_AGENT "http://127.0.0.1:8126"

/* ------------------------------------------------------------ parsing */

/* A duration with a unit: "250ms", "1.5s", "2m", "1h", "10us", "500ns",
 * "1d"; "0" alone is accepted. Returns 0 with *ns set, -1 if s is not such
 * a duration or does not fit int64 ns. */
int hs_cli_parse_duration(const char *s, int64_t *ns);

/* A point in time as Unix ns: RFC 3339 ("2024-05-01T12:00:00Z",
 * "2024-05-01T12:00:00.5+02:00", a space instead of 'T' is fine), Unix
 * seconds ("1714564800", fractions allowed), "now", or a duration before
 * now_ns ("-1h", "30m" both mean an hour / 30 minutes ago). Returns 0 or
 * -1. */
int hs_cli_parse_time(const char *s, int64_t now_ns, int64_t *ns);

/* "A..B" with A and B times as above; B may be empty (now). 0 or -1. */
int hs_cli_parse_range(const char *s, int64_t now_ns, int64_t *from,
                       int64_t *to);

/* ------------------------------------------------------------ queries */

typedef enum hs_cli_kind {
  HS_Q_SERVICES = 1,
  HS_Q_TRACES,
  HS_Q_TRACE,
  HS_Q_HOTSPOTS,
  HS_Q_PROFILE,
  HS_Q_DIFF,
  HS_Q_VERSIONS
} hs_cli_kind;

/* Profile types as the API names them. */
typedef enum hs_cli_ptype {
  HS_CLI_BOTH = 0,
  HS_CLI_CPU = 1,
  HS_CLI_WALL = 2
} hs_cli_ptype;

typedef enum hs_cli_format {
  HS_CLI_FMT_JSON = 0, /* the API's JSON document */
  HS_CLI_FMT_FOLDED,
  HS_CLI_FMT_PPROF
} hs_cli_format;

/* One question to a backend. Strings are borrowed. Times in Unix ns; a
 * zero from/to is "not given" (the backend's default: the last hour). */
typedef struct hs_cli_query {
  hs_cli_kind kind;
  const char *service, *endpoint;
  int64_t from_ns, to_ns;
  int64_t min_duration_ns;
  int errors_only;
  int64_t limit; /* 0: the backend's default */
  uint64_t id_hi, id_lo;
  hs_cli_ptype type;
  int children, lines, per_request;
  hs_cli_format format;
  /* diff: a zero from and to on a side with a version means "all stored
   * data" (not sent to the agent). */
  int64_t before_from, before_to, after_from, after_to;
  const char *before_version, *after_version; /* diff by version */
} hs_cli_query;

/* Where queries go: the agent at agent_url, or the store file db_path when
 * it is set. */
typedef struct hs_cli_backend {
  const char *agent_url;
  const char *db_path;
  long connect_timeout_ms; /* 0 = 3000 */
  long timeout_ms;         /* 0 = 60000 */
} hs_cli_backend;

/* Answers q into out (JSON text, or folded/pprof bytes for a profile in
 * those formats). Returns HS_CLI_OK, HS_CLI_NOTFOUND (message in err),
 * HS_CLI_USAGE (the agent refused the query as malformed) or
 * HS_CLI_BACKEND (unreachable agent, bad answer, store error). now_ns is
 * the "now" of the defaults (the last hour) in --db mode. */
int hs_cli_fetch(const hs_cli_backend *be, const hs_cli_query *q,
                 int64_t now_ns, hs_buf *out, char *err, size_t errlen);

/* The agent URL path and query string for q ("/api/v1/traces?limit=5"),
 * with parameters percent-encoded. Appended to out. */
void hs_cli_api_path(const hs_cli_query *q, hs_buf *out);

/* ---------------------------------------------------------- rendering */

/* Human duration: "850 ns", "12.3 us", "1.2 ms", "3.40 s", "2.5 min". */
void hs_cli_fmt_duration(double ns, char *out, size_t n);
/* RFC 3339 UTC with milliseconds: "2024-05-01T12:00:00.123Z". */
void hs_cli_fmt_time(int64_t unix_ns, char *out, size_t n);

typedef struct hs_cli_render_opts {
  hs_cli_ptype type;   /* which profiles to show (BOTH for hotspots) */
  int per_request;     /* profile: per-request columns */
  size_t tree_lines;   /* flame tree lines at most; 0 = 40 */
  double tree_min_pct; /* flame nodes below this share are left out; 0 = 1 */
} hs_cli_render_opts;

/* Render a parsed API document of the query's kind as text to f. Returns
 * HS_CLI_OK, HS_CLI_NOTFOUND when the answer is empty (no traces, no
 * services, no samples), or HS_CLI_BACKEND (with a message on err_f) when
 * the document lacks what the kind needs. */
int hs_cli_render(hs_cli_kind kind, const hs_json_value *doc,
                  const hs_cli_render_opts *o, FILE *f, FILE *err_f);

/* ------------------------------------------------------------ entry */

/* Runs one query command ("traces", "trace", "hotspots", "endpoints",
 * "profile", "diff", "versions") with its arguments (argv[0] is the command
 * name); writes results to out and messages to err. now_ns anchors relative
 * times. Returns an exit code above. */
int hs_cli_query_main(int argc, char **argv, int64_t now_ns, FILE *out,
                      FILE *err);

/* Nonzero if name is a query command. */
int hs_cli_is_query_command(const char *name);

/* The usage text of the query commands (for `hotspan --help`). */
void hs_cli_query_usage(FILE *f);

#endif
