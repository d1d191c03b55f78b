/* Text rendering of the API's JSON documents (docs/store.md lists their
 * fields): aligned tables, human durations, percentages, and an indented
 * flame tree for profiles. Input is a parsed document of either backend;
 * missing or mistyped members render as empty cells or zeros rather than
 * crash, and a document without the kind's top-level member is reported. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* ---------------------------------------------------------- formatting */

void hs_cli_fmt_duration(double ns, char *out, size_t n) {
  double a = fabs(ns);
  if (a < 1e3)
    snprintf(out, n, "%.0f ns", ns);
  else if (a < 1e6)
    snprintf(out, n, "%.1f us", ns / 1e3);
  else if (a < 1e9)
    snprintf(out, n, "%.1f ms", ns / 1e6);
  else if (a < 60e9)
    snprintf(out, n, "%.2f s", ns / 1e9);
  else
    snprintf(out, n, "%.1f min", ns / 60e9);
}

void hs_cli_fmt_time(int64_t unix_ns, char *out, size_t n) {
  int64_t sec = unix_ns / 1000000000LL;
  int64_t rem = unix_ns % 1000000000LL;
  if (rem < 0) {
    rem += 1000000000LL;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL) {
    snprintf(out, n, "%" PRId64, unix_ns);
    return;
  }
  snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(rem / 1000000));
}

static void fmt_pct(double pct, char *out, size_t n) {
  snprintf(out, n, "%.1f%%", pct);
}

/* ---------------------------------------------------------- JSON access */

static const char *jstr(const hs_json_value *o, const char *key) {
  const hs_json_value *v = hs_json_get(o, key);
  return v && v->type == HS_JSON_STRING ? v->u.string.ptr : "";
}

static double jnum(const hs_json_value *o, const char *key) {
  const hs_json_value *v = hs_json_get(o, key);
  return v && v->type == HS_JSON_NUMBER ? v->u.number.value : 0;
}

static int64_t jint(const hs_json_value *o, const char *key) {
  const hs_json_value *v = hs_json_get(o, key);
  int64_t r = 0;
  if (v && hs_json_as_i64(v, &r) == 0)
    return r;
  return v && v->type == HS_JSON_NUMBER ? (int64_t)v->u.number.value : 0;
}

static int jbool(const hs_json_value *o, const char *key) {
  const hs_json_value *v = hs_json_get(o, key);
  return v && ((v->type == HS_JSON_BOOL && v->u.boolean) ||
               (v->type == HS_JSON_NUMBER && v->u.number.value != 0));
}

static const hs_json_value *jarr(const hs_json_value *o, const char *key) {
  const hs_json_value *v = hs_json_get(o, key);
  return v && v->type == HS_JSON_ARRAY ? v : NULL;
}

static const hs_json_value *jobj(const hs_json_value *o, const char *key) {
  const hs_json_value *v = hs_json_get(o, key);
  return v && v->type == HS_JSON_OBJECT ? v : NULL;
}

/* --------------------------------------------------------------- table */

#define MAX_COLS 10

typedef struct table {
  size_t ncols;
  const char *heads[MAX_COLS];
  int right[MAX_COLS]; /* right-aligned (numbers) */
  char **cells;        /* row-major */
  size_t nrows, cap;
  int oom;
  char spec[256];
} table;

static void table_init(table *t, const char *spec) {
  /* spec: "|NAME|>DURATION|..." where '>' marks a right-aligned column. */
  memset(t, 0, sizeof *t);
  snprintf(t->spec, sizeof t->spec, "%s", spec);
  char *save = NULL;
  for (char *tok = strtok_r(t->spec, "|", &save); tok && t->ncols < MAX_COLS;
       tok = strtok_r(NULL, "|", &save)) {
    t->right[t->ncols] = tok[0] == '>';
    t->heads[t->ncols++] = tok[0] == '>' ? tok + 1 : tok;
  }
}

/* Adds a row of ncols cells (copied). */
static void table_row(table *t, const char *const *cells) {
  if (t->oom)
    return;
  if (t->nrows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
    if (c == NULL) {
      t->oom = 1;
      return;
    }
    t->cells = c;
    t->cap = cap;
  }
  for (size_t i = 0; i < t->ncols; i++) {
    char *d = strdup(cells[i] ? cells[i] : "");
    if (d == NULL) {
      for (size_t k = 0; k < i; k++)
        free(t->cells[t->nrows * t->ncols + k]);
      t->oom = 1;
      return;
    }
    t->cells[t->nrows * t->ncols + i] = d;
  }
  t->nrows++;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      w++;
  return w;
}

static void pad(hs_buf *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    hs_buf_putc(b, ' ');
}

static void table_print(table *t, FILE *f, const char *indent) {
  size_t w[MAX_COLS];
  for (size_t c = 0; c < t->ncols; c++) {
    w[c] = width(t->heads[c]);
    for (size_t r = 0; r < t->nrows; r++) {
      size_t x = width(t->cells[r * t->ncols + c]);
      if (x > w[c])
        w[c] = x;
    }
  }
  hs_buf line;
  hs_buf_init(&line, 0);
  for (size_t r = 0; r <= t->nrows; r++) {
    hs_buf_reset(&line);
    hs_buf_puts(&line, indent);
    for (size_t c = 0; c < t->ncols; c++) {
      const char *s = r == 0 ? t->heads[c] : t->cells[(r - 1) * t->ncols + c];
      size_t x = width(s);
      if (t->right[c])
        pad(&line, w[c] - x);
      hs_buf_puts(&line, s);
      if (!t->right[c])
        pad(&line, w[c] - x);
      if (c + 1 < t->ncols)
        hs_buf_puts(&line, "  ");
    }
    /* No trailing blanks (an empty last cell). */
    while (line.len > 0 && line.data[line.len - 1] == ' ')
      line.len--;
    hs_buf_putc(&line, '\n');
    if (!hs_buf_failed(&line))
      fwrite(line.data, 1, line.len, f);
  }
  hs_buf_free(&line);
  for (size_t i = 0; i < t->nrows * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->nrows = t->cap = 0;
}

/* ------------------------------------------------------------ services */

static int render_services(const hs_json_value *doc, FILE *f) {
  const hs_json_value *svcs = jarr(doc, "services");
  if (svcs == NULL)
    return -1;
  table t;
  table_init(&t, "SERVICE|ENDPOINT|>REQUESTS|>ERRORS|>P50|>P95|>P99|>MAX");
  size_t rows = 0;
  for (size_t i = 0; i < svcs->u.array.len; i++) {
    const hs_json_value *sv = &svcs->u.array.items[i];
    const hs_json_value *eps = jarr(sv, "endpoints");
    for (size_t k = 0; eps && k < eps->u.array.len; k++) {
      const hs_json_value *e = &eps->u.array.items[k];
      char req[24], errs[24], p50[24], p95[24], p99[24], mx[24];
      snprintf(req, sizeof req, "%" PRId64, jint(e, "requests"));
      snprintf(errs, sizeof errs, "%" PRId64, jint(e, "errors"));
      hs_cli_fmt_duration(jnum(e, "p50_ns"), p50, sizeof p50);
      hs_cli_fmt_duration(jnum(e, "p95_ns"), p95, sizeof p95);
      hs_cli_fmt_duration(jnum(e, "p99_ns"), p99, sizeof p99);
      hs_cli_fmt_duration(jnum(e, "max_ns"), mx, sizeof mx);
      const char *row[] = {jstr(sv, "service"),
                           jstr(e, "endpoint"),
                           req,
                           errs,
                           p50,
                           p95,
                           p99,
                           mx};
      table_row(&t, row);
      rows++;
    }
  }
  table_print(&t, f, "");
  return rows == 0 ? 1 : 0;
}

/* -------------------------------------------------------------- traces */

static int render_traces(const hs_json_value *doc, FILE *f) {
  const hs_json_value *tr = jarr(doc, "traces");
  if (tr == NULL)
    return -1;
  table t;
  table_init(&t, "TRACE ID|ROOT SPAN|SERVICE|ENDPOINT|START|>DURATION|>SPANS|"
                 "ERROR");
  for (size_t i = 0; i < tr->u.array.len; i++) {
    const hs_json_value *r = &tr->u.array.items[i];
    char start[40], dur[24], spans[24];
    hs_cli_fmt_time(jint(r, "start_ns"), start, sizeof start);
    hs_cli_fmt_duration(jnum(r, "duration_ns"), dur, sizeof dur);
    snprintf(spans, sizeof spans, "%" PRId64, jint(r, "span_count"));
    const char *row[] = {jstr(r, "trace_id"),
                         jstr(r, "root_span_id"),
                         jstr(r, "service"),
                         jstr(r, "endpoint"),
                         start,
                         dur,
                         spans,
                         jbool(r, "error") ? "error" : ""};
    table_row(&t, row);
  }
  table_print(&t, f, "");
  return tr->u.array.len == 0 ? 1 : 0;
}

/* Appends s, at most max bytes of it (cut at a character boundary, then
 * "..."), with control characters as spaces: one table cell, one line. */
static void put_cell_text(hs_buf *b, const char *s, size_t max) {
  size_t n = strlen(s);
  int cut = n > max;
  if (cut) {
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    hs_buf_putc(b, ch < 0x20 || ch == 0x7f ? ' ' : (char)ch);
  }
  if (cut)
    hs_buf_puts(b, "...");
}

/* "  key=value" for each attribute of an object, values cut at 60 bytes,
 * but for the key skip (exception.stacktrace of an event: many lines, the
 * JSON output has it; service.name of a resource: the header has it). */
static void put_attrs_inline(hs_buf *b, const hs_json_value *attrs,
                             const char *skip) {
  for (size_t i = 0; attrs && i < attrs->u.object.len; i++) {
    const hs_json_member *m = &attrs->u.object.members[i];
    if (strcmp(m->key, skip) == 0)
      continue;
    hs_buf_puts(b, "  ");
    put_cell_text(b, m->key, 60);
    hs_buf_putc(b, '=');
    if (m->value.type == HS_JSON_STRING)
      put_cell_text(b, m->value.u.string.ptr, 60);
    else if (m->value.type == HS_JSON_NUMBER)
      hs_buf_printf(b, "%.15g", m->value.u.number.value);
  }
}

/* Rows under a span for its events (at their offset from t0) and links. */
static void event_link_rows(table *t, const hs_json_value *s, int depth,
                            int64_t t0) {
  const hs_json_value *evs = jarr(s, "events"), *lks = jarr(s, "links");
  hs_buf b;
  hs_buf_init(&b, 4096);
  for (size_t i = 0; evs && i < evs->u.array.len; i++) {
    const hs_json_value *e = &evs->u.array.items[i];
    char off[24] = "", offp[28] = "";
    int64_t at = jint(e, "time_ns");
    if (at > 0) {
      hs_cli_fmt_duration((double)(at - t0), off, sizeof off);
      snprintf(offp, sizeof offp, "+%s", off);
    }
    hs_buf_reset(&b);
    pad(&b, (size_t)depth * 2 + 2);
    hs_buf_puts(&b, "event ");
    put_cell_text(&b, jstr(e, "name"), 60);
    put_attrs_inline(&b, jobj(e, "attrs"), "exception.stacktrace");
    hs_buf_putc(&b, '\0');
    const char *row[] = {"", offp, "", "", hs_buf_failed(&b) ? "" : b.data};
    table_row(t, row);
  }
  for (size_t i = 0; lks && i < lks->u.array.len; i++) {
    const hs_json_value *l = &lks->u.array.items[i];
    hs_buf_reset(&b);
    pad(&b, (size_t)depth * 2 + 2);
    hs_buf_puts(&b, "link ");
    put_cell_text(&b, jstr(l, "trace_id"), 32);
    hs_buf_putc(&b, ' ');
    put_cell_text(&b, jstr(l, "span_id"), 16);
    put_attrs_inline(&b, jobj(l, "attrs"), "exception.stacktrace");
    hs_buf_putc(&b, '\0');
    const char *row[] = {"", "", "", "", hs_buf_failed(&b) ? "" : b.data};
    table_row(t, row);
  }
  int64_t de = jint(s, "dropped_events"), dl = jint(s, "dropped_links");
  if (de > 0 || dl > 0) {
    char line[160];
    snprintf(line, sizeof line,
             "%*s%" PRId64 " events and %" PRId64
             " links dropped by the sender",
             depth * 2 + 2, "", de, dl);
    const char *row[] = {"", "", "", "", line};
    table_row(t, row);
  }
  hs_buf_free(&b);
}

static int render_trace(const hs_json_value *doc, FILE *f) {
  const hs_json_value *tr = jobj(doc, "trace");
  const hs_json_value *spans = jarr(doc, "spans");
  if (tr == NULL || spans == NULL)
    return -1;
  char start[40], dur[24];
  int64_t t0 = jint(tr, "start_ns");
  hs_cli_fmt_time(t0, start, sizeof start);
  hs_cli_fmt_duration(jnum(tr, "duration_ns"), dur, sizeof dur);
  fprintf(f, "trace %s  %s  %s  %s  %" PRId64 " spans  started %s%s\n",
          jstr(tr, "trace_id"), jstr(tr, "service"), jstr(tr, "endpoint"), dur,
          jint(tr, "span_count"), start, jbool(tr, "error") ? "  ERROR" : "");
  /* The root span's resource (OTLP senders): environment, host, process. */
  for (size_t i = 0; i < spans->u.array.len; i++) {
    const hs_json_value *s = &spans->u.array.items[i];
    const hs_json_value *ra = jobj(s, "resource_attrs");
    if (strcmp(jstr(s, "span_id"), jstr(tr, "root_span_id")) != 0 || !ra ||
        ra->u.object.len == 0)
      continue;
    hs_buf b;
    hs_buf_init(&b, 4096);
    put_attrs_inline(&b, ra, "service.name");
    hs_buf_putc(&b, '\0');
    if (!hs_buf_failed(&b) && b.data[0])
      fprintf(f, "resource%s\n", b.data);
    hs_buf_free(&b);
    break;
  }
  fputc('\n', f);
  /* Spans may start before the trace's root (clock skew between hosts):
   * offsets are from the earliest span. */
  for (size_t i = 0; i < spans->u.array.len; i++) {
    int64_t s = jint(&spans->u.array.items[i], "start_ns");
    if (s < t0)
      t0 = s;
  }
  table t;
  table_init(&t, "SPAN ID|>START|>DURATION|SERVICE|SPAN");
  for (size_t i = 0; i < spans->u.array.len; i++) {
    const hs_json_value *s = &spans->u.array.items[i];
    char off[24], d[24], name[600];
    hs_cli_fmt_duration((double)(jint(s, "start_ns") - t0), off, sizeof off);
    hs_cli_fmt_duration(jnum(s, "duration_ns"), d, sizeof d);
    int depth = (int)jint(s, "depth");
    if (depth < 0)
      depth = 0;
    if (depth > 40)
      depth = 40;
    const char *res = jstr(s, "resource");
    const char *nm = jstr(s, "name");
    snprintf(name, sizeof name, "%*s%s%s%s%s", depth * 2, "", nm,
             *res && strcmp(res, nm) != 0 ? "  " : "",
             *res && strcmp(res, nm) != 0 ? res : "",
             jbool(s, "error") ? "  ERROR" : "");
    char offp[28];
    snprintf(offp, sizeof offp, "+%s", off);
    const char *row[] = {jstr(s, "span_id"), offp, d, jstr(s, "service"), name};
    table_row(&t, row);
    event_link_rows(&t, s, depth, t0);
  }
  table_print(&t, f, "");
  return 0;
}

/* ------------------------------------------------------------ profiles */

typedef struct tree_state {
  double total, min_pct;
  size_t lines, max_lines;
  int truncated;
} tree_state;

static void tree_node(const hs_json_value *n, int depth, tree_state *st,
                      FILE *f) {
  const hs_json_value *kids = jarr(n, "children");
  for (size_t i = 0; kids && i < kids->u.array.len; i++) {
    const hs_json_value *c = &kids->u.array.items[i];
    double v = jnum(c, "value");
    double pct = st->total > 0 ? 100.0 * v / st->total : 0;
    if (pct < st->min_pct)
      continue; /* children are largest first, but be safe */
    if (st->lines >= st->max_lines) {
      st->truncated = 1;
      return;
    }
    char d[24], p[16];
    hs_cli_fmt_duration(v, d, sizeof d);
    fmt_pct(pct, p, sizeof p);
    int ind = depth > 60 ? 60 : depth;
    fprintf(f, "  %6s %10s  %*s%s\n", p, d, ind * 2, "", jstr(c, "name"));
    st->lines++;
    tree_node(c, depth + 1, st, f);
  }
}

/* One profile object ({type,total_ns,samples,functions,flame}). */
static void render_profile(const hs_json_value *p, const char *title,
                           int per_request, int64_t requests,
                           const hs_cli_render_opts *o, FILE *f) {
  char tot[24], per[40] = "";
  double total = jnum(p, "total_ns");
  hs_cli_fmt_duration(total, tot, sizeof tot);
  if (requests > 0) {
    char d[24];
    hs_cli_fmt_duration(total / (double)requests, d, sizeof d);
    snprintf(per, sizeof per, " (%s per request)", d);
  }
  fprintf(f, "%s  total %s%s, %" PRId64 " samples\n", title, tot, per,
          jint(p, "samples"));
  const hs_json_value *fn = jarr(p, "functions");
  if (fn == NULL || fn->u.array.len == 0) {
    fprintf(f, "  (no samples)\n");
    return;
  }
  table t;
  if (per_request && requests > 0)
    table_init(&t, ">SELF/REQ|>SELF%|>TOTAL/REQ|>TOTAL%|FUNCTION");
  else
    table_init(&t, ">SELF|>SELF%|>TOTAL|>TOTAL%|FUNCTION");
  for (size_t i = 0; i < fn->u.array.len; i++) {
    const hs_json_value *x = &fn->u.array.items[i];
    char s[24], sp[16], tt[24], tp[16];
    double self = jnum(x, "self_ns"), tl = jnum(x, "total_ns");
    if (per_request && requests > 0) {
      self /= (double)requests;
      tl /= (double)requests;
    }
    hs_cli_fmt_duration(self, s, sizeof s);
    hs_cli_fmt_duration(tl, tt, sizeof tt);
    fmt_pct(jnum(x, "self_pct"), sp, sizeof sp);
    fmt_pct(jnum(x, "total_pct"), tp, sizeof tp);
    const char *row[] = {s, sp, tt, tp, jstr(x, "name")};
    table_row(&t, row);
  }
  table_print(&t, f, "  ");
  const hs_json_value *flame = jobj(p, "flame");
  if (flame != NULL && total > 0) {
    tree_state st = {total, o->tree_min_pct > 0 ? o->tree_min_pct : 1.0, 0,
                     o->tree_lines ? o->tree_lines : 40, 0};
    fprintf(f, "\n  call tree (>= %.0f%% of the total):\n", st.min_pct);
    tree_node(flame, 0, &st, f);
    if (st.truncated)
      fprintf(f, "  ... (more lines: use --json for the whole tree)\n");
  }
}

static int render_hotspots(const hs_json_value *doc,
                           const hs_cli_render_opts *o, FILE *f) {
  const hs_json_value *cpu = jobj(doc, "cpu"), *wall = jobj(doc, "wall");
  if (hs_json_get(doc, "span_id") == NULL || (cpu == NULL && wall == NULL))
    return -1;
  char dur[24];
  hs_cli_fmt_duration(jnum(doc, "duration_ns"), dur, sizeof dur);
  fprintf(f, "span %s  %s  %s  %s  %s\n", jstr(doc, "span_id"),
          jstr(doc, "service"), jstr(doc, "name"), jstr(doc, "resource"), dur);
  fprintf(f, "trace %s", jstr(doc, "trace_id"));
  if (jbool(doc, "with_children"))
    fprintf(f, "  (samples of %" PRId64 " spans: the span and its children)",
            jint(doc, "spans"));
  fputc('\n', f);
  const char *verdict = jstr(doc, "verdict");
  fprintf(f, "verdict: %s", *verdict ? verdict : "no-samples");
  if (strcmp(verdict, "no-samples") != 0 && *verdict)
    fprintf(f, " (cpu/%s %.2f)",
            strcmp(jstr(doc, "wall_basis"), "duration") == 0 ? "duration"
                                                             : "wall",
            jnum(doc, "cpu_wall_ratio"));
  fputc('\n', f);
  if (cpu && o->type != HS_CLI_WALL) {
    fputc('\n', f);
    render_profile(cpu, "CPU", 0, 0, o, f);
  }
  if (wall && o->type != HS_CLI_CPU) {
    fputc('\n', f);
    render_profile(wall, "WALL", 0, 0, o, f);
  }
  return strcmp(verdict, "no-samples") == 0 ? 1 : 0;
}

static int render_endpoint_profile(const hs_json_value *doc,
                                   const hs_cli_render_opts *o, FILE *f) {
  const hs_json_value *p = jobj(doc, o->type == HS_CLI_WALL ? "wall" : "cpu");
  if (p == NULL || hs_json_get(doc, "endpoint") == NULL)
    return -1;
  char a[40], b[40];
  hs_cli_fmt_time(jint(doc, "from_ns"), a, sizeof a);
  int64_t to = jint(doc, "to_ns");
  if (to > 0)
    hs_cli_fmt_time(to, b, sizeof b);
  else
    snprintf(b, sizeof b, "now");
  const char *svc = jstr(doc, "service");
  int64_t requests = jint(doc, "requests");
  fprintf(f, "endpoint %s%s%s%s  %s .. %s  %" PRId64 " requests\n\n",
          jstr(doc, "endpoint"), *svc ? " (service " : "", svc, *svc ? ")" : "",
          a, b, requests);
  render_profile(p, o->type == HS_CLI_WALL ? "WALL" : "CPU", o->per_request,
                 requests, o, f);
  return jint(p, "samples") > 0 ? 0 : 1;
}

/* "  before 2024-...Z .. 2024-...Z  12 requests", with "version V" first
 * for a version diff, whose zero range reads "all stored data". */
static void diff_side(const hs_json_value *side, const char *label, FILE *f) {
  const hs_json_value *v = hs_json_get(side, "version");
  int64_t from = jint(side, "from_ns"), to = jint(side, "to_ns");
  fprintf(f, "  %s ", label);
  if (v != NULL && v->type == HS_JSON_STRING)
    fprintf(f, "version %s, ", v->u.string.ptr);
  if (v != NULL && v->type == HS_JSON_STRING && from == 0 && to == 0) {
    fputs("all stored data", f);
  } else {
    char t0[40], t1[40];
    hs_cli_fmt_time(from, t0, sizeof t0);
    if (to)
      hs_cli_fmt_time(to, t1, sizeof t1);
    else
      snprintf(t1, sizeof t1, "now");
    fprintf(f, "%s .. %s", t0, t1);
  }
  fprintf(f, "  %" PRId64 " requests\n", jint(side, "requests"));
}

/* ------------------------------------------------------------ versions */

static int render_versions(const hs_json_value *doc, FILE *f) {
  const hs_json_value *vs = jarr(doc, "versions");
  if (vs == NULL)
    return -1;
  table t;
  table_init(&t, "SERVICE|VERSION|>REQUESTS|>SAMPLES|FIRST SEEN|LAST SEEN");
  for (size_t i = 0; i < vs->u.array.len; i++) {
    const hs_json_value *v = &vs->u.array.items[i];
    char req[24], smp[24], t0[40], t1[40];
    snprintf(req, sizeof req, "%" PRId64, jint(v, "requests"));
    snprintf(smp, sizeof smp, "%" PRId64, jint(v, "samples"));
    hs_cli_fmt_time(jint(v, "first_ns"), t0, sizeof t0);
    hs_cli_fmt_time(jint(v, "last_ns"), t1, sizeof t1);
    const char *row[] = {
        jstr(v, "service"), jstr(v, "version"), req, smp, t0, t1};
    table_row(&t, row);
  }
  table_print(&t, f, "");
  return vs->u.array.len == 0 ? 1 : 0;
}

static int render_diff(const hs_json_value *doc, FILE *f) {
  const hs_json_value *fn = jarr(doc, "functions");
  const hs_json_value *be = jobj(doc, "before"), *af = jobj(doc, "after");
  if (fn == NULL || be == NULL || af == NULL)
    return -1;
  fprintf(f, "diff %s (%s time per request)\n", jstr(doc, "endpoint"),
          jstr(doc, "type"));
  diff_side(be, "before", f);
  diff_side(af, "after ", f);
  fputc('\n', f);
  table t;
  table_init(&t, ">DELTA SELF|>BEFORE|>AFTER|>DELTA TOTAL|FUNCTION");
  for (size_t i = 0; i < fn->u.array.len; i++) {
    const hs_json_value *x = &fn->u.array.items[i];
    char ds[32], bs[24], as[24], dt[32], tmp[24];
    double d = jnum(x, "delta_self_ns"), d2 = jnum(x, "delta_total_ns");
    hs_cli_fmt_duration(d, tmp, sizeof tmp);
    snprintf(ds, sizeof ds, "%s%s", d > 0 ? "+" : "", tmp);
    hs_cli_fmt_duration(jnum(x, "before_self_ns"), bs, sizeof bs);
    hs_cli_fmt_duration(jnum(x, "after_self_ns"), as, sizeof as);
    hs_cli_fmt_duration(d2, tmp, sizeof tmp);
    snprintf(dt, sizeof dt, "%s%s", d2 > 0 ? "+" : "", tmp);
    const char *row[] = {ds, bs, as, dt, jstr(x, "name")};
    table_row(&t, row);
  }
  table_print(&t, f, "");
  return fn->u.array.len == 0 ? 1 : 0;
}

int hs_cli_render(hs_cli_kind kind, const hs_json_value *doc,
                  const hs_cli_render_opts *o, FILE *f, FILE *err_f) {
  hs_cli_render_opts def = {0};
  if (o == NULL)
    o = &def;
  int rc = -1;
  if (doc != NULL && doc->type == HS_JSON_OBJECT) {
    switch (kind) {
    case HS_Q_SERVICES:
      rc = render_services(doc, f);
      break;
    case HS_Q_TRACES:
      rc = render_traces(doc, f);
      break;
    case HS_Q_TRACE:
      rc = render_trace(doc, f);
      break;
    case HS_Q_HOTSPOTS:
      rc = render_hotspots(doc, o, f);
      break;
    case HS_Q_PROFILE:
      rc = render_endpoint_profile(doc, o, f);
      break;
    case HS_Q_DIFF:
      rc = render_diff(doc, f);
      break;
    case HS_Q_VERSIONS:
      rc = render_versions(doc, f);
      break;
    }
  }
  if (rc < 0) {
    fprintf(err_f, "hotspan: the answer is not the document expected\n");
    return HS_CLI_BACKEND;
  }
  return rc == 0 ? HS_CLI_OK : HS_CLI_NOTFOUND;
}
