/* The read queries of the SQLite store: traces, a trace's spans, a span
 * by id, aggregated samples (by span ids or by endpoint and version),
 * a stack's frames, and the versions seen. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite_int.h"

static const char *col_text(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? (const char *)t : "";
}

#define TRACE_COLS                                                             \
  "SELECT t.trace_hi, t.trace_lo, t.root_span_id, t.root_known, s.name,"       \
  " e.name, t.start_ns, t.duration_ns, t.error, t.span_count FROM traces t"    \
  " JOIN endpoints e ON e.id = t.endpoint_id JOIN services s ON"               \
  " s.id = e.service_id"

static void read_trace(sqlite3_stmt *st, hs_store_trace *t) {
  t->trace_id_high = (uint64_t)sqlite3_column_int64(st, 0);
  t->trace_id_low = (uint64_t)sqlite3_column_int64(st, 1);
  t->root_span_id = (uint64_t)sqlite3_column_int64(st, 2);
  t->root_known = sqlite3_column_int(st, 3);
  t->service = col_text(st, 4);
  t->endpoint = col_text(st, 5);
  t->start_ns = sqlite3_column_int64(st, 6);
  t->duration_ns = sqlite3_column_int64(st, 7);
  t->error = sqlite3_column_int(st, 8);
  t->span_count = sqlite3_column_int64(st, 9);
}

/* Steps st, calling cb per row through rd. Returns HS_STORE_OK,
 * HS_STORE_NOTFOUND if no row and notfound is set, the callback's stop
 * value, or HS_STORE_ERR. Finalizes st. */
static int run_trace_rows(sq_store *s, sqlite3_stmt *st, hs_store_trace_cb cb,
                          void *arg, int notfound, char *err, size_t errlen) {
  int rc, rows = 0, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    hs_store_trace t;
    read_trace(st, &t);
    rows++;
    stop = cb(arg, &t);
  }
  int r = stop                ? stop
          : rc != SQLITE_DONE ? hs_sq_dberr(s, err, errlen, "reading traces")
          : !rows && notfound ? HS_STORE_NOTFOUND
                              : HS_STORE_OK;
  sqlite3_finalize(st);
  return r;
}

int hs_sq_traces(hs_store *base, const hs_store_trace_filter *f,
                 hs_store_trace_cb cb, void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  hs_store_trace_filter none;
  memset(&none, 0, sizeof none);
  if (!f)
    f = &none;
  char sql[1024];
  snprintf(sql, sizeof sql, TRACE_COLS " WHERE 1%s%s%s%s%s%s%s%s%s",
           f->service ? " AND s.name=?1" : "",
           f->version ? " AND t.version_id=(SELECT v.id FROM versions v"
                        " WHERE v.service_id=s.id AND v.name=?7)"
                      : "",
           f->endpoint ? " AND e.name=?2" : "",
           f->min_duration_ns > 0 ? " AND t.duration_ns>=?3" : "",
           f->errors_only ? " AND t.error!=0" : "",
           f->from_ns ? " AND t.start_ns>=?4" : "",
           f->to_ns ? " AND t.start_ns<?5" : "",
           f->by_duration ? " ORDER BY t.duration_ns DESC" : "",
           f->limit > 0 ? " LIMIT ?6" : "");
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return hs_sq_dberr(s, err, errlen, "listing traces");
  if (f->service)
    sqlite3_bind_text(st, 1, f->service, -1, SQLITE_STATIC);
  if (f->endpoint)
    sqlite3_bind_text(st, 2, f->endpoint, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, f->min_duration_ns);
  sqlite3_bind_int64(st, 4, f->from_ns);
  sqlite3_bind_int64(st, 5, f->to_ns);
  sqlite3_bind_int64(st, 6, f->limit);
  if (f->version)
    sqlite3_bind_text(st, 7, f->version, -1, SQLITE_STATIC);
  return run_trace_rows(s, st, cb, arg, 0, err, errlen);
}

int hs_sq_trace(hs_store *base, uint64_t hi, uint64_t lo, hs_store_trace_cb cb,
                void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         TRACE_COLS " WHERE t.trace_lo=? AND t.trace_hi=?", -1,
                         &st, NULL) != SQLITE_OK)
    return hs_sq_dberr(s, err, errlen, "reading a trace");
  sqlite3_bind_int64(st, 1, (int64_t)lo);
  sqlite3_bind_int64(st, 2, (int64_t)hi);
  return run_trace_rows(s, st, cb, arg, 1, err, errlen);
}

#define SPAN_COLS                                                              \
  "SELECT p.trace_hi, p.trace_lo, p.span_id, p.parent_id, s.name, p.name,"     \
  " p.resource, p.type, p.kind, p.start_ns, p.duration_ns, p.error,"           \
  " p.attrs, p.events, p.links, p.dropped_events, p.dropped_links, r.attrs"    \
  " FROM spans p LEFT JOIN services s ON s.id = p.service_id"                  \
  " LEFT JOIN resources r ON r.id = p.resource_id"

static int run_span_rows(sq_store *s, sqlite3_stmt *st, hs_store_span_cb cb,
                         void *arg, char *err, size_t errlen) {
  int rc, rows = 0, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    hs_store_span p;
    p.trace_id_high = (uint64_t)sqlite3_column_int64(st, 0);
    p.trace_id_low = (uint64_t)sqlite3_column_int64(st, 1);
    p.span_id = (uint64_t)sqlite3_column_int64(st, 2);
    p.parent_id = (uint64_t)sqlite3_column_int64(st, 3);
    p.service = col_text(st, 4);
    p.name = col_text(st, 5);
    p.resource = col_text(st, 6);
    p.type = col_text(st, 7);
    p.kind = sqlite3_column_int(st, 8);
    p.start_ns = sqlite3_column_int64(st, 9);
    p.duration_ns = sqlite3_column_int64(st, 10);
    p.error = sqlite3_column_int(st, 11);
    p.attrs_json = col_text(st, 12);
    p.events_json = (const char *)sqlite3_column_text(st, 13);
    p.links_json = (const char *)sqlite3_column_text(st, 14);
    p.dropped_events = sqlite3_column_int64(st, 15);
    p.dropped_links = sqlite3_column_int64(st, 16);
    p.resource_json = (const char *)sqlite3_column_text(st, 17);
    rows++;
    stop = cb(arg, &p);
  }
  int r = stop                ? stop
          : rc != SQLITE_DONE ? hs_sq_dberr(s, err, errlen, "reading spans")
          : !rows             ? HS_STORE_NOTFOUND
                              : HS_STORE_OK;
  sqlite3_finalize(st);
  return r;
}

int hs_sq_trace_spans(hs_store *base, uint64_t hi, uint64_t lo,
                      hs_store_span_cb cb, void *arg, char *err,
                      size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         SPAN_COLS " WHERE p.trace_lo=? AND p.trace_hi=?"
                                   " ORDER BY p.start_ns, p.span_id",
                         -1, &st, NULL) != SQLITE_OK)
    return hs_sq_dberr(s, err, errlen, "reading spans");
  sqlite3_bind_int64(st, 1, (int64_t)lo);
  sqlite3_bind_int64(st, 2, (int64_t)hi);
  return run_span_rows(s, st, cb, arg, err, errlen);
}

int hs_sq_find_span(hs_store *base, uint64_t span_id, hs_store_span_cb cb,
                    void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, SPAN_COLS " WHERE p.span_id=?", -1, &st,
                         NULL) != SQLITE_OK)
    return hs_sq_dberr(s, err, errlen, "reading a span");
  sqlite3_bind_int64(st, 1, (int64_t)span_id);
  return run_span_rows(s, st, cb, arg, err, errlen);
}

static int run_sample_rows(sq_store *s, sqlite3_stmt *st, hs_store_sample_cb cb,
                           void *arg, char *err, size_t errlen) {
  int rc, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    /* TOTAL() sums as a double, which cannot overflow (SUM() would fail
     * the query with "integer overflow"): clamped back to int64. */
    double v = sqlite3_column_double(st, 2);
    int64_t value = v >= 9.2e18    ? INT64_MAX
                    : v <= -9.2e18 ? INT64_MIN
                                   : (int64_t)v;
    stop = cb(arg, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1),
              value, sqlite3_column_int64(st, 3));
  }
  if (!stop && rc != SQLITE_DONE)
    stop = hs_sq_dberr(s, err, errlen, "reading samples");
  sqlite3_reset(st);
  return stop;
}

int hs_sq_samples(hs_store *base, const hs_store_sample_sel *sel,
                  hs_store_sample_cb cb, void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st = NULL, *eps = NULL;
  int rc = HS_STORE_OK;
  if (!sel || (!sel->span_ids && !sel->endpoint)) {
    hs_sq_seterr(err, errlen, "no sample selection");
    return HS_STORE_ERR;
  }
  if (sel->span_ids) {
    if (sqlite3_prepare_v2(s->db,
                           "SELECT type, stack_id, TOTAL(value), COUNT(*) FROM"
                           " samples WHERE span_id=?1 AND (?2=0 OR type=?2)"
                           " GROUP BY type, stack_id",
                           -1, &st, NULL) != SQLITE_OK)
      return hs_sq_dberr(s, err, errlen, "reading samples");
    sqlite3_bind_int(st, 2, sel->type);
    for (size_t i = 0; rc == HS_STORE_OK && i < sel->nspan_ids; i++) {
      sqlite3_bind_int64(st, 1, (int64_t)sel->span_ids[i]);
      rc = run_sample_rows(s, st, cb, arg, err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
  }
  /* Endpoint ids (with the id of the version of the endpoint's service)
   * first, then one index range per id: keeps the covering (endpoint_id,
   * time_ns, ...) or (version_id, endpoint_id, time_ns, ...) index in
   * use. */
  const char *eps_sql =
      sel->version ? "SELECT e.id, v.id FROM endpoints e JOIN services s ON"
                     " s.id = e.service_id JOIN versions v ON v.service_id ="
                     " e.service_id AND v.name=?3 WHERE e.name=?1 AND (?2 IS"
                     " NULL OR s.name=?2 OR s.name='')"
                   : "SELECT e.id, 0 FROM endpoints e JOIN services s ON"
                     " s.id = e.service_id WHERE e.name=?1 AND (?2 IS"
                     " NULL OR s.name=?2 OR s.name='')";
  const char *smp_sql =
      sel->version ? "SELECT type, stack_id, TOTAL(value), COUNT(*) FROM"
                     " samples WHERE version_id=?5 AND endpoint_id=?1 AND"
                     " time_ns>=?2 AND time_ns<?3 AND (?4=0 OR type=?4)"
                     " GROUP BY type, stack_id"
                   : "SELECT type, stack_id, TOTAL(value), COUNT(*) FROM"
                     " samples WHERE endpoint_id=?1 AND time_ns>=?2 AND"
                     " time_ns<?3 AND (?4=0 OR type=?4) AND ?5=0"
                     " GROUP BY type, stack_id";
  if (sqlite3_prepare_v2(s->db, eps_sql, -1, &eps, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db, smp_sql, -1, &st, NULL) != SQLITE_OK) {
    rc = hs_sq_dberr(s, err, errlen, "reading samples");
    goto out;
  }
  sqlite3_bind_text(eps, 1, sel->endpoint, -1, SQLITE_STATIC);
  if (sel->service)
    sqlite3_bind_text(eps, 2, sel->service, -1, SQLITE_STATIC);
  if (sel->version)
    sqlite3_bind_text(eps, 3, sel->version, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, sel->from_ns);
  sqlite3_bind_int64(st, 3, sel->to_ns ? sel->to_ns : INT64_MAX);
  sqlite3_bind_int(st, 4, sel->type);
  int erc;
  while (rc == HS_STORE_OK && (erc = sqlite3_step(eps)) == SQLITE_ROW) {
    sqlite3_bind_int64(st, 1, sqlite3_column_int64(eps, 0));
    sqlite3_bind_int64(st, 5, sqlite3_column_int64(eps, 1));
    rc = run_sample_rows(s, st, cb, arg, err, errlen);
  }
  if (rc == HS_STORE_OK && erc != SQLITE_DONE)
    rc = hs_sq_dberr(s, err, errlen, "reading endpoints");
out:
  sqlite3_finalize(eps);
  sqlite3_finalize(st);
  return rc;
}

int hs_sq_stack(hs_store *base, int64_t stack_id, hs_store_stack_cb cb,
                void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st = NULL, *fr = NULL;
  hs_store_frame *frames = NULL;
  char **owned = NULL;
  size_t n = 0;
  int rc = HS_STORE_ERR;
  /* Read-only stores prepare no statements at open. */
  if (s->st[ST_STACK_GET]) {
    st = s->st[ST_STACK_GET];
    fr = s->st[ST_FRAME_GET];
  } else if (sqlite3_prepare_v2(s->db, hs_sq_stmt_sql[ST_STACK_GET], -1, &st,
                                NULL) != SQLITE_OK ||
             sqlite3_prepare_v2(s->db, hs_sq_stmt_sql[ST_FRAME_GET], -1, &fr,
                                NULL) != SQLITE_OK) {
    hs_sq_dberr(s, err, errlen, "reading a stack");
    goto out;
  }
  sqlite3_bind_int64(st, 1, stack_id);
  int src = sqlite3_step(st);
  if (src == SQLITE_DONE) {
    hs_sq_seterr(err, errlen, "stack %" PRId64 " not found", stack_id);
    rc = HS_STORE_NOTFOUND;
    goto out;
  }
  if (src != SQLITE_ROW) {
    hs_sq_dberr(s, err, errlen, "reading a stack");
    goto out;
  }
  const unsigned char *p = sqlite3_column_blob(st, 0);
  size_t len = (size_t)sqlite3_column_bytes(st, 0);
  /* At most one frame per blob byte. */
  frames = calloc(len ? len : 1, sizeof *frames);
  owned = calloc(len ? len * 3 : 1, sizeof *owned);
  if (!frames || !owned) {
    hs_sq_seterr(err, errlen, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < len;) {
    uint64_t v = 0;
    int shift = 0;
    while (i < len && shift < 64) {
      v |= (uint64_t)(p[i] & 0x7f) << shift;
      shift += 7;
      if (!(p[i++] & 0x80))
        break;
    }
    sqlite3_bind_int64(fr, 1, (int64_t)v);
    hs_store_frame *f = &frames[n];
    if (sqlite3_step(fr) == SQLITE_ROW) {
      owned[3 * n] = strdup(col_text(fr, 0));
      owned[3 * n + 1] = strdup(col_text(fr, 1));
      owned[3 * n + 2] = strdup(col_text(fr, 3));
      f->line = sqlite3_column_int64(fr, 2);
    } else {
      owned[3 * n] = strdup("??");
      owned[3 * n + 1] = strdup("");
      owned[3 * n + 2] = strdup("");
    }
    sqlite3_reset(fr);
    if (!owned[3 * n] || !owned[3 * n + 1] || !owned[3 * n + 2]) {
      n++;
      hs_sq_seterr(err, errlen, "out of memory");
      goto out;
    }
    f->function = owned[3 * n];
    f->file = owned[3 * n + 1];
    f->mapping = owned[3 * n + 2];
    n++;
  }
  rc = cb(arg, frames, n);
out:
  if (owned)
    for (size_t i = 0; i < 3 * n; i++)
      free(owned[i]);
  free(owned);
  free(frames);
  if (st && st == s->st[ST_STACK_GET]) {
    sqlite3_reset(st);
    sqlite3_reset(fr);
  } else {
    sqlite3_finalize(st);
    sqlite3_finalize(fr);
  }
  return rc;
}

/* Counts come from the version indexes (one range each); versions
 * whose traces and samples retention has deleted are left out. */
int hs_sq_versions(hs_store *base, const char *service, hs_store_version_cb cb,
                   void *arg, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(
          s->db,
          "SELECT sv, vn, nt, ns, min(coalesce(t0, m0), coalesce(m0, t0)),"
          " max(coalesce(t1, m1), coalesce(m1, t1)) FROM (SELECT s.name AS"
          " sv, v.name AS vn,"
          " (SELECT count(*) FROM traces WHERE version_id=v.id) AS nt,"
          " (SELECT count(*) FROM samples WHERE version_id=v.id) AS ns,"
          " (SELECT min(start_ns) FROM traces WHERE version_id=v.id) AS t0,"
          " (SELECT max(start_ns) FROM traces WHERE version_id=v.id) AS t1,"
          " (SELECT min(time_ns) FROM samples WHERE version_id=v.id) AS m0,"
          " (SELECT max(time_ns) FROM samples WHERE version_id=v.id) AS m1"
          " FROM versions v JOIN services s ON s.id = v.service_id"
          " WHERE ?1 IS NULL OR s.name=?1)"
          " WHERE nt > 0 OR ns > 0 ORDER BY sv, 5, vn",
          -1, &st, NULL) != SQLITE_OK)
    return hs_sq_dberr(s, err, errlen, "listing versions");
  if (service)
    sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
  int rc, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    hs_store_version v;
    v.service = col_text(st, 0);
    v.version = col_text(st, 1);
    v.requests = sqlite3_column_int64(st, 2);
    v.samples = sqlite3_column_int64(st, 3);
    v.first_ns = sqlite3_column_int64(st, 4);
    v.last_ns = sqlite3_column_int64(st, 5);
    stop = cb(arg, &v);
  }
  int r = stop                ? stop
          : rc != SQLITE_DONE ? hs_sq_dberr(s, err, errlen, "listing versions")
                              : HS_STORE_OK;
  sqlite3_finalize(st);
  return r;
}
