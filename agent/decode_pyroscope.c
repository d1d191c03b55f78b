/* Pyroscope ingest: POST /ingest?name=<app>.<type>{k=v,...}&from=&until=
 * &format=pprof. The app name gives the batch's service (a "service_name"
 * label wins), labels env and version the rest; the body is pprof, raw or
 * in the "profile" part of a multipart form. */
#include <stdlib.h>
#include <string.h>

#include "agent/decode.h"
#include "agent/multipart.h"
#include "common/hex.h"

/* Percent-decodes s[0..n) ('+' is a space in form-encoded queries) into
 * the arena; NULL on a bad escape (*bad set) or out of memory. */
static char *pct_decode(hs_agent_arena *a, const char *s, size_t n, int *bad) {
  char *tmp = malloc(n + 1);
  if (!tmp)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      int hi = i + 1 < n ? hs_hexval((unsigned char)s[i + 1]) : -1;
      int lo = i + 2 < n ? hs_hexval((unsigned char)s[i + 2]) : -1;
      int h = hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
      if (h < 0) {
        free(tmp);
        *bad = 1;
        return NULL;
      }
      tmp[o++] = (char)h;
      i += 2;
    } else {
      tmp[o++] = s[i] == '+' ? ' ' : s[i];
    }
  }
  char *r = hs_agent_arena_utf8(a, tmp, o);
  free(tmp);
  return r;
}

typedef struct query {
  const char *name, *from, *until, *format;
} query;

static int parse_query(const char *q, hs_agent_arena *a, query *out, char *err,
                       size_t errlen) {
  memset(out, 0, sizeof(*out));
  size_t n = q ? strlen(q) : 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && q[j] != '&')
      j++;
    const char *eq = memchr(q + i, '=', j - i);
    size_t kl = eq ? (size_t)(eq - (q + i)) : j - i;
    const char **dst = NULL;
    if (kl == 4 && !memcmp(q + i, "name", 4))
      dst = &out->name;
    else if (kl == 4 && !memcmp(q + i, "from", 4))
      dst = &out->from;
    else if (kl == 5 && !memcmp(q + i, "until", 5))
      dst = &out->until;
    else if (kl == 6 && !memcmp(q + i, "format", 6))
      dst = &out->format;
    if (dst) {
      int bad = 0;
      const char *v = eq ? eq + 1 : q + j;
      *dst = pct_decode(a, v, (size_t)(q + j - v), &bad);
      if (!*dst)
        return bad ? hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                                   "ingest: bad percent escape in the query")
                   : hs_agent_fail(err, errlen,
                                   a->failed ? a->failed : HS_AGENT_ENOMEM,
                                   "ingest: out of memory");
    }
    i = j + 1;
  }
  return HS_AGENT_OK;
}

static int parse_secs(const char *s, int64_t *ns) {
  if (!s || !*s)
    return -1;
  int64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > (INT64_MAX / 1000000000 - 9) / 10)
      return -1;
    v = v * 10 + (*p - '0');
  }
  *ns = v * 1000000000;
  return 0;
}

/* name = app[.type]{k=v,k=v}: service is the app without its last
 * ".suffix" when a label block or suffix exists. */
static int parse_name(const char *name, hs_agent_decoded *d, char *err,
                      size_t errlen) {
  hs_agent_arena *a = &d->arena;
  const char *brace = strchr(name, '{');
  size_t applen = brace ? (size_t)(brace - name) : strlen(name);
  if (applen == 0)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "ingest: empty application name");
  const char *dot = NULL;
  for (size_t i = 0; i < applen; i++)
    if (name[i] == '.')
      dot = name + i;
  size_t svclen = dot && dot > name ? (size_t)(dot - name) : applen;
  const char *service = hs_agent_arena_utf8(a, name, svclen);
  if (!service)
    return hs_agent_fail(err, errlen, a->failed, "ingest: out of memory");
  d->batch.service = service;
  if (!brace)
    return HS_AGENT_OK;
  const char *close = strchr(brace, '}');
  if (!close || close[1] != 0)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "ingest: malformed label set in name");
  const char *p = brace + 1;
  while (p < close) {
    const char *comma = memchr(p, ',', (size_t)(close - p));
    const char *e = comma ? comma : close;
    const char *eq = memchr(p, '=', (size_t)(e - p));
    if (!eq || eq == p)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "ingest: malformed label in name");
    size_t kl = (size_t)(eq - p), vl = (size_t)(e - eq - 1);
    const char **dst = NULL;
    if (kl == 3 && !memcmp(p, "env", 3))
      dst = &d->batch.env;
    else if (kl == 7 && !memcmp(p, "version", 7))
      dst = &d->batch.version;
    else if (kl == 12 && !memcmp(p, "service_name", 12))
      dst = &d->batch.service;
    if (dst) {
      *dst = hs_agent_arena_utf8(a, eq + 1, vl);
      if (!*dst)
        return hs_agent_fail(err, errlen, a->failed, "ingest: out of memory");
    }
    p = e + 1;
  }
  return HS_AGENT_OK;
}

int hs_agent_decode_pyroscope(const char *q, const char *content_type,
                              const uint8_t *data, size_t len,
                              const hs_agent_limits *lim, hs_agent_decoded *d,
                              char *err, size_t errlen) {
  query qu;
  int rc = parse_query(q, &d->arena, &qu, err, errlen);
  if (rc)
    return rc;
  if (!qu.name)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "ingest: missing \"name\" query parameter");
  if (qu.format && strcmp(qu.format, "pprof") != 0)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "ingest: format \"%.32s\" is not supported (only "
                         "pprof)",
                         qu.format);
  if ((rc = parse_name(qu.name, d, err, errlen)))
    return rc;
  int64_t from = 0, until = 0;
  if (qu.from && parse_secs(qu.from, &from))
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "ingest: \"from\" must be Unix seconds");
  if (qu.until && parse_secs(qu.until, &until))
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "ingest: \"until\" must be Unix seconds");
  if (from && until && until < from)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "ingest: \"until\" is before \"from\"");
  d->batch.profile_start_ns = from;
  d->batch.profile_end_ns = until;
  const uint8_t *body = data;
  size_t blen = len;
  if (hs_agent_is_multipart(content_type)) {
    hs_agent_part *parts;
    size_t nparts;
    rc = hs_agent_multipart_parse(content_type, data, len, &d->arena, &parts,
                                  &nparts, err, errlen);
    if (rc)
      return rc;
    const hs_agent_part *p = hs_agent_part_find(parts, nparts, "profile");
    if (!p)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "ingest: multipart body has no \"profile\" part");
    body = p->data;
    blen = p->len;
  }
  if (blen == 0)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL, "ingest: empty profile");
  return hs_agent_decode_pprof(body, blen, lim, d, err, errlen);
}
