/* Private to the propagation codecs (tracer/propagation_codec.c,
 * prop_w3c.c, prop_datadog.c, prop_b3.c): the header collector filled by one
 * pass of the carrier's foreach, the per-style extractors and injectors that
 * read it, and small text helpers.
 *
 * Nothing here allocates: every buffer is a fixed array that lives on the
 * caller's stack for one extract or inject call. All functions are pure
 * (no shared state) and therefore thread-safe; none is async-signal-safe
 * only because the carrier callbacks they call are not known to be. */
#ifndef HS_TRACER_PROP_INTERNAL_H
#define HS_TRACER_PROP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/hex.h"
#include "common/text.h"
#include "hotspan/propagation.h"
#include "tracer/propagation_codec.h"

/* Result of one style's extractor. */
enum {
  HS_PROP_OK = 0,     /* a valid context was written */
  HS_PROP_ABSENT = 1, /* the style's headers are not in the carrier */
  HS_PROP_BAD = 2     /* headers present but rejected; nothing written */
};

/* Headers the collector recognises; the index is the bit in want. */
enum {
  HS_H_DD_TRACE_ID = 0,
  HS_H_DD_PARENT_ID,
  HS_H_DD_PRIORITY,
  HS_H_DD_ORIGIN,
  HS_H_TRACEPARENT,
  HS_H_B3_TRACE_ID,
  HS_H_B3_SPAN_ID,
  HS_H_B3_SAMPLED,
  HS_H_B3_FLAGS,
  HS_H_B3_SINGLE,
  HS_H_NSMALL, /* headers above use an hs_prop_slot */
  HS_H_DD_TAGS = HS_H_NSMALL,
  HS_H_TRACESTATE
};

/* Longest value any small slot must hold in full: a b3 single header with a
 * 128-bit trace id, sampling state and parent id is 68 characters. */
#define HS_PROP_SLOT_CAP 72

/* One header's value after trimming optional whitespace. The first
 * occurrence is stored; count says how many were seen. len is the full
 * trimmed length even when it exceeds the capacity (then only the first
 * HS_PROP_SLOT_CAP bytes are stored, which lets traceparent of a future
 * version be checked without copying all of it). */
typedef struct hs_prop_slot {
  size_t len;
  uint32_t count;
  char v[HS_PROP_SLOT_CAP];
} hs_prop_slot;

/* x-datadog-tags: longer values are ignored entirely, so 512 bytes. */
typedef struct hs_prop_tags_slot {
  size_t len;
  uint32_t count;
  char v[HOTSPAN_PROPAGATED_TAGS_MAX];
} hs_prop_tags_slot;

/* W3C limits. */
#define HS_TS_MAX_MEMBERS 32
#define HS_TS_MAX_KEY 256
#define HS_TS_MAX_VALUE 256
#define HS_TS_BIG_MEMBER 128 /* truncation drops members above this first */
#define HS_DD_MEMBER_MAX 256 /* "dd=..." in tracestate, Datadog's limit */

/* tracestate, parsed while the headers stream by (several tracestate
 * fields are one list joined with ','), so that a header of any size costs
 * no memory: members are validated one at a time, the dd member's value is
 * kept, other vendors' members are kept in order while they fit. */
typedef struct hs_prop_tracestate {
  uint32_t seen;      /* tracestate fields seen */
  uint32_t members;   /* non-empty members seen */
  uint8_t invalid;    /* grammar error, duplicate key or > 32 members */
  uint8_t has_dd;     /* dd_value holds the dd member's value */
  uint8_t full;       /* truncation started: keep no more members */
  uint8_t pruned_big; /* members over 128 chars were removed */
  size_t dd_len;      /* length of dd_value */
  size_t other_len;   /* bytes used in other (no NUL until finish) */
  uint64_t key_hash[HS_TS_MAX_MEMBERS];
  char dd_value[HS_TS_MAX_VALUE];
  char other[HOTSPAN_TRACESTATE_MAX];
} hs_prop_tracestate;

/* Everything one extract call collects. Only the headers whose bit is in
 * want are looked at. */
typedef struct hs_prop_headers {
  uint32_t want;
  hs_prop_slot slot[HS_H_NSMALL];
  hs_prop_tags_slot tags;
  hs_prop_tracestate ts;
} hs_prop_headers;

/* tracestate streaming parser (prop_w3c.c). init before the first field,
 * feed once per field (value already trimmed of outer whitespace), finish
 * after the last: drops everything if the list turned out invalid and
 * NUL-terminates other. */
void hs_prop_ts_init(hs_prop_tracestate *ts);
void hs_prop_ts_feed(hs_prop_tracestate *ts, const char *v, size_t n);
void hs_prop_ts_finish(hs_prop_tracestate *ts);

/* Extractors. Each fills ctx only on HS_PROP_OK; ctx must come in cleared
 * (zeroes, priority UNSET). */
int hs_prop_dd_extract(const hs_prop_headers *h, hotspan_context *ctx);
int hs_prop_w3c_extract(const hs_prop_headers *h, hotspan_context *ctx);
int hs_prop_b3multi_extract(const hs_prop_headers *h, hotspan_context *ctx);
int hs_prop_b3single_extract(const hs_prop_headers *h, hotspan_context *ctx);

/* traceparent alone, for the merge check when another style won:
 * HS_PROP_OK with the ids, or ABSENT / BAD. */
int hs_prop_w3c_traceparent(const hs_prop_headers *h, uint64_t *hi,
                            uint64_t *lo, uint64_t *span, uint8_t *flags);
/* Copies other vendors' members and the dd member's p: into ctx. */
void hs_prop_w3c_merge_tracestate(const hs_prop_headers *h,
                                  hotspan_context *ctx);

/* Injectors: HOTSPAN_OK or HOTSPAN_EIO (writer failed; stop). */
int hs_prop_dd_inject(const hotspan_context *ctx,
                      const hotspan_carrier_writer *w, void *carrier);
int hs_prop_w3c_inject(const hotspan_context *ctx,
                       const hotspan_carrier_writer *w, void *carrier);
int hs_prop_b3multi_inject(const hotspan_context *ctx,
                           const hotspan_carrier_writer *w, void *carrier);
int hs_prop_b3single_inject(const hotspan_context *ctx,
                            const hotspan_carrier_writer *w, void *carrier);

/* Propagated-tag helpers shared by the Datadog and W3C codecs. Tags are
 * "k=v" members joined by ','. A key is printable ASCII without space, ','
 * or '='; a value printable ASCII (space allowed) without ','. */
int hs_prop_tag_key_ok(const char *k, size_t n);
int hs_prop_tag_value_ok(const char *v, size_t n);
/* Appends "key=value" (with a ',' first when tags is not empty) to the
 * NUL-terminated tags of capacity cap. Returns 0, or -1 (nothing written)
 * if it does not fit. */
int hs_prop_tags_append(char *tags, size_t cap, const char *k, size_t kn,
                        const char *v, size_t vn);
/* Removes every member whose key is k. */
void hs_prop_tags_remove(char *tags, const char *k);

/* ------------------------------------------------------------------ */
/* Text helpers                                                        */
/* ------------------------------------------------------------------ */

static inline int hs_prop_is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Strips leading and trailing spaces and tabs. */
static inline void hs_prop_trim(const char **s, size_t *n) {
  const char *p = *s;
  size_t len = *n;
  while (len > 0 && hs_prop_is_ows(p[0])) {
    p++;
    len--;
  }
  while (len > 0 && hs_prop_is_ows(p[len - 1]))
    len--;
  *s = p;
  *n = len;
}

/* Parses a decimal uint64 made only of digits (leading zeros allowed).
 * 0 ok, -1 if empty, not all digits, or over UINT64_MAX. */
static inline int hs_prop_parse_u64(const char *s, size_t n, uint64_t *out) {
  if (n == 0)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(unsigned char)s[i] - '0';
    if (d > 9)
      return -1;
    /* Up to 19 digits cannot overflow; only longer values pay for the
     * checks. */
    if (i < 19) {
      v = v * 10 + d;
    } else if (__builtin_mul_overflow(v, 10, &v) ||
               __builtin_add_overflow(v, d, &v)) {
      return -1;
    }
  }
  *out = v;
  return 0;
}

/* Parses an optionally '-'-signed decimal int in [-2^31+1, 2^31-1].
 * 0 ok, -1 invalid. */
static inline int hs_prop_parse_int(const char *s, size_t n, int *out) {
  int neg = 0;
  if (n > 0 && s[0] == '-') {
    neg = 1;
    s++;
    n--;
  }
  if (n == 0 || n > 10)
    return -1;
  uint64_t v;
  if (hs_prop_parse_u64(s, n, &v) != 0 || v > 2147483647u)
    return -1;
  *out = neg ? -(int)v : (int)v;
  return 0;
}

/* Length of a NUL-terminated field of a context, bounded by its array
 * size; cap means "not terminated" and callers treat it as invalid. */
static inline size_t hs_prop_fieldlen(const char *s, size_t cap) {
  const char *z = memchr(s, '\0', cap);
  return z != NULL ? (size_t)(z - s) : cap;
}

/* Sampled bit to announce downstream: the priority when decided, else the
 * trace-flags that came in. */
static inline int hs_prop_sampled(const hotspan_context *ctx) {
  if (ctx->sampling_priority != HOTSPAN_PRIORITY_UNSET)
    return ctx->sampling_priority > 0;
  return ctx->trace_flags & 1;
}

#endif
