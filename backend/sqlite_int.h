/* Internals shared by the files of the SQLite store (sqlite_schema.c,
 * sqlite_ingest.c, sqlite_query.c, sqlite_retention.c): the connection
 * with its prepared statements and caches, and the small helpers they
 * all use. Not part of the store interface (store.h). */
#ifndef HS_BACKEND_SQLITE_INT_H
#define HS_BACKEND_SQLITE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/store.h"
#include "common/buf.h"
#include "common/kvmap.h"

/* The statements prepared once at open (sqlite_schema.c has their SQL). */
enum {
  ST_SERVICE_INS,
  ST_SERVICE_SEL,
  ST_ENDPOINT_INS,
  ST_ENDPOINT_SEL,
  ST_SPAN_INS,
  ST_TRACE_UPSERT,
  ST_FRAME_INS,
  ST_FRAME_SEL,
  ST_STACK_INS,
  ST_STACK_SEL,
  ST_THREAD_INS,
  ST_THREAD_SEL,
  ST_SAMPLE_INS,
  ST_STACK_GET,
  ST_FRAME_GET,
  ST_VERSION_INS,
  ST_VERSION_SEL,
  ST_RESOURCE_INS,
  ST_RESOURCE_SEL,
  ST_COUNT
};

/* The SQL of each statement at the newest schema version. */
extern const char *const hs_sq_stmt_sql[ST_COUNT];

/* An open store: the base the interface sees, the connection, its schema
 * version (SQLite's user_version), the statements (NULL where a read-only
 * open or an older schema prepares none) and the ingest caches. */
typedef struct sq_store {
  hs_store base;
  sqlite3 *db;
  char *path;
  int version;
  sqlite3_stmt *st[ST_COUNT];
  hs_kvmap services, endpoints, frames, stacks, threads, versions, resources;
  hs_buf scratch; /* attrs JSON, cache keys */
  hs_buf blob;    /* a stack's frame ids; a span's events and links JSON */
} sq_store;

/* Formats a message into err (err NULL or errlen 0: nothing). */
void hs_sq_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets "path: what: SQLite's message" and returns HS_STORE_ERR. */
int hs_sq_dberr(sq_store *s, char *err, size_t errlen, const char *what);
/* Runs sql (no result rows). HS_STORE_OK, else HS_STORE_ERR with the
 * message set. */
int hs_sq_exec(sq_store *s, const char *sql, char *err, size_t errlen);
/* Steps a statement that returns no rows, then resets it. 0, or -1. */
int hs_sq_step_done(sqlite3_stmt *st);
/* Empties the ingest caches (after a rollback, or past their bound). */
void hs_sq_clear_caches(sq_store *s);

/* The store interface's functions (the table is in sqlite_schema.c). */
void hs_sq_close(hs_store *base);
int hs_sq_ingest(hs_store *base, const hs_ing_batch *b, char *err,
                 size_t errlen);
int hs_sq_retain(hs_store *base, const hs_store_retention *r,
                 hs_store_retain_stats *out, char *err, size_t errlen);
int hs_sq_traces(hs_store *base, const hs_store_trace_filter *f,
                 hs_store_trace_cb cb, void *arg, char *err, size_t errlen);
int hs_sq_trace(hs_store *base, uint64_t hi, uint64_t lo, hs_store_trace_cb cb,
                void *arg, char *err, size_t errlen);
int hs_sq_trace_spans(hs_store *base, uint64_t hi, uint64_t lo,
                      hs_store_span_cb cb, void *arg, char *err, size_t errlen);
int hs_sq_find_span(hs_store *base, uint64_t span_id, hs_store_span_cb cb,
                    void *arg, char *err, size_t errlen);
int hs_sq_samples(hs_store *base, const hs_store_sample_sel *sel,
                  hs_store_sample_cb cb, void *arg, char *err, size_t errlen);
int hs_sq_stack(hs_store *base, int64_t stack_id, hs_store_stack_cb cb,
                void *arg, char *err, size_t errlen);
int hs_sq_versions(hs_store *base, const char *service, hs_store_version_cb cb,
                   void *arg, char *err, size_t errlen);

#endif
