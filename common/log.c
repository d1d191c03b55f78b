#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"

static _Atomic int log_level = -1;

static int level_from_env(void) {
  const char *v = hs_env_get("HOTSPAN_LOG_LEVEL");
  if (v != NULL) {
    if (strcasecmp(v, "off") == 0 || strcasecmp(v, "none") == 0)
      return HS_LOG_OFF;
    if (strcasecmp(v, "error") == 0)
      return HS_LOG_ERROR;
    if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0)
      return HS_LOG_WARN;
    if (strcasecmp(v, "info") == 0)
      return HS_LOG_INFO;
    if (strcasecmp(v, "debug") == 0)
      return HS_LOG_DEBUG;
  }
  int dbg = 0;
  if (hs_env_bool("DD_TRACE_DEBUG", &dbg) == 0 && dbg)
    return HS_LOG_DEBUG;
  return HS_LOG_INFO;
}

int hs_log_level(void) {
  int l = atomic_load_explicit(&log_level, memory_order_relaxed);
  if (l < 0) {
    l = level_from_env();
    atomic_store_explicit(&log_level, l, memory_order_relaxed);
  }
  return l;
}

void hs_log_set_level(int level) {
  if (level > 0)
    atomic_store_explicit(&log_level,
                          level > HS_LOG_DEBUG ? HS_LOG_DEBUG : level,
                          memory_order_relaxed);
}

static const char *level_name(int level) {
  switch (level) {
  case HS_LOG_ERROR:
    return "error";
  case HS_LOG_WARN:
    return "warn";
  case HS_LOG_INFO:
    return "info";
  default:
    return "debug";
  }
}

static void emit(const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, buf, n);
    if (w <= 0)
      return; /* stderr closed or full: logging must never hurt the host */
    buf += w;
    n -= (size_t)w;
  }
}

void hs_log(int level, const char *fmt, ...) {
  if (hs_log_level() < level)
    return;
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "hotspan %s: ", level_name(level));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof buf - 2)
    len = sizeof buf - 2;
  buf[len++] = '\n';
  emit(buf, len);
}

void hs_log_raw(int level, const char *msg) {
  if (hs_log_level() < level)
    return;
  size_t n = strlen(msg);
  char line[4096];
  if (n < sizeof line) {
    memcpy(line, msg, n);
    line[n] = '\n';
    emit(line, n + 1);
  } else {
    emit(msg, n);
    emit("\n", 1);
  }
}
