/* Times and durations as users type them (cli.h). Strict: trailing
 * garbage, empty strings, out-of-range values and overflows are errors, so
 * that a typo never turns into a silently different time range. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define NS_PER_S 1000000000.0

/* A non-negative decimal number ("12", "1.5", ".5"); no sign, exponent,
 * hex, inf or nan, which strtod would take. Returns the characters read (0
 * if none). */
static size_t scan_number(const char *s, double *v) {
  size_t i = 0, digits = 0;
  while (isdigit((unsigned char)s[i])) {
    i++;
    digits++;
  }
  if (s[i] == '.') {
    i++;
    while (isdigit((unsigned char)s[i])) {
      i++;
      digits++;
    }
  }
  if (digits == 0)
    return 0;
  char tmp[64];
  if (i >= sizeof tmp)
    return 0;
  memcpy(tmp, s, i);
  tmp[i] = '\0';
  errno = 0;
  *v = strtod(tmp, NULL);
  if (errno != 0 || !isfinite(*v))
    return 0;
  return i;
}

int hs_cli_parse_duration(const char *s, int64_t *ns) {
  if (s == NULL)
    return -1;
  if (strcmp(s, "0") == 0) {
    *ns = 0;
    return 0;
  }
  double v;
  size_t n = scan_number(s, &v);
  if (n == 0)
    return -1;
  static const struct {
    const char *unit;
    double ns;
  } units[] = {{"ns", 1},     {"us", 1e3},   {"\xc2\xb5s", 1e3}, /* µs */
               {"ms", 1e6},   {"s", 1e9},    {"m", 60e9},
               {"min", 60e9}, {"h", 3600e9}, {"d", 86400e9}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(s + n, units[i].unit) == 0) {
      double r = v * units[i].ns;
      /* 2^63 is exactly representable; anything at or above it overflows. */
      if (!(r < 9223372036854775808.0))
        return -1;
      *ns = (int64_t)llround(r);
      return 0;
    }
  }
  return -1;
}

static int all_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return 0;
  return n > 0;
}

static int num(const char *s, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (s[i] - '0');
  return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : d[m - 1];
}

/* YYYY-MM-DD[Tt ]HH:MM:SS[.frac](Z|z|+HH:MM|-HH:MM), or a date alone
 * (midnight UTC). */
static int parse_rfc3339(const char *s, int64_t *ns) {
  size_t len = strlen(s);
  if (len < 10 || !all_digits(s, 4) || s[4] != '-' || !all_digits(s + 5, 2) ||
      s[7] != '-' || !all_digits(s + 8, 2))
    return -1;
  int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
    return -1;
  int64_t secs = days_from_civil(y, mo, d) * 86400;
  int64_t frac_ns = 0;
  const char *p = s + 10;
  if (*p != '\0') {
    if ((*p != 'T' && *p != 't' && *p != ' ') || strlen(p) < 9 ||
        !all_digits(p + 1, 2) || p[3] != ':' || !all_digits(p + 4, 2) ||
        p[6] != ':' || !all_digits(p + 7, 2))
      return -1;
    int hh = num(p + 1, 2), mm = num(p + 4, 2), ss = num(p + 7, 2);
    /* 60 is a leap second; it lands on the next second's ns. */
    if (hh > 23 || mm > 59 || ss > 60)
      return -1;
    secs += hh * 3600 + mm * 60 + ss;
    p += 9;
    if (*p == '.') {
      p++;
      int64_t scale = 100000000;
      size_t nd = 0;
      while (isdigit((unsigned char)*p)) {
        frac_ns += (*p - '0') * scale;
        scale /= 10;
        p++;
        nd++;
      }
      if (nd == 0)
        return -1;
    }
    if (*p == 'Z' || *p == 'z') {
      p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 &&
               all_digits(p + 1, 2) && p[3] == ':' && all_digits(p + 4, 2)) {
      int oh = num(p + 1, 2), om = num(p + 4, 2);
      if (oh > 23 || om > 59)
        return -1;
      int off = oh * 3600 + om * 60;
      secs -= *p == '+' ? off : -off;
      p += 6;
    } else {
      return -1;
    }
    if (*p != '\0')
      return -1;
  }
  /* Unix ns in int64 reach 1677-09-21 .. 2262-04-11. */
  if (secs < -9223372036LL || secs > 9223372035LL)
    return -1;
  *ns = secs * 1000000000LL + frac_ns;
  return 0;
}

int hs_cli_parse_time(const char *s, int64_t now_ns, int64_t *ns) {
  if (s == NULL || *s == '\0')
    return -1;
  if (strcmp(s, "now") == 0) {
    *ns = now_ns;
    return 0;
  }
  /* Relative: "-1h" or "1h" (both: that long ago). */
  int64_t d;
  if (hs_cli_parse_duration(s[0] == '-' ? s + 1 : s, &d) == 0 &&
      strcmp(s, "0") != 0) {
    if (now_ns - d > now_ns) /* overflow below int64 */
      return -1;
    *ns = now_ns - d;
    return 0;
  }
  /* Unix seconds: digits with an optional fraction, and nothing else. A
   * 4-digit year followed by '-' is caught by RFC 3339 below. */
  double v;
  size_t n = scan_number(s, &v);
  if (n > 0 && s[n] == '\0') {
    double r = v * NS_PER_S;
    if (!(r < 9223372036854775808.0))
      return -1;
    *ns = (int64_t)llround(r);
    return 0;
  }
  return parse_rfc3339(s, ns);
}

int hs_cli_parse_range(const char *s, int64_t now_ns, int64_t *from,
                       int64_t *to) {
  if (s == NULL)
    return -1;
  const char *dots = strstr(s, "..");
  if (dots == NULL || dots == s)
    return -1;
  size_t n = (size_t)(dots - s);
  char a[128];
  if (n >= sizeof a)
    return -1;
  memcpy(a, s, n);
  a[n] = '\0';
  const char *b = dots + 2;
  if (hs_cli_parse_time(a, now_ns, from) != 0)
    return -1;
  if (*b == '\0')
    *to = now_ns;
  else if (hs_cli_parse_time(b, now_ns, to) != 0)
    return -1;
  return *from < *to ? 0 : -1;
}
