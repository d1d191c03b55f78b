/* Internals shared by the engine's files: collecting sample rows from the
 * store into distinct stacks with resolved frame names. Not thread-safe. */
#ifndef HS_CORRELATION_ENGINE_INT_H
#define HS_CORRELATION_ENGINE_INT_H

#include "correlation/engine/engine.h"
#include "correlation/store/kvmap.h"

typedef struct hs_corr_stack {
  int type;
  int64_t stack_id;
  int64_t value, count;
  char **names; /* leaf first, owned */
  size_t nnames;
} hs_corr_stack;

typedef struct hs_corr_coll {
  hs_store *store;
  int lines;
  hs_kvmap idx; /* (type, stack id) -> index */
  hs_corr_stack *v;
  size_t n, cap;
  int oom;
} hs_corr_coll;

void hs_corr_coll_init(hs_corr_coll *c, hs_store *s, int lines);
void hs_corr_coll_free(hs_corr_coll *c);
/* Adds the samples of sel, then resolves the frames of every stack. */
int hs_corr_coll_add(hs_corr_coll *c, const hs_store_sample_sel *sel, char *err,
                     size_t errlen);
int hs_corr_coll_resolve(hs_corr_coll *c, char *err, size_t errlen);

/* The selection of a span (and its descendants): fills *ids (malloc'ed) and
 * *span (the span's row, strings owned by the caller via
 * hs_corr_span_clear). */
int hs_corr_span_ids(hs_store *s, uint64_t span_id, int with_children,
                     hs_corr_span *span, uint64_t **ids, size_t *n, char *err,
                     size_t errlen);
void hs_corr_span_clear(hs_corr_span *sp);

/* A frame's display name: "function" or "function file:line". malloc'ed. */
char *hs_corr_frame_name(const hs_store_frame *f, int lines);

/* Deep copy of a store span into d (strings malloc'ed; NULL strings become
 * ""). Returns 0, or -1 out of memory with d cleared. */
int hs_corr_span_copy(hs_corr_span *d, const hs_store_span *p);

/* Formats an error message into err (errlen bytes; NULL or 0: nothing). */
void hs_corr_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets "out of memory" and returns HS_STORE_ERR. */
int hs_corr_oom(char *err, size_t errlen);

#endif
