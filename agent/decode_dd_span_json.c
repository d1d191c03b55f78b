/* Span events and links that Datadog v0.4 traces carry as JSON text in a
 * span's meta map:
 *
 *   "events":         [{"name": "...", "time_unix_nano": N,
 *                       "attributes": {"k": v, ...}}, ...]
 *   "_dd.span_links": [{"trace_id": "<32 or 16 hex>", "span_id": "<16 hex>",
 *                       "tracestate": "...", "flags": N,
 *                       "attributes": {"k": v, ...}}, ...]
 *
 * Attribute values are strings, numbers, booleans or flat arrays of those
 * (kept as their JSON text); null values are left out. Link flags carry
 * the W3C flags byte in bits 0-7 (hotspan and Datadog's tracers also set
 * bit 31 to say it was given, dd-trace-js sends the byte alone); the byte
 * is what is kept.
 *
 * Anything else (not JSON, not an array of such objects, nested values)
 * is left alone: the meta entry then stays a plain string attribute, since
 * a span may well have a tag named "events" of its own. */
#include <stdint.h>
#include <string.h>

#include "agent/decode.h"
#include "common/buf.h"
#include "common/hex.h"
#include "common/json_read.h"

typedef hs_json_value jv;

enum { NOT_OURS = 1, OOM = -1 };

#define MAX_TEXT ((size_t)1 << 20)

static int scalar_json(hs_buf *b, const jv *v) {
  switch (v->type) {
  case HS_JSON_STRING:
    hs_json_strn(b, v->u.string.ptr, v->u.string.len);
    return 0;
  case HS_JSON_NUMBER:
    hs_json_double(b, v->u.number.value);
    return 0;
  case HS_JSON_BOOL:
    hs_buf_puts(b, v->u.boolean ? "true" : "false");
    return 0;
  case HS_JSON_NULL:
    hs_buf_puts(b, "null");
    return 0;
  default:
    return NOT_OURS;
  }
}

/* One attribute value into kv (its key already set). */
static int attr_value(hs_agent_arena *a, const jv *v, hs_ing_kv *kv) {
  switch (v->type) {
  case HS_JSON_STRING:
    kv->str = hs_agent_arena_utf8(a, v->u.string.ptr, v->u.string.len);
    return kv->str ? 0 : OOM;
  case HS_JSON_NUMBER:
    kv->num = v->u.number.value;
    return 0;
  case HS_JSON_BOOL:
    kv->str = v->u.boolean ? "true" : "false";
    return 0;
  case HS_JSON_ARRAY: {
    hs_buf b;
    hs_buf_init(&b, a->max);
    hs_buf_putc(&b, '[');
    int rc = 0;
    for (size_t i = 0; i < v->u.array.len && rc == 0; i++) {
      if (i)
        hs_buf_putc(&b, ',');
      rc = scalar_json(&b, &v->u.array.items[i]);
    }
    hs_buf_putc(&b, ']');
    if (rc == 0 && hs_buf_failed(&b))
      rc = OOM;
    if (rc == 0 &&
        !(kv->str = hs_agent_arena_utf8(a, b.data ? b.data : "", b.len)))
      rc = OOM;
    hs_buf_free(&b);
    return rc;
  }
  default:
    return NOT_OURS;
  }
}

/* An "attributes" object (absent or null: none). */
static int attrs(hs_agent_arena *a, const jv *o, hs_ing_kv **out, uint32_t *n) {
  const jv *m = hs_json_get(o, "attributes");
  *out = NULL;
  *n = 0;
  if (!m || m->type == HS_JSON_NULL)
    return 0;
  if (m->type != HS_JSON_OBJECT)
    return NOT_OURS;
  if (!m->u.object.len)
    return 0;
  *out = hs_agent_arena_array(a, m->u.object.len, sizeof(**out));
  if (!*out)
    return OOM;
  for (size_t i = 0; i < m->u.object.len; i++) {
    const hs_json_member *mb = &m->u.object.members[i];
    if (mb->value.type == HS_JSON_NULL)
      continue;
    hs_ing_kv *kv = &(*out)[*n];
    if (!(kv->key = hs_agent_arena_utf8(a, mb->key, mb->key_len)))
      return OOM;
    int rc = attr_value(a, &mb->value, kv);
    if (rc)
      return rc;
    (*n)++;
  }
  return 0;
}

static int map_event(hs_agent_arena *a, const jv *o, hs_ing_event *x) {
  const jv *name = hs_json_get(o, "name");
  const jv *t = hs_json_get(o, "time_unix_nano");
  uint64_t ns = 0;
  if (o->type != HS_JSON_OBJECT || !name || name->type != HS_JSON_STRING ||
      (t && (hs_json_as_u64(t, &ns) || ns > (uint64_t)INT64_MAX)))
    return NOT_OURS;
  x->time_ns = (int64_t)ns;
  if (!(x->name =
            hs_agent_arena_utf8(a, name->u.string.ptr, name->u.string.len)))
    return OOM;
  return attrs(a, o, &x->attrs, &x->nattrs);
}

static int map_link(hs_agent_arena *a, const jv *o, hs_ing_link *x) {
  const jv *tid = hs_json_get(o, "trace_id");
  const jv *sid = hs_json_get(o, "span_id");
  if (o->type != HS_JSON_OBJECT || !tid || tid->type != HS_JSON_STRING ||
      !sid || sid->type != HS_JSON_STRING || sid->u.string.len != 16 ||
      hs_hex_parse_u64(sid->u.string.ptr, 16, 0, &x->span_id))
    return NOT_OURS;
  size_t tl = tid->u.string.len;
  if (tl == 32) {
    if (hs_hex_parse_u64(tid->u.string.ptr, 16, 0, &x->trace_id_high) ||
        hs_hex_parse_u64(tid->u.string.ptr + 16, 16, 0, &x->trace_id_low))
      return NOT_OURS;
  } else if (tl != 16 ||
             hs_hex_parse_u64(tid->u.string.ptr, 16, 0, &x->trace_id_low)) {
    return NOT_OURS;
  }
  const jv *ts = hs_json_get(o, "tracestate");
  if (ts && ts->type == HS_JSON_STRING && ts->u.string.len &&
      !(x->tracestate =
            hs_agent_arena_utf8(a, ts->u.string.ptr, ts->u.string.len)))
    return OOM;
  const jv *fl = hs_json_get(o, "flags");
  uint64_t flags = 0;
  if (fl && (hs_json_as_u64(fl, &flags) || flags > UINT32_MAX))
    return NOT_OURS;
  x->flags = (uint32_t)(flags & 0xff);
  return attrs(a, o, &x->attrs, &x->nattrs);
}

/* Parses text as an array of events (links when is_links) into sp. */
static int parse_list(hs_agent_arena *a, const char *text, size_t len,
                      int is_links, hs_ing_span *sp) {
  /* The JSON reader may use ~50 bytes per input byte: longer texts stay
   * attributes. */
  size_t cap = a->max / 50 < MAX_TEXT ? a->max / 50 : MAX_TEXT;
  if (len == 0 || len > cap || text[0] != '[')
    return NOT_OURS;
  hs_json_limits lim = {len, 16};
  hs_json_doc *doc = NULL;
  if (hs_json_parse(text, len, &lim, &doc, NULL, 0, NULL))
    return NOT_OURS;
  const jv *arr = hs_json_root(doc);
  size_t n = arr->type == HS_JSON_ARRAY ? arr->u.array.len : 0;
  int rc = arr->type == HS_JSON_ARRAY ? 0 : NOT_OURS;
  void *items = NULL;
  if (rc == 0 && n) {
    items = hs_agent_arena_array(
        a, n, is_links ? sizeof(hs_ing_link) : sizeof(hs_ing_event));
    rc = items ? 0 : OOM;
  }
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = is_links
             ? map_link(a, &arr->u.array.items[i], (hs_ing_link *)items + i)
             : map_event(a, &arr->u.array.items[i], (hs_ing_event *)items + i);
  hs_json_free(doc);
  if (rc)
    return rc;
  if (is_links) {
    sp->links = items;
    sp->nlinks = (uint32_t)n;
  } else {
    sp->events = items;
    sp->nevents = (uint32_t)n;
  }
  return 0;
}

int hs_agent_dd_span_json(hs_agent_arena *a, const char *key, size_t klen,
                          const char *text, size_t len, hs_ing_span *sp) {
  if (klen == 6 && memcmp(key, "events", 6) == 0 && !sp->nevents)
    return parse_list(a, text, len, 0, sp);
  if (klen == 14 && memcmp(key, "_dd.span_links", 14) == 0 && !sp->nlinks)
    return parse_list(a, text, len, 1, sp);
  return NOT_OURS;
}
