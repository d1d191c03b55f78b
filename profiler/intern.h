/* String interning for the profiler's aggregator side: one copy per
 * distinct content, so that interned strings compare by pointer. Not
 * thread-safe (each set belongs to one owner: a profile, a symbolizer);
 * not async-signal-safe. */
#ifndef HS_PROFILER_INTERN_H
#define HS_PROFILER_INTERN_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

typedef struct hs_intern_set {
  char **slots;
  size_t cap; /* power of two, or 0 */
  size_t count;
} hs_intern_set;

/* A zeroed struct is an empty set. */
/* The interned copy of the first len bytes of s (which end early at a
 * NUL); NULL only if memory ran out. The copy lives until
 * hs_intern_free. */
const char *hs_intern_n(hs_intern_set *t, const char *s, size_t len);
const char *hs_intern(hs_intern_set *t, const char *s);
void hs_intern_free(hs_intern_set *t); /* frees every copy; set is empty */

#endif
