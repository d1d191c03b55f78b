#include "exporter/pprof_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "hotspan/error.h"
#include "profiler/profile_sink.h"

#define MAX_SUFFIX 100

static _Atomic unsigned tmp_counter;

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int hs_pprof_write_file(const char *dir, const char *prefix, int type,
                        uint64_t start_unix_ns, uint64_t end_unix_ns,
                        const hs_buf *data, char **path_out) {
  if (path_out != NULL)
    *path_out = NULL;
  if (prefix == NULL || prefix[0] == '\0')
    prefix = "hotspan";
  if (dir == NULL || dir[0] == '\0' || data == NULL ||
      (data->len > 0 && data->data == NULL) || strchr(prefix, '/') != NULL ||
      (type != HS_PROFILE_CPU && type != HS_PROFILE_WALL))
    return HOTSPAN_EINVAL;
  const char *kind = type == HS_PROFILE_CPU ? "cpu" : "wall";

  time_t secs = (time_t)(start_unix_ns / 1000000000u);
  struct tm tm;
  char stamp[32];
  if (gmtime_r(&secs, &tm) == NULL ||
      strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
    return HOTSPAN_EINVAL;

  char tmp[PATH_MAX], path[PATH_MAX];
  unsigned c = atomic_fetch_add(&tmp_counter, 1);
  int n = snprintf(tmp, sizeof tmp, "%s/.%s.%s.%s.%ld.%u.tmp", dir, prefix,
                   kind, stamp, (long)getpid(), c);
  if (n < 0 || (size_t)n >= sizeof tmp)
    return HOTSPAN_EINVAL;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    hs_log(HS_LOG_WARN, "profile file: cannot create %s: %s", tmp,
           strerror(errno));
    return HOTSPAN_EIO;
  }
  int ok = write_all(fd, data->data, data->len) == 0 && fdatasync(fd) == 0;
  if (ok && end_unix_ns > 0) {
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = (time_t)(end_unix_ns / 1000000000u);
    ts[0].tv_nsec = ts[1].tv_nsec = (long)(end_unix_ns % 1000000000u);
    (void)futimens(fd, ts); /* cosmetic: failure does not matter */
  }
  if (close(fd) != 0)
    ok = 0;
  if (!ok) {
    hs_log(HS_LOG_WARN, "profile file: cannot write %s: %s", tmp,
           strerror(errno));
    unlink(tmp);
    return HOTSPAN_EIO;
  }

  int rc = HOTSPAN_EIO;
  for (int k = 0; k <= MAX_SUFFIX; k++) {
    if (k == 0)
      n = snprintf(path, sizeof path, "%s/%s.%s.%s.pb.gz", dir, prefix, kind,
                   stamp);
    else
      n = snprintf(path, sizeof path, "%s/%s.%s.%s-%d.pb.gz", dir, prefix, kind,
                   stamp, k);
    if (n < 0 || (size_t)n >= sizeof path) {
      rc = HOTSPAN_EINVAL;
      break;
    }
    /* link() publishes atomically and fails if the name exists. */
    if (link(tmp, path) == 0) {
      rc = HOTSPAN_OK;
      break;
    }
    if (errno == EEXIST)
      continue;
    if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP ||
        errno == EMLINK) {
      /* No hard links here (some file systems): rename, after checking
       * the name is free (a race with another writer could replace a
       * file here, which link() would have prevented). */
      struct stat st;
      if (lstat(path, &st) == 0)
        continue;
      if (rename(tmp, path) == 0) {
        rc = HOTSPAN_OK;
        break;
      }
    }
    hs_log(HS_LOG_WARN, "profile file: cannot create %s: %s", path,
           strerror(errno));
    break;
  }
  unlink(tmp); /* after link: drops the temporary name; after rename:
                  nothing there */
  if (rc != HOTSPAN_OK)
    return rc;
  if (path_out != NULL) {
    *path_out = strdup(path);
    if (*path_out == NULL)
      return HOTSPAN_ENOMEM; /* the file exists; only the name is lost */
  }
  return HOTSPAN_OK;
}

int hs_pprof_file_keep(const char *dir, int type, const uint8_t *data,
                       size_t len, uint64_t start_unix_ns,
                       uint64_t end_unix_ns) {
  (void)mkdir(dir, 0755);
  hs_buf view;
  hs_buf_init(&view, 0);
  view.data = (char *)(uintptr_t)data;
  view.len = len;
  int rc = hs_pprof_write_file(dir, NULL, type, start_unix_ns, end_unix_ns,
                               &view, NULL);
  return rc == HOTSPAN_OK ? 1 : -1;
}
