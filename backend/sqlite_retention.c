/* Retention in the SQLite store: deleting the oldest traces (with their
 * spans) and samples in bounded steps, by age and by database size, then
 * giving the freed pages back to the file system (incremental vacuum). */
#include <stdint.h>
#include <string.h>

#include "backend/sqlite_int.h"

static int64_t db_int(sq_store *s, const char *sql) {
  sqlite3_stmt *st;
  int64_t v = -1;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

int64_t hs_store_sqlite_size(hs_store *base) {
  if (!base || base->vt->close != hs_sq_close)
    return -1;
  sq_store *s = (sq_store *)base;
  int64_t pc = db_int(s, "PRAGMA page_count");
  int64_t ps = db_int(s, "PRAGMA page_size");
  return pc < 0 || ps < 0 ? -1 : pc * ps;
}

/* Deletes up to limit traces that started before cutoff, oldest first, with
 * their spans. Returns the number of traces deleted, -1 on error. */
static int64_t delete_traces(sq_store *s, int64_t cutoff, int64_t limit,
                             int64_t *spans) {
  sqlite3_stmt *sel = NULL, *dsp = NULL, *dtr = NULL;
  int64_t n = -1;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT id, trace_lo, trace_hi FROM traces WHERE"
                         " start_ns < ? ORDER BY start_ns LIMIT ?",
                         -1, &sel, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db,
                         "DELETE FROM spans WHERE trace_lo=? AND trace_hi=?",
                         -1, &dsp, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db, "DELETE FROM traces WHERE id=?", -1, &dtr,
                         NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_int64(sel, 1, cutoff);
  sqlite3_bind_int64(sel, 2, limit);
  int rc;
  n = 0;
  while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
    sqlite3_bind_int64(dsp, 1, sqlite3_column_int64(sel, 1));
    sqlite3_bind_int64(dsp, 2, sqlite3_column_int64(sel, 2));
    sqlite3_bind_int64(dtr, 1, sqlite3_column_int64(sel, 0));
    if (hs_sq_step_done(dsp) < 0) {
      n = -1;
      goto out;
    }
    *spans += sqlite3_changes(s->db);
    if (hs_sq_step_done(dtr) < 0) {
      n = -1;
      goto out;
    }
    n++;
  }
  if (rc != SQLITE_DONE)
    n = -1;
out:
  sqlite3_finalize(sel);
  sqlite3_finalize(dsp);
  sqlite3_finalize(dtr);
  return n;
}

static int64_t delete_samples(sq_store *s, int64_t cutoff, int64_t limit) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         "DELETE FROM samples WHERE rowid IN (SELECT rowid"
                         " FROM samples WHERE time_ns < ? ORDER BY time_ns"
                         " LIMIT ?)",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_int64(st, 1, cutoff);
  sqlite3_bind_int64(st, 2, limit);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
}

int hs_sq_retain(hs_store *base, const hs_store_retention *r,
                 hs_store_retain_stats *out, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  hs_store_retain_stats st;
  memset(&st, 0, sizeof st);
  if (!r) {
    hs_sq_seterr(err, errlen, "no retention policy");
    return HS_STORE_ERR;
  }
  int64_t step = r->step_rows > 0 ? r->step_rows : 5000;
  st.bytes_before = hs_store_sqlite_size(base);
  if (hs_sq_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
    return HS_STORE_ERR;
  int age_full = 0;
  int64_t size_deleted = 0;
  if (r->max_age_ns > 0) {
    int64_t cutoff = r->now_ns - r->max_age_ns;
    int64_t t = delete_traces(s, cutoff, step, &st.spans_deleted);
    int64_t m = t < 0 ? -1 : delete_samples(s, cutoff, step);
    if (t < 0 || m < 0)
      goto fail;
    st.traces_deleted += t;
    st.samples_deleted += m;
    age_full = t == step || m == step;
  }
  if (r->max_bytes > 0) {
    /* Pages on the free list are reused before the file grows, so what
     * counts against the limit is the pages in use. */
    int64_t used =
        (db_int(s, "PRAGMA page_count") - db_int(s, "PRAGMA freelist_count")) *
        db_int(s, "PRAGMA page_size");
    if (used > r->max_bytes) {
      int64_t t = delete_traces(s, INT64_MAX, step, &st.spans_deleted);
      int64_t m = t < 0 ? -1 : delete_samples(s, INT64_MAX, step);
      if (t < 0 || m < 0)
        goto fail;
      st.traces_deleted += t;
      st.samples_deleted += m;
      size_deleted = t + m;
    }
  }
  if (hs_sq_exec(s, "COMMIT", err, errlen) < 0)
    goto fail_msg;
  /* Give the freed pages back (auto_vacuum = INCREMENTAL). */
  if (st.traces_deleted + st.samples_deleted > 0 &&
      hs_sq_exec(s, "PRAGMA incremental_vacuum", err, errlen) < 0)
    return HS_STORE_ERR;
  st.bytes_after = hs_store_sqlite_size(base);
  /* When nothing was left to delete, more steps would not help (frames and
   * stacks are kept; see docs/store.md). */
  st.more = age_full || (size_deleted > 0 && st.bytes_after > r->max_bytes);
  if (out)
    *out = st;
  return HS_STORE_OK;
fail:
  hs_sq_dberr(s, err, errlen, "retention");
fail_msg:
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return HS_STORE_ERR;
}
