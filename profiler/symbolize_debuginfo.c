/* Finding the ELF and separate debug files of a mapped object for
 * libdwfl: by build id, by debuglink with its CRC, the alternate debug
 * file, and the vDSO from our own memory. */
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

int hs_sym_open_ro(const char *path) {
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
  int fd = hs_sym_open_ro(path);
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
  int fd = hs_sym_open_ro(file);
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
    fd = hs_sym_open_ro(path);
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
    int fd = hs_sym_open_ro(path);
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

const Dwfl_Callbacks hs_sym_dwfl_cbs = {
    .find_elf = find_elf_cb,
    .find_debuginfo = find_debuginfo_cb,
    .section_address = dwfl_offline_section_address,
};
