/* W3C Trace Context: traceparent "version-traceid-parentid-flags" and
 * tracestate, with Datadog's "dd" member (s: priority, o: origin, p: last
 * Datadog parent id, t.<key>: propagated tags). */
#include <string.h>

#include "common/hash.h"
#include "common/log.h"
#include "tracer/prop_internal.h"

/* A future-version traceparent longer than this is refused: the spec lets
 * us drop "prohibitively large" headers, and nothing past the 00 fields is
 * used anyway. */
#define TRACEPARENT_FUTURE_MAX 512
#define TRACEPARENT_V00_LEN 55

/* ------------------------------------------------------------------ */
/* traceparent                                                         */
/* ------------------------------------------------------------------ */

int hs_prop_w3c_traceparent(const hs_prop_headers *h, uint64_t *hi,
                            uint64_t *lo, uint64_t *span, uint8_t *flags) {
  const hs_prop_slot *s = &h->slot[HS_H_TRACEPARENT];
  if (s->count == 0)
    return HS_PROP_ABSENT;
  if (s->count > 1)
    return HS_PROP_BAD; /* two parents: neither can be trusted */
  const char *v = s->v;
  size_t n = s->len;
  uint64_t ver, f;
  if (n < TRACEPARENT_V00_LEN || hs_hex_parse_u64(v, 2, 1, &ver) != 0 ||
      v[2] != '-' || ver == 0xff)
    return HS_PROP_BAD;
  if (ver == 0 && n != TRACEPARENT_V00_LEN)
    return HS_PROP_BAD;
  /* Higher versions are additive: the 00 fields must parse and the flags
   * end the value or are followed by '-'. */
  if (ver != 0 && n > TRACEPARENT_V00_LEN &&
      (v[TRACEPARENT_V00_LEN] != '-' || n > TRACEPARENT_FUTURE_MAX))
    return HS_PROP_BAD;
  if (v[35] != '-' || v[52] != '-')
    return HS_PROP_BAD;
  if (hs_hex_parse_u64(v + 3, 16, 1, hi) != 0 ||
      hs_hex_parse_u64(v + 19, 16, 1, lo) != 0 ||
      hs_hex_parse_u64(v + 36, 16, 1, span) != 0 ||
      hs_hex_parse_u64(v + 53, 2, 1, &f) != 0)
    return HS_PROP_BAD;
  /* All-zero ids are invalid per the spec. A trace id whose low 64 bits
   * are zero is valid W3C but cannot be represented in a hotspan_context
   * (trace_id_low 0 means "no context") nor sent as x-datadog-trace-id, so
   * it is refused as well. */
  if (*lo == 0 || *span == 0)
    return HS_PROP_BAD;
  /* Only flag bits of the versions we know are interpreted. */
  *flags = ver == 0 ? (uint8_t)f : (uint8_t)(f & 1);
  return HS_PROP_OK;
}

/* ------------------------------------------------------------------ */
/* tracestate, streamed                                                */
/* ------------------------------------------------------------------ */

void hs_prop_ts_init(hs_prop_tracestate *ts) {
  ts->seen = 0;
  ts->members = 0;
  ts->invalid = 0;
  ts->has_dd = 0;
  ts->full = 0;
  ts->pruned_big = 0;
  ts->dd_len = 0;
  ts->other_len = 0;
  ts->other[0] = '\0';
}

static int key_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '*' || c == '/' || c == '@';
}

/* key = ( lcalpha / DIGIT ) 0*255( keychar ) */
static int ts_key_ok(const char *k, size_t n) {
  if (n == 0 || n > HS_TS_MAX_KEY)
    return 0;
  unsigned char c0 = (unsigned char)k[0];
  if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= '0' && c0 <= '9')))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!key_char((unsigned char)k[i]))
      return 0;
  return 1;
}

/* value = 0*255(chr) nblk-chr; chr = %x20-7E except ',' and '='. */
static int ts_value_ok(const char *v, size_t n) {
  if (n == 0 || n > HS_TS_MAX_VALUE || v[n - 1] == ' ')
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
      return 0;
  }
  return 1;
}

/* Splits a trimmed, non-empty member at its first '=' and validates it. */
static int ts_member_split(const char *m, size_t mn, size_t *kn) {
  const char *eq = memchr(m, '=', mn);
  if (eq == NULL)
    return 0;
  *kn = (size_t)(eq - m);
  return ts_key_ok(m, *kn) && ts_value_ok(eq + 1, mn - *kn - 1);
}

/* W3C truncation order when other vendors' members do not all fit: first
 * drop members over 128 characters, then drop from the end. Streaming
 * equivalent: on the first overflow remove the big members kept so far
 * and refuse later big ones; once a small member does not fit, keep
 * nothing more (what is kept is always a prefix). */
static void ts_prune_big(hs_prop_tracestate *ts) {
  char *r = ts->other, *end = ts->other + ts->other_len, *w = ts->other;
  while (r < end) {
    char *comma = memchr(r, ',', (size_t)(end - r));
    size_t mn = comma != NULL ? (size_t)(comma - r) : (size_t)(end - r);
    if (mn <= HS_TS_BIG_MEMBER) {
      if (w != ts->other)
        *w++ = ',';
      memmove(w, r, mn);
      w += mn;
    }
    r += mn + (comma != NULL);
  }
  ts->other_len = (size_t)(w - ts->other);
  ts->pruned_big = 1;
}

static void ts_keep_other(hs_prop_tracestate *ts, const char *m, size_t mn) {
  const size_t cap = sizeof ts->other - 1; /* room for the NUL */
  if (ts->full || (ts->pruned_big && mn > HS_TS_BIG_MEMBER))
    return;
  if (ts->other_len + (ts->other_len > 0) + mn > cap) {
    if (!ts->pruned_big)
      ts_prune_big(ts);
    if (mn > HS_TS_BIG_MEMBER)
      return;
    if (ts->other_len + (ts->other_len > 0) + mn > cap) {
      ts->full = 1;
      return;
    }
  }
  if (ts->other_len > 0)
    ts->other[ts->other_len++] = ',';
  memcpy(ts->other + ts->other_len, m, mn);
  ts->other_len += mn;
}

static void ts_member(hs_prop_tracestate *ts, const char *m, size_t mn) {
  size_t kn;
  if (++ts->members > HS_TS_MAX_MEMBERS || !ts_member_split(m, mn, &kn)) {
    ts->invalid = 1;
    return;
  }
  /* Keys are unique in a valid list. Hashes, not the keys, are compared
   * because members are only readable during the carrier's callback. */
  uint64_t hk = hs_hash_bytes(m, kn);
  for (uint32_t i = 0; i + 1 < ts->members; i++) {
    if (ts->key_hash[i] == hk) {
      ts->invalid = 1;
      return;
    }
  }
  ts->key_hash[ts->members - 1] = hk;
  if (kn == 2 && m[0] == 'd' && m[1] == 'd') {
    ts->dd_len = mn - 3;
    memcpy(ts->dd_value, m + 3, ts->dd_len);
    ts->has_dd = 1;
  } else {
    ts_keep_other(ts, m, mn);
  }
}

void hs_prop_ts_feed(hs_prop_tracestate *ts, const char *v, size_t n) {
  ts->seen++;
  size_t i = 0;
  while (!ts->invalid) {
    const char *m = v + i;
    const char *comma = memchr(m, ',', n - i);
    size_t mn = comma != NULL ? (size_t)(comma - m) : n - i;
    const char *t = m;
    size_t tn = mn;
    hs_prop_trim(&t, &tn);
    if (tn > 0) /* empty and whitespace-only members are allowed */
      ts_member(ts, t, tn);
    if (comma == NULL)
      break;
    i += mn + 1;
  }
}

void hs_prop_ts_finish(hs_prop_tracestate *ts) {
  if (ts->invalid) {
    hs_log(HS_LOG_DEBUG, "propagation: invalid tracestate, dropped");
    ts->has_dd = 0;
    ts->other_len = 0;
  }
  ts->other[ts->other_len] = '\0';
}

/* ------------------------------------------------------------------ */
/* dd member                                                           */
/* ------------------------------------------------------------------ */

typedef struct dd_member {
  int has_s;
  int s;
} dd_member;

/* Copies n bytes mapping '~' back to '=' (Datadog escapes '=', which a
 * tracestate value cannot hold, as '~'). */
static void unescape(char *dst, const char *src, size_t n) {
  for (size_t i = 0; i < n; i++)
    dst[i] = (char)(src[i] == '~' ? '=' : src[i]);
}

/* Reads the dd member's fields into ctx: with_all = 0 reads only p:
 * (the merge case, where another style's values win). Unknown fields and
 * unusable values are skipped one by one. */
static void parse_dd(const hs_prop_tracestate *ts, hotspan_context *ctx,
                     int with_all, dd_member *out) {
  const char *v = ts->dd_value;
  size_t n = ts->dd_len, i = 0;
  out->has_s = 0;
  while (i < n) {
    const char *f = v + i;
    const char *semi = memchr(f, ';', n - i);
    size_t fn = semi != NULL ? (size_t)(semi - f) : n - i;
    i += fn + 1;
    const char *colon = memchr(f, ':', fn);
    if (colon == NULL)
      continue;
    size_t kn = (size_t)(colon - f), vn = fn - kn - 1;
    const char *fv = colon + 1;
    if (kn == 1 && f[0] == 'p') {
      uint64_t unused;
      if (vn == 16 && hs_hex_parse_u64(fv, 16, 1, &unused) == 0) {
        memcpy(ctx->last_dd_parent_id, fv, 16);
        ctx->last_dd_parent_id[16] = '\0';
      }
      continue;
    }
    if (!with_all)
      continue;
    if (kn == 1 && f[0] == 's') {
      if (hs_prop_parse_int(fv, vn, &out->s) == 0)
        out->has_s = 1;
      continue;
    }
    /* Spaces around a value are dropped: they would not survive a trip
     * through an HTTP header (x-datadog-origin, x-datadog-tags). */
    hs_prop_trim(&fv, &vn);
    if (vn == 0)
      continue;
    if (kn == 1 && f[0] == 'o') {
      if (vn < sizeof ctx->origin) {
        unescape(ctx->origin, fv, vn);
        ctx->origin[vn] = '\0';
      }
    } else if (kn > 2 && f[0] == 't' && f[1] == '.') {
      /* t.<key>:<value> → _dd.p.<key>=<value>; tid lives in traceparent. */
      char key[6 + HS_TS_MAX_VALUE], val[HS_TS_MAX_VALUE];
      size_t tk = kn - 2;
      if (tk == 3 && memcmp(f + 2, "tid", 3) == 0)
        continue;
      memcpy(key, "_dd.p.", 6);
      memcpy(key + 6, f + 2, tk);
      unescape(val, fv, vn);
      if (hs_prop_tag_key_ok(key, 6 + tk) && hs_prop_tag_value_ok(val, vn))
        (void)hs_prop_tags_append(ctx->propagated_tags,
                                  sizeof ctx->propagated_tags, key, 6 + tk, val,
                                  vn);
    }
  }
}

void hs_prop_w3c_merge_tracestate(const hs_prop_headers *h,
                                  hotspan_context *ctx) {
  const hs_prop_tracestate *ts = &h->ts;
  memcpy(ctx->tracestate_other, ts->other, ts->other_len + 1);
  if (ts->has_dd) {
    dd_member d;
    parse_dd(ts, ctx, 0, &d);
  }
}

int hs_prop_w3c_extract(const hs_prop_headers *h, hotspan_context *ctx) {
  uint64_t hi, lo, span;
  uint8_t flags;
  int r = hs_prop_w3c_traceparent(h, &hi, &lo, &span, &flags);
  if (r != HS_PROP_OK)
    return r;
  ctx->trace_id_high = hi;
  ctx->trace_id_low = lo;
  ctx->span_id = span;
  ctx->trace_flags = flags;

  const hs_prop_tracestate *ts = &h->ts;
  memcpy(ctx->tracestate_other, ts->other, ts->other_len + 1);
  dd_member d = {0, 0};
  if (ts->has_dd)
    parse_dd(ts, ctx, 1, &d);

  /* The sampled flag is authoritative: it may have been flipped by a
   * non-Datadog hop after the dd member was written. When it disagrees
   * with s:, follow the flag and fix the decision maker like Datadog's
   * tracers: a forced keep is attributed to the default mechanism (-0), a
   * forced drop has none. */
  int sampled = flags & 1;
  if (!d.has_s) {
    ctx->sampling_priority =
        sampled ? HOTSPAN_PRIORITY_AUTO_KEEP : HOTSPAN_PRIORITY_AUTO_REJECT;
  } else if (sampled && d.s <= 0) {
    ctx->sampling_priority = HOTSPAN_PRIORITY_AUTO_KEEP;
    hs_prop_tags_remove(ctx->propagated_tags, "_dd.p.dm");
    (void)hs_prop_tags_append(ctx->propagated_tags, sizeof ctx->propagated_tags,
                              "_dd.p.dm", 8, "-0", 2);
  } else if (!sampled && d.s > 0) {
    ctx->sampling_priority = HOTSPAN_PRIORITY_AUTO_REJECT;
    hs_prop_tags_remove(ctx->propagated_tags, "_dd.p.dm");
  } else {
    ctx->sampling_priority = d.s;
  }
  return HS_PROP_OK;
}

/* ------------------------------------------------------------------ */
/* Inject                                                              */
/* ------------------------------------------------------------------ */

/* Characters a dd field value may not carry: ',' and '=' are tracestate
 * syntax, ';' and '~' are the dd member's own; '=' is sent as '~'. */
static char map_value_char(char c) {
  unsigned char u = (unsigned char)c;
  if (c == '=')
    return '~';
  if (u < 0x20 || u > 0x7e || c == ',' || c == ';' || c == '~')
    return '_';
  return c;
}

static char map_key_char(char c) {
  unsigned char u = (unsigned char)c;
  if (u < 0x21 || u > 0x7e || c == ',' || c == ';' || c == '=' || c == ':' ||
      c == '~')
    return '_';
  return c;
}

/* Buffer: dd member (256) + ',' + other vendors (511) + NUL. */
#define TS_OUT_MAX (HS_DD_MEMBER_MAX + 1 + HOTSPAN_TRACESTATE_MAX)

_Static_assert(HS_W3C_TRACESTATE_OUT == TS_OUT_MAX + 1,
               "HS_W3C_TRACESTATE_OUT holds the dd member and the others");

/* Appends the dd member "dd=s:..;p:..;o:..;t.k:v.." to out (empty); t.
 * entries that would push the member over 256 characters are left out.
 * *span_id_at: where p:'s 16 hex digits are. */
static size_t write_dd_member(const hotspan_context *ctx, char *out,
                              size_t *span_id_at) {
  size_t n = 0;
  memcpy(out, "dd=", 3);
  n = 3;
  if (ctx->sampling_priority != HOTSPAN_PRIORITY_UNSET) {
    memcpy(out + n, "s:", 2);
    n += 2;
    n += hs_fmt_int(out + n, ctx->sampling_priority);
    out[n++] = ';';
  }
  memcpy(out + n, "p:", 2);
  n += 2;
  *span_id_at = n;
  hs_hex16(out + n, ctx->span_id);
  n += 16;
  size_t on = hs_prop_fieldlen(ctx->origin, sizeof ctx->origin);
  if (on > 0 && on < sizeof ctx->origin) {
    memcpy(out + n, ";o:", 3);
    n += 3;
    for (size_t i = 0; i < on; i++)
      out[n++] = map_value_char(ctx->origin[i]);
  }
  size_t pn =
      hs_prop_fieldlen(ctx->propagated_tags, sizeof ctx->propagated_tags);
  if (pn >= sizeof ctx->propagated_tags)
    pn = 0;
  const char *p = ctx->propagated_tags;
  size_t i = 0;
  while (i < pn) {
    const char *m = p + i;
    const char *comma = memchr(m, ',', pn - i);
    size_t mn = comma != NULL ? (size_t)(comma - m) : pn - i;
    i += mn + 1;
    const char *eq = mn > 0 ? memchr(m, '=', mn) : NULL;
    if (eq == NULL)
      continue;
    size_t kn = (size_t)(eq - m), vn = mn - kn - 1;
    if (kn <= 6 || memcmp(m, "_dd.p.", 6) != 0 || vn == 0 ||
        (kn == 9 && memcmp(m, "_dd.p.tid", 9) == 0))
      continue;
    size_t entry = 3 + (kn - 6) + 1 + vn; /* ";t." key ':' value */
    if (n + entry > HS_DD_MEMBER_MAX)
      continue; /* does not fit: leave this one out, try the next */
    memcpy(out + n, ";t.", 3);
    n += 3;
    for (size_t k = 6; k < kn; k++)
      out[n++] = map_key_char(m[k]);
    out[n++] = ':';
    for (size_t k = 0; k < vn; k++)
      out[n++] = map_value_char(eq[1 + k]);
  }
  /* A tracestate value may not end with a space. */
  if (out[n - 1] == ' ')
    out[n - 1] = '_';
  return n;
}

int hs_prop_w3c_inject(const hotspan_context *ctx,
                       const hotspan_carrier_writer *w, void *carrier) {
  char tp[TRACEPARENT_V00_LEN + 1];
  memcpy(tp, "00-", 3);
  hs_hex16(tp + 3, ctx->trace_id_high);
  hs_hex16(tp + 19, ctx->trace_id_low);
  tp[35] = '-';
  hs_hex16(tp + 36, ctx->span_id);
  memcpy(tp + 52, hs_prop_sampled(ctx) ? "-01" : "-00", 4);
  if (w->set(carrier, "traceparent", tp) != 0)
    return HOTSPAN_EIO;

  char ts[TS_OUT_MAX + 1];
  size_t span_id_at;
  hs_prop_w3c_tracestate(ctx, ts, &span_id_at);
  if (w->set(carrier, "tracestate", ts) != 0)
    return HOTSPAN_EIO;
  return HOTSPAN_OK;
}

size_t hs_prop_w3c_tracestate(const hotspan_context *ctx, char *ts,
                              size_t *span_id_at) {
  size_t n = write_dd_member(ctx, ts, span_id_at);
  /* Other vendors' members follow in their order, at most 31 of them so
   * that the list stays within 32 members. Members that are not valid
   * tracestate (a hand-built context) or another dd member are skipped:
   * they would corrupt the header. */
  size_t on =
      hs_prop_fieldlen(ctx->tracestate_other, sizeof ctx->tracestate_other);
  if (on >= sizeof ctx->tracestate_other)
    on = 0;
  const char *o = ctx->tracestate_other;
  unsigned members = 1;
  size_t i = 0;
  while (i < on && members < HS_TS_MAX_MEMBERS) {
    const char *m = o + i;
    const char *comma = memchr(m, ',', on - i);
    size_t mn = comma != NULL ? (size_t)(comma - m) : on - i;
    i += mn + 1;
    hs_prop_trim(&m, &mn);
    size_t kn;
    if (mn == 0 || !ts_member_split(m, mn, &kn) ||
        (kn == 2 && m[0] == 'd' && m[1] == 'd'))
      continue;
    ts[n++] = ',';
    memcpy(ts + n, m, mn);
    n += mn;
    members++;
  }
  ts[n] = '\0';
  return n;
}
