/* The query commands: traces, trace, hotspots, endpoints, profile, diff,
 * versions.
 * Each parses its options into an hs_cli_query, asks the backend (agent
 * or store file), and prints the raw JSON (--json) or renders it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/query.h"
#include "cli/cli.h"

#define DEFAULT_SLOWEST 20

typedef struct cmd_desc {
  const char *name;
  hs_cli_kind kind;
  const char *synopsis;
  const char *help;
} cmd_desc;

static const char common_help[] =
    "Common options:\n"
    "  --agent URL   hotspan-agent to ask (default: $HOTSPAN_AGENT_URL, "
    "else\n"
    "                " HS_CLI_DEFAULT_AGENT ")\n"
    "  --db PATH     read a store file directly instead of asking an "
    "agent\n"
    "  --json        print the API's JSON document instead of a table\n"
    "Times: RFC 3339 (2024-05-01T12:00:00Z), Unix seconds, 'now', or "
    "a\n"
    "duration ago (-1h, 30m). Exit status: 0 ok, 1 not found or empty,\n"
    "2 usage error, 3 agent unreachable or store error.\n";

static const cmd_desc cmds[] = {
    {"traces", HS_Q_TRACES,
     "traces [--service S] [--endpoint E] [--slowest N] [--min-duration D]\n"
     "              [--errors] [--since D | --from T --to T]",
     "List traces, slowest first.\n"
     "  --service S        only this service\n"
     "  --endpoint E       only this endpoint (root resource, e.g. \"GET "
     "/a\")\n"
     "  --slowest N        at most N traces (default 20)\n"
     "  --min-duration D   only traces at least this long (250ms, 1.5s)\n"
     "  --errors           only traces with an error\n"
     "  --since D          started in the last D (default 1h)\n"
     "  --from T, --to T   started in [T, T)\n"},
    {"trace", HS_Q_TRACE, "trace TRACE_ID",
     "Show one trace's spans as a tree. TRACE_ID: 32 hex digits, 0x-hex or\n"
     "decimal.\n"},
    {"hotspots", HS_Q_HOTSPOTS,
     "hotspots SPAN_ID [--cpu | --wall] [--lines] [--children] [--limit N]",
     "Code hotspots of one span: the functions its CPU and wall-time "
     "samples\n"
     "were in, self and total, a call tree, and the verdict (cpu-bound,\n"
     "mixed, waiting). SPAN_ID: 16 hex digits, 0x-hex or decimal.\n"
     "  --cpu, --wall   only that profile (default: both)\n"
     "  --lines         functions with file:line\n"
     "  --children      include the samples of the span's descendants\n"
     "  --limit N       functions listed per profile (default 50)\n"},
    {"endpoints", HS_Q_SERVICES, "endpoints [--since D | --from T --to T]",
     "Services and endpoints with request and error counts and latency\n"
     "percentiles (p50, p95, p99, max).\n"},
    {"profile", HS_Q_PROFILE,
     "profile --endpoint E [--service S] [--since D | --from T --to T]\n"
     "              [--per-request] [--wall] [--lines] [--limit N]\n"
     "              [--format text|pprof|folded] [-o FILE]",
     "The aggregated profile of an endpoint's requests.\n"
     "  --endpoint E      the endpoint (required)\n"
     "  --service S       only that service's samples\n"
     "  --per-request     values divided by the number of requests\n"
     "  --wall            wall time instead of CPU time\n"
     "  --format F        text (default), pprof (gzip-compressed, for `go "
     "tool\n"
     "                    pprof`) or folded (for flamegraph.pl)\n"
     "  -o FILE           write to FILE instead of standard output\n"},
    {"diff", HS_Q_DIFF,
     "diff --endpoint E --before A..B --after C..D [--service S] [--wall]\n"
     "       hotspan diff --endpoint E --before-version V1 --after-version V2\n"
     "              [--before A..B] [--after C..D] [--service S] [--wall]",
     "Per-function change of an endpoint's time per request between two\n"
     "ranges or two versions, largest growth first. A range is two times\n"
     "joined by '..'; an empty end means now (--before -2h..-1h --after "
     "-1h..).\n"
     "  --before-version V, --after-version V\n"
     "                 compare the samples of two versions of the "
     "service;\n"
     "                 requests are the traces whose root span has that\n"
     "                 version. A range then narrows a side (default: all\n"
     "                 stored data). Both versions or neither.\n"},
    {"versions", HS_Q_VERSIONS, "versions [--service S]",
     "Versions seen per service (from profiles and root spans), with\n"
     "request and sample counts, first seen first.\n"},
};

static const cmd_desc *find_cmd(const char *name) {
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmds[i].name, name) == 0)
      return &cmds[i];
  return NULL;
}

int hs_cli_is_query_command(const char *name) {
  return find_cmd(name) != NULL;
}

void hs_cli_query_usage(FILE *f) {
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    fprintf(f, "       hotspan %s\n", cmds[i].synopsis);
}

static void cmd_usage(const cmd_desc *c, FILE *f) {
  fprintf(f, "usage: hotspan %s\n\n%s\n%s", c->synopsis, c->help, common_help);
}

typedef struct ctx {
  const cmd_desc *cmd;
  FILE *out, *err;
} ctx;

__attribute__((format(printf, 2, 3))) static int
usage_error(ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(c->err, "hotspan %s: ", c->cmd->name);
  vfprintf(c->err, fmt, ap);
  fprintf(c->err, "\nTry 'hotspan %s --help'.\n", c->cmd->name);
  va_end(ap);
  return HS_CLI_USAGE;
}

/* A positive count, 1..10^6. */
static int parse_count(const char *s, int64_t *out) {
  char *end = NULL;
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  long long v = strtoll(s, &end, 10);
  if (*end != '\0' || v < 1 || v > 1000000)
    return -1;
  *out = v;
  return 0;
}

/* Which options each command takes. */
#define K(x) (1u << (x))
#define ALLK                                                                   \
  (K(HS_Q_SERVICES) | K(HS_Q_TRACES) | K(HS_Q_TRACE) | K(HS_Q_HOTSPOTS) |      \
   K(HS_Q_PROFILE) | K(HS_Q_DIFF) | K(HS_Q_VERSIONS))
#define RANGEK (K(HS_Q_TRACES) | K(HS_Q_SERVICES) | K(HS_Q_PROFILE))

typedef struct opt_desc {
  const char *name, *alias;
  int takes_value;
  unsigned kinds;
} opt_desc;

static const opt_desc opts[] = {
    {"--agent", NULL, 1, ALLK},
    {"--db", NULL, 1, ALLK},
    {"--json", NULL, 0, ALLK},
    {"--service", NULL, 1,
     K(HS_Q_TRACES) | K(HS_Q_PROFILE) | K(HS_Q_DIFF) | K(HS_Q_VERSIONS)},
    {"--endpoint", NULL, 1, K(HS_Q_TRACES) | K(HS_Q_PROFILE) | K(HS_Q_DIFF)},
    {"--slowest", NULL, 1, K(HS_Q_TRACES)},
    {"--limit", NULL, 1,
     K(HS_Q_TRACES) | K(HS_Q_HOTSPOTS) | K(HS_Q_PROFILE) | K(HS_Q_DIFF)},
    {"--min-duration", NULL, 1, K(HS_Q_TRACES)},
    {"--errors", NULL, 0, K(HS_Q_TRACES)},
    {"--since", NULL, 1, RANGEK},
    {"--from", NULL, 1, RANGEK},
    {"--to", NULL, 1, RANGEK},
    {"--cpu", NULL, 0, K(HS_Q_HOTSPOTS)},
    {"--wall", NULL, 0, K(HS_Q_HOTSPOTS) | K(HS_Q_PROFILE) | K(HS_Q_DIFF)},
    {"--lines", NULL, 0, K(HS_Q_HOTSPOTS) | K(HS_Q_PROFILE)},
    {"--children", NULL, 0, K(HS_Q_HOTSPOTS)},
    {"--per-request", NULL, 0, K(HS_Q_PROFILE)},
    {"--format", NULL, 1, K(HS_Q_PROFILE)},
    {"-o", "--output", 1, K(HS_Q_PROFILE)},
    {"--before", NULL, 1, K(HS_Q_DIFF)},
    {"--after", NULL, 1, K(HS_Q_DIFF)},
    {"--before-version", NULL, 1, K(HS_Q_DIFF)},
    {"--after-version", NULL, 1, K(HS_Q_DIFF)},
};

static const opt_desc *find_opt(const char *name, hs_cli_kind kind) {
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
    if ((strcmp(opts[i].name, name) == 0 ||
         (opts[i].alias && strcmp(opts[i].alias, name) == 0)) &&
        (opts[i].kinds & K(kind)))
      return &opts[i];
  return NULL;
}

static int write_all(FILE *f, const char *p, size_t n) {
  return fwrite(p, 1, n, f) == n && fflush(f) == 0 ? 0 : -1;
}

/* What the command line asks for: the query, where to ask, how to print
 * it, and which of the options that go together were given. */
typedef struct parsed {
  hs_cli_query q;
  hs_cli_backend be;
  int json, have_since, have_from, have_to, have_before, have_after;
  const char *id_arg, *format, *output;
} parsed;

/* Applies option n (the canonical name) with value v ("" for a flag).
 * HS_CLI_OK, or HS_CLI_USAGE with the message printed. */
static int set_option(ctx *c, parsed *p, const char *n, const char *v,
                      int64_t now_ns) {
  hs_cli_query *q = &p->q;
  if (strcmp(n, "--agent") == 0) {
    if (*v == '\0')
      return usage_error(c, "--agent needs a URL");
    p->be.agent_url = v;
  } else if (strcmp(n, "--db") == 0) {
    if (*v == '\0')
      return usage_error(c, "--db needs a path");
    p->be.db_path = v;
  } else if (strcmp(n, "--json") == 0) {
    p->json = 1;
  } else if (strcmp(n, "--service") == 0) {
    q->service = v;
  } else if (strcmp(n, "--endpoint") == 0) {
    q->endpoint = v;
  } else if (strcmp(n, "--slowest") == 0 || strcmp(n, "--limit") == 0) {
    if (parse_count(v, &q->limit) != 0)
      return usage_error(c, "%s '%s': not a count in 1..1000000", n, v);
  } else if (strcmp(n, "--min-duration") == 0) {
    if (hs_cli_parse_duration(v, &q->min_duration_ns) != 0)
      return usage_error(c,
                         "--min-duration '%s': not a duration (e.g. "
                         "250ms, 1.5s, 2m)",
                         v);
  } else if (strcmp(n, "--errors") == 0) {
    q->errors_only = 1;
  } else if (strcmp(n, "--since") == 0) {
    int64_t d;
    if (hs_cli_parse_duration(v[0] == '-' ? v + 1 : v, &d) != 0 || d <= 0)
      return usage_error(c, "--since '%s': not a duration (e.g. 1h, 30m)", v);
    q->from_ns = now_ns - d;
    p->have_since = 1;
  } else if (strcmp(n, "--from") == 0 || strcmp(n, "--to") == 0) {
    int64_t t;
    if (hs_cli_parse_time(v, now_ns, &t) != 0)
      return usage_error(c,
                         "%s '%s': not a time (RFC 3339, Unix seconds, "
                         "'now', or -1h)",
                         n, v);
    if (n[2] == 'f') {
      q->from_ns = t;
      p->have_from = 1;
    } else {
      q->to_ns = t;
      p->have_to = 1;
    }
  } else if (strcmp(n, "--cpu") == 0) {
    q->type = HS_CLI_CPU;
  } else if (strcmp(n, "--wall") == 0) {
    q->type = HS_CLI_WALL;
  } else if (strcmp(n, "--lines") == 0) {
    q->lines = 1;
  } else if (strcmp(n, "--children") == 0) {
    q->children = 1;
  } else if (strcmp(n, "--per-request") == 0) {
    q->per_request = 1;
  } else if (strcmp(n, "--format") == 0) {
    p->format = v;
  } else if (strcmp(n, "-o") == 0) {
    p->output = v;
  } else if (strcmp(n, "--before-version") == 0 ||
             strcmp(n, "--after-version") == 0) {
    if (*v == '\0')
      return usage_error(c, "%s needs a version", n);
    *(n[2] == 'b' ? &q->before_version : &q->after_version) = v;
  } else if (strcmp(n, "--before") == 0 || strcmp(n, "--after") == 0) {
    int is_before = n[2] == 'b';
    int64_t *f = is_before ? &q->before_from : &q->after_from;
    int64_t *t = is_before ? &q->before_to : &q->after_to;
    if (hs_cli_parse_range(v, now_ns, f, t) != 0)
      return usage_error(c, "%s '%s': not a time range A..B with A before B", n,
                         v);
    *(is_before ? &p->have_before : &p->have_after) = 1;
  }
  return HS_CLI_OK;
}

/* Reads argv[1..argc) into p: the id argument and the options, as
 * "--name=value" or "--name value". -1 to go on, else the exit status
 * (HS_CLI_OK after --help, HS_CLI_USAGE with the message printed). */
static int parse_args(ctx *c, int argc, char **argv, int64_t now_ns,
                      parsed *p) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      cmd_usage(c->cmd, c->out);
      return HS_CLI_OK;
    }
    if (a[0] != '-' || a[1] == '\0') {
      if ((p->q.kind == HS_Q_TRACE || p->q.kind == HS_Q_HOTSPOTS) &&
          p->id_arg == NULL) {
        p->id_arg = a;
        continue;
      }
      return usage_error(c, "unexpected argument '%s'", a);
    }
    char name[32];
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    if (nlen >= sizeof name)
      return usage_error(c, "unknown option '%s'", a);
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    const opt_desc *od = find_opt(name, p->q.kind);
    if (od == NULL)
      return usage_error(c, "unknown option '%s'", name);
    const char *v = "";
    if (od->takes_value) {
      v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
      if (v == NULL)
        return usage_error(c, "option '%s' needs a value", name);
    } else if (eq) {
      return usage_error(c, "option '%s' takes no value", name);
    }
    int rc = set_option(c, p, od->name, v, now_ns);
    if (rc != HS_CLI_OK)
      return rc;
  }
  return -1;
}

/* The id argument of trace and hotspots into p->q. */
static int check_id(ctx *c, parsed *p) {
  hs_cli_query *q = &p->q;
  const char *what = q->kind == HS_Q_TRACE ? "trace id" : "span id";
  if (p->id_arg == NULL)
    return usage_error(c, "no %s given", what);
  if (hs_query_parse_id(p->id_arg, &q->id_hi, &q->id_lo) != 0)
    return usage_error(c, "'%s' is not a %s (hex, 0x-hex or decimal)",
                       p->id_arg, what);
  if (q->kind == HS_Q_HOTSPOTS && q->id_hi != 0)
    return usage_error(c, "'%s' is longer than a 64-bit span id", p->id_arg);
  return HS_CLI_OK;
}

/* The checks across options, the defaults that depend on the command, and
 * --format and -o. HS_CLI_OK, or HS_CLI_USAGE with the message printed. */
static int check_args(ctx *c, parsed *p) {
  hs_cli_query *q = &p->q;
  if (p->have_since && (p->have_from || p->have_to))
    return usage_error(c, "--since and --from/--to exclude each other");
  if (p->have_from && p->have_to && q->from_ns >= q->to_ns)
    return usage_error(c, "--from must be before --to");
  if (q->kind == HS_Q_TRACE || q->kind == HS_Q_HOTSPOTS) {
    int rc = check_id(c, p);
    if (rc != HS_CLI_OK)
      return rc;
  }
  if ((q->kind == HS_Q_PROFILE || q->kind == HS_Q_DIFF) &&
      (q->endpoint == NULL || *q->endpoint == '\0'))
    return usage_error(c, "--endpoint is required");
  if (q->kind == HS_Q_DIFF && !q->before_version != !q->after_version)
    return usage_error(c, "--before-version and --after-version go together");
  if (q->kind == HS_Q_DIFF && !q->before_version &&
      (!p->have_before || !p->have_after))
    return usage_error(c, "--before and --after are both required (or "
                          "--before-version and --after-version)");
  if (q->kind == HS_Q_TRACES && q->limit == 0)
    q->limit = DEFAULT_SLOWEST;
  const char *format = p->format;
  if (format != NULL) {
    if (strcmp(format, "pprof") == 0)
      q->format = HS_CLI_FMT_PPROF;
    else if (strcmp(format, "folded") == 0)
      q->format = HS_CLI_FMT_FOLDED;
    else if (strcmp(format, "json") == 0)
      p->json = 1;
    else if (strcmp(format, "text") != 0)
      return usage_error(c, "--format '%s': expected text, pprof or folded",
                         format);
  }
  if (p->json && q->format != HS_CLI_FMT_JSON)
    return usage_error(c, "--json and --format %s exclude each other", format);
  const char *output = p->output;
  if (output != NULL && strcmp(output, "-") != 0) {
    if (*output == '\0')
      return usage_error(c, "-o needs a file name");
  } else if (q->format == HS_CLI_FMT_PPROF && c->out == stdout &&
             isatty(STDOUT_FILENO)) {
    return usage_error(c, "pprof is binary: use -o FILE or a pipe");
  }
  return HS_CLI_OK;
}

/* Prints a JSON answer to dst: as it is with --json (the exit status still
 * from rendering it), else rendered as text. */
static int print_json_answer(ctx *c, const parsed *p, const hs_buf *body,
                             FILE *dst) {
  char msg[1024] = "";
  hs_json_limits lim = {256u << 20, 4096};
  hs_json_doc *doc = NULL;
  if (hs_json_parse(body->data, body->len, &lim, &doc, msg, sizeof msg, NULL) !=
      0) {
    fprintf(c->err, "hotspan %s: the answer is not JSON: %s\n", c->cmd->name,
            msg);
    return HS_CLI_BACKEND;
  }
  hs_cli_render_opts ro = {0};
  ro.type = p->q.type;
  ro.per_request = p->q.per_request;
  int rc;
  if (p->json) {
    /* Exit status as for the table: render into nowhere. */
    FILE *null = fopen("/dev/null", "w");
    rc = null ? hs_cli_render(p->q.kind, hs_json_root(doc), &ro, null, c->err)
              : HS_CLI_OK;
    if (null)
      fclose(null);
    if (rc != HS_CLI_BACKEND &&
        (write_all(dst, body->data, body->len) != 0 || fputc('\n', dst) == EOF))
      rc = HS_CLI_BACKEND;
  } else {
    rc = hs_cli_render(p->q.kind, hs_json_root(doc), &ro, dst, c->err);
    if (rc == HS_CLI_NOTFOUND)
      fprintf(c->err, "hotspan %s: nothing found in the range asked\n",
              c->cmd->name);
  }
  hs_json_free(doc);
  return rc;
}

int hs_cli_query_main(int argc, char **argv, int64_t now_ns, FILE *out,
                      FILE *err) {
  ctx c = {find_cmd(argv[0]), out, err};
  if (c.cmd == NULL) {
    fprintf(err, "hotspan: unknown command '%s'\n", argv[0]);
    return HS_CLI_USAGE;
  }
  parsed p;
  memset(&p, 0, sizeof p);
  p.q.kind = c.cmd->kind;
  const char *env_agent = getenv("HOTSPAN_AGENT_URL");
  p.be.agent_url = env_agent && *env_agent ? env_agent : HS_CLI_DEFAULT_AGENT;
  p.q.type = p.q.kind == HS_Q_HOTSPOTS ? HS_CLI_BOTH : HS_CLI_CPU;
  int rc = parse_args(&c, argc, argv, now_ns, &p);
  if (rc >= 0)
    return rc;
  if ((rc = check_args(&c, &p)) != HS_CLI_OK)
    return rc;

  hs_buf body;
  hs_buf_init(&body, 0);
  char msg[1024] = "";
  rc = hs_cli_fetch(&p.be, &p.q, now_ns, &body, msg, sizeof msg);
  if (rc != HS_CLI_OK) {
    fprintf(err, "hotspan %s: %s\n", c.cmd->name,
            msg[0] ? msg : "query failed");
    hs_buf_free(&body);
    return rc;
  }
  const char *output = p.output;
  FILE *dst = out;
  if (output != NULL && strcmp(output, "-") != 0) {
    dst = fopen(output, "wb");
    if (dst == NULL) {
      fprintf(err, "hotspan %s: cannot write %s: %m\n", c.cmd->name, output);
      hs_buf_free(&body);
      return HS_CLI_BACKEND;
    }
  }

  if (p.q.format != HS_CLI_FMT_JSON) {
    rc = write_all(dst, body.data ? body.data : "", body.len) == 0
             ? (body.len > 0 ? HS_CLI_OK : HS_CLI_NOTFOUND)
             : HS_CLI_BACKEND;
    if (rc == HS_CLI_NOTFOUND)
      fprintf(err, "hotspan %s: no samples\n", c.cmd->name);
  } else {
    rc = print_json_answer(&c, &p, &body, dst);
  }
  if (dst != out && fclose(dst) != 0) {
    fprintf(err, "hotspan %s: cannot write %s: %m\n", c.cmd->name, output);
    rc = HS_CLI_BACKEND;
  }
  hs_buf_free(&body);
  return rc;
}
