/* B3 (Zipkin) propagation: the multi-header form (x-b3-traceid,
 * x-b3-spanid, x-b3-sampled, x-b3-flags) and the single header
 * "b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]". Ids are lowercase
 * hex; B3 says the first of repeated headers wins. */
#include <string.h>
#include <strings.h>

#include "tracer/prop_internal.h"

/* 16 or 32 lowercase hex digits; the low 64 bits must not be zero (see
 * hs_prop_w3c_traceparent for why). */
static int parse_trace_id(const char *v, size_t n, uint64_t *hi, uint64_t *lo) {
  if (n == 16) {
    *hi = 0;
    if (hs_hex_parse_u64(v, 16, 1, lo) != 0)
      return -1;
  } else if (n == 32) {
    if (hs_hex_parse_u64(v, 16, 1, hi) != 0 ||
        hs_hex_parse_u64(v + 16, 16, 1, lo) != 0)
      return -1;
  } else {
    return -1;
  }
  return *lo != 0 ? 0 : -1;
}

static int parse_span_id(const char *v, size_t n, uint64_t *out) {
  if (n != 16 || hs_hex_parse_u64(v, 16, 1, out) != 0 || *out == 0)
    return -1;
  return 0;
}

static void set_priority(hotspan_context *ctx, int prio) {
  ctx->sampling_priority = prio;
  ctx->trace_flags = prio > 0 ? 1 : 0;
}

int hs_prop_b3multi_extract(const hs_prop_headers *h, hotspan_context *ctx) {
  const hs_prop_slot *t = &h->slot[HS_H_B3_TRACE_ID];
  const hs_prop_slot *s = &h->slot[HS_H_B3_SPAN_ID];
  if (t->count == 0 && s->count == 0)
    return HS_PROP_ABSENT; /* a lone x-b3-sampled carries no context */
  uint64_t hi, lo, span;
  if (t->count == 0 || s->count == 0 ||
      parse_trace_id(t->v, t->len, &hi, &lo) != 0 ||
      parse_span_id(s->v, s->len, &span) != 0)
    return HS_PROP_BAD;
  ctx->trace_id_high = hi;
  ctx->trace_id_low = lo;
  ctx->span_id = span;

  /* Debug implies accept and maps to a user keep. An unreadable sampling
   * state is treated as absent (defer), not as a broken context. */
  const hs_prop_slot *f = &h->slot[HS_H_B3_FLAGS];
  const hs_prop_slot *smp = &h->slot[HS_H_B3_SAMPLED];
  if (f->count > 0 && f->len == 1 && f->v[0] == '1') {
    set_priority(ctx, HOTSPAN_PRIORITY_USER_KEEP);
  } else if (smp->count > 0) {
    /* "true"/"false" predate the spec, which allows accepting them. */
    if ((smp->len == 1 && smp->v[0] == '1') ||
        (smp->len == 4 && strncasecmp(smp->v, "true", 4) == 0))
      set_priority(ctx, HOTSPAN_PRIORITY_AUTO_KEEP);
    else if ((smp->len == 1 && smp->v[0] == '0') ||
             (smp->len == 5 && strncasecmp(smp->v, "false", 5) == 0))
      set_priority(ctx, HOTSPAN_PRIORITY_AUTO_REJECT);
  }
  return HS_PROP_OK;
}

static int sampling_state(char c, int *prio) {
  switch (c) {
  case '0':
    *prio = HOTSPAN_PRIORITY_AUTO_REJECT;
    return 0;
  case '1':
    *prio = HOTSPAN_PRIORITY_AUTO_KEEP;
    return 0;
  case 'd':
    *prio = HOTSPAN_PRIORITY_USER_KEEP;
    return 0;
  default:
    return -1;
  }
}

int hs_prop_b3single_extract(const hs_prop_headers *h, hotspan_context *ctx) {
  const hs_prop_slot *s = &h->slot[HS_H_B3_SINGLE];
  if (s->count == 0)
    return HS_PROP_ABSENT;
  const char *v = s->v;
  size_t n = s->len;
  int prio = HOTSPAN_PRIORITY_UNSET, unused;
  /* "b3: 0" (or 1, d) is a sampling state alone: no ids, no context. */
  if (n == 1 && sampling_state(v[0], &unused) == 0)
    return HS_PROP_ABSENT;
  if (n > HS_PROP_SLOT_CAP)
    return HS_PROP_BAD;
  size_t tl;
  if (n >= 33 && v[16] == '-')
    tl = 16;
  else if (n >= 49 && v[32] == '-')
    tl = 32;
  else
    return HS_PROP_BAD;
  uint64_t hi, lo, span, parent;
  if (parse_trace_id(v, tl, &hi, &lo) != 0)
    return HS_PROP_BAD;
  size_t p = tl + 1;
  if (n - p < 16 || parse_span_id(v + p, 16, &span) != 0)
    return HS_PROP_BAD;
  p += 16;
  if (p < n) {
    /* -{sampling}: exactly one character. */
    if (v[p] != '-' || n - p < 2 || sampling_state(v[p + 1], &prio) != 0)
      return HS_PROP_BAD;
    p += 2;
    if (p < n) {
      /* -{parentspanid}: 16 hex digits and nothing after them. */
      if (v[p] != '-' || n - p != 17 ||
          hs_hex_parse_u64(v + p + 1, 16, 1, &parent) != 0)
        return HS_PROP_BAD;
    }
  }
  ctx->trace_id_high = hi;
  ctx->trace_id_low = lo;
  ctx->span_id = span;
  if (prio != HOTSPAN_PRIORITY_UNSET)
    set_priority(ctx, prio);
  return HS_PROP_OK;
}

/* Writes the trace id (16 or 32 hex digits) plus NUL; returns its length. */
static size_t trace_id_hex(const hotspan_context *ctx, char *out) {
  size_t n = 0;
  if (ctx->trace_id_high != 0) {
    hs_hex16(out, ctx->trace_id_high);
    n = 16;
  }
  hs_hex16(out + n, ctx->trace_id_low);
  n += 16;
  out[n] = '\0';
  return n;
}

int hs_prop_b3multi_inject(const hotspan_context *ctx,
                           const hotspan_carrier_writer *w, void *carrier) {
  char buf[33];
  trace_id_hex(ctx, buf);
  if (w->set(carrier, "x-b3-traceid", buf) != 0)
    return HOTSPAN_EIO;
  hs_hex16(buf, ctx->span_id);
  buf[16] = '\0';
  if (w->set(carrier, "x-b3-spanid", buf) != 0)
    return HOTSPAN_EIO;
  int prio = ctx->sampling_priority;
  if (prio == HOTSPAN_PRIORITY_UNSET)
    return HOTSPAN_OK; /* defer */
  /* Debug implies accept: B3 says not to send x-b3-sampled with it. */
  if (prio >= HOTSPAN_PRIORITY_USER_KEEP)
    return w->set(carrier, "x-b3-flags", "1") != 0 ? HOTSPAN_EIO : HOTSPAN_OK;
  if (w->set(carrier, "x-b3-sampled", prio > 0 ? "1" : "0") != 0)
    return HOTSPAN_EIO;
  return HOTSPAN_OK;
}

int hs_prop_b3single_inject(const hotspan_context *ctx,
                            const hotspan_carrier_writer *w, void *carrier) {
  char buf[32 + 1 + 16 + 2 + 1];
  size_t n = trace_id_hex(ctx, buf);
  buf[n++] = '-';
  hs_hex16(buf + n, ctx->span_id);
  n += 16;
  int prio = ctx->sampling_priority;
  if (prio != HOTSPAN_PRIORITY_UNSET) {
    buf[n++] = '-';
    buf[n++] = (char)(prio >= HOTSPAN_PRIORITY_USER_KEEP ? 'd'
                      : prio > 0                         ? '1'
                                                         : '0');
  }
  buf[n] = '\0';
  if (w->set(carrier, "b3", buf) != 0)
    return HOTSPAN_EIO;
  return HOTSPAN_OK;
}
