/* The agent's store: where decoded spans and profile samples are kept and
 * what the correlation engine reads from. An interface (a table of function
 * pointers) so that the engine never sees SQL: SQLite is the embedded
 * implementation (backend/sqlite_*.c); a shared ClickHouse can implement the
 * same table later.
 *
 * Conventions for every function below: 0 (HS_STORE_OK) on success,
 * HS_STORE_NOTFOUND where a lookup finds nothing, HS_STORE_ERR on any
 * other failure with a one-line message in err (err may be NULL; errlen
 * includes the NUL). A store handle is used by one thread at a time (the
 * agent's loop thread, or a CLI); it is not thread-safe. Strings handed to
 * callbacks are borrowed and valid only during the call. Time is Unix ns;
 * ranges are half-open [from_ns, to_ns); to_ns == 0 means "no upper
 * bound". 64-bit ids are any uint64 (other tracers use the full range). */
#ifndef HS_BACKEND_STORE_H
#define HS_BACKEND_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/model.h"

enum { HS_STORE_OK = 0, HS_STORE_ERR = -1, HS_STORE_NOTFOUND = -2 };

typedef struct hs_store hs_store;

/* Retention policy for hs_store_retain. 0 disables a limit. */
typedef struct hs_store_retention {
  int64_t now_ns;     /* reference time for max_age_ns */
  int64_t max_age_ns; /* delete traces/samples that started before now-age */
  int64_t max_bytes;  /* shrink the database below this size */
  int64_t step_rows;  /* rows deleted per table per call; 0 = 5000 */
} hs_store_retention;

typedef struct hs_store_retain_stats {
  int64_t traces_deleted, spans_deleted, samples_deleted;
  int64_t bytes_before, bytes_after; /* database size */
  int more; /* 1: the limits are still exceeded; call again */
} hs_store_retain_stats;

/* A stored trace (one row per trace id). The root is the span with parent
 * id 0; until one arrives, the earliest span seen stands in for it
 * (root_known = 0) so that partial and distributed traces still show. */
typedef struct hs_store_trace {
  uint64_t trace_id_high, trace_id_low;
  uint64_t root_span_id;
  int root_known;
  const char *service;  /* root's service, "" if unknown */
  const char *endpoint; /* root's resource (or name), "" if unknown */
  int64_t start_ns, duration_ns;
  int error;          /* 1 if any span of the trace had an error */
  int64_t span_count; /* spans stored for this trace */
} hs_store_trace;

typedef struct hs_store_span {
  uint64_t trace_id_high, trace_id_low;
  uint64_t span_id, parent_id;
  const char *service, *name, *resource, *type; /* "" when absent */
  int kind;
  int64_t start_ns, duration_ns;
  int error;
  const char *attrs_json; /* JSON object of the span's attributes */
  /* JSON arrays of the span's events ({"time_ns", "name", "attrs"}) and
   * links ({"trace_id", "span_id", "tracestate", "flags", "attrs"});
   * NULL when it has none. */
  const char *events_json, *links_json;
  int64_t dropped_events, dropped_links; /* as the sender counted them */
  /* JSON object of the sender's resource attributes (OTLP Resource);
   * NULL when unknown. */
  const char *resource_json;
} hs_store_span;

/* Which traces hs_store_traces visits. NULL/0 fields do not filter. */
typedef struct hs_store_trace_filter {
  const char *service;
  const char *endpoint;
  int64_t min_duration_ns;
  int errors_only;
  int64_t from_ns, to_ns; /* on the trace's start */
  int64_t limit;          /* 0 = no limit */
  int by_duration;        /* 1: longest first; 0: unordered */
  /* Only traces whose root span carried this version (its "version"
   * attribute, else "service.version"; see docs/store.md). */
  const char *version;
} hs_store_trace_filter;

/* Which samples hs_store_samples aggregates: the samples of the given span
 * ids (span_ids non-NULL), or else those labelled with an endpoint in a time
 * range. A sample's endpoint belongs to the profile's service; samples from
 * profiles without a service match any service. type: 0 both, else
 * HS_PT_CPU or HS_PT_WALL. */
typedef struct hs_store_sample_sel {
  const uint64_t *span_ids;
  size_t nspan_ids;
  const char *service; /* NULL: any */
  const char *endpoint;
  int64_t from_ns, to_ns;
  int type;
  /* Endpoint selection only: only samples of profiles of this version (the
   * batch's version, of the profile's service). NULL: any version, also
   * samples with no version. */
  const char *version;
} hs_store_sample_sel;

/* One known version of a service (hs_store_versions). */
typedef struct hs_store_version {
  const char *service; /* "" for profiles that named no service */
  const char *version;
  int64_t requests;          /* stored traces whose root has this version */
  int64_t samples;           /* stored samples of this version */
  int64_t first_ns, last_ns; /* earliest/latest trace start or sample time */
} hs_store_version;

typedef struct hs_store_frame {
  const char *function, *file, *mapping; /* file/mapping "" if unknown */
  int64_t line;
} hs_store_frame;

/* Callbacks return 0 to continue, nonzero to stop (that value is returned
 * by the visiting function). */
typedef int (*hs_store_trace_cb)(void *arg, const hs_store_trace *t);
typedef int (*hs_store_span_cb)(void *arg, const hs_store_span *s);
/* One row per (type, stack): summed value and sample count. Rows for the
 * same stack may repeat (one per span id); callers add them up. */
typedef int (*hs_store_sample_cb)(void *arg, int type, int64_t stack_id,
                                  int64_t value, int64_t count);
/* A stack's frames, leaf first. */
typedef int (*hs_store_stack_cb)(void *arg, const hs_store_frame *frames,
                                 size_t n);
typedef int (*hs_store_version_cb)(void *arg, const hs_store_version *v);

/* The implementation's table. Use the hs_store_* wrappers below. */
typedef struct hs_store_vt {
  void (*close)(hs_store *s);
  int (*ingest)(hs_store *s, const hs_ing_batch *b, char *err, size_t errlen);
  int (*retain)(hs_store *s, const hs_store_retention *r,
                hs_store_retain_stats *st, char *err, size_t errlen);
  int (*traces)(hs_store *s, const hs_store_trace_filter *f,
                hs_store_trace_cb cb, void *arg, char *err, size_t errlen);
  int (*trace)(hs_store *s, uint64_t hi, uint64_t lo, hs_store_trace_cb cb,
               void *arg, char *err, size_t errlen);
  int (*trace_spans)(hs_store *s, uint64_t hi, uint64_t lo, hs_store_span_cb cb,
                     void *arg, char *err, size_t errlen);
  int (*find_span)(hs_store *s, uint64_t span_id, hs_store_span_cb cb,
                   void *arg, char *err, size_t errlen);
  int (*samples)(hs_store *s, const hs_store_sample_sel *sel,
                 hs_store_sample_cb cb, void *arg, char *err, size_t errlen);
  int (*stack)(hs_store *s, int64_t stack_id, hs_store_stack_cb cb, void *arg,
               char *err, size_t errlen);
  int (*versions)(hs_store *s, const char *service, hs_store_version_cb cb,
                  void *arg, char *err, size_t errlen);
} hs_store_vt;

struct hs_store {
  const hs_store_vt *vt;
};

/* ------------------------------------------------------------- SQLite */

typedef struct hs_store_sqlite_opts {
  int busy_timeout_ms; /* 0 = 5000 */
  int read_only;       /* open an existing database for queries only */
  /* SQLite's page cache for this connection, in MiB; 0 = 64 (SQLite's own
   * default is 2). The span-id and sample indexes of a large database are
   * inserted into at random places, which a 2 MiB cache turns into disk
   * reads (docs/PERFORMANCE.md, "Store and correlation queries"). */
  int cache_mib;
  /* Tests only: migrate to this schema version instead of the newest
   * (0 = newest). */
  int target_version;
} hs_store_sqlite_opts;

/* The newest schema version this build knows. */
#define HS_STORE_SQLITE_SCHEMA_VERSION 5

/* Opens (creating if needed, unless read_only) the SQLite database at path,
 * sets WAL mode, synchronous=NORMAL and the busy timeout, and applies the
 * schema migrations the file lacks, in order, each in its own transaction.
 * Refuses a file whose schema is newer than this build knows, a file that
 * is not an SQLite database, and a path whose directory is missing or not
 * writable, each with a message naming the path. opts may be NULL. Returns
 * the store (close with hs_store_close) or NULL with err set. */
hs_store *hs_store_open_sqlite(const char *path,
                               const hs_store_sqlite_opts *opts, char *err,
                               size_t errlen);

/* Schema version of an open SQLite store (tests, diagnostics); -1 if s is
 * not an SQLite store. */
int hs_store_sqlite_schema_version(hs_store *s);

/* Database size in bytes (page_count * page_size); -1 on error. */
int64_t hs_store_sqlite_size(hs_store *s);

/* ------------------------------------------------------------- wrappers */

/* Closes the store and frees it. NULL-safe. */
void hs_store_close(hs_store *s);

/* Stores a whole batch in one transaction: all of it or none of it (on
 * error the transaction is rolled back). Returns only after the commit, so
 * a caller may acknowledge the batch when this returns HS_STORE_OK. Spans
 * already stored (same trace id and span id) are ignored; the trace row of
 * each trace id is created or updated (span count, root, error). */
int hs_store_ingest(hs_store *s, const hs_ing_batch *b, char *err,
                    size_t errlen);

/* One bounded step of retention: deletes up to step_rows traces (with their
 * spans) and samples older than max_age_ns, then, while the database is
 * larger than max_bytes, the oldest ones, and gives freed pages back to the
 * file system. Sets st->more when limits are still exceeded. Meant to be
 * called periodically by the agent (and again at once while more is set).
 * st may be NULL. */
int hs_store_retain(hs_store *s, const hs_store_retention *r,
                    hs_store_retain_stats *st, char *err, size_t errlen);

int hs_store_traces(hs_store *s, const hs_store_trace_filter *f,
                    hs_store_trace_cb cb, void *arg, char *err, size_t errlen);
/* The trace row of one trace id: HS_STORE_NOTFOUND if unknown. */
int hs_store_get_trace(hs_store *s, uint64_t hi, uint64_t lo,
                       hs_store_trace_cb cb, void *arg, char *err,
                       size_t errlen);
/* All spans of one trace, by start time: HS_STORE_NOTFOUND if none. */
int hs_store_trace_spans(hs_store *s, uint64_t hi, uint64_t lo,
                         hs_store_span_cb cb, void *arg, char *err,
                         size_t errlen);
/* The span(s) with this span id (normally one): HS_STORE_NOTFOUND if
 * none. */
int hs_store_find_span(hs_store *s, uint64_t span_id, hs_store_span_cb cb,
                       void *arg, char *err, size_t errlen);
int hs_store_samples(hs_store *s, const hs_store_sample_sel *sel,
                     hs_store_sample_cb cb, void *arg, char *err,
                     size_t errlen);
/* The frames of a stack id from hs_store_samples: HS_STORE_NOTFOUND if
 * unknown. */
int hs_store_stack(hs_store *s, int64_t stack_id, hs_store_stack_cb cb,
                   void *arg, char *err, size_t errlen);
/* The versions stored for a service (NULL: every service) that still have
 * traces or samples, ordered by service, then first seen. HS_STORE_OK with
 * no call when there are none. */
int hs_store_versions(hs_store *s, const char *service, hs_store_version_cb cb,
                      void *arg, char *err, size_t errlen);

#endif
