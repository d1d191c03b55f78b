/* Profile builder: folds samples of one period into a profile and encodes
 * it as gzip-compressed pprof (perftools.profiles.Profile).
 *
 * Used by the profiler's aggregator thread only (one thread at a time per
 * profile; not thread-safe, not async-signal-safe). Symbolization happens in
 * hs_profile_encode, off the sampling path, through a cache shared by
 * successive profiles (hs_symbolizer). */
#ifndef HS_PROFILER_PROFILE_H
#define HS_PROFILER_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "profiler/profile_sink.h"
#include "profiler/sample.h"

typedef struct hs_profile hs_profile;
typedef struct hs_symbolizer hs_symbolizer;

typedef struct hs_profile_config {
  int type;               /* enum hs_profile_type */
  uint64_t period_ns;     /* sampling period: 1e9 / frequency */
  uint64_t start_unix_ns; /* time_nanos of the profile */
} hs_profile_config;

/* New empty profile; NULL if out of memory. */
hs_profile *hs_profile_new(const hs_profile_config *cfg);
void hs_profile_free(hs_profile *p); /* NULL-safe */

/* Adds one sample (its kind must match the profile's type, else
 * HOTSPAN_EINVAL). thread_name may be NULL. Identical stacks with identical
 * labels are merged (values added). Returns HOTSPAN_OK, HOTSPAN_EINVAL,
 * HOTSPAN_ENOMEM (the sample is dropped and counted in the profile). */
int hs_profile_add(hs_profile *p, const hs_sample *s, const char *thread_name);

/* Number of samples added (before merging). */
uint64_t hs_profile_sample_count(const hs_profile *p);

/* Encodes the profile, symbolizing addresses through sym, as gzip-compressed
 * pprof appended to out. duration is end_unix_ns - start. Labels per sample:
 * "span id" and "local root span id" (numeric), "trace endpoint" (string,
 * from the endpoint id), "thread id" (numeric), "thread name" (string),
 * "span_id" (16 hex) and "trace_id" (32 hex). Returns HOTSPAN_OK,
 * HOTSPAN_ENOMEM, HOTSPAN_ETOOBIG (over out's cap). */
int hs_profile_encode(hs_profile *p, hs_symbolizer *sym, uint64_t end_unix_ns,
                      hs_buf *out);
/* The same, with comments saying who made the profile: "service=S",
 * "env=E", "version=V" (those set) and "runtime-id=R", the process
 * identity of context/identity.h (wire/pprof_labels.h names them). */
int hs_profile_encode_identified(hs_profile *p, hs_symbolizer *sym,
                                 uint64_t end_unix_ns, hs_buf *out);
/* The same, with ncomments strings (NULL entries skipped) as the profile's
 * comments, before the note on dropped samples if any. */
int hs_profile_encode_with(hs_profile *p, hs_symbolizer *sym,
                           uint64_t end_unix_ns, const char *const *comments,
                           size_t ncomments, hs_buf *out);

/* Symbolizer with a per-address cache. Reloads the process's mappings when
 * an address falls outside the known ones (a library was dlopen'ed). */
hs_symbolizer *hs_symbolizer_new(void);
void hs_symbolizer_free(hs_symbolizer *s); /* NULL-safe */

typedef struct hs_symbol {
  const char *function; /* demangled if possible; "??" if unknown */
  const char *file;     /* source file from DWARF, NULL if unknown */
  int line;             /* 0 if unknown */
  const char *mapping;  /* path of the object file, NULL if unknown */
  uint64_t map_start, map_limit, map_offset;
  const char *build_id; /* hex GNU build id, NULL if none */
} hs_symbol;

/* Resolves addr (already adjusted: pass pc - 1 for return addresses).
 * Returned strings live as long as the symbolizer. Returns 0 if found in a
 * mapping (function may still be "??"), -1 otherwise. */
int hs_symbolize(hs_symbolizer *s, uintptr_t addr, hs_symbol *out);

#endif
