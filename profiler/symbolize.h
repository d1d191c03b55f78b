/* Symbolizer internals shared by the profile encoder (profile.c) and tests:
 * the full answer for one address, including inlined frames and the
 * mapping it lies in, which the one-frame hs_symbolize() of profile.h
 * summarizes.
 *
 * Everything here belongs to one hs_symbolizer and, like it, is used by one
 * thread at a time (the profiler's aggregator thread); nothing is
 * async-signal-safe. */
#ifndef HS_PROFILER_SYMBOLIZE_H
#define HS_PROFILER_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "profiler/profile.h"

/* One function frame at an address. Strings are interned in the
 * symbolizer: equal strings are the same pointer, and they live as long as
 * the symbolizer. */
typedef struct hs_sym_frame {
  const char *function;    /* demangled; "??" if unknown */
  const char *system_name; /* as in the object (mangled); never NULL */
  const char *file;        /* source file, NULL if unknown */
  int line;                /* 0 if unknown */
  int start_line;          /* line the function is declared on, 0 unknown */
} hs_sym_frame;

/* One line of /proc/self/maps as the symbolizer saw it. Records are never
 * freed before the symbolizer (an encoder may keep pointers to them across
 * a reload); a reload that sees the same line again returns the same
 * record. */
typedef struct hs_sym_map {
  uint64_t start, limit, offset;
  const char *name;     /* path, "[vdso]", "[heap]", "[anon]", ... */
  const char *build_id; /* hex GNU build id of the object, NULL if none */
  /* What the object offered, known once an address in it was resolved. */
  uint8_t has_functions, has_filenames, has_line_numbers, has_inline_frames;
  uint8_t is_main; /* part of the main executable */
  uint8_t exec;    /* mapped executable */
} hs_sym_map;

/* The answer for one address: frames innermost (most deeply inlined) first,
 * the last one being the function that physically contains the address.
 * Valid until the next call into the symbolizer. */
typedef struct hs_sym_loc {
  const hs_sym_map *map; /* NULL: the address is in no mapping */
  uint32_t nframes;      /* >= 1 */
  hs_sym_frame frames[];
} hs_sym_loc;

/* Resolves addr (pass pc - 1 for return addresses) through the per-address
 * cache. NULL only if memory ran out. */
const hs_sym_loc *hs_symbolize_loc(hs_symbolizer *s, uintptr_t addr);

/* The executable mapping of the main program, or NULL if it is unknown. */
const hs_sym_map *hs_symbolizer_main_map(hs_symbolizer *s);

/* Allows one reload of the process's mappings at the next address that
 * lies outside the known ones, even if the last reload was recent. Called
 * by hs_profile_encode at the start of each profile. */
void hs_symbolizer_new_epoch(hs_symbolizer *s);

/* Directory searched for separate debug files (default "/usr/lib/debug"):
 * <dir>/.build-id/xx/rest.debug, then <dir>/<object's dir>/<debuglink>.
 * Copies dir; only affects objects not yet loaded. HOTSPAN_OK or
 * HOTSPAN_ENOMEM / HOTSPAN_EINVAL. */
int hs_symbolizer_set_debug_dir(hs_symbolizer *s, const char *dir);

/* Number of distinct addresses resolved so far (cache misses). */
uint64_t hs_symbolizer_misses(const hs_symbolizer *s);

/* Number of mapping records held (current and not yet collected). */
size_t hs_symbolizer_map_records(const hs_symbolizer *s);

#endif
