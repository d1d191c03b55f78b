/* Datadog propagation: x-datadog-trace-id / -parent-id (decimal, low 64
 * bits), x-datadog-sampling-priority, x-datadog-origin and x-datadog-tags
 * (trace-level "_dd.p.*" tags; _dd.p.tid carries the high 64 trace-id
 * bits). Also the propagated-tag helpers the W3C codec shares. */
#include <string.h>

#include "common/log.h"
#include "tracer/prop_internal.h"

#define TAG_PREFIX "_dd.p."
#define TAG_PREFIX_LEN 6
#define TID_KEY "_dd.p.tid"
#define TID_KEY_LEN 9

/* ------------------------------------------------------------------ */
/* Propagated-tag helpers                                              */
/* ------------------------------------------------------------------ */

int hs_prop_tag_key_ok(const char *k, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)k[i];
    if (c < 0x21 || c > 0x7e || c == ',' || c == '=')
      return 0;
  }
  return 1;
}

int hs_prop_tag_value_ok(const char *v, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c > 0x7e || c == ',')
      return 0;
  }
  return 1;
}

int hs_prop_tags_append(char *tags, size_t cap, const char *k, size_t kn,
                        const char *v, size_t vn) {
  size_t len = hs_prop_fieldlen(tags, cap);
  if (len >= cap)
    return -1;
  size_t need = (len > 0 ? 1 : 0) + kn + 1 + vn;
  if (len + need + 1 > cap)
    return -1;
  char *p = tags + len;
  if (len > 0)
    *p++ = ',';
  memcpy(p, k, kn);
  p += kn;
  *p++ = '=';
  memcpy(p, v, vn);
  p += vn;
  *p = '\0';
  return 0;
}

void hs_prop_tags_remove(char *tags, const char *k) {
  size_t kn = strlen(k);
  char *r = tags, *w = tags;
  while (*r != '\0') {
    char *end = strchr(r, ',');
    size_t mn = end != NULL ? (size_t)(end - r) : strlen(r);
    int drop = mn > kn && memcmp(r, k, kn) == 0 && r[kn] == '=';
    if (!drop) {
      if (w != tags)
        *w++ = ',';
      memmove(w, r, mn);
      w += mn;
    }
    r += mn;
    if (*r == ',')
      r++;
  }
  *w = '\0';
}

/* ------------------------------------------------------------------ */
/* Extract                                                             */
/* ------------------------------------------------------------------ */

/* Decimal id header: exactly one, digits only, fits 64 bits, not zero. */
static int parse_id(const hs_prop_slot *s, uint64_t *out) {
  if (s->count != 1 || s->len > HS_PROP_SLOT_CAP)
    return -1;
  if (hs_prop_parse_u64(s->v, s->len, out) != 0 || *out == 0)
    return -1;
  return 0;
}

/* x-datadog-tags → ctx->propagated_tags (only _dd.p.* keys, without tid)
 * and ctx->trace_id_high (from a valid _dd.p.tid). A member that is not
 * k=v drops every tag (the header cannot be trusted), as Datadog's tracers
 * do; an invalid tid is ignored alone. */
static void parse_tags(const char *v, size_t n, hotspan_context *ctx) {
  char *out = ctx->propagated_tags;
  const size_t cap = sizeof ctx->propagated_tags - 1; /* room for the NUL */
  size_t len = 0, i = 0;
  uint64_t high = 0;
  while (i < n) {
    const char *m = v + i;
    const char *comma = memchr(m, ',', n - i);
    size_t mn = comma != NULL ? (size_t)(comma - m) : n - i;
    i += mn + 1;
    /* Spaces around members and values carry nothing and would not survive
     * the next hop (HTTP trims the header's ends): they are dropped. */
    hs_prop_trim(&m, &mn);
    if (mn == 0)
      continue; /* tolerate ",," and a trailing comma */
    const char *eq = memchr(m, '=', mn);
    if (eq == NULL)
      goto malformed;
    size_t kn = (size_t)(eq - m), vn = mn - kn - 1;
    const char *val = eq + 1;
    hs_prop_trim(&val, &vn);
    if (!hs_prop_tag_key_ok(m, kn) || !hs_prop_tag_value_ok(val, vn))
      goto malformed;
    if (kn <= TAG_PREFIX_LEN || memcmp(m, TAG_PREFIX, TAG_PREFIX_LEN) != 0)
      continue; /* not a propagated tag */
    if (kn == TID_KEY_LEN && memcmp(m, TID_KEY, TID_KEY_LEN) == 0) {
      uint64_t t;
      if (vn == 16 && hs_hex_parse_u64(val, 16, 1, &t) == 0)
        high = t;
      else
        hs_log(HS_LOG_DEBUG, "propagation: ignoring invalid _dd.p.tid");
      continue;
    }
    if (len + (len > 0) + kn + 1 + vn > cap) {
      /* Only an exactly 512-byte header can get here (the NUL does not
       * fit): drop the field, keep the context. */
      hs_log(HS_LOG_DEBUG, "propagation: x-datadog-tags too long, dropped");
      len = 0;
      break;
    }
    if (len > 0)
      out[len++] = ',';
    memcpy(out + len, m, kn + 1);
    len += kn + 1;
    memcpy(out + len, val, vn);
    len += vn;
  }
  out[len] = '\0';
  ctx->trace_id_high = high;
  return;
malformed:
  out[0] = '\0';
  hs_log(HS_LOG_DEBUG, "propagation: malformed x-datadog-tags, dropped");
}

int hs_prop_dd_extract(const hs_prop_headers *h, hotspan_context *ctx) {
  const hs_prop_slot *tid = &h->slot[HS_H_DD_TRACE_ID];
  const hs_prop_slot *pid = &h->slot[HS_H_DD_PARENT_ID];
  if (tid->count == 0 && pid->count == 0)
    return HS_PROP_ABSENT;
  uint64_t lo, span;
  if (parse_id(tid, &lo) != 0 || parse_id(pid, &span) != 0)
    return HS_PROP_BAD;
  ctx->trace_id_low = lo;
  ctx->span_id = span;

  /* Optional fields: a bad one is dropped alone. */
  const hs_prop_slot *pr = &h->slot[HS_H_DD_PRIORITY];
  int prio;
  if (pr->count == 1 && pr->len <= HS_PROP_SLOT_CAP &&
      hs_prop_parse_int(pr->v, pr->len, &prio) == 0)
    ctx->sampling_priority = prio;
  ctx->trace_flags = (ctx->sampling_priority != HOTSPAN_PRIORITY_UNSET &&
                      ctx->sampling_priority > 0)
                         ? 1
                         : 0;

  const hs_prop_slot *o = &h->slot[HS_H_DD_ORIGIN];
  if (o->count == 1 && o->len < HOTSPAN_ORIGIN_MAX &&
      hs_prop_tag_value_ok(o->v, o->len)) {
    memcpy(ctx->origin, o->v, o->len);
    ctx->origin[o->len] = '\0';
  }

  if (h->tags.count == 1 && h->tags.len <= HOTSPAN_PROPAGATED_TAGS_MAX)
    parse_tags(h->tags.v, h->tags.len, ctx);
  else if (h->tags.count != 0)
    hs_log(HS_LOG_DEBUG, "propagation: x-datadog-tags over 512 bytes or "
                         "repeated, ignored");
  return HS_PROP_OK;
}

/* ------------------------------------------------------------------ */
/* Inject                                                              */
/* ------------------------------------------------------------------ */

/* Datadog's limit for x-datadog-tags; a longer header is not sent. */
#define DD_TAGS_MAX 512

int hs_prop_dd_inject(const hotspan_context *ctx,
                      const hotspan_carrier_writer *w, void *carrier) {
  char num[24];
  hs_fmt_u64(num, ctx->trace_id_low);
  if (w->set(carrier, "x-datadog-trace-id", num) != 0)
    return HOTSPAN_EIO;
  hs_fmt_u64(num, ctx->span_id);
  if (w->set(carrier, "x-datadog-parent-id", num) != 0)
    return HOTSPAN_EIO;
  if (ctx->sampling_priority != HOTSPAN_PRIORITY_UNSET) {
    hs_fmt_int(num, ctx->sampling_priority);
    if (w->set(carrier, "x-datadog-sampling-priority", num) != 0)
      return HOTSPAN_EIO;
  }

  size_t on = hs_prop_fieldlen(ctx->origin, sizeof ctx->origin);
  /* An origin that is not printable ASCII would corrupt the carrier
   * (header injection); it is not sent. */
  if (on > 0 && on < sizeof ctx->origin &&
      hs_prop_tag_value_ok(ctx->origin, on)) {
    if (w->set(carrier, "x-datadog-origin", ctx->origin) != 0)
      return HOTSPAN_EIO;
  }

  /* Tags: room for the limit plus one member so that "too long" is
   * detected rather than silently cut. */
  char tags[DD_TAGS_MAX + 64];
  size_t tl = 0, pn;
  int too_long = 0;
  pn = hs_prop_fieldlen(ctx->propagated_tags, sizeof ctx->propagated_tags);
  if (pn >= sizeof ctx->propagated_tags)
    pn = 0;
  const char *p = ctx->propagated_tags;
  size_t i = 0;
  while (i < pn && !too_long) {
    const char *m = p + i;
    const char *comma = memchr(m, ',', pn - i);
    size_t mn = comma != NULL ? (size_t)(comma - m) : pn - i;
    i += mn + 1;
    const char *eq = mn > 0 ? memchr(m, '=', mn) : NULL;
    if (eq == NULL)
      continue;
    size_t kn = (size_t)(eq - m);
    if (kn <= TAG_PREFIX_LEN || memcmp(m, TAG_PREFIX, TAG_PREFIX_LEN) != 0 ||
        (kn == TID_KEY_LEN && memcmp(m, TID_KEY, TID_KEY_LEN) == 0) ||
        !hs_prop_tag_key_ok(m, kn) ||
        !hs_prop_tag_value_ok(eq + 1, mn - kn - 1))
      continue;
    if (tl + (tl > 0) + mn > DD_TAGS_MAX) {
      too_long = 1;
      break;
    }
    if (tl > 0)
      tags[tl++] = ',';
    memcpy(tags + tl, m, mn);
    tl += mn;
  }
  if (ctx->trace_id_high != 0 && !too_long) {
    size_t need = (tl > 0) + TID_KEY_LEN + 1 + 16;
    if (tl + need > DD_TAGS_MAX) {
      too_long = 1;
    } else {
      if (tl > 0)
        tags[tl++] = ',';
      memcpy(tags + tl, TID_KEY "=", TID_KEY_LEN + 1);
      tl += TID_KEY_LEN + 1;
      hs_hex16(tags + tl, ctx->trace_id_high);
      tl += 16;
    }
  }
  if (too_long) {
    hs_log(HS_LOG_DEBUG,
           "propagation: x-datadog-tags would exceed %d bytes, "
           "not sent",
           DD_TAGS_MAX);
  } else if (tl > 0) {
    tags[tl] = '\0';
    if (w->set(carrier, "x-datadog-tags", tags) != 0)
      return HOTSPAN_EIO;
  }
  return HOTSPAN_OK;
}
