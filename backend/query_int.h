/* Internals shared by the engine's files: collecting sample rows from the
 * store into distinct stacks with resolved frame names (query_collect.c),
 * and the flame tree (query_flame.c). Not thread-safe. */
#ifndef HS_BACKEND_QUERY_INT_H
#define HS_BACKEND_QUERY_INT_H

#include "backend/query.h"
#include "common/kvmap.h"

typedef struct hs_query_stack {
  int type;
  int64_t stack_id;
  int64_t value, count;
  char **names; /* leaf first, owned */
  size_t nnames;
} hs_query_stack;

typedef struct hs_query_coll {
  hs_store *store;
  int lines;
  hs_kvmap idx; /* (type, stack id) -> index */
  hs_query_stack *v;
  size_t n, cap;
  int oom;
} hs_query_coll;

void hs_query_coll_init(hs_query_coll *c, hs_store *s, int lines);
void hs_query_coll_free(hs_query_coll *c);
/* Adds the samples of sel, then resolves the frames of every stack. */
int hs_query_coll_add(hs_query_coll *c, const hs_store_sample_sel *sel,
                      char *err, size_t errlen);
int hs_query_coll_resolve(hs_query_coll *c, char *err, size_t errlen);

/* The selection of a span (and its descendants): fills *ids (malloc'ed) and
 * *span (the span's row, strings owned by the caller via
 * hs_query_span_clear). */
int hs_query_span_ids(hs_store *s, uint64_t span_id, int with_children,
                      hs_query_span *span, uint64_t **ids, size_t *n, char *err,
                      size_t errlen);
void hs_query_span_clear(hs_query_span *sp);

/* Deep copy of a store span into d (strings malloc'ed; NULL strings become
 * ""). Returns 0, or -1 out of memory with d cleared. */
int hs_query_span_copy(hs_query_span *d, const hs_store_span *p);

/* The flame tree (query_flame.c). hs_query_flame_add adds st's value
 * along its path from root (root's name is set by the caller); 0, or -1
 * out of memory (the tree stays valid for hs_query_flame_free).
 * hs_query_flame_sort orders every node's children largest first;
 * hs_query_flame_json appends the tree as nested
 * {"name","value","children"} objects. */
int hs_query_flame_add(hs_query_flame *root, const hs_query_stack *st);
void hs_query_flame_sort(hs_query_flame *f);
void hs_query_flame_json(hs_buf *b, const hs_query_flame *f);
void hs_query_flame_free(hs_query_flame *f);

/* Formats an error message into err (errlen bytes; NULL or 0: nothing). */
void hs_query_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets "out of memory" and returns HS_STORE_ERR. */
int hs_query_oom(char *err, size_t errlen);

/* a + b, held at INT64_MAX or INT64_MIN instead of overflowing: every sum
 * of sample values and counts goes through it, so no stored data can make
 * a total wrap around. */
static inline int64_t hs_query_sat_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

#endif
