/* Propagation codecs: style lists, the one-pass header collector, and the
 * extract / inject drivers over the per-style codecs (prop_datadog.c,
 * prop_w3c.c, prop_b3.c). No allocation; everything is on the stack. */
#include "tracer/propagation_codec.h"

#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "tracer/prop_internal.h"

/* ------------------------------------------------------------------ */
/* Style lists                                                         */
/* ------------------------------------------------------------------ */

static const char *style_name(int style) {
  switch (style) {
  case HS_STYLE_DATADOG:
    return "datadog";
  case HS_STYLE_TRACECONTEXT:
    return "tracecontext";
  case HS_STYLE_B3MULTI:
    return "b3multi";
  case HS_STYLE_B3SINGLE:
    return "b3";
  default:
    return "?";
  }
}

static int is_sep(char c) {
  return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int word_is(const char *w, size_t n, const char *lit) {
  return strlen(lit) == n && strncasecmp(w, lit, n) == 0;
}

/* After "b3": are the next two words (separated by blanks only, not
 * commas) "single header"? Datadog spells the single-header style
 * "b3 single header". On a match *p moves past them. */
static int eat_single_header(const char **p) {
  const char *q = *p;
  static const char *const words[] = {"single", "header"};
  for (int i = 0; i < 2; i++) {
    const char *s = q;
    while (*q == ' ' || *q == '\t')
      q++;
    if (q == s)
      return 0;
    const char *w = q;
    while (*q != '\0' && !is_sep(*q))
      q++;
    if (!word_is(w, (size_t)(q - w), words[i]))
      return 0;
  }
  *p = q;
  return 1;
}

static void add_style(hs_prop_styles *out, int style) {
  for (uint8_t i = 0; i < out->n; i++)
    if (out->style[i] == style)
      return;
  if (out->n < HS_PROP_MAX_STYLES)
    out->style[out->n++] = (uint8_t)style;
}

int hs_prop_parse_styles(const char *list, hs_prop_styles *out) {
  if (out == NULL)
    return -1;
  out->n = 0;
  if (list == NULL)
    return 0;
  int rc = 0;
  const char *p = list;
  for (;;) {
    while (*p != '\0' && is_sep(*p))
      p++;
    if (*p == '\0')
      break;
    const char *w = p;
    while (*p != '\0' && !is_sep(*p))
      p++;
    size_t n = (size_t)(p - w);
    if (word_is(w, n, "datadog")) {
      add_style(out, HS_STYLE_DATADOG);
    } else if (word_is(w, n, "tracecontext")) {
      add_style(out, HS_STYLE_TRACECONTEXT);
    } else if (word_is(w, n, "b3multi")) {
      add_style(out, HS_STYLE_B3MULTI);
    } else if (word_is(w, n, "b3")) {
      (void)eat_single_header(&p);
      add_style(out, HS_STYLE_B3SINGLE);
    } else if (word_is(w, n, "none")) {
      /* contributes nothing; "none" alone is the empty list */
    } else {
      rc = -1;
    }
  }
  return rc;
}

void hs_prop_format_styles(const hs_prop_styles *s, char *buf, size_t len) {
  if (buf == NULL || len == 0)
    return;
  size_t n = 0;
  buf[0] = '\0';
  if (s == NULL || s->n == 0) {
    strncpy(buf, "none", len - 1);
    buf[len - 1] = '\0';
    return;
  }
  for (uint8_t i = 0; i < s->n && i < HS_PROP_MAX_STYLES; i++) {
    const char *name = style_name(s->style[i]);
    size_t nl = strlen(name);
    if (i > 0) {
      if (n + 1 >= len)
        break;
      buf[n++] = ',';
    }
    size_t k = nl < len - 1 - n ? nl : len - 1 - n;
    memcpy(buf + n, name, k);
    n += k;
    if (k < nl)
      break;
  }
  buf[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Header collector                                                    */
/* ------------------------------------------------------------------ */

static uint32_t hs_prop_style_wants(int style) {
  switch (style) {
  case HS_STYLE_DATADOG:
    return 1u << HS_H_DD_TRACE_ID | 1u << HS_H_DD_PARENT_ID |
           1u << HS_H_DD_PRIORITY | 1u << HS_H_DD_ORIGIN | 1u << HS_H_DD_TAGS;
  case HS_STYLE_TRACECONTEXT:
    return 1u << HS_H_TRACEPARENT | 1u << HS_H_TRACESTATE;
  case HS_STYLE_B3MULTI:
    return 1u << HS_H_B3_TRACE_ID | 1u << HS_H_B3_SPAN_ID |
           1u << HS_H_B3_SAMPLED | 1u << HS_H_B3_FLAGS;
  case HS_STYLE_B3SINGLE:
    return 1u << HS_H_B3_SINGLE;
  default:
    return 0;
  }
}

/* Up to 8 bytes as a little-endian word, zero-padded. */
static uint64_t load_word(const char *s, size_t n) {
  uint64_t w = 0;
  memcpy(&w, s, n < 8 ? n : 8);
  return w;
}

/* ASCII lowercase of 8 bytes at once; only A-Z change, so bytes such as CR
 * cannot pass for '-' (a plain "| 0x20" would let them). */
static uint64_t lower_word(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t low7 = x & ~high;
  uint64_t ge_a = low7 + (0x80 - 'A') * ones;     /* high bit set if >= 'A' */
  uint64_t gt_z = low7 + (0x80 - 'Z' - 1) * ones; /* ... if > 'Z' */
  uint64_t upper = ge_a & ~gt_z & ~x & high;
  return x | (upper >> 2);
}

/* Case-insensitive compare of n bytes against a lowercase literal of the
 * same length. Every header of every request goes through here, so it
 * works a word at a time. */
static int name_is(const char *s, const char *lit, size_t n) {
  if (n < 8) {
    for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)s[i];
      if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)lit[i])
        return 0;
    }
    return 1;
  }
  /* Whole words, then one word overlapping the end: fixed-size loads
   * only, so the compiler emits plain 8-byte moves. */
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (lower_word(load_word(s + i, 8)) != load_word(lit + i, 8))
      return 0;
  if (i < n && lower_word(load_word(s + n - 8, 8)) != load_word(lit + n - 8, 8))
    return 0;
  return 1;
}

/* HS_H_* of a header name, or -1. Dispatch on length first: most headers
 * of a request are rejected by one switch. */
static int header_id(const char *s, size_t n) {
  switch (n) {
  case 2:
    return name_is(s, "b3", 2) ? HS_H_B3_SINGLE : -1;
  case 10:
    if (name_is(s, "tracestate", 10))
      return HS_H_TRACESTATE;
    return name_is(s, "x-b3-flags", 10) ? HS_H_B3_FLAGS : -1;
  case 11:
    if (name_is(s, "traceparent", 11))
      return HS_H_TRACEPARENT;
    return name_is(s, "x-b3-spanid", 11) ? HS_H_B3_SPAN_ID : -1;
  case 12:
    if (name_is(s, "x-b3-traceid", 12))
      return HS_H_B3_TRACE_ID;
    return name_is(s, "x-b3-sampled", 12) ? HS_H_B3_SAMPLED : -1;
  case 14:
    return name_is(s, "x-datadog-tags", 14) ? HS_H_DD_TAGS : -1;
  case 16:
    return name_is(s, "x-datadog-origin", 16) ? HS_H_DD_ORIGIN : -1;
  case 18:
    return name_is(s, "x-datadog-trace-id", 18) ? HS_H_DD_TRACE_ID : -1;
  case 19:
    return name_is(s, "x-datadog-parent-id", 19) ? HS_H_DD_PARENT_ID : -1;
  case 27:
    return name_is(s, "x-datadog-sampling-priority", 27) ? HS_H_DD_PRIORITY
                                                         : -1;
  default:
    return -1;
  }
}

/* Stores the first occurrence (as much as fits) and counts them all. */
static void slot_store(char *dst, size_t cap, size_t *len, uint32_t *count,
                       const char *v, size_t n) {
  if ((*count)++ > 0)
    return;
  *len = n;
  memcpy(dst, v, n < cap ? n : cap);
}

static int visit(void *arg, const char *name, size_t name_len,
                 const char *value, size_t value_len) {
  hs_prop_headers *h = arg;
  if (name == NULL)
    return 0;
  int id = header_id(name, name_len);
  if (id < 0 || (h->want & (1u << id)) == 0)
    return 0;
  if (value == NULL)
    value_len = 0;
  const char *v = value_len > 0 ? value : "";
  size_t n = value_len;
  hs_prop_trim(&v, &n);
  if (id == HS_H_TRACESTATE) {
    hs_prop_ts_feed(&h->ts, v, n);
  } else if (id == HS_H_DD_TAGS) {
    slot_store(h->tags.v, sizeof h->tags.v, &h->tags.len, &h->tags.count, v, n);
  } else {
    hs_prop_slot *s = &h->slot[id];
    slot_store(s->v, sizeof s->v, &s->len, &s->count, v, n);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Extract                                                             */
/* ------------------------------------------------------------------ */

static void ctx_clear(hotspan_context *ctx) {
  memset(ctx, 0, sizeof *ctx);
  ctx->sampling_priority = HOTSPAN_PRIORITY_UNSET;
}

static int extract_style(int style, const hs_prop_headers *h,
                         hotspan_context *ctx) {
  switch (style) {
  case HS_STYLE_DATADOG:
    return hs_prop_dd_extract(h, ctx);
  case HS_STYLE_TRACECONTEXT:
    return hs_prop_w3c_extract(h, ctx);
  case HS_STYLE_B3MULTI:
    return hs_prop_b3multi_extract(h, ctx);
  case HS_STYLE_B3SINGLE:
    return hs_prop_b3single_extract(h, ctx);
  default:
    return HS_PROP_ABSENT;
  }
}

static void count_bad(int style, uint64_t *malformed) {
  if (malformed != NULL)
    (*malformed)++;
  hs_log(HS_LOG_DEBUG, "propagation: malformed %s headers ignored",
         style_name(style));
}

int hs_prop_extract(const hs_prop_styles *styles,
                    const hotspan_carrier_reader *reader, void *carrier,
                    hotspan_context *out, uint64_t *malformed) {
  if (styles == NULL || reader == NULL || reader->foreach == NULL ||
      out == NULL)
    return HOTSPAN_EINVAL;
  ctx_clear(out);
  uint32_t want = 0;
  int has_tc = 0;
  for (uint8_t i = 0; i < styles->n && i < HS_PROP_MAX_STYLES; i++) {
    want |= hs_prop_style_wants(styles->style[i]);
    has_tc |= styles->style[i] == HS_STYLE_TRACECONTEXT;
  }
  if (want == 0)
    return HOTSPAN_ENOCTX;

  /* Only the counters are initialised: slot contents are read only after
   * their count says they were written. */
  hs_prop_headers h;
  h.want = want;
  for (int i = 0; i < HS_H_NSMALL; i++)
    h.slot[i].count = 0;
  h.tags.count = 0;
  hs_prop_ts_init(&h.ts);
  if (reader->foreach (carrier, visit, &h) != 0)
    return HOTSPAN_EIO;
  if (has_tc)
    hs_prop_ts_finish(&h.ts);

  int winner = 0, tc_tried = 0;
  for (uint8_t i = 0; i < styles->n && i < HS_PROP_MAX_STYLES; i++) {
    int st = styles->style[i];
    int r = extract_style(st, &h, out);
    tc_tried |= st == HS_STYLE_TRACECONTEXT;
    if (r == HS_PROP_OK) {
      winner = st;
      break;
    }
    if (r == HS_PROP_BAD)
      count_bad(st, malformed);
  }
  if (winner == 0)
    return HOTSPAN_ENOCTX;
  out->remote = HOTSPAN_CONTEXT_REMOTE;

  /* Another style won: W3C tracestate still belongs to this trace when
   * traceparent names the same 128-bit trace id, so other vendors' members
   * and the last Datadog parent id are kept. A different trace id means
   * the headers come from different hops; the winner's alone are used. */
  if (has_tc && winner != HS_STYLE_TRACECONTEXT && !tc_tried) {
    uint64_t hi, lo, span;
    uint8_t flags;
    int r = hs_prop_w3c_traceparent(&h, &hi, &lo, &span, &flags);
    if (r == HS_PROP_BAD)
      count_bad(HS_STYLE_TRACECONTEXT, malformed);
    else if (r == HS_PROP_OK && hi == out->trace_id_high &&
             lo == out->trace_id_low)
      hs_prop_w3c_merge_tracestate(&h, out);
  }
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------------ */
/* Inject                                                              */
/* ------------------------------------------------------------------ */

int hs_prop_inject(const hs_prop_styles *styles, const hotspan_context *ctx,
                   const hotspan_carrier_writer *writer, void *carrier) {
  if (styles == NULL || ctx == NULL || writer == NULL || writer->set == NULL)
    return HOTSPAN_EINVAL;
  if (ctx->trace_id_low == 0 || ctx->span_id == 0)
    return HOTSPAN_EINVAL;
  for (uint8_t i = 0; i < styles->n && i < HS_PROP_MAX_STYLES; i++) {
    int r;
    switch (styles->style[i]) {
    case HS_STYLE_DATADOG:
      r = hs_prop_dd_inject(ctx, writer, carrier);
      break;
    case HS_STYLE_TRACECONTEXT:
      r = hs_prop_w3c_inject(ctx, writer, carrier);
      break;
    case HS_STYLE_B3MULTI:
      r = hs_prop_b3multi_inject(ctx, writer, carrier);
      break;
    case HS_STYLE_B3SINGLE:
      r = hs_prop_b3single_inject(ctx, writer, carrier);
      break;
    default:
      r = HOTSPAN_OK;
      break;
    }
    if (r != HOTSPAN_OK)
      return r;
  }
  return HOTSPAN_OK;
}
