/* Symbolization of this process's code addresses: function names and
 * file:line, for the profile encoder (see profile.h, symbolize.h).
 *
 * Sources, in order: DWARF (elfutils libdw, through libdwfl) of the object
 * or of its separate debug file (found by GNU build id, then by
 * .gnu_debuglink, under the debug directory), which also yields inlined
 * frames; then the ELF symbol table (.symtab, else .dynsym) for the
 * function name alone. Addresses in mappings that are not ELF objects
 * (anonymous memory, JIT code, [heap]) get the function "??" and the
 * mapping's name.
 *
 * The mapping table comes from /proc/self/maps. Objects are opened lazily,
 * the first time an address inside them is resolved, and checked against
 * the inode the kernel reports, so a library replaced on disk after it was
 * loaded is not read in its place. Every answer is cached per address: a
 * profile repeats the same few thousand addresses over and over.
 *
 * libdwfl's standard debuginfo callback may ask a debuginfod server over
 * the network (when DEBUGINFOD_URLS is set); a profiler inside a production
 * process must not, so this file supplies its own callbacks that only look
 * at local files. */
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

/* ------------------------------------------------------------ maps */

static int read_file(const char *path, char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap + 1);
  while (buf != NULL) {
    if (n == cap) {
      if (cap >= MAPS_MAX_BYTES) {
        free(buf);
        buf = NULL;
        break;
      }
      char *nb = realloc(buf, cap * 2 + 1);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      free(buf);
      buf = NULL;
      break;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (buf == NULL)
    return -1;
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

static sym_map *find_record(hs_symbolizer *s, uint64_t start, uint64_t limit,
                            uint64_t offset, uint64_t inode, const char *name) {
  /* Linear over all records ever made: reloads are rare and the list is
   * a few hundred entries. */
  for (sym_map *m = s->all_maps; m != NULL; m = m->next_all)
    if (m->pub.start == start && m->pub.limit == limit &&
        m->pub.offset == offset && m->inode == inode && m->pub.name == name)
      return m;
  return NULL;
}

static sym_obj *find_obj(hs_symbolizer *s, const char *path, uint64_t inode,
                         uint64_t first_start) {
  for (sym_obj *o = s->all_objs; o != NULL; o = o->next)
    if (o->path == path && o->inode == inode && o->first_start == first_start)
      return o;
  return NULL;
}

static void cache_clear(hs_symbolizer *s) {
  for (size_t i = 0; i < s->cache_cap; i++) {
    free(s->cache[i].loc);
    s->cache[i].loc = NULL;
  }
  s->cache_count = 0;
}

static int cache_put(hs_symbolizer *s, uintptr_t addr, hs_sym_loc *loc);

/* After a reload: drops the cached answers that may have changed, those
 * in mappings no longer there (the address may now hold other code) and
 * those in no mapping (the address may now be in a new library). */
static void cache_keep_current(hs_symbolizer *s) {
  cache_slot *old = s->cache;
  size_t oldcap = s->cache_cap;
  s->cache = NULL;
  s->cache_cap = s->cache_count = 0;
  for (size_t i = 0; i < oldcap; i++) {
    hs_sym_loc *loc = old[i].loc;
    if (loc == NULL)
      continue;
    const sym_map *m = (const sym_map *)loc->map;
    if (m == NULL || m->gen != s->gen || cache_put(s, old[i].addr, loc) != 0)
      free(loc);
  }
  free(old);
}

/* Rereads /proc/self/maps. Records of lines seen before are reused; objects
 * that disappeared lose their libdwfl module; cached answers that may be
 * stale are dropped. */
/* The object mapped from path name (inode ino) whose first line starts
 * at start, created when new; NULL out of memory. */
static sym_obj *obj_for(hs_symbolizer *s, const char *name, uint64_t ino,
                        uint64_t start, uint64_t end, uint64_t off, int is_vdso,
                        int deleted) {
  sym_obj *o = find_obj(s, name, ino, start);
  if (o != NULL)
    return o;
  o = calloc(1, sizeof *o);
  if (o == NULL)
    return NULL;
  o->owner = s;
  o->path = name;
  o->inode = ino;
  o->first_start = start;
  o->first_offset = off;
  o->low = start;
  o->high = end;
  o->is_vdso = is_vdso;
  o->deleted = deleted;
  o->next = s->all_objs;
  s->all_objs = o;
  return o;
}

/* Objects gone from the maps: drop their modules (libdwfl frees modules
 * not reported again between report_begin and report_end). */
static void drop_gone_objects(hs_symbolizer *s) {
  int gone = 0;
  for (sym_obj *o = s->all_objs; o != NULL; o = o->next)
    if (!o->live && o->mod != NULL)
      gone = 1;
  if (gone && s->dwfl != NULL) {
    dwfl_report_begin(s->dwfl);
    for (sym_obj *o = s->all_objs; o != NULL; o = o->next) {
      if (o->mod == NULL)
        continue;
      if (!o->live) {
        o->mod = NULL;
        o->state = 0;
        free(o->cus);
        o->cus = NULL;
        o->ncus = 0;
        o->cus_built = 0;
        continue;
      }
      Dwarf_Addr lo, hi;
      const char *mname =
          dwfl_module_info(o->mod, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
      if (mname == NULL || dwfl_report_module(s->dwfl, mname, lo, hi) == NULL)
        o->mod = NULL, o->state = 0;
    }
    dwfl_report_end(s->dwfl, NULL, NULL);
  }
}

int hs_sym_load_maps(hs_symbolizer *s) {
  char *text;
  size_t len;
  s->last_reload_ns = hs_now_mono_ns();
  s->epoch_reload = 0;
  if (read_file("/proc/self/maps", &text, &len) != 0) {
    hs_log(HS_LOG_DEBUG, "symbolizer: cannot read /proc/self/maps");
    return -1;
  }
  size_t lines = 0;
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  sym_map **maps = calloc(lines + 1, sizeof *maps);
  if (maps == NULL) {
    free(text);
    return -1;
  }
  for (sym_obj *o = s->all_objs; o != NULL; o = o->next)
    o->live = 0;

  size_t n = 0;
  sym_obj *cur = NULL;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    unsigned long long start, end, off, ino;
    char perms[8];
    unsigned maj, min;
    int pos = 0;
    if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms,
               &off, &maj, &min, &ino, &pos) < 7 ||
        pos <= 0 || end <= start)
      continue;
    char *path = line + pos;
    size_t plen = strlen(path);
    while (plen > 0 && (path[plen - 1] == ' ' || path[plen - 1] == '\r'))
      path[--plen] = '\0';
    int deleted = 0;
    static const char del[] = " (deleted)";
    if (plen > sizeof del - 1 &&
        strcmp(path + plen - (sizeof del - 1), del) == 0)
      deleted = 1;
    const char *name = hs_intern(&s->strings, plen ? path : "[anon]");
    if (name == NULL)
      continue;
    sym_map *m = find_record(s, start, end, off, ino, name);
    if (m == NULL) {
      m = calloc(1, sizeof *m);
      if (m == NULL)
        continue;
      m->pub.start = start;
      m->pub.limit = end;
      m->pub.offset = off;
      m->pub.name = name;
      m->pub.exec = strchr(perms, 'x') != NULL;
      m->inode = ino;
      m->next_all = s->all_maps;
      s->all_maps = m;
      s->nrecords++;
    }

    int is_file = path[0] == '/';
    int is_vdso = strcmp(path, "[vdso]") == 0;
    if (is_file || is_vdso) {
      if (cur == NULL || cur->path != name || cur->inode != ino) {
        cur = obj_for(s, name, ino, start, end, off, is_vdso, deleted);
      }
      if (cur != NULL) {
        cur->live = 1;
        if (end > cur->high)
          cur->high = end;
      }
      m->obj = cur;
      m->pub.is_main =
          s->exe_path != NULL && strcmp(path, s->exe_path) == 0 ? 1 : 0;
    } else if (plen == 0) {
      /* Anonymous memory between an object's segments (its .bss) does
       * not end the object's run of lines. */
      m->obj = NULL;
    } else {
      cur = NULL;
      m->obj = NULL;
    }
    m->gen = s->gen + 1;
    maps[n++] = m;
  }
  free(text);

  drop_gone_objects(s);

  free(s->maps);
  s->maps = maps;
  s->nmaps = n;
  s->loaded = 1;
  s->gen++;
  cache_keep_current(s);
  return 0;
}

sym_map *hs_sym_lookup_map(hs_symbolizer *s, uintptr_t addr) {
  size_t lo = 0, hi = s->nmaps;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    sym_map *m = s->maps[mid];
    if (addr < m->pub.start)
      hi = mid;
    else if (addr >= m->pub.limit)
      lo = mid + 1;
    else
      return m;
  }
  return NULL;
}

/* ------------------------------------------------------------ objects */

/* Load bias of an ET_DYN object: where its p_vaddr 0 lies in memory. A
 * maps line at file offset O is the PT_LOAD whose page-aligned p_offset is
 * O, mapped at its page-aligned p_vaddr plus the bias. */
static int compute_bias(hs_symbolizer *s, sym_obj *o, Elf *elf,
                        GElf_Addr *bias) {
  GElf_Ehdr eh;
  if (gelf_getehdr(elf, &eh) == NULL)
    return -1;
  if (eh.e_type == ET_EXEC) {
    *bias = 0;
    return 0;
  }
  if (eh.e_type != ET_DYN)
    return -1;
  size_t phnum;
  if (elf_getphdrnum(elf, &phnum) != 0)
    return -1;
  uint64_t pmask = ~(uint64_t)(s->page_size - 1);
  for (size_t k = 0; k < s->nmaps; k++) {
    sym_map *m = s->maps[k];
    if (m->obj != o)
      continue;
    for (size_t i = 0; i < phnum; i++) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, (int)i, &ph) == NULL || ph.p_type != PT_LOAD)
        continue;
      if ((ph.p_offset & pmask) == m->pub.offset) {
        *bias = m->pub.start - (ph.p_vaddr & pmask);
        return 0;
      }
    }
  }
  return -1;
}

/* Opens the file behind o, making sure it is the one that is mapped. */
static int open_mapped_file(sym_obj *o, char *used, size_t usedsz) {
  int fd = -1;
  if (!o->deleted) {
    fd = hs_sym_open_ro(o->path);
    if (fd >= 0) {
      struct stat st;
      /* Inode only: overlay file systems report another device. */
      if (fstat(fd, &st) == 0 && (uint64_t)st.st_ino == o->inode) {
        snprintf(used, usedsz, "%s", o->path);
        return fd;
      }
      close(fd);
      fd = -1;
    }
  }
  /* Replaced or deleted: the kernel still has the mapped file. */
  snprintf(used, usedsz, "/proc/self/map_files/%" PRIx64 "-%" PRIx64,
           o->first_start, o->high);
  for (sym_map *m = o->owner->all_maps; m != NULL; m = m->next_all)
    if (m->obj == o && m->pub.start == o->first_start) {
      snprintf(used, usedsz, "/proc/self/map_files/%" PRIx64 "-%" PRIx64,
               m->pub.start, m->pub.limit);
      break;
    }
  fd = hs_sym_open_ro(used);
  if (fd >= 0)
    return fd;
  if (!o->deleted) {
    /* Inode mismatch and no map_files access (it needs privileges on some
     * kernels): containers' overlay file systems can show another inode
     * for the very same file, so trust the path. */
    fd = hs_sym_open_ro(o->path);
    snprintf(used, usedsz, "%s", o->path);
  }
  return fd;
}

static void set_userdata(Dwfl_Module *mod, sym_obj *o) {
  void **ud = NULL;
  if (dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL) != NULL &&
      ud != NULL)
    *ud = o;
}

void hs_sym_load_obj(hs_symbolizer *s, sym_obj *o) {
  o->state = -1;
  if (s->dwfl == NULL)
    return;
  dwfl_report_begin_add(s->dwfl);
  Dwfl_Module *mod = NULL;
  if (o->is_vdso) {
    mod = dwfl_report_module(s->dwfl, o->path, o->low, o->high);
    if (mod != NULL)
      set_userdata(mod, o);
  } else {
    char used[PATH_MAX];
    int fd = open_mapped_file(o, used, sizeof used);
    if (fd >= 0) {
      Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
      GElf_Addr bias = 0;
      int ok = elf != NULL && elf_kind(elf) == ELF_K_ELF &&
               compute_bias(s, o, elf, &bias) == 0;
      if (elf != NULL)
        elf_end(elf);
      if (ok) {
        /* libdwfl owns fd from here when it succeeds. */
        mod = dwfl_report_elf(s->dwfl, o->path, used, fd, bias, true);
        if (mod == NULL)
          close(fd);
        else
          set_userdata(mod, o);
      } else {
        close(fd);
      }
    }
  }
  dwfl_report_end(s->dwfl, NULL, NULL);
  if (mod == NULL) {
    hs_log(HS_LOG_DEBUG, "symbolizer: no symbols for %s", o->path);
    return;
  }
  o->mod = mod;
  o->state = 1;
  const unsigned char *id = NULL;
  GElf_Addr id_vaddr;
  int idlen = dwfl_module_build_id(mod, &id, &id_vaddr);
  if (idlen > 0 && idlen <= 64) {
    char hex[129];
    for (int i = 0; i < idlen; i++)
      snprintf(hex + 2 * i, 3, "%02x", id[i]);
    o->build_id = hs_intern(&s->strings, hex);
  }
  o->has_symtab = dwfl_module_getsymtab(mod) > 0;
  Dwarf_Addr dbias;
  o->has_dwarf = dwfl_module_getdwarf(mod, &dbias) != NULL;
}

/* ------------------------------------------------------------ cache */

static size_t addr_hash(uintptr_t a) {
  uint64_t x = (uint64_t)a * 0x9e3779b97f4a7c15ull;
  return (size_t)(x ^ (x >> 29));
}

static int cache_grow(hs_symbolizer *s) {
  size_t ncap = s->cache_cap ? s->cache_cap * 2 : 4096;
  cache_slot *nc = calloc(ncap, sizeof *nc);
  if (nc == NULL)
    return -1;
  for (size_t i = 0; i < s->cache_cap; i++) {
    if (s->cache[i].loc == NULL)
      continue;
    size_t j = addr_hash(s->cache[i].addr) & (ncap - 1);
    while (nc[j].loc != NULL)
      j = (j + 1) & (ncap - 1);
    nc[j] = s->cache[i];
  }
  free(s->cache);
  s->cache = nc;
  s->cache_cap = ncap;
  return 0;
}

/* Adds a new entry (addr not in the cache); -1 if the table cannot grow. */
static int cache_put(hs_symbolizer *s, uintptr_t addr, hs_sym_loc *loc) {
  if ((s->cache_count + 1) * 2 > s->cache_cap && cache_grow(s) != 0)
    return -1;
  size_t j = addr_hash(addr) & (s->cache_cap - 1);
  while (s->cache[j].loc != NULL)
    j = (j + 1) & (s->cache_cap - 1);
  s->cache[j].addr = addr;
  s->cache[j].loc = loc;
  s->cache_count++;
  return 0;
}

const hs_sym_loc *hs_symbolize_loc(hs_symbolizer *s, uintptr_t addr) {
  if (s == NULL)
    return NULL;
  if (s->cache_cap > 0) {
    size_t j = addr_hash(addr) & (s->cache_cap - 1);
    while (s->cache[j].loc != NULL) {
      if (s->cache[j].addr == addr)
        return s->cache[j].loc;
      j = (j + 1) & (s->cache_cap - 1);
    }
  }
  s->misses++;
  hs_sym_loc *loc = hs_sym_resolve(s, addr);
  if (loc == NULL)
    return NULL;
  if (s->cache_count >= CACHE_MAX_ENTRIES)
    cache_clear(s);
  if (cache_put(s, addr, loc) != 0) {
    /* Not cacheable: hand it out until the next call. */
    free(s->scratch);
    s->scratch = loc;
  }
  return loc;
}

/* ------------------------------------------------------------ public */

hs_symbolizer *hs_symbolizer_new(void) {
  hs_symbolizer *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->unknown = hs_intern(&s->strings, "??");
  if (s->unknown == NULL) {
    free(s);
    return NULL;
  }
  s->page_size = sysconf(_SC_PAGESIZE);
  if (s->page_size <= 0)
    s->page_size = 4096;
  elf_version(EV_CURRENT);
  s->dwfl = dwfl_begin(&hs_sym_dwfl_cbs);
  if (s->dwfl == NULL)
    hs_log(HS_LOG_WARN, "symbolizer: libdwfl unavailable: %s", dwfl_errmsg(-1));
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    s->exe_path = strdup(exe);
  }
  /* C++ names are demangled when the host already has libstdc++ loaded;
   * a C library does not pull it in for that. */
  void *fn = dlsym(RTLD_DEFAULT, "__cxa_demangle");
  if (fn != NULL)
    memcpy(&s->demangle, &fn, sizeof fn);
  return s;
}

void hs_symbolizer_free(hs_symbolizer *s) {
  if (s == NULL)
    return;
  if (s->dwfl != NULL)
    dwfl_end(s->dwfl);
  cache_clear(s);
  free(s->cache);
  free(s->scratch);
  free(s->maps);
  for (sym_map *m = s->all_maps, *nx; m != NULL; m = nx) {
    nx = m->next_all;
    free(m);
  }
  for (sym_obj *o = s->all_objs, *nx; o != NULL; o = nx) {
    nx = o->next;
    free(o->image);
    free(o->cus);
    free(o);
  }
  hs_intern_free(&s->strings);
  free(s->debug_dir);
  free(s->exe_path);
  free(s);
}

int hs_symbolize(hs_symbolizer *s, uintptr_t addr, hs_symbol *out) {
  if (out == NULL)
    return -1;
  memset(out, 0, sizeof *out);
  out->function = "??";
  const hs_sym_loc *loc = hs_symbolize_loc(s, addr);
  if (loc == NULL)
    return -1;
  /* The innermost frame: its file:line is the most precise one. */
  const hs_sym_frame *f = &loc->frames[0];
  out->function = f->function;
  out->file = f->file;
  out->line = f->line;
  if (loc->map == NULL)
    return -1;
  out->mapping = loc->map->name;
  out->map_start = loc->map->start;
  out->map_limit = loc->map->limit;
  out->map_offset = loc->map->offset;
  out->build_id = loc->map->build_id;
  return 0;
}

const hs_sym_map *hs_symbolizer_main_map(hs_symbolizer *s) {
  if (s == NULL)
    return NULL;
  if (!s->loaded)
    hs_sym_load_maps(s);
  for (size_t i = 0; i < s->nmaps; i++) {
    sym_map *m = s->maps[i];
    if (m->pub.is_main && m->pub.exec) {
      if (m->obj != NULL && m->obj->state == 0)
        hs_sym_load_obj(s, m->obj);
      if (m->obj != NULL)
        m->pub.build_id = m->obj->build_id;
      return &m->pub;
    }
  }
  return NULL;
}

/* Frees mapping records and objects that are no longer in the maps (a
 * process that keeps mapping and unmapping memory would otherwise grow
 * them without bound). No cached answer points to them (see
 * cache_keep_current). Only between profiles: an encoder holds record
 * pointers while it runs. */
static void collect_stale(hs_symbolizer *s) {
  size_t stale = 0;
  for (sym_map *m = s->all_maps; m != NULL; m = m->next_all)
    stale += m->gen != s->gen;
  if (stale < STALE_RECORDS_MAX)
    return;
  for (sym_map **pp = &s->all_maps; *pp != NULL;) {
    sym_map *m = *pp;
    if (m->gen != s->gen) {
      *pp = m->next_all;
      free(m);
      s->nrecords--;
    } else {
      pp = &m->next_all;
    }
  }
  for (sym_obj **pp = &s->all_objs; *pp != NULL;) {
    sym_obj *o = *pp;
    if (!o->live && o->mod == NULL) {
      *pp = o->next;
      free(o->image);
      free(o->cus);
      free(o);
    } else {
      pp = &o->next;
    }
  }
}

void hs_symbolizer_new_epoch(hs_symbolizer *s) {
  if (s == NULL)
    return;
  s->epoch_reload = 1;
  if (s->loaded)
    collect_stale(s);
}

int hs_symbolizer_set_debug_dir(hs_symbolizer *s, const char *dir) {
  if (s == NULL || dir == NULL || dir[0] == '\0')
    return HOTSPAN_EINVAL;
  char *c = strdup(dir);
  if (c == NULL)
    return HOTSPAN_ENOMEM;
  free(s->debug_dir);
  s->debug_dir = c;
  return HOTSPAN_OK;
}

size_t hs_symbolizer_map_records(const hs_symbolizer *s) {
  return s ? s->nrecords : 0;
}

uint64_t hs_symbolizer_misses(const hs_symbolizer *s) {
  return s ? s->misses : 0;
}
