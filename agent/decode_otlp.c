/* OTLP/HTTP protobuf traces (ExportTraceServiceRequest) into hs_ing_spans.
 *
 * The request is unpacked by the protobuf-c code generated from the
 * project's OTLP .proto files, through an allocator with a byte budget
 * (agent/pb_budget.h says why the budget and not the input size bounds
 * protobuf-c's memory). protobuf-c unpacks nested messages recursively and
 * has no depth limit, and AnyValue nests without bound (arrays of arrays),
 * so a schema-aware pre-scan walks the wire format first and refuses a
 * request nested deeper than OTLP_MAX_DEPTH before protobuf-c sees it: the
 * decoder's stack use stays bounded whatever the input. */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/decode.h"
#include "agent/pb_budget.h"
#include "common/buf.h"
#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    Request;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

/* Message nesting allowed, counted from the request: request(0) →
 * ResourceSpans → ScopeSpans → Span → KeyValue → AnyValue is 5 levels;
 * every level of an attribute's array or kvlist adds 2. 64 leaves room
 * for attribute values nested about 28 deep. */
#define OTLP_MAX_DEPTH 64

/* ------------------------------------------------------ wire pre-scan */

enum msg {
  M_NONE = 0,
  M_REQUEST,
  M_RESOURCE_SPANS,
  M_RESOURCE,
  M_SCOPE_SPANS,
  M_SCOPE,
  M_SPAN,
  M_EVENT,
  M_LINK,
  M_STATUS,
  M_KEYVALUE,
  M_ANYVALUE,
  M_ARRAY,
  M_KVLIST
};

/* The message type of field `field` of a message of type m, or M_NONE
 * when the field is not a message (or unknown: skipped like protobuf-c
 * skips it). */
static enum msg child_of(enum msg m, uint64_t field) {
  switch (m) {
  case M_REQUEST:
    return field == 1 ? M_RESOURCE_SPANS : M_NONE;
  case M_RESOURCE_SPANS:
    return field == 1 ? M_RESOURCE : field == 2 ? M_SCOPE_SPANS : M_NONE;
  case M_RESOURCE:
    return field == 1 ? M_KEYVALUE : M_NONE;
  case M_SCOPE_SPANS:
    return field == 1 ? M_SCOPE : field == 2 ? M_SPAN : M_NONE;
  case M_SCOPE:
    return field == 3 ? M_KEYVALUE : M_NONE;
  case M_SPAN:
    return field == 9    ? M_KEYVALUE
           : field == 11 ? M_EVENT
           : field == 13 ? M_LINK
           : field == 15 ? M_STATUS
                         : M_NONE;
  case M_EVENT:
    return field == 3 ? M_KEYVALUE : M_NONE;
  case M_LINK:
    return field == 4 ? M_KEYVALUE : M_NONE;
  case M_KEYVALUE:
    return field == 2 ? M_ANYVALUE : M_NONE;
  case M_ANYVALUE:
    return field == 5 ? M_ARRAY : field == 6 ? M_KVLIST : M_NONE;
  case M_ARRAY:
    return field == 1 ? M_ANYVALUE : M_NONE;
  case M_KVLIST:
    return field == 1 ? M_KEYVALUE : M_NONE;
  default:
    return M_NONE;
  }
}

static int read_varint(const uint8_t *p, size_t len, size_t *pos,
                       uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= len)
      return -1;
    uint8_t b = p[(*pos)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

/* Checks that p[0..len) is well-formed wire format for message type m,
 * nested at most OTLP_MAX_DEPTH deep. Recursion depth is bounded by that
 * limit. 0 ok, HS_AGENT_EINVAL with err set. */
static int scan(const uint8_t *p, size_t len, enum msg m, int depth, char *err,
                size_t errlen) {
  size_t pos = 0;
  while (pos < len) {
    uint64_t key;
    if (read_varint(p, len, &pos, &key))
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "otlp: truncated or malformed field key");
    uint64_t field = key >> 3;
    int wt = (int)(key & 7);
    if (field == 0)
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "otlp: field number 0");
    uint64_t v;
    switch (wt) {
    case 0:
      if (read_varint(p, len, &pos, &v))
        return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                             "otlp: truncated varint");
      break;
    case 1:
    case 5: {
      size_t n = wt == 1 ? 8 : 4;
      if (len - pos < n)
        return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                             "otlp: truncated fixed-size field");
      pos += n;
      break;
    }
    case 2: {
      if (read_varint(p, len, &pos, &v) || v > len - pos)
        return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                             "otlp: length-delimited field past the end");
      enum msg c = child_of(m, field);
      if (c != M_NONE) {
        if (depth + 1 > OTLP_MAX_DEPTH)
          return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                               "otlp: messages nested deeper than %d",
                               OTLP_MAX_DEPTH);
        int rc = scan(p + pos, (size_t)v, c, depth + 1, err, errlen);
        if (rc)
          return rc;
      }
      pos += (size_t)v;
      break;
    }
    default:
      return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                           "otlp: unsupported wire type %d", wt);
    }
  }
  return 0;
}

/* ---------------------------------------------------------- mapping */

typedef struct ctx {
  hs_agent_decoded *d;
  char *err;
  size_t errlen;
} ctx;

static int oom(ctx *c) {
  int code = c->d->arena.failed ? c->d->arena.failed : HS_AGENT_ENOMEM;
  return hs_agent_fail(c->err, c->errlen, code,
                       "otlp: decoded request exceeds the memory limit");
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(hs_buf *b, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                 i + 1 < n ? b64[(v >> 6) & 63] : '=',
                 i + 2 < n ? b64[v & 63] : '='};
    hs_buf_append(b, q, 4);
  }
}

/* An AnyValue as JSON (arrays and kvlists keep their structure; bytes as
 * base64 strings). Depth is bounded by the pre-scan. */
static void any_json(hs_buf *b, const AnyValue *v) {
  if (!v) {
    hs_buf_puts(b, "null");
    return;
  }
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    hs_json_str(b, v->string_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    hs_buf_puts(b, v->bool_value ? "true" : "false");
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    hs_json_i64(b, v->int_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    hs_json_double(b, v->double_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    hs_buf_putc(b, '"');
    put_base64(b, v->bytes_value.data, v->bytes_value.len);
    hs_buf_putc(b, '"');
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    hs_buf_putc(b, '[');
    for (size_t i = 0; i < v->array_value->n_values; i++) {
      if (i)
        hs_buf_putc(b, ',');
      any_json(b, v->array_value->values[i]);
    }
    hs_buf_putc(b, ']');
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
    hs_buf_putc(b, '{');
    for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
      const KeyValue *kv = v->kvlist_value->values[i];
      if (i)
        hs_buf_putc(b, ',');
      hs_json_str(b, kv->key);
      hs_buf_putc(b, ':');
      any_json(b, kv->value);
    }
    hs_buf_putc(b, '}');
    break;
  default:
    hs_buf_puts(b, "null");
  }
}

static char *arena_str(ctx *c, const char *s) {
  return hs_agent_arena_utf8(&c->d->arena, s, strlen(s));
}

/* One attribute into kv: strings stay strings; ints within ±2^53 and
 * finite doubles become numbers (larger ints and NaN/Inf keep their exact
 * text); bools become "true"/"false"; bytes base64; arrays and kvlists
 * their JSON text. An attribute without a value is skipped (returns 1). */
static int attr_value(ctx *c, const KeyValue *src, hs_ing_kv *kv) {
  const AnyValue *v = src->value;
  if (!v || v->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)
    return 1;
  if (!(kv->key = arena_str(c, src->key)))
    return oom(c);
  char tmp[64];
  int is_num = 0;
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    kv->str = arena_str(c, v->string_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    kv->str = v->bool_value ? "true" : "false";
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    if (v->int_value >= -(INT64_C(1) << 53) &&
        v->int_value <= (INT64_C(1) << 53)) {
      kv->num = (double)v->int_value;
      is_num = 1;
    } else {
      snprintf(tmp, sizeof(tmp), "%" PRId64, v->int_value);
      kv->str = arena_str(c, tmp);
    }
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    if (isfinite(v->double_value)) {
      kv->num = v->double_value;
      is_num = 1;
    } else {
      snprintf(tmp, sizeof(tmp), "%g", v->double_value);
      kv->str = arena_str(c, tmp);
    }
    break;
  default: {
    hs_buf b;
    hs_buf_init(&b, c->d->arena.max);
    if (v->value_case ==
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE)
      put_base64(&b, v->bytes_value.data, v->bytes_value.len);
    else
      any_json(&b, v);
    if (hs_buf_failed(&b)) {
      hs_buf_free(&b);
      return hs_agent_fail(c->err, c->errlen, HS_AGENT_ETOOBIG,
                           "otlp: attribute %s too large", kv->key);
    }
    kv->str = hs_agent_arena_utf8(&c->d->arena, b.data ? b.data : "", b.len);
    hs_buf_free(&b);
  }
  }
  /* Every case that does not give a number gives a string. */
  if (!kv->str && !is_num)
    return oom(c);
  return 0;
}

static uint64_t be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* The string value of attribute key among kvs, or NULL. */
static const char *str_attr(KeyValue **kvs, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (kvs[i]->value && strcmp(kvs[i]->key, key) == 0 &&
        kvs[i]->value->value_case ==
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
      return kvs[i]->value->string_value;
  return NULL;
}

/* Attributes src[0..n) into an arena array *out of *nout entries. */
static int map_attrs(ctx *c, KeyValue **src, size_t n, hs_ing_kv **out,
                     uint32_t *nout) {
  *out = NULL;
  *nout = 0;
  if (!n)
    return 0;
  if (!(*out = hs_agent_arena_array(&c->d->arena, n, sizeof(**out))))
    return oom(c);
  for (size_t i = 0; i < n; i++) {
    int rc = attr_value(c, src[i], &(*out)[*nout]);
    if (rc < 0)
      return rc;
    if (rc == 0)
      (*nout)++;
  }
  return 0;
}

/* Span events and links. A link needs a 16-byte trace id and an 8-byte
 * span id, as the span itself. */
static int map_events_links(ctx *c, const Span *s, hs_ing_span *o) {
  if (s->n_events) {
    o->events =
        hs_agent_arena_array(&c->d->arena, s->n_events, sizeof(*o->events));
    if (!o->events)
      return oom(c);
    for (size_t i = 0; i < s->n_events; i++) {
      const Opentelemetry__Proto__Trace__V1__Span__Event *e = s->events[i];
      hs_ing_event *x = &o->events[o->nevents++];
      if (e->time_unix_nano > (uint64_t)INT64_MAX)
        return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                             "otlp: event time past the int64 nanosecond "
                             "range");
      x->time_ns = (int64_t)e->time_unix_nano;
      if (!(x->name = arena_str(c, e->name)))
        return oom(c);
      int rc =
          map_attrs(c, e->attributes, e->n_attributes, &x->attrs, &x->nattrs);
      if (rc)
        return rc;
    }
  }
  if (s->n_links) {
    o->links =
        hs_agent_arena_array(&c->d->arena, s->n_links, sizeof(*o->links));
    if (!o->links)
      return oom(c);
    for (size_t i = 0; i < s->n_links; i++) {
      const Opentelemetry__Proto__Trace__V1__Span__Link *l = s->links[i];
      if (l->trace_id.len != 16 || l->span_id.len != 8)
        return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                             "otlp: link with a %zu-byte trace_id and a "
                             "%zu-byte span_id (want 16 and 8)",
                             l->trace_id.len, l->span_id.len);
      hs_ing_link *x = &o->links[o->nlinks++];
      x->trace_id_high = be64(l->trace_id.data);
      x->trace_id_low = be64(l->trace_id.data + 8);
      x->span_id = be64(l->span_id.data);
      x->flags = l->flags;
      if (l->trace_state && *l->trace_state &&
          !(x->tracestate = arena_str(c, l->trace_state)))
        return oom(c);
      int rc =
          map_attrs(c, l->attributes, l->n_attributes, &x->attrs, &x->nattrs);
      if (rc)
        return rc;
    }
  }
  o->dropped_events = s->dropped_events_count; /* uint32 in OTLP */
  o->dropped_links = s->dropped_links_count;
  return 0;
}

static int map_span(ctx *c, const Span *s, const char *service,
                    hs_ing_span *o) {
  if (s->trace_id.len != 16)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "otlp: trace_id of %zu bytes (want 16)",
                         s->trace_id.len);
  if (s->span_id.len != 8)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "otlp: span_id of %zu bytes (want 8)", s->span_id.len);
  if (s->parent_span_id.len != 0 && s->parent_span_id.len != 8)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "otlp: parent_span_id of %zu bytes (want 0 or 8)",
                         s->parent_span_id.len);
  o->trace_id_high = be64(s->trace_id.data);
  o->trace_id_low = be64(s->trace_id.data + 8);
  o->span_id = be64(s->span_id.data);
  o->parent_id = s->parent_span_id.len ? be64(s->parent_span_id.data) : 0;
  if ((o->trace_id_high == 0 && o->trace_id_low == 0) || o->span_id == 0)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "otlp: all-zero trace_id or span_id");
  if (s->start_time_unix_nano > (uint64_t)INT64_MAX ||
      s->end_time_unix_nano > (uint64_t)INT64_MAX)
    return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                         "otlp: span time past the int64 nanosecond range");
  o->start_ns = (int64_t)s->start_time_unix_nano;
  o->duration_ns =
      s->end_time_unix_nano > s->start_time_unix_nano
          ? (int64_t)(s->end_time_unix_nano - s->start_time_unix_nano)
          : 0;
  o->kind = s->kind >= 0 && s->kind <= 5 ? (uint8_t)s->kind : 0;
  o->error =
      s->status &&
      s->status->code ==
          OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
  o->service = service;
  if (!(o->name = arena_str(c, s->name)))
    return oom(c);
  const char *res = str_attr(s->attributes, s->n_attributes, "resource.name");
  o->resource = res ? arena_str(c, res) : o->name;
  const char *type = str_attr(s->attributes, s->n_attributes, "span.type");
  o->type = type ? arena_str(c, type) : NULL;
  if (!o->resource || (type && !o->type))
    return oom(c);
  int rc = map_attrs(c, s->attributes, s->n_attributes, &o->attrs, &o->nattrs);
  return rc ? rc : map_events_links(c, s, o);
}

static int map_request(ctx *c, const Request *r) {
  size_t total = 0;
  for (size_t i = 0; i < r->n_resource_spans; i++)
    for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
      total += r->resource_spans[i]->scope_spans[j]->n_spans;
  hs_ing_batch *b = &c->d->batch;
  if (total == 0)
    return 0;
  hs_ing_span *spans =
      hs_agent_arena_array(&c->d->arena, b->nspans + total, sizeof(*spans));
  if (!spans)
    return oom(c);
  if (b->nspans)
    memcpy(spans, b->spans, b->nspans * sizeof(*spans));
  b->spans = spans;
  for (size_t i = 0; i < r->n_resource_spans; i++) {
    const ResourceSpans *rs = r->resource_spans[i];
    const char *svc = rs->resource
                          ? str_attr(rs->resource->attributes,
                                     rs->resource->n_attributes, "service.name")
                          : NULL;
    const char *service = arena_str(c, svc && *svc ? svc : "unknown_service");
    if (!service)
      return oom(c);
    const char *ver =
        rs->resource ? str_attr(rs->resource->attributes,
                                rs->resource->n_attributes, "service.version")
                     : NULL;
    hs_ing_kv *rattrs = NULL;
    uint32_t nrattrs = 0;
    if (rs->resource) {
      int rc = map_attrs(c, rs->resource->attributes,
                         rs->resource->n_attributes, &rattrs, &nrattrs);
      if (rc)
        return rc;
    }
    for (size_t j = 0; j < rs->n_scope_spans; j++) {
      const ScopeSpans *ss = rs->scope_spans[j];
      for (size_t k = 0; k < ss->n_spans; k++) {
        int rc = map_span(c, ss->spans[k], service, &b->spans[b->nspans]);
        if (rc)
          return rc;
        b->spans[b->nspans].resource_attrs = rattrs;
        b->spans[b->nspans].nresource_attrs = nrattrs;
        /* The store reads a trace's version from its root span. */
        if (ver && *ver &&
            hs_agent_span_default_attr(&c->d->arena, &b->spans[b->nspans],
                                       "service.version", ver, strlen(ver)))
          return oom(c);
        b->nspans++;
      }
    }
  }
  return 0;
}

int hs_agent_decode_otlp(const uint8_t *data, size_t len,
                         const hs_agent_limits *lim, hs_agent_decoded *d,
                         char *err, size_t errlen) {
  hs_agent_limits l;
  hs_agent_limits_resolve(lim, &l);
  if (len && !data)
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL, "otlp: no data");
  int rc = scan(data, len, M_REQUEST, 0, err, errlen);
  if (rc)
    return rc;
  hs_pb_budget b = {0, l.max_memory, 0};
  ProtobufCAllocator alloc = {hs_pb_budget_alloc, hs_pb_budget_free, &b};
  Request *r =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
          &alloc, len, data);
  if (!r) {
    if (b.exceeded)
      return hs_agent_fail(err, errlen, HS_AGENT_ETOOBIG,
                           "otlp: request exceeds the decode memory limit");
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL,
                         "otlp: not an ExportTraceServiceRequest");
  }
  ctx c = {d, err, errlen};
  rc = map_request(&c, r);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
      r, &alloc);
  return rc;
}
