/* From an address to its frames: the function, the inline frames and
 * file:line through DWARF (libdw), demangled names, and the per-object
 * index of compilation units. */
#include "profiler/symbolize_int.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/clock.h"
#include "common/log.h"
#include "hotspan/error.h"
#include "profiler/intern.h"

/* ------------------------------------------------------------ frames */

const char *hs_sym_demangled(hs_symbolizer *s, const char *sys) {
  if (s->demangle == NULL || sys[0] != '_' || sys[1] != 'Z')
    return sys;
  int status = -1;
  char *d = s->demangle(sys, NULL, NULL, &status);
  if (d == NULL || status != 0) {
    free(d);
    return sys;
  }
  const char *r = hs_intern(&s->strings, d);
  free(d);
  return r ? r : sys;
}

/* Name of a subprogram or inlined-subroutine DIE: the linkage (mangled)
 * name when there is one, else the plain name; follows abstract origins
 * and specifications. */
static const char *die_name(Dwarf_Die *die) {
  Dwarf_Attribute a;
  const char *n = NULL;
  if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) != NULL ||
      dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a) != NULL)
    n = dwarf_formstring(&a);
  if (n == NULL)
    n = dwarf_diename(die);
  return n;
}

typedef struct frame_acc {
  hs_sym_frame f[MAX_INLINE_FRAMES];
  uint32_t n;
} frame_acc;

static void push_frame(hs_symbolizer *s, frame_acc *acc, const char *sys,
                       const char *file, int line, int start_line) {
  if (acc->n >= MAX_INLINE_FRAMES)
    return;
  hs_sym_frame *f = &acc->f[acc->n];
  const char *isys = sys ? hs_intern(&s->strings, sys) : NULL;
  if (isys == NULL)
    isys = s->unknown;
  f->system_name = isys;
  /* Symbol versions ("memcpy@@GLIBC_2.14") are not part of the name
   * people look for; system_name keeps them. */
  const char *at = strchr(isys, '@');
  const char *plain = isys;
  if (at != NULL && at > isys) {
    plain = hs_intern_n(&s->strings, isys, (size_t)(at - isys));
    if (plain == NULL)
      plain = isys;
  }
  f->function = hs_sym_demangled(s, plain);
  f->file = file ? hs_intern(&s->strings, file) : NULL;
  f->line = line > 0 ? line : 0;
  f->start_line = start_line > 0 ? start_line : 0;
  acc->n++;
}

static int cu_cmp(const void *a, const void *b) {
  const cu_range *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Builds o's CU range index once (all units' DW_AT_ranges or
 * low_pc/high_pc). */
void hs_sym_cu_index(sym_obj *o, Dwarf *dw) {
  o->cus_built = 1;
  size_t cap = 0;
  Dwarf_CU *cu = NULL;
  Dwarf_Die cudie, subdie;
  uint8_t utype;
  Dwarf_Half ver;
  while (dwarf_get_units(dw, cu, &cu, &ver, &utype, &cudie, &subdie) == 0) {
    if (utype != DW_UT_compile && utype != DW_UT_partial &&
        utype != DW_UT_skeleton)
      continue;
    ptrdiff_t off = 0;
    Dwarf_Addr base, lo, hi;
    while ((off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0) {
      if (hi <= lo)
        continue;
      if (o->ncus == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        cu_range *n = realloc(o->cus, ncap * sizeof *n);
        if (n == NULL)
          goto done;
        o->cus = n;
        cap = ncap;
      }
      o->cus[o->ncus].lo = lo;
      o->cus[o->ncus].hi = hi;
      o->cus[o->ncus].cu = cudie;
      o->ncus++;
    }
  }
done:
  if (o->ncus > 1)
    qsort(o->cus, o->ncus, sizeof *o->cus, cu_cmp);
}

/* The CU containing DWARF address a, through o's own index. */
static Dwarf_Die *cu_lookup(sym_obj *o, Dwarf_Addr a) {
  size_t lo = 0, hi = o->ncus;
  while (lo < hi) { /* first range with lo > a */
    size_t mid = lo + (hi - lo) / 2;
    if (o->cus[mid].lo <= a)
      lo = mid + 1;
    else
      hi = mid;
  }
  /* Ranges rarely overlap; look back a little for one that covers a. */
  for (size_t i = lo, k = 0; i > 0 && k < 8; i--, k++)
    if (a >= o->cus[i - 1].lo && a < o->cus[i - 1].hi)
      return &o->cus[i - 1].cu;
  return NULL;
}

/* Frames from DWARF: the innermost from the line table, each enclosing
 * inlined call from its call site, up to the physical function. */
static void dwarf_frames(hs_symbolizer *s, sym_obj *o, uintptr_t addr,
                         const char *symname, frame_acc *acc) {
  Dwfl_Module *mod = o->mod;
  const char *file = NULL;
  int line = 0;
  Dwfl_Line *dl = dwfl_module_getsrc(mod, addr);
  if (dl != NULL)
    file = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);

  Dwarf_Addr bias = 0;
  Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
  if (cu == NULL) {
    Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
    if (dw != NULL && !o->cus_built)
      hs_sym_cu_index(o, dw);
    if (dw != NULL)
      cu = cu_lookup(o, addr - bias);
    if (cu != NULL && dl == NULL) {
      Dwarf_Line *l = dwarf_getsrc_die(cu, addr - bias);
      if (l != NULL) {
        file = dwarf_linesrc(l, NULL, NULL);
        if (dwarf_lineno(l, &line) != 0)
          line = 0;
      }
    }
  }
  Dwarf_Die *scopes = NULL;
  int nscopes = cu ? dwarf_getscopes(cu, addr - bias, &scopes) : 0;
  Dwarf_Files *files = NULL;
  size_t nfiles = 0;
  if (cu != NULL && dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
    files = NULL;

  int physical = 0;
  for (int i = 0; i < nscopes && acc->n < MAX_INLINE_FRAMES; i++) {
    Dwarf_Die *d = &scopes[i];
    int tag = dwarf_tag(d);
    if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
      continue;
    int decl = 0;
    if (dwarf_decl_line(d, &decl) != 0)
      decl = 0;
    const char *n = die_name(d);
    if (tag == DW_TAG_subprogram) {
      /* The symbol table names the physical function best (it has the
       * full mangled name when DWARF only has the short one). */
      push_frame(s, acc, symname ? symname : n, file, line, decl);
      physical = 1;
      break;
    }
    push_frame(s, acc, n, file, line, decl);
    /* The enclosing function executes at this inlined call's site. */
    Dwarf_Attribute a;
    Dwarf_Word cf = 0, cl = 0;
    file = NULL;
    line = 0;
    if (dwarf_attr(d, DW_AT_call_file, &a) != NULL &&
        dwarf_formudata(&a, &cf) == 0 && files != NULL && cf < nfiles)
      file = dwarf_filesrc(files, cf, NULL, NULL);
    if (dwarf_attr(d, DW_AT_call_line, &a) != NULL &&
        dwarf_formudata(&a, &cl) == 0 && cl <= INT_MAX)
      line = (int)cl;
  }
  free(scopes);
  if (!physical)
    push_frame(s, acc, symname, file, line, 0);
}

hs_sym_loc *hs_sym_resolve(hs_symbolizer *s, uintptr_t addr) {
  frame_acc acc;
  acc.n = 0;
  /* First address of a new epoch (profile): reread the mappings even if
   * the address falls in a known one, since the program may have unmapped
   * it and mapped something else there since. */
  if (s->loaded && s->epoch_reload)
    hs_sym_load_maps(s);
  sym_map *m = s->loaded ? hs_sym_lookup_map(s, addr) : NULL;
  if (m == NULL &&
      (!s->loaded || s->epoch_reload ||
       hs_now_mono_ns() - s->last_reload_ns >= RELOAD_MIN_INTERVAL_NS)) {
    hs_sym_load_maps(s);
    m = hs_sym_lookup_map(s, addr);
  }
  sym_obj *o = m ? m->obj : NULL;
  if (o != NULL && o->state == 0)
    hs_sym_load_obj(s, o);
  if (o != NULL && o->state == 1 && o->mod != NULL) {
    GElf_Off off;
    GElf_Sym sym;
    GElf_Word shndx;
    Elf *elf = NULL;
    Dwarf_Addr sbias = 0;
    const char *symname =
        dwfl_module_addrinfo(o->mod, addr, &off, &sym, &shndx, &elf, &sbias);
    if (o->has_dwarf)
      dwarf_frames(s, o, addr, symname, &acc);
    else
      push_frame(s, &acc, symname, NULL, 0, 0);
    m->pub.build_id = o->build_id;
    for (uint32_t i = 0; i < acc.n; i++) {
      if (acc.f[i].system_name != s->unknown)
        m->pub.has_functions = 1;
      if (acc.f[i].file != NULL)
        m->pub.has_filenames = 1;
      if (acc.f[i].line > 0)
        m->pub.has_line_numbers = 1;
    }
    if (acc.n > 1)
      m->pub.has_inline_frames = 1;
  }
  if (acc.n == 0)
    push_frame(s, &acc, NULL, NULL, 0, 0);
  hs_sym_loc *loc = malloc(sizeof *loc + acc.n * sizeof acc.f[0]);
  if (loc == NULL)
    return NULL;
  loc->map = m ? &m->pub : NULL;
  loc->nframes = acc.n;
  memcpy(loc->frames, acc.f, acc.n * sizeof acc.f[0]);
  return loc;
}
