/* Datadog's glob patterns of sampling rules (tracer/glob.h). */
#include "tracer/glob.h"

#include <string.h>

static unsigned char fold(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Bytes in the UTF-8 character at s (n bytes available, n > 0): the lead
 * byte's length if the continuation bytes are there, else 1. Used so '?'
 * and '*' step over whole characters of "café", not bytes. */
static size_t char_len(const unsigned char *s, size_t n) {
  size_t len = 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    len = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    len = 3;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    len = 4;
  if (len > n)
    return 1;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 1;
  return len;
}

/* Datadog's glob: '*' matches any run of characters (also none), '?'
 * exactly one character, everything else itself, ASCII letters without
 * regard to case. No escapes. Backtracks to the last '*' only, so the cost
 * is O(|pattern| * |subject|) at worst, with no recursion. */
int hs_glob_match(const char *pattern, const char *subject) {
  const unsigned char *p = (const unsigned char *)pattern;
  const unsigned char *s = (const unsigned char *)subject;
  size_t plen = strlen(pattern), slen = strlen(subject);
  size_t pi = 0, si = 0;
  size_t star_p = 0, star_s = 0;
  int have_star = 0;
  while (pi < plen || si < slen) {
    if (pi < plen) {
      unsigned char c = p[pi];
      if (c == '*') {
        have_star = 1;
        star_p = pi;
        star_s = si;
        pi++;
        continue;
      }
      if (si < slen) {
        if (c == '?') {
          pi++;
          si += char_len(s + si, slen - si);
          continue;
        }
        if (fold(c) == fold(s[si])) {
          pi++;
          si++;
          continue;
        }
      }
    }
    /* Mismatch: let the last '*' swallow one more character. */
    if (have_star && star_s < slen) {
      star_s += char_len(s + star_s, slen - star_s);
      pi = star_p + 1;
      si = star_s;
      continue;
    }
    return 0;
  }
  return 1;
}

static int only_stars(const char *pattern) {
  if (*pattern == '\0')
    return 0;
  for (; *pattern != '\0'; pattern++)
    if (*pattern != '*')
      return 0;
  return 1;
}

/* NULL pattern: unconstrained. NULL subject (the span has no such value):
 * only a pattern of stars matches it. */
int hs_glob_field_matches(const char *pattern, const char *subject) {
  if (pattern == NULL)
    return 1;
  if (subject == NULL)
    return only_stars(pattern);
  return hs_glob_match(pattern, subject);
}
