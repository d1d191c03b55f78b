/* Datadog Agent API v0.4 traces (msgpack) into hs_ing_spans.
 *
 * msgpack-c's C unpacker has no limits: an array header claiming 2^24
 * elements makes it allocate 400 MB for a 5-byte input. So a prescan walks
 * the bytes first without allocating: it checks every length against the
 * bytes that are left (each element needs at least one byte), caps the
 * nesting depth and counts the objects, whose tree size must fit the
 * memory limit. Only then does msgpack_unpack_next build the tree. */
#include <inttypes.h>
#include <msgpack.h>
#include <string.h>

#include "agent/decode.h"
#include "common/hex.h"

#define MAX_DEPTH 16

static uint64_t be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* The payload bytes of a type with a fixed size (numbers, fixext), -1 for
 * the others. */
static int fixed_size(uint8_t t) {
  switch (t) {
  case 0xcc:
  case 0xd0:
    return 1;
  case 0xcd:
  case 0xd1:
  case 0xd4:
    return 2;
  case 0xd5:
    return 3;
  case 0xce:
  case 0xd2:
  case 0xca:
    return 4;
  case 0xd6:
    return 5;
  case 0xcf:
  case 0xd3:
  case 0xcb:
    return 8;
  case 0xd7:
    return 9;
  case 0xd8:
    return 17;
  default:
    return -1;
  }
}

/* Reads a big-endian length field of n bytes at data[*pos] into *v and
 * moves past it (*left: the bytes left from *pos). -1 if truncated. */
static int read_len(const uint8_t *data, size_t *pos, size_t *left, int n,
                    uint64_t *v, const char **why) {
  if (*left < (size_t)n) {
    *why = "truncated";
    return -1;
  }
  *v = be(data + *pos, n);
  *pos += (size_t)n;
  *left -= (size_t)n;
  return 0;
}

/* Reads the type byte at data[*posp] and its length field, if any: *skipp
 * is the payload bytes that follow, *childrenp the elements (for a map,
 * keys and values) that follow. Advances *posp past the type byte and
 * length field. -1 if truncated or the type byte is 0xc1. */
static int scan_head(const uint8_t *data, size_t len, size_t *posp,
                     uint64_t *skipp, uint64_t *childrenp, const char **why) {
  size_t pos = *posp;
  if (pos >= len) {
    *why = "truncated";
    return -1;
  }
  uint8_t t = data[pos++];
  size_t left = len - pos;
  uint64_t skip = 0, children = 0;
  int hdr = 0; /* bytes of length field */
  int fixed;
  uint64_t v;
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
    /* fixint, nil, bool */
  } else if (t >= 0xa0 && t <= 0xbf) {
    skip = t & 0x1f;
  } else if (t >= 0x90 && t <= 0x9f) {
    children = t & 0x0f;
  } else if (t >= 0x80 && t <= 0x8f) {
    children = 2 * (uint64_t)(t & 0x0f);
  } else if ((fixed = fixed_size(t)) >= 0) {
    skip = (uint64_t)fixed;
  } else {
    switch (t) {
    case 0xd9:
    case 0xc4:
      hdr = 1;
      break;
    case 0xda:
    case 0xc5:
      hdr = 2;
      break;
    case 0xdb:
    case 0xc6:
      hdr = 4;
      break;
    case 0xc7:
    case 0xc8:
    case 0xc9: {
      int n = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
      if (read_len(data, &pos, &left, n, &v, why) < 0)
        return -1;
      skip = v + 1; /* + type byte */
      break;
    }
    case 0xdc:
    case 0xdd:
      if (read_len(data, &pos, &left, t == 0xdc ? 2 : 4, &v, why) < 0)
        return -1;
      children = v;
      break;
    case 0xde:
    case 0xdf:
      if (read_len(data, &pos, &left, t == 0xde ? 2 : 4, &v, why) < 0)
        return -1;
      children = 2 * v;
      break;
    default:
      *why = "invalid type byte 0xc1";
      return -1;
    }
    if (hdr) {
      if (read_len(data, &pos, &left, hdr, &v, why) < 0)
        return -1;
      skip = v;
    }
  }
  *posp = pos;
  *skipp = skip;
  *childrenp = children;
  return 0;
}

/* Walks one complete msgpack value at data[0..len); returns its size in
 * bytes via *used and the object count via *objects; -1 if truncated,
 * malformed (0xc1), too deep or claiming more elements than bytes. */
static int prescan(const uint8_t *data, size_t len, size_t *used,
                   uint64_t *objects, const char **why) {
  uint64_t pending[MAX_DEPTH + 1]; /* elements still expected per level */
  int depth = 0;
  pending[0] = 1;
  size_t pos = 0;
  uint64_t count = 0;
  while (depth >= 0) {
    if (pending[depth] == 0) {
      depth--;
      continue;
    }
    pending[depth]--;
    uint64_t skip, children;
    if (scan_head(data, len, &pos, &skip, &children, why) < 0)
      return -1;
    size_t left = len - pos;
    count++;
    if (skip > left) {
      *why = "truncated";
      return -1;
    }
    pos += (size_t)skip;
    if (children) {
      if (children > len - pos) {
        *why = "container claims more elements than the payload holds";
        return -1;
      }
      if (depth == MAX_DEPTH) {
        *why = "nested too deeply";
        return -1;
      }
      pending[++depth] = children;
    }
  }
  *used = pos;
  *objects = count;
  return 0;
}

typedef struct dctx {
  hs_agent_arena *a;
  char *err;
  size_t errlen;
  size_t trace, span; /* position, for messages */
} dctx;

static int bad(dctx *c, const char *key, const char *what) {
  return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                       "v0.4 traces: trace %zu span %zu: \"%s\" %s", c->trace,
                       c->span, key, what);
}

static int oom(dctx *c) {
  return hs_agent_fail(c->err, c->errlen,
                       c->a->failed ? c->a->failed : HS_AGENT_ENOMEM,
                       "v0.4 traces: decoded spans exceed the memory limit");
}

/* String or nil (NULL) value. */
static int get_str(dctx *c, const msgpack_object *o, const char *key,
                   const char **out) {
  if (o->type == MSGPACK_OBJECT_NIL) {
    *out = NULL;
    return 0;
  }
  if (o->type != MSGPACK_OBJECT_STR)
    return bad(c, key, "must be a string");
  *out = hs_agent_arena_utf8(c->a, o->via.str.ptr, o->via.str.size);
  return *out ? 0 : oom(c);
}

static int get_u64(dctx *c, const msgpack_object *o, const char *key,
                   uint64_t *out) {
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    *out = o->via.u64;
    return 0;
  }
  if (o->type == MSGPACK_OBJECT_NIL) {
    *out = 0;
    return 0;
  }
  return bad(c, key, "must be an unsigned integer");
}

static int get_i64(dctx *c, const msgpack_object *o, const char *key,
                   int64_t *out) {
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
    *out = o->via.i64;
    return 0;
  }
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 > INT64_MAX)
      return bad(c, key, "is out of range");
    *out = (int64_t)o->via.u64;
    return 0;
  }
  if (o->type == MSGPACK_OBJECT_NIL) {
    *out = 0;
    return 0;
  }
  return bad(c, key, "must be an integer");
}

static int key_is(const msgpack_object *k, const char *s) {
  size_t n = strlen(s);
  return k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

/* The native "span_links" field (the Datadog Agent's SpanLink: trace_id,
 * trace_id_high, span_id, attributes (string → string), tracestate, flags
 * with bit 31 saying the W3C byte in bits 0-7 is given). */
static int decode_links(dctx *c, const msgpack_object *arr, hs_ing_span *sp) {
  uint32_t n = arr->via.array.size;
  if (!n)
    return 0;
  sp->links = hs_agent_arena_array(c->a, n, sizeof(*sp->links));
  if (!sp->links)
    return oom(c);
  for (uint32_t i = 0; i < n; i++) {
    const msgpack_object *o = &arr->via.array.ptr[i];
    if (o->type != MSGPACK_OBJECT_MAP)
      return bad(c, "span_links", "must be an array of maps");
    hs_ing_link *l = &sp->links[i];
    const msgpack_object *attrs = NULL;
    for (uint32_t k = 0; k < o->via.map.size; k++) {
      const msgpack_object *key = &o->via.map.ptr[k].key;
      const msgpack_object *v = &o->via.map.ptr[k].val;
      uint64_t flags = 0;
      int rc = 0;
      if (key->type != MSGPACK_OBJECT_STR)
        return bad(c, "span_links", "must have string keys");
      if (key_is(key, "trace_id"))
        rc = get_u64(c, v, "span_links.trace_id", &l->trace_id_low);
      else if (key_is(key, "trace_id_high"))
        rc = get_u64(c, v, "span_links.trace_id_high", &l->trace_id_high);
      else if (key_is(key, "span_id"))
        rc = get_u64(c, v, "span_links.span_id", &l->span_id);
      else if (key_is(key, "tracestate"))
        rc = get_str(c, v, "span_links.tracestate", &l->tracestate);
      else if (key_is(key, "flags")) {
        rc = get_u64(c, v, "span_links.flags", &flags);
        if (!rc && flags > UINT32_MAX)
          rc = bad(c, "span_links.flags", "is out of range");
        l->flags = (uint32_t)(flags & 0xff);
      } else if (key_is(key, "attributes")) {
        if (v->type != MSGPACK_OBJECT_MAP && v->type != MSGPACK_OBJECT_NIL)
          return bad(c, "span_links.attributes", "must be a map");
        attrs = v->type == MSGPACK_OBJECT_MAP ? v : NULL;
      }
      if (rc)
        return rc;
    }
    if (attrs && attrs->via.map.size) {
      l->attrs =
          hs_agent_arena_array(c->a, attrs->via.map.size, sizeof(*l->attrs));
      if (!l->attrs)
        return oom(c);
      for (uint32_t k = 0; k < attrs->via.map.size; k++) {
        const msgpack_object *ak = &attrs->via.map.ptr[k].key;
        const msgpack_object *av = &attrs->via.map.ptr[k].val;
        if (ak->type != MSGPACK_OBJECT_STR || av->type != MSGPACK_OBJECT_STR)
          return bad(c, "span_links.attributes", "must map strings to strings");
        hs_ing_kv *kv = &l->attrs[l->nattrs++];
        kv->key = hs_agent_arena_utf8(c->a, ak->via.str.ptr, ak->via.str.size);
        kv->str = hs_agent_arena_utf8(c->a, av->via.str.ptr, av->via.str.size);
        if (!kv->key || !kv->str)
          return oom(c);
      }
    }
    if (l->span_id == 0 || (l->trace_id_low == 0 && l->trace_id_high == 0))
      return bad(c, "span_links", "needs a trace_id and a span_id");
  }
  sp->nlinks = n;
  return 0;
}

static int decode_span(dctx *c, const msgpack_object *o, hs_ing_span *sp) {
  if (o->type != MSGPACK_OBJECT_MAP)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "v0.4 traces: trace %zu span %zu is not a map",
                         c->trace, c->span);
  const msgpack_object_map *m = &o->via.map;
  const msgpack_object *meta = NULL, *metrics = NULL;
  for (uint32_t i = 0; i < m->size; i++) {
    const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
    if (k->type != MSGPACK_OBJECT_STR)
      return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                           "v0.4 traces: trace %zu span %zu: key %u is not a "
                           "string",
                           c->trace, c->span, i);
    int rc = 0;
    int64_t err_flag;
    if (key_is(k, "service"))
      rc = get_str(c, v, "service", &sp->service);
    else if (key_is(k, "name"))
      rc = get_str(c, v, "name", &sp->name);
    else if (key_is(k, "resource"))
      rc = get_str(c, v, "resource", &sp->resource);
    else if (key_is(k, "type"))
      rc = get_str(c, v, "type", &sp->type);
    else if (key_is(k, "trace_id"))
      rc = get_u64(c, v, "trace_id", &sp->trace_id_low);
    else if (key_is(k, "span_id"))
      rc = get_u64(c, v, "span_id", &sp->span_id);
    else if (key_is(k, "parent_id"))
      rc = get_u64(c, v, "parent_id", &sp->parent_id);
    else if (key_is(k, "start"))
      rc = get_i64(c, v, "start", &sp->start_ns);
    else if (key_is(k, "duration"))
      rc = get_i64(c, v, "duration", &sp->duration_ns);
    else if (key_is(k, "error")) {
      rc = get_i64(c, v, "error", &err_flag);
      sp->error = err_flag != 0;
    } else if (key_is(k, "meta")) {
      if (v->type != MSGPACK_OBJECT_MAP && v->type != MSGPACK_OBJECT_NIL)
        return bad(c, "meta", "must be a map");
      meta = v->type == MSGPACK_OBJECT_MAP ? v : NULL;
    } else if (key_is(k, "metrics")) {
      if (v->type != MSGPACK_OBJECT_MAP && v->type != MSGPACK_OBJECT_NIL)
        return bad(c, "metrics", "must be a map");
      metrics = v->type == MSGPACK_OBJECT_MAP ? v : NULL;
    } else if (key_is(k, "span_links")) {
      if (v->type != MSGPACK_OBJECT_ARRAY && v->type != MSGPACK_OBJECT_NIL)
        return bad(c, "span_links", "must be an array");
      if (v->type == MSGPACK_OBJECT_ARRAY)
        rc = decode_links(c, v, sp);
    }
    /* other keys (meta_struct, span_events, ...) are ignored */
    if (rc)
      return rc;
  }
  if (sp->duration_ns < 0)
    return bad(c, "duration", "is negative");
  size_t n =
      (meta ? meta->via.map.size : 0) + (metrics ? metrics->via.map.size : 0);
  sp->attrs = hs_agent_arena_array(c->a, n, sizeof(hs_ing_kv));
  if (!sp->attrs)
    return oom(c);
  uint32_t a = 0;
  for (uint32_t i = 0; meta && i < meta->via.map.size; i++) {
    const msgpack_object *k = &meta->via.map.ptr[i].key;
    const msgpack_object *v = &meta->via.map.ptr[i].val;
    if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
      return bad(c, "meta", "must map strings to strings");
    /* Span events and links kept as such, not as a string attribute. */
    int ev = hs_agent_dd_span_json(c->a, k->via.str.ptr, k->via.str.size,
                                   v->via.str.ptr, v->via.str.size, sp);
    if (ev < 0)
      return oom(c);
    if (ev == 0)
      continue;
    hs_ing_kv *kv = &sp->attrs[a++];
    kv->key = hs_agent_arena_utf8(c->a, k->via.str.ptr, k->via.str.size);
    kv->str = hs_agent_arena_utf8(c->a, v->via.str.ptr, v->via.str.size);
    if (!kv->key || !kv->str)
      return oom(c);
    if (key_is(k, "_dd.p.tid")) {
      uint64_t hi = 0;
      if (v->via.str.size != 16 ||
          hs_hex_parse_u64(v->via.str.ptr, 16, 0, &hi) != 0)
        return bad(c, "_dd.p.tid", "must be 16 hex digits");
      sp->trace_id_high = hi;
    }
  }
  for (uint32_t i = 0; metrics && i < metrics->via.map.size; i++) {
    const msgpack_object *k = &metrics->via.map.ptr[i].key;
    const msgpack_object *v = &metrics->via.map.ptr[i].val;
    if (k->type != MSGPACK_OBJECT_STR)
      return bad(c, "metrics", "must have string keys");
    double num;
    if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
      num = v->via.f64;
    else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      num = (double)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
      num = (double)v->via.i64;
    else
      return bad(c, "metrics", "must map strings to numbers");
    hs_ing_kv *kv = &sp->attrs[a++];
    kv->key = hs_agent_arena_utf8(c->a, k->via.str.ptr, k->via.str.size);
    if (!kv->key)
      return oom(c);
    kv->num = num;
  }
  sp->nattrs = a;
  return 0;
}

static int decode_tree(dctx *c, const msgpack_object *root,
                       hs_agent_decoded *d) {
  if (root->type != MSGPACK_OBJECT_ARRAY)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "v0.4 traces: payload must be an array of traces");
  size_t nspans = 0;
  for (uint32_t t = 0; t < root->via.array.size; t++) {
    const msgpack_object *tr = &root->via.array.ptr[t];
    if (tr->type != MSGPACK_OBJECT_ARRAY)
      return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                           "v0.4 traces: trace %u is not an array of spans", t);
    nspans += tr->via.array.size;
  }
  size_t total = d->batch.nspans + nspans;
  hs_ing_span *spans = hs_agent_arena_array(c->a, total, sizeof(*spans));
  if (!spans)
    return oom(c);
  if (d->batch.nspans)
    memcpy(spans, d->batch.spans, d->batch.nspans * sizeof(*spans));
  size_t o = d->batch.nspans;
  for (uint32_t t = 0; t < root->via.array.size; t++) {
    const msgpack_object *tr = &root->via.array.ptr[t];
    c->trace = t;
    size_t first = o;
    for (uint32_t s = 0; s < tr->via.array.size; s++) {
      c->span = s;
      int rc = decode_span(c, &tr->via.array.ptr[s], &spans[o++]);
      if (rc)
        return rc;
    }
    /* Tracers send _dd.p.tid (the high 64 bits of a 128-bit trace id) on
     * one span of each trace chunk only, as the Datadog Agent expects:
     * every span of the chunk with the same low 64 bits shares it (a
     * chunk is one trace; linear, whatever the input). */
    size_t with_tid = first;
    while (with_tid < o && spans[with_tid].trace_id_high == 0)
      with_tid++;
    for (size_t j = first; with_tid < o && j < o; j++)
      if (spans[j].trace_id_high == 0 &&
          spans[j].trace_id_low == spans[with_tid].trace_id_low)
        spans[j].trace_id_high = spans[with_tid].trace_id_high;
  }
  d->batch.spans = spans;
  d->batch.nspans = o;
  return 0;
}

int hs_agent_decode_dd_msgpack(const uint8_t *data, size_t len,
                               const hs_agent_limits *lim, hs_agent_decoded *d,
                               char *err, size_t errlen) {
  hs_agent_limits l;
  hs_agent_limits_resolve(lim, &l);
  if (len == 0)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "v0.4 traces: empty body");
  size_t used;
  uint64_t objects;
  const char *why = "malformed";
  if (prescan(data, len, &used, &objects, &why))
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "v0.4 traces: invalid msgpack: %s", why);
  if (used != len)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "v0.4 traces: %zu trailing bytes after the payload",
                         len - used);
  if (objects > l.max_memory / sizeof(msgpack_object))
    return hs_agent_fail(err, errlen, HS_AGENT_ETOOBIG,
                         "v0.4 traces: %" PRIu64
                         " msgpack objects exceed the memory limit",
                         objects);
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  msgpack_unpack_return ur =
      msgpack_unpack_next(&up, (const char *)data, len, &off);
  int rc;
  if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
    rc = hs_agent_fail(err, errlen, HS_AGENT_ENOMEM,
                       "v0.4 traces: out of memory");
  else if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
    rc = hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                       "v0.4 traces: invalid msgpack");
  else {
    dctx c = {&d->arena, err, errlen, 0, 0};
    rc = decode_tree(&c, &up.data, d);
  }
  msgpack_unpacked_destroy(&up);
  return rc;
}
