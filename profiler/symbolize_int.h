/* Symbolizer internals shared by symbolize.c (mappings, objects, the
 * cache and the public functions), symbolize_debuginfo.c (finding ELF and
 * separate debug files for libdwfl) and symbolize_dwarf.c (functions,
 * inline frames and lines of an address). */
#ifndef HS_PROFILER_SYMBOLIZE_INT_H
#define HS_PROFILER_SYMBOLIZE_INT_H

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdint.h>

#include "profiler/intern.h"
#include "profiler/symbolize.h"

#define DEFAULT_DEBUG_DIR "/usr/lib/debug"
/* Past this many cached addresses the cache starts over: bounds memory in
 * processes that keep generating code (JITs). */
#define CACHE_MAX_ENTRIES (1u << 20)
#define MAPS_MAX_BYTES ((size_t)64 << 20)
/* Unknown addresses trigger a reload of /proc/self/maps at most this
 * often, unless a new epoch (profile) started. */
#define RELOAD_MIN_INTERVAL_NS 1000000000ull
#define MAX_INLINE_FRAMES 64
/* Mapping records no longer in the maps are freed once this many
 * accumulate. */
#define STALE_RECORDS_MAX 1024

/* ------------------------------------------------------------ types */

struct hs_symbolizer;

/* One object file (or the vDSO): consecutive maps lines of one file. */
typedef struct sym_obj {
  struct hs_symbolizer *owner;
  const char *path; /* interned, as in the maps file */
  uint64_t inode;
  uint64_t low, high; /* span of its maps lines */
  uint64_t first_start, first_offset;
  int is_vdso;
  int deleted; /* path ended in " (deleted)" */
  int state;   /* 0 not tried, 1 loaded, -1 failed */
  int live;    /* present in the latest maps read */
  Dwfl_Module *mod;
  const char *build_id;
  int has_symtab, has_dwarf;
  void *image;          /* vDSO copy handed to libelf */
  struct cu_range *cus; /* see cu_index(); sorted by lo */
  size_t ncus;
  int cus_built;
  struct sym_obj *next;
} sym_obj;

/* Address range of a compilation unit, for objects without
 * .debug_aranges (clang emits none by default), where libdwfl's own
 * address-to-CU lookup finds nothing. */
typedef struct cu_range {
  Dwarf_Addr lo, hi; /* DWARF addresses (before the load bias) */
  Dwarf_Die cu;
} cu_range;

typedef struct sym_map {
  hs_sym_map pub; /* first: handed out as hs_sym_map * */
  uint64_t inode;
  sym_obj *obj; /* NULL for anonymous and pseudo mappings */
  uint64_t gen; /* load_maps generation that last saw this line */
  struct sym_map *next_all;
} sym_map;

typedef struct cache_slot {
  uintptr_t addr;
  hs_sym_loc *loc; /* NULL: empty */
} cache_slot;

typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

struct hs_symbolizer {
  Dwfl *dwfl;
  hs_intern_set strings;
  const char *unknown; /* "??" */
  char *debug_dir;
  char *exe_path;
  demangle_fn demangle;
  long page_size;

  sym_map **maps; /* the latest maps, sorted by start */
  size_t nmaps;
  sym_map *all_maps; /* every record ever made (owned) */
  sym_obj *all_objs; /* every object ever made (owned) */

  cache_slot *cache;
  size_t cache_cap, cache_count;
  uint64_t misses;

  uint64_t last_reload_ns;
  int epoch_reload; /* a reload is allowed regardless of the interval */
  int loaded;       /* maps read at least once */
  uint64_t gen;     /* incremented by every load_maps */
  size_t nrecords;  /* records in all_maps */

  hs_sym_loc *scratch; /* answer returned when the cache cannot store it */
};

int hs_sym_open_ro(const char *path);
int hs_sym_load_maps(hs_symbolizer *s);
sym_map *hs_sym_lookup_map(hs_symbolizer *s, uintptr_t addr);
void hs_sym_load_obj(hs_symbolizer *s, sym_obj *o);
const char *hs_sym_demangled(hs_symbolizer *s, const char *sys);
void hs_sym_cu_index(sym_obj *o, Dwarf *dw);
hs_sym_loc *hs_sym_resolve(hs_symbolizer *s, uintptr_t addr);
/* libdwfl callbacks finding ELF and debug files (symbolize_debuginfo.c). */
extern const Dwfl_Callbacks hs_sym_dwfl_cbs;

#endif
