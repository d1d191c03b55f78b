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
#include "profiler/symbolize.h"

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

/* ------------------------------------------------------------ dwfl glue */

/* find_elf for modules we report ourselves without a file: the vDSO,
 * whose ELF image is in our own memory. Files are reported with an open
 * descriptor (dwfl_report_elf) and never reach here. */
static int find_elf_cb(Dwfl_Module *mod, void **userdata, const char *name,
                       Dwarf_Addr base, char **file_name, Elf **elfp) {
  (void)mod;
  (void)name;
  (void)base;
  (void)file_name;
  sym_obj *o = userdata ? *userdata : NULL;
  if (o == NULL || !o->is_vdso)
    return -1;
  uintptr_t ehdr = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
  if (ehdr == 0 || ehdr < o->low || ehdr >= o->high)
    return -1;
  size_t size = (size_t)(o->high - ehdr);
  /* libelf may write to a memory image; give it a private copy. */
  void *copy = malloc(size);
  if (copy == NULL)
    return -1;
  memcpy(copy, (const void *)ehdr, size);
  Elf *elf = elf_memory(copy, size);
  if (elf == NULL) {
    free(copy);
    return -1;
  }
  free(o->image);
  o->image = copy;
  *elfp = elf;
  return -1;
}

static int open_ro(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Whether the file at fd has the debuglink CRC (zlib's CRC-32 is the one
 * .gnu_debuglink uses). */
static int crc_matches(int fd, uint32_t want) {
  unsigned char buf[65536];
  uLong crc = crc32(0L, Z_NULL, 0);
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return 0;
    if (n == 0)
      break;
    crc = crc32(crc, buf, (uInt)n);
    off += n;
  }
  return (uint32_t)crc == want;
}

/* Opens <dir>/.build-id/xx/rest.debug for a build id. */
static int open_by_build_id(const char *dir, const unsigned char *id,
                            size_t idlen, char **name_out) {
  if (idlen < 2 || idlen > 64)
    return -1;
  char hex[129], path[PATH_MAX];
  for (size_t i = 0; i < idlen; i++)
    snprintf(hex + 2 * i, 3, "%02x", id[i]);
  int n = snprintf(path, sizeof path, "%s/.build-id/%.2s/%s.debug", dir, hex,
                   hex + 2);
  if (n <= 0 || (size_t)n >= sizeof path)
    return -1;
  int fd = open_ro(path);
  if (fd >= 0)
    *name_out = strdup(path);
  return fd;
}

/* If debuglink is the name in file's .gnu_debugaltlink section (a dwz
 * common debug file), copies the alt file's build id to id and returns its
 * length; else 0. */
static size_t altlink_id(const char *file, const char *debuglink,
                         unsigned char id[64]) {
  if (file == NULL)
    return 0;
  int fd = open_ro(file);
  if (fd < 0)
    return 0;
  size_t len = 0;
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  size_t shstrndx;
  if (elf != NULL && elf_getshdrstrndx(elf, &shstrndx) == 0) {
    for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn != NULL;
         scn = elf_nextscn(elf, scn)) {
      GElf_Shdr sh;
      const char *nm;
      if (gelf_getshdr(scn, &sh) == NULL ||
          (nm = elf_strptr(elf, shstrndx, sh.sh_name)) == NULL ||
          strcmp(nm, ".gnu_debugaltlink") != 0)
        continue;
      Elf_Data *d = elf_getdata(scn, NULL);
      if (d == NULL || d->d_buf == NULL)
        break;
      const char *b = d->d_buf;
      size_t nlen = strnlen(b, d->d_size);
      if (nlen < d->d_size && strcmp(b, debuglink) == 0) {
        len = d->d_size - nlen - 1;
        if (len > 64)
          len = 0;
        else
          memcpy(id, b + nlen + 1, len);
      }
      break;
    }
  }
  if (elf != NULL)
    elf_end(elf);
  close(fd);
  return len;
}

/* find_debuginfo: local files only (see the file comment). libdwfl calls
 * it for an object's debug file and, with the .gnu_debugaltlink name as
 * debuglink, for the dwz file that debug file refers to. */
static int find_debuginfo_cb(Dwfl_Module *mod, void **userdata,
                             const char *modname, Dwarf_Addr base,
                             const char *file_name, const char *debuglink,
                             GElf_Word crc, char **debuginfo_file_name) {
  (void)modname;
  (void)base;
  sym_obj *o = userdata ? *userdata : NULL;
  const char *dir = DEFAULT_DEBUG_DIR;
  if (o != NULL && o->owner->debug_dir != NULL)
    dir = o->owner->debug_dir;
  char path[PATH_MAX];

  unsigned char alt[64];
  size_t altlen = debuglink ? altlink_id(file_name, debuglink, alt) : 0;
  if (altlen > 0) {
    int fd = open_by_build_id(dir, alt, altlen, debuginfo_file_name);
    if (fd >= 0)
      return fd;
    const char *slash = file_name ? strrchr(file_name, '/') : NULL;
    int n = debuglink[0] == '/' || slash == NULL
                ? snprintf(path, sizeof path, "%s", debuglink)
                : snprintf(path, sizeof path, "%.*s/%s",
                           (int)(slash - file_name), file_name, debuglink);
    if (n <= 0 || (size_t)n >= sizeof path)
      return -1;
    fd = open_ro(path);
    if (fd >= 0)
      *debuginfo_file_name = strdup(path);
    return fd;
  }

  const unsigned char *id = NULL;
  GElf_Addr id_vaddr;
  int idlen = dwfl_module_build_id(mod, &id, &id_vaddr);
  if (idlen > 0) {
    int fd = open_by_build_id(dir, id, (size_t)idlen, debuginfo_file_name);
    if (fd >= 0)
      return fd;
  }
  if (debuglink == NULL || file_name == NULL || strchr(debuglink, '/'))
    return -1;
  const char *slash = strrchr(file_name, '/');
  int dlen = slash ? (int)(slash - file_name) : 0;
  for (int k = 0; k < 3; k++) {
    int n;
    if (k == 0) /* beside the object */
      n = snprintf(path, sizeof path, "%.*s/%s", dlen, file_name, debuglink);
    else if (k == 1)
      n = snprintf(path, sizeof path, "%.*s/.debug/%s", dlen, file_name,
                   debuglink);
    else
      n = snprintf(path, sizeof path, "%s%.*s/%s", dir, dlen, file_name,
                   debuglink);
    if (n <= 0 || (size_t)n >= sizeof path || strcmp(path, file_name) == 0)
      continue;
    int fd = open_ro(path);
    if (fd < 0)
      continue;
    if (crc_matches(fd, crc)) {
      *debuginfo_file_name = strdup(path);
      return fd;
    }
    close(fd);
  }
  return -1;
}

static const Dwfl_Callbacks dwfl_cbs = {
    .find_elf = find_elf_cb,
    .find_debuginfo = find_debuginfo_cb,
    .section_address = dwfl_offline_section_address,
};

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
static int load_maps(hs_symbolizer *s) {
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
        sym_obj *o = find_obj(s, name, ino, start);
        if (o == NULL) {
          o = calloc(1, sizeof *o);
          if (o != NULL) {
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
          }
        }
        cur = o;
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

  /* Objects gone from the maps: drop their modules (libdwfl frees modules
   * not reported again between report_begin and report_end). */
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

  free(s->maps);
  s->maps = maps;
  s->nmaps = n;
  s->loaded = 1;
  s->gen++;
  cache_keep_current(s);
  return 0;
}

static sym_map *lookup_map(hs_symbolizer *s, uintptr_t addr) {
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
    fd = open_ro(o->path);
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
  fd = open_ro(used);
  if (fd >= 0)
    return fd;
  if (!o->deleted) {
    /* Inode mismatch and no map_files access (it needs privileges on some
     * kernels): containers' overlay file systems can show another inode
     * for the very same file, so trust the path. */
    fd = open_ro(o->path);
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

static void load_obj(hs_symbolizer *s, sym_obj *o) {
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

/* ------------------------------------------------------------ frames */

static const char *demangled(hs_symbolizer *s, const char *sys) {
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
  f->function = demangled(s, plain);
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
static void cu_index(sym_obj *o, Dwarf *dw) {
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
      cu_index(o, dw);
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

static hs_sym_loc *resolve(hs_symbolizer *s, uintptr_t addr) {
  frame_acc acc;
  acc.n = 0;
  /* First address of a new epoch (profile): reread the mappings even if
   * the address falls in a known one, since the program may have unmapped
   * it and mapped something else there since. */
  if (s->loaded && s->epoch_reload)
    load_maps(s);
  sym_map *m = s->loaded ? lookup_map(s, addr) : NULL;
  if (m == NULL &&
      (!s->loaded || s->epoch_reload ||
       hs_now_mono_ns() - s->last_reload_ns >= RELOAD_MIN_INTERVAL_NS)) {
    load_maps(s);
    m = lookup_map(s, addr);
  }
  sym_obj *o = m ? m->obj : NULL;
  if (o != NULL && o->state == 0)
    load_obj(s, o);
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
  hs_sym_loc *loc = resolve(s, addr);
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
  s->dwfl = dwfl_begin(&dwfl_cbs);
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
    load_maps(s);
  for (size_t i = 0; i < s->nmaps; i++) {
    sym_map *m = s->maps[i];
    if (m->pub.is_main && m->pub.exec) {
      if (m->obj != NULL && m->obj->state == 0)
        load_obj(s, m->obj);
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
