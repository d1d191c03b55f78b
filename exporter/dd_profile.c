#include "exporter/dd_profile.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/random.h"
#include "hotspan/error.h"

size_t hs_rfc3339(uint64_t unix_ns, char *out, size_t cap) {
  time_t secs = (time_t)(unix_ns / 1000000000u);
  unsigned micros = (unsigned)((unix_ns % 1000000000u) / 1000u);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL)
    return 0;
  int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, micros);
  if (n < 0 || (size_t)n >= cap) {
    if (cap > 0)
      out[0] = '\0';
    return 0;
  }
  return (size_t)n;
}

/* Bytes of s (at most max) that end on a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t n, size_t max) {
  if (n <= max)
    return n;
  size_t k = max;
  while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
    k--;
  return k;
}

int hs_dd_tag_append(hs_buf *b, const char *key, const char *value) {
  if (key == NULL || value == NULL || *key == '\0' || *value == '\0')
    return 0;
  char tag[HS_DD_TAG_MAX + 1];
  size_t kl = strlen(key), vl = strlen(value);
  size_t n = 0;
  size_t kcut = utf8_cut(key, kl, HS_DD_TAG_MAX - 2);
  memcpy(tag, key, kcut);
  n = kcut;
  tag[n++] = ':';
  size_t vcut = utf8_cut(value, vl, HS_DD_TAG_MAX - n);
  memcpy(tag + n, value, vcut);
  n += vcut;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)tag[i];
    if (c == ',' || c <= 0x20 || c == 0x7f)
      tag[i] = '_';
  }
  if (b->len > 0)
    hs_buf_putc(b, ',');
  hs_buf_append(b, tag, n);
  return 1;
}

void hs_dd_tags_profiler(hs_buf *b, const hs_dd_profile_meta *m) {
  /* Written to a scratch buffer first so that the comma logic of
   * hs_dd_tag_append sees only this list. */
  hs_buf t;
  hs_buf_init(&t, 0);
  hs_dd_tag_append(&t, "service", m->service);
  hs_dd_tag_append(&t, "env", m->env);
  hs_dd_tag_append(&t, "version", m->version);
  hs_dd_tag_append(&t, "host", m->host);
  hs_dd_tag_append(&t, "runtime-id", m->runtime_id);
  hs_dd_tag_append(&t, "profiler_version", m->profiler_version);
  hs_dd_tag_append(&t, "language", "native");
  for (size_t i = 0; i < m->ntags && m->tags != NULL; i++)
    hs_dd_tag_append(&t, m->tags[i].key, m->tags[i].value);
  if (hs_buf_failed(&t))
    b->failed = 1;
  else
    hs_buf_append(b, t.data, t.len);
  hs_buf_free(&t);
}

void hs_dd_event_json(hs_buf *b, const hs_dd_profile_meta *m, uint64_t start_ns,
                      uint64_t end_ns, const hs_dd_attachment *att, size_t natt,
                      const hs_dd_endpoint_count *ec, size_t nec) {
  char ts[40];
  hs_buf_puts(b, "{\"attachments\":[");
  for (size_t i = 0; i < natt; i++) {
    if (i > 0)
      hs_buf_putc(b, ',');
    hs_json_str(b, att[i].name);
  }
  hs_buf_puts(b, "],\"tags_profiler\":");
  hs_buf tags;
  hs_buf_init(&tags, 0);
  hs_dd_tags_profiler(&tags, m);
  if (hs_buf_failed(&tags))
    b->failed = 1;
  hs_json_strn(b, tags.data ? tags.data : "", tags.len);
  hs_buf_free(&tags);
  hs_rfc3339(start_ns, ts, sizeof ts);
  hs_buf_puts(b, ",\"start\":");
  hs_json_str(b, ts);
  hs_rfc3339(end_ns, ts, sizeof ts);
  hs_buf_puts(b, ",\"end\":");
  hs_json_str(b, ts);
  hs_buf_puts(b, ",\"family\":\"" HS_DD_PROFILE_FAMILY "\",\"version\":\"4\"");
  hs_buf_puts(b, ",\"endpoint_counts\":{");
  for (size_t i = 0; i < nec; i++) {
    if (i > 0)
      hs_buf_putc(b, ',');
    hs_json_str(b, ec[i].endpoint ? ec[i].endpoint : "");
    hs_buf_putc(b, ':');
    hs_json_u64(b, ec[i].count);
  }
  hs_buf_puts(b, "}}");
}

/* RFC 2046 bchars without space (a boundary ending in space is a trap). */
static int boundary_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 70)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
             (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=?", c) != NULL;
    if (!ok)
      return 0;
  }
  return 1;
}

static void random_boundary(char out[41]) {
  static const char hx[] = "0123456789abcdef";
  uint8_t r[16];
  hs_random_seed(r, sizeof r);
  memcpy(out, "hotspan-", 8);
  for (size_t i = 0; i < sizeof r; i++) {
    out[8 + 2 * i] = hx[r[i] >> 4];
    out[9 + 2 * i] = hx[r[i] & 15];
  }
  out[40] = '\0';
}

static int contains(const void *hay, size_t n, const char *needle) {
  return hay != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

static void part_head(hs_buf *b, const char *boundary, const char *name,
                      const char *filename, const char *ctype) {
  hs_buf_puts(b, "--");
  hs_buf_puts(b, boundary);
  hs_buf_puts(b, "\r\nContent-Disposition: form-data; name=\"");
  hs_buf_puts(b, name);
  hs_buf_puts(b, "\"; filename=\"");
  hs_buf_puts(b, filename);
  hs_buf_puts(b, "\"\r\nContent-Type: ");
  hs_buf_puts(b, ctype);
  hs_buf_puts(b, "\r\n\r\n");
}

/* Attachment names go inside quoted header parameters: keep them plain. */
static int name_ok(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) > 128)
    return 0;
  for (; *s; s++)
    if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ||
        (unsigned char)*s >= 0x7f)
      return 0;
  return 1;
}

int hs_dd_profile_build(const hs_dd_profile_meta *m, uint64_t start_ns,
                        uint64_t end_ns, const hs_dd_attachment *att,
                        size_t natt, const hs_dd_endpoint_count *ec, size_t nec,
                        const char *boundary, hs_buf *body, char *content_type,
                        size_t cap) {
  if (m == NULL || att == NULL || natt == 0 || body == NULL ||
      content_type == NULL || cap < 96 || (nec > 0 && ec == NULL))
    return HOTSPAN_EINVAL;
  for (size_t i = 0; i < natt; i++)
    if (!name_ok(att[i].name) || (att[i].data == NULL && att[i].len > 0))
      return HOTSPAN_EINVAL;
  if (boundary != NULL && !boundary_ok(boundary))
    return HOTSPAN_EINVAL;

  hs_buf event;
  hs_buf_init(&event, 0);
  hs_dd_event_json(&event, m, start_ns, end_ns, att, natt, ec, nec);
  if (hs_buf_failed(&event)) {
    hs_buf_free(&event);
    return HOTSPAN_ENOMEM;
  }

  char rnd[41];
  char delim[80];
  const char *bnd = boundary;
  for (int attempt = 0;; attempt++) {
    if (boundary == NULL) {
      random_boundary(rnd);
      bnd = rnd;
    }
    snprintf(delim, sizeof delim, "--%s", bnd);
    int clash = contains(event.data, event.len, delim);
    for (size_t i = 0; i < natt && !clash; i++)
      clash = contains(att[i].data, att[i].len, delim);
    if (!clash)
      break;
    if (boundary != NULL || attempt >= 8) {
      hs_buf_free(&event);
      return HOTSPAN_EINVAL;
    }
  }

  /* Whole size known up front: refuse over the cap before writing. */
  size_t need = event.len + 256 + 2 * strlen(bnd);
  for (size_t i = 0; i < natt; i++)
    need += att[i].len + 2 * strlen(att[i].name) + 128 + strlen(bnd);
  if (need > body->max || body->len > body->max - need) {
    hs_buf_free(&event);
    return HOTSPAN_ETOOBIG;
  }
  size_t len0 = body->len;
  part_head(body, bnd, "event", "event.json", "application/json");
  hs_buf_append(body, event.data, event.len);
  hs_buf_puts(body, "\r\n");
  hs_buf_free(&event);
  for (size_t i = 0; i < natt; i++) {
    part_head(body, bnd, att[i].name, att[i].name, "application/octet-stream");
    if (att[i].len > 0)
      hs_buf_append(body, att[i].data, att[i].len);
    hs_buf_puts(body, "\r\n");
  }
  hs_buf_puts(body, "--");
  hs_buf_puts(body, bnd);
  hs_buf_puts(body, "--\r\n");
  if (hs_buf_failed(body)) {
    body->len = len0;
    return HOTSPAN_ENOMEM;
  }
  snprintf(content_type, cap, "multipart/form-data; boundary=%s", bnd);
  return HOTSPAN_OK;
}
