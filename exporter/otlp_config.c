/* OTLP exporter configuration: endpoint, headers, compression and timeout
 * from OTEL_EXPORTER_OTLP_* (see otlp.h). The parsers are pure functions
 * so that every bad input has a unit test; hs_otlp_config_from_env only
 * reads the variables and logs what the parsers reject. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/env.h"
#include "common/hex.h"
#include "common/log.h"
#include "exporter/otlp.h"
#include "hotspan/error.h"

static int is_ws(char c) {
  return c == ' ' || c == '\t';
}

/* Trims spaces and tabs of [*p, *p + *n). */
static void trim(const char **p, size_t *n) {
  while (*n > 0 && is_ws(**p)) {
    (*p)++;
    (*n)--;
  }
  while (*n > 0 && is_ws((*p)[*n - 1]))
    (*n)--;
}

static int has_ctl(const char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == ' ' || *s == 0x7f)
      return 1;
  return 0;
}

int hs_otlp_resolve_endpoint(const char *traces_ep, const char *base_ep,
                             char *out, size_t outlen, char *err,
                             size_t errlen) {
  const char *which = NULL;
  int need_path = 0;
  const char *url = HS_OTLP_DEFAULT_ENDPOINT;
  if (traces_ep != NULL && traces_ep[0] != '\0') {
    url = traces_ep;
    which = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
  } else if (base_ep != NULL && base_ep[0] != '\0') {
    url = base_ep;
    which = "OTEL_EXPORTER_OTLP_ENDPOINT";
    need_path = 1;
  }
  if (which == NULL) {
    snprintf(out, outlen, "%s", url);
    return HOTSPAN_OK;
  }
  size_t scheme = strncmp(url, "http://", 7) == 0    ? 7
                  : strncmp(url, "https://", 8) == 0 ? 8
                                                     : 0;
  if (scheme == 0) {
    snprintf(err, errlen, "%s: '%.64s' does not start with http:// or https://",
             which, url);
    return HOTSPAN_ECONFIG;
  }
  if (url[scheme] == '\0' || url[scheme] == '/') {
    snprintf(err, errlen, "%s: '%.64s' has no host", which, url);
    return HOTSPAN_ECONFIG;
  }
  if (has_ctl(url)) {
    snprintf(err, errlen, "%s: contains a space or control character", which);
    return HOTSPAN_ECONFIG;
  }
  size_t n = strlen(url);
  if (need_path) {
    /* Base URL + "/v1/traces" with exactly one slash between. */
    while (n > scheme && url[n - 1] == '/')
      n--;
    if (n + sizeof "/v1/traces" > outlen) {
      snprintf(err, errlen, "%s: too long", which);
      return HOTSPAN_ECONFIG;
    }
    memcpy(out, url, n);
    memcpy(out + n, "/v1/traces", sizeof "/v1/traces");
    return HOTSPAN_OK;
  }
  if (n + 1 > outlen) {
    snprintf(err, errlen, "%s: too long", which);
    return HOTSPAN_ECONFIG;
  }
  memcpy(out, url, n + 1);
  return HOTSPAN_OK;
}

/* RFC 7230 tchar. */
static int tchar(unsigned char c) {
  return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Percent-decodes v[0..n) into out (room for n + 1). 0, or -1 for a bad
 * escape or a decoded CR, LF or NUL (which would split or end a header
 * line). Other control characters are refused as well. */
static int pct_decode(const char *v, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c == '%') {
      if (i + 2 >= n)
        return -1;
      int hi = hs_hexval((unsigned char)v[i + 1]),
          lo = hs_hexval((unsigned char)v[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = (unsigned char)(hi * 16 + lo);
      i += 2;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return -1;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return 0;
}

static void err_append(char *err, size_t errlen, size_t *used, const char *e,
                       size_t n) {
  if (err == NULL || errlen == 0 || *used >= errlen - 1)
    return;
  if (*used == 0) {
    int w = snprintf(err, errlen, "malformed header entries: ");
    *used = w > 0 ? (size_t)w : 0;
    if (*used >= errlen)
      *used = errlen - 1;
  } else if (*used + 2 < errlen) {
    err[(*used)++] = ',';
    err[(*used)++] = ' ';
  }
  /* Quote the entry, cut at 40 bytes, control characters as '?'. */
  char q[48];
  size_t k = 0;
  q[k++] = '\'';
  for (size_t i = 0; i < n && i < 40; i++)
    q[k++] = ((unsigned char)e[i] < 0x20 || e[i] == 0x7f) ? '?' : e[i];
  q[k++] = '\'';
  size_t room = errlen - 1 - *used;
  size_t w = k < room ? k : room;
  memcpy(err + *used, q, w);
  *used += w;
  err[*used] = '\0';
}

int hs_otlp_parse_headers(const char *s, hs_otlp_headers *h, char *err,
                          size_t errlen) {
  size_t eused = 0;
  int bad = 0;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (s == NULL)
    return HOTSPAN_OK;
  const char *p = s;
  while (*p != '\0') {
    const char *end = strchr(p, ',');
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    const char *entry = p;
    size_t en = n;
    p += n + (end != NULL);
    trim(&entry, &en);
    if (en == 0)
      continue;
    const char *eq = memchr(entry, '=', en);
    const char *k = entry;
    size_t kn = eq != NULL ? (size_t)(eq - entry) : 0;
    trim(&k, &kn);
    int ok = eq != NULL && kn > 0;
    for (size_t i = 0; ok && i < kn; i++)
      ok = tchar((unsigned char)k[i]);
    char *line = NULL;
    if (ok) {
      const char *v = eq + 1;
      size_t vn = en - (size_t)(v - entry);
      trim(&v, &vn);
      line = malloc(kn + 2 + vn + 1);
      if (line == NULL)
        return HOTSPAN_ENOMEM;
      memcpy(line, k, kn);
      line[kn] = ':';
      line[kn + 1] = ' ';
      if (pct_decode(v, vn, line + kn + 2) != 0) {
        free(line);
        line = NULL;
        ok = 0;
      }
    }
    if (ok) {
      /* Trim what decoding may have produced (e.g. "%20x%20"). */
      char *val = line + kn + 2;
      size_t vl = strlen(val);
      while (vl > 0 && is_ws(val[vl - 1]))
        val[--vl] = '\0';
      size_t lead = 0;
      while (is_ws(val[lead]))
        lead++;
      memmove(val, val + lead, vl - lead + 1);
      size_t i;
      for (i = 0; i < h->n; i++)
        if (strncasecmp(h->lines[i], line, kn) == 0 && h->lines[i][kn] == ':')
          break;
      if (i < h->n) {
        free(h->lines[i]);
        h->lines[i] = line;
      } else if (h->n < HS_OTLP_MAX_HEADERS) {
        h->lines[h->n++] = line;
        h->lines[h->n] = NULL;
      } else {
        free(line);
        ok = 0;
      }
    }
    if (!ok) {
      bad++;
      err_append(err, errlen, &eused, entry, en);
    }
  }
  return bad ? HOTSPAN_ECONFIG : HOTSPAN_OK;
}

void hs_otlp_headers_free(hs_otlp_headers *h) {
  if (h == NULL)
    return;
  for (size_t i = 0; i < h->n; i++)
    free(h->lines[i]);
  h->n = 0;
  h->lines[0] = NULL;
}

int hs_otlp_parse_compression(const char *s, int *gzip, char *err,
                              size_t errlen) {
  const char *p = s != NULL ? s : "";
  size_t n = strlen(p);
  trim(&p, &n);
  if (n == 4 && strncasecmp(p, "gzip", 4) == 0) {
    *gzip = 1;
    return HOTSPAN_OK;
  }
  if (n == 4 && strncasecmp(p, "none", 4) == 0) {
    *gzip = 0;
    return HOTSPAN_OK;
  }
  snprintf(err, errlen, "compression '%.32s' is not gzip or none", p);
  return HOTSPAN_ECONFIG;
}

int hs_otlp_parse_timeout(const char *s, int *ms, char *err, size_t errlen) {
  const char *p = s != NULL ? s : "";
  size_t n = strlen(p);
  trim(&p, &n);
  uint64_t v = 0;
  int ok = n > 0 && n <= 7;
  for (size_t i = 0; ok && i < n; i++) {
    ok = p[i] >= '0' && p[i] <= '9';
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  if (!ok || v == 0 || v > 3600000) {
    snprintf(err, errlen,
             "timeout '%.32s' is not a number of milliseconds in 1..3600000",
             s != NULL ? s : "");
    return HOTSPAN_ECONFIG;
  }
  *ms = (int)v;
  return HOTSPAN_OK;
}

int hs_otlp_config_from_env(hs_otlp_config *c) {
  char err[512];
  memset(c, 0, sizeof *c);
  c->timeout_ms = HS_OTLP_DEFAULT_TIMEOUT_MS;
  if (hs_otlp_resolve_endpoint(hs_env_get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                               hs_env_get("OTEL_EXPORTER_OTLP_ENDPOINT"),
                               c->endpoint, sizeof c->endpoint, err,
                               sizeof err) != HOTSPAN_OK) {
    hs_log(HS_LOG_WARN, "otlp: %s; using %s", err, HS_OTLP_DEFAULT_ENDPOINT);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", HS_OTLP_DEFAULT_ENDPOINT);
  }
  static const char *const hvars[] = {"OTEL_EXPORTER_OTLP_HEADERS",
                                      "OTEL_EXPORTER_OTLP_TRACES_HEADERS"};
  for (size_t i = 0; i < 2; i++) {
    int rc = hs_otlp_parse_headers(hs_env_get(hvars[i]), &c->headers, err,
                                   sizeof err);
    if (rc == HOTSPAN_ENOMEM) {
      hs_otlp_config_free(c);
      return rc;
    }
    if (rc != HOTSPAN_OK)
      hs_log(HS_LOG_WARN, "otlp: %s: %s (left out)", hvars[i], err);
  }
  static const char *const cvars[] = {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                                      "OTEL_EXPORTER_OTLP_COMPRESSION", NULL};
  const char *which = NULL;
  const char *v = hs_env_first(cvars, &which);
  if (v != NULL &&
      hs_otlp_parse_compression(v, &c->gzip, err, sizeof err) != HOTSPAN_OK)
    hs_log(HS_LOG_WARN, "otlp: %s: %s; using none", which, err);
  static const char *const tvars[] = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                                      "OTEL_EXPORTER_OTLP_TIMEOUT", NULL};
  v = hs_env_first(tvars, &which);
  if (v != NULL &&
      hs_otlp_parse_timeout(v, &c->timeout_ms, err, sizeof err) != HOTSPAN_OK)
    hs_log(HS_LOG_WARN, "otlp: %s: %s; using %d", which, err,
           HS_OTLP_DEFAULT_TIMEOUT_MS);
  return HOTSPAN_OK;
}

void hs_otlp_config_free(hs_otlp_config *c) {
  if (c != NULL)
    hs_otlp_headers_free(&c->headers);
}
