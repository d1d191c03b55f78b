#include "common/env.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

const char *hs_env_get(const char *name) {
  const char *v = getenv(name);
  return (v != NULL && v[0] != '\0') ? v : NULL;
}

const char *hs_env_first(const char *const *names, const char **which) {
  for (; *names != NULL; names++) {
    const char *v = hs_env_get(*names);
    if (v != NULL) {
      if (which != NULL)
        *which = *names;
      return v;
    }
  }
  return NULL;
}

int hs_parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on", "y", "t"};
  static const char *const no[] = {"0", "false", "no", "off", "n", "f"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

int hs_parse_double(const char *s, double *out) {
  char *end = NULL;
  errno = 0;
  double d = strtod(s, &end);
  if (end == s || errno != 0 || !isfinite(d))
    return -1;
  while (*end == ' ' || *end == '\t')
    end++;
  if (*end != '\0')
    return -1;
  *out = d;
  return 0;
}

int hs_parse_u64(const char *s, uint64_t *out) {
  if (*s == '-' || *s == '+' || *s == '\0')
    return -1;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno != 0 || *end != '\0')
    return -1;
  *out = (uint64_t)v;
  return 0;
}

int hs_env_u64_in(const char *name, uint64_t lo, uint64_t hi, uint64_t *out) {
  uint64_t v;
  int rc = hs_env_u64(name, &v);
  if (rc != 0)
    return rc;
  if (v < lo || v > hi) {
    hs_log(HS_LOG_WARN, "ignoring %s=%llu: outside %llu..%llu", name,
           (unsigned long long)v, (unsigned long long)lo,
           (unsigned long long)hi);
    return -1;
  }
  *out = v;
  return 0;
}

int hs_env_double_in(const char *name, double lo, double hi, double *out) {
  double v;
  int rc = hs_env_double(name, &v);
  if (rc != 0)
    return rc;
  if (!(v >= lo && v <= hi)) {
    hs_log(HS_LOG_WARN, "ignoring %s=%g: outside %g..%g", name, v, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

int hs_parse_name_list(const char *list, const hs_name_bits *table,
                       unsigned *out, char *bad, size_t badlen) {
  unsigned m = 0;
  int count = 0, unknown = 0;
  const char *p = list != NULL ? list : "";
  while (*p != '\0') {
    size_t n = strcspn(p, ", \t");
    if (n > 0) {
      int found = n == 4 && strncasecmp(p, "none", 4) == 0;
      for (const hs_name_bits *t = table; !found && t->name != NULL; t++)
        if (strlen(t->name) == n && strncasecmp(p, t->name, n) == 0) {
          m |= t->bits;
          found = 1;
        }
      if (!found && !unknown && badlen > 0)
        snprintf(bad, badlen, "%.*s", (int)(n > 64 ? 64 : n), p);
      unknown |= !found;
      count++;
    }
    p += n;
    p += strspn(p, ", \t");
  }
  *out = m;
  return unknown ? -1 : count;
}

#define HS_ENV_PARSER(fname, type, parser)                                     \
  int fname(const char *name, type *out) {                                     \
    const char *v = hs_env_get(name);                                          \
    if (v == NULL)                                                             \
      return 1;                                                                \
    if (parser(v, out) != 0) {                                                 \
      hs_log(HS_LOG_WARN, "ignoring %s=\"%.64s\": not a valid value", name,    \
             v);                                                               \
      return -1;                                                               \
    }                                                                          \
    return 0;                                                                  \
  }

HS_ENV_PARSER(hs_env_bool, int, hs_parse_bool)
HS_ENV_PARSER(hs_env_double, double, hs_parse_double)
HS_ENV_PARSER(hs_env_u64, uint64_t, hs_parse_u64)
