/* Datadog profile uploads: multipart/form-data with an "event" part
 * (event.json) naming the attachments, each a pprof profile, usually
 * gzip- or zstd-compressed (told apart by their magic bytes). */
#include <string.h>

#include "agent/decode.h"
#include "agent/multipart.h"
#include "common/json_read.h"

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t n, size_t at, int k, unsigned *out) {
  if (at + (size_t)k > n)
    return -1;
  unsigned v = 0;
  for (int i = 0; i < k; i++) {
    char ch = s[at + (size_t)i];
    if (ch < '0' || ch > '9')
      return -1;
    v = v * 10 + (unsigned)(ch - '0');
  }
  *out = v;
  return 0;
}

int hs_agent_parse_rfc3339(const char *s, size_t n, int64_t *ns) {
  unsigned y, mo, d, h, mi, se;
  if (digits(s, n, 0, 4, &y) || n < 19 || s[4] != '-' ||
      digits(s, n, 5, 2, &mo) || s[7] != '-' || digits(s, n, 8, 2, &d) ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &mi) ||
      s[16] != ':' || digits(s, n, 17, 2, &se))
    return -1;
  static const unsigned mdays[] = {31, 29, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
      se > 60)
    return -1;
  if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
    return -1;
  size_t i = 19;
  int64_t frac = 0;
  if (i < n && s[i] == '.') {
    i++;
    int k = 0;
    int64_t scale = 100000000;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (k < 9)
        frac += (s[i] - '0') * scale;
      scale /= 10;
      k++;
      i++;
    }
    if (k == 0)
      return -1;
  }
  int64_t off = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < n && (s[i] == '+' || s[i] == '-')) {
    unsigned oh, om;
    if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
        digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
      return -1;
    off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return -1;
  }
  if (i != n)
    return -1;
  int64_t secs =
      days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
  /* Unix nanoseconds in 64 bits cover the years 1678 to 2262. */
  if (__builtin_mul_overflow(secs, (int64_t)1000000000, &secs) ||
      __builtin_add_overflow(secs, frac, ns))
    return -1;
  return 0;
}

/* Copies tag values from "k:v,k:v" for service, env and version. */
static int read_tags(const char *tags, size_t n, hs_agent_decoded *d) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && tags[j] != ',')
      j++;
    const char *t = tags + i;
    size_t tl = j - i;
    const char *colon = memchr(t, ':', tl);
    if (colon) {
      size_t kl = (size_t)(colon - t);
      const char **dst = NULL;
      if (kl == 7 && !memcmp(t, "service", 7))
        dst = &d->batch.service;
      else if (kl == 3 && !memcmp(t, "env", 3))
        dst = &d->batch.env;
      else if (kl == 7 && !memcmp(t, "version", 7))
        dst = &d->batch.version;
      if (dst && !*dst && tl > kl + 1) {
        *dst = hs_agent_arena_utf8(&d->arena, colon + 1, tl - kl - 1);
        if (!*dst)
          return -1;
      }
    }
    i = j + 1;
  }
  return 0;
}

static int get_time(const hs_json_value *ev, const char *key, int64_t *ns,
                    char *err, size_t errlen) {
  const hs_json_value *v = hs_json_get(ev, key);
  if (!v)
    return HS_AGENT_OK;
  if (v->type != HS_JSON_STRING ||
      hs_agent_parse_rfc3339(v->u.string.ptr, v->u.string.len, ns))
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "profile event: \"%s\" must be an RFC 3339 time", key);
  return HS_AGENT_OK;
}

static int decode_event(const hs_agent_part *parts, size_t nparts,
                        const hs_json_value *ev, const hs_agent_limits *lim,
                        hs_agent_decoded *d, char *err, size_t errlen) {
  if (ev->type != HS_JSON_OBJECT)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "profile event: must be a JSON object");
  int64_t start = 0, end = 0;
  int rc;
  if ((rc = get_time(ev, "start", &start, err, errlen)) ||
      (rc = get_time(ev, "end", &end, err, errlen)))
    return rc;
  if (start && end && end < start)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "profile event: \"end\" is before \"start\"");
  d->batch.profile_start_ns = start;
  d->batch.profile_end_ns = end;
  const hs_json_value *tags = hs_json_get(ev, "tags_profiler");
  if (tags) {
    if (tags->type != HS_JSON_STRING)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "profile event: \"tags_profiler\" must be a "
                           "string");
    if (read_tags(tags->u.string.ptr, tags->u.string.len, d))
      return hs_agent_fail(err, errlen, d->arena.failed,
                           "profile event: out of memory");
  }
  const hs_json_value *att = hs_json_get(ev, "attachments");
  if (!att || att->type != HS_JSON_ARRAY)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "profile event: \"attachments\" must be an array");
  /* Each part is decoded once however often the list names it: a list
   * repeating one name must not multiply the work (the cost of an upload
   * stays linear in its size). */
  unsigned char *seen = hs_agent_arena_array(&d->arena, nparts ? nparts : 1, 1);
  if (!seen)
    return hs_agent_fail(err, errlen, d->arena.failed,
                         "profile event: out of memory");
  for (size_t i = 0; i < att->u.array.len; i++) {
    const hs_json_value *a = &att->u.array.items[i];
    if (a->type != HS_JSON_STRING)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "profile event: attachment %zu is not a string", i);
    const char *name = a->u.string.ptr;
    const hs_agent_part *p = hs_agent_part_find(parts, nparts, name);
    for (size_t k = 0; !p && k < nparts; k++)
      if (parts[k].filename && !strcmp(parts[k].filename, name))
        p = &parts[k];
    if (!p)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "profile upload: attachment \"%.64s\" has no part",
                           name);
    size_t at = (size_t)(p - parts);
    if (seen[at])
      continue;
    seen[at] = 1;
    char sub[200];
    rc = hs_agent_decode_pprof(p->data, p->len, lim, d, sub, sizeof(sub));
    if (rc)
      return hs_agent_fail(err, errlen, rc, "attachment \"%.64s\": %s", name,
                           sub);
  }
  return HS_AGENT_OK;
}

int hs_agent_decode_dd_profile(const char *content_type, const uint8_t *data,
                               size_t len, const hs_agent_limits *lim,
                               hs_agent_decoded *d, char *err, size_t errlen) {
  hs_agent_part *parts;
  size_t nparts;
  int rc = hs_agent_multipart_parse(content_type, data, len, &d->arena, &parts,
                                    &nparts, err, errlen);
  if (rc)
    return rc;
  const hs_agent_part *event = hs_agent_part_find(parts, nparts, "event");
  if (!event)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "profile upload: no \"event\" part");
  hs_json_doc *doc;
  char jerr[160];
  if (hs_json_parse((const char *)event->data, event->len, NULL, &doc, jerr,
                    sizeof(jerr), NULL))
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL, "profile event: %s",
                         jerr);
  rc = decode_event(parts, nparts, hs_json_root(doc), lim, d, err, errlen);
  hs_json_free(doc);
  return rc;
}
