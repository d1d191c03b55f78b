/* multipart/form-data splitting. The body is only ever searched with
 * memmem bounded by its length; nothing is copied but the header values. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "agent/multipart.h"

static int ci_prefix(const char *s, size_t n, const char *p) {
  size_t k = strlen(p);
  return n >= k && strncasecmp(s, p, k) == 0;
}

int hs_agent_is_multipart(const char *ct) {
  if (!ct)
    return 0;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  size_t k = strlen("multipart/form-data");
  return strncasecmp(ct, "multipart/form-data", k) == 0 &&
         (ct[k] == 0 || ct[k] == ';' || ct[k] == ' ' || ct[k] == '\t');
}

/* Finds parameter `param` (case-insensitive) in a header value made of
 * "x; a=b; c=\"d\"" and copies its unquoted value into out. 0 if found. */
static int header_param(const char *v, size_t n, const char *param, char *out,
                        size_t outlen) {
  size_t i = 0, plen = strlen(param);
  while (i < n) {
    /* skip to the next ';' outside quotes */
    int q = 0;
    while (i < n && (q || v[i] != ';')) {
      if (v[i] == '"')
        q = !q;
      else if (q && v[i] == '\\' && i + 1 < n)
        i++;
      i++;
    }
    if (i >= n)
      break;
    i++;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
      i++;
    if (n - i > plen && strncasecmp(v + i, param, plen) == 0 &&
        v[i + plen] == '=') {
      i += plen + 1;
      size_t o = 0;
      if (i < n && v[i] == '"') {
        i++;
        while (i < n && v[i] != '"') {
          if (v[i] == '\\' && i + 1 < n)
            i++;
          if (o + 1 >= outlen)
            return -1;
          out[o++] = v[i++];
        }
        if (i >= n)
          return -1; /* unterminated quote */
      } else {
        while (i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t') {
          if (o + 1 >= outlen)
            return -1;
          out[o++] = v[i++];
        }
      }
      out[o] = 0;
      return 0;
    }
  }
  return -1;
}

static int parse_part_headers(const char *h, size_t n, hs_agent_part *p,
                              hs_agent_arena *a, char *err, size_t errlen,
                              size_t index) {
  size_t i = 0;
  int have_disp = 0;
  while (i < n) {
    const char *eol = memmem(h + i, n - i, "\r\n", 2);
    size_t ll = eol ? (size_t)(eol - (h + i)) : n - i;
    const char *line = h + i;
    i += ll + 2;
    const char *colon = memchr(line, ':', ll);
    if (!colon)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "multipart: part %zu: header line without ':'",
                           index);
    size_t vo = (size_t)(colon - line) + 1;
    while (vo < ll && (line[vo] == ' ' || line[vo] == '\t'))
      vo++;
    const char *val = line + vo;
    size_t vl = ll - vo;
    if (ci_prefix(line, ll, "content-disposition:")) {
      char buf[256];
      if (!ci_prefix(val, vl, "form-data"))
        return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                             "multipart: part %zu: Content-Disposition is "
                             "not form-data",
                             index);
      if (header_param(val, vl, "name", buf, sizeof(buf)))
        return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                             "multipart: part %zu: no name in "
                             "Content-Disposition",
                             index);
      p->name = hs_agent_arena_utf8(a, buf, strlen(buf));
      if (header_param(val, vl, "filename", buf, sizeof(buf)) == 0)
        p->filename = hs_agent_arena_utf8(a, buf, strlen(buf));
      have_disp = 1;
    } else if (ci_prefix(line, ll, "content-type:")) {
      p->content_type = hs_agent_arena_utf8(a, val, vl);
    }
  }
  if (!have_disp)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "multipart: part %zu has no Content-Disposition",
                         index);
  if (a->failed)
    return hs_agent_fail(err, errlen, a->failed, "multipart: out of memory");
  return HS_AGENT_OK;
}

int hs_agent_multipart_parse(const char *content_type, const uint8_t *body,
                             size_t len, hs_agent_arena *a,
                             hs_agent_part **parts, size_t *nparts, char *err,
                             size_t errlen) {
  *parts = NULL;
  *nparts = 0;
  if (!hs_agent_is_multipart(content_type))
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "multipart: Content-Type is not multipart/form-data");
  char boundary[80];
  /* "--" + boundary, at most 70 characters by RFC 2046 */
  if (header_param(content_type, strlen(content_type), "boundary", boundary + 2,
                   sizeof(boundary) - 2) ||
      boundary[2] == 0 || strlen(boundary + 2) > 70)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "multipart: missing or invalid boundary parameter");
  boundary[0] = boundary[1] = '-';
  size_t bl = strlen(boundary);
  hs_agent_part *out =
      hs_agent_arena_array(a, HS_AGENT_MAX_PARTS, sizeof(*out));
  if (!out)
    return hs_agent_fail(err, errlen, a->failed, "multipart: out of memory");
  const char *b = (const char *)body;
  /* The first delimiter: at the start or after a preamble line. */
  const char *p = NULL;
  if (len >= bl && memcmp(b, boundary, bl) == 0) {
    p = b;
  } else {
    char delim[84] = "\r\n";
    memcpy(delim + 2, boundary, bl);
    p = memmem(b, len, delim, bl + 2);
    if (p)
      p += 2;
  }
  if (!p)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "multipart: opening boundary not found");
  const char *end = b + len;
  char delim[84] = "\r\n";
  memcpy(delim + 2, boundary, bl);
  size_t n = 0;
  for (;;) {
    p += bl; /* after "--boundary" */
    if (end - p >= 2 && p[0] == '-' && p[1] == '-')
      break; /* closing delimiter */
    /* transport padding, then CRLF */
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "multipart: malformed boundary line");
    p += 2;
    if (n == HS_AGENT_MAX_PARTS)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "multipart: more than %d parts", HS_AGENT_MAX_PARTS);
    const char *hend;
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
      hend = p; /* no headers at all */
    else {
      hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
      if (!hend)
        return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                             "multipart: part %zu: headers not terminated", n);
      hend += 2;
    }
    hs_agent_part *part = &out[n];
    int rc = parse_part_headers(
        p, (size_t)(hend - p) >= 2 ? (size_t)(hend - p) - 2 : 0, part, a, err,
        errlen, n);
    if (hend == p)
      rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "multipart: part %zu has no Content-Disposition", n);
    if (rc != HS_AGENT_OK)
      return rc;
    const char *data = hend + 2;
    const char *next = memmem(data, (size_t)(end - data), delim, bl + 2);
    if (!next)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "multipart: part %zu is not terminated by a "
                           "boundary",
                           n);
    part->data = (const uint8_t *)data;
    part->len = (size_t)(next - data);
    n++;
    p = next + 2;
  }
  *parts = out;
  *nparts = n;
  return HS_AGENT_OK;
}

const hs_agent_part *hs_agent_part_find(const hs_agent_part *parts, size_t n,
                                        const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(parts[i].name, name) == 0)
      return &parts[i];
  return NULL;
}
