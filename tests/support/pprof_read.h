/* Reads back the profile files the profiler writes (gzip-compressed pprof,
 * perftools.profiles.Profile) as plain samples: the two values, the
 * function names on the stack (leaf first, inlined frames included) and the
 * labels hotspan sets. Decoded with zlib and the protobuf-c code generated
 * from wire/profile.proto, whose field numbers are pprof's; every
 * index into the string table, location and function lists is checked, so
 * a malformed file is an error, not a crash.
 * Errors are printed to stderr. */
#ifndef HS_TESTS_SUPPORT_PPROF_READ_H
#define HS_TESTS_SUPPORT_PPROF_READ_H

#include <stddef.h>
#include <stdint.h>

#include "profile.pb-c.h"

typedef struct pr_sample {
  int64_t count;    /* value[0]: samples */
  int64_t nanos;    /* value[1]: CPU or wall nanoseconds */
  const char **fns; /* function names, leaf first (malloc'd array) */
  size_t nfns;
  /* Labels; the has_ flags tell whether the key was present. */
  int has_span, has_root, has_tid;
  uint64_t span_id, root_id;
  int64_t tid;
  const char *endpoint;  /* "trace endpoint", NULL if absent */
  const char *span_hex;  /* "span_id", NULL if absent */
  const char *trace_hex; /* "trace_id", NULL if absent */
  int dup_labels;        /* number of keys that appeared more than once */
} pr_sample;

typedef struct pr_set {
  Perftools__Profiles__Profile **msgs; /* kept: samples point into them */
  size_t nmsgs;
  pr_sample *s;
  size_t n, cap;
} pr_set;

void pr_free(pr_set *set);

/* Loads every profile of one type ("cpu" or "wall") that the profiler wrote
 * into dir (files hotspan.<type>.*.pb.gz). Returns the number of files
 * read, or -1 if one could not be read or decoded. */
int pr_load_dir(pr_set *set, const char *dir, const char *type);

/* Nonzero if fn is on the sample's stack. A compiler's clone of fn
 * ("fn.constprop.0", "fn.isra.0", "fn.part.0") counts as fn. */
int pr_has_fn(const pr_sample *s, const char *fn);

/* The sample's stack as "leaf;caller;...", for failure messages. */
void pr_stack_str(const pr_sample *s, char *out, size_t cap);

#endif
