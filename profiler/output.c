#include "profiler/output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static _Atomic int last_errno;

static void report(const char *what, const char *path, int e) {
  if (atomic_exchange(&last_errno, e) != e)
    hs_log(HS_LOG_WARN, "profiler: cannot %s %s: %s", what, path, strerror(e));
}

int hs_prof_write_file(const char *dir, const char *type, int pid, uint32_t seq,
                       const uint8_t *data, size_t len) {
  char path[4200], tmp[4300];
  int n = snprintf(path, sizeof path, "%s/%s-%d-%u.pb.gz", dir, type, pid,
                   (unsigned)seq);
  if (n < 0 || (size_t)n >= sizeof path) {
    report("name a file in", dir, ENAMETOOLONG);
    return -1;
  }
  snprintf(tmp, sizeof tmp, "%s/.%s-%d-%u.pb.gz.tmp", dir, type, pid,
           (unsigned)seq);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    report("create", dir, errno);
    return -1;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    report("create", tmp, errno);
    return -1;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      report("write", tmp, w < 0 ? errno : EIO);
      close(fd);
      unlink(tmp);
      return -1;
    }
    off += (size_t)w;
  }
  if (close(fd) != 0) {
    report("write", tmp, errno);
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    report("rename", tmp, errno);
    unlink(tmp);
    return -1;
  }
  atomic_store(&last_errno, 0);
  return 0;
}
