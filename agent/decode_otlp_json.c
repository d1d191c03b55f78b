/* OTLP/HTTP JSON traces (ExportTraceServiceRequest in the OTLP JSON
 * encoding) into hs_ing_spans.
 *
 * The OTLP JSON rules this follows: field names in lowerCamelCase (the
 * original snake_case names are accepted too, as the protobuf JSON mapping
 * allows); trace and span ids are hex strings, not base64; enums are
 * integers (their names are accepted too); 64-bit integers (times,
 * intValue) are decimal strings or numbers; unknown fields are ignored;
 * null means "not set". The text is parsed by common/json_read.h (strict,
 * iterative, depth-capped); its heap use can reach ~50 bytes per input
 * byte, so the input is capped at max_memory / 50 (ETOOBIG past it). */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/decode.h"
#include "common/buf.h"
#include "common/hex.h"
#include "common/json_read.h"

typedef hs_json_value jv;

typedef struct ctx {
  hs_agent_decoded *d;
  char *err;
  size_t errlen;
} ctx;

static int oom(ctx *c) {
  int code = c->d->arena.failed ? c->d->arena.failed : HS_AGENT_ENOMEM;
  return hs_agent_fail(c->err, c->errlen, code,
                       "otlp json: decoded request exceeds the memory limit");
}

static int bad(ctx *c, const jv *v, const char *what) {
  return hs_agent_fail(c->err, c->errlen, HS_AGENT_EINVAL,
                       "otlp json: %s at byte %zu", what, v ? v->offset : 0);
}

/* Member by lowerCamelCase or snake_case name; NULL when absent or null. */
static const jv *field(const jv *o, const char *camel, const char *snake) {
  const jv *v = hs_json_get(o, camel);
  if (!v && snake)
    v = hs_json_get(o, snake);
  return v && v->type != HS_JSON_NULL ? v : NULL;
}

/* An optional array member: 0 with *out NULL when absent. */
static int array_field(ctx *c, const jv *o, const char *camel,
                       const char *snake, const jv **out) {
  *out = field(o, camel, snake);
  if (*out && (*out)->type != HS_JSON_ARRAY)
    return bad(c, *out, "expected an array");
  return 0;
}

/* A uint64 given as a number or a decimal string. */
static int as_u64(const jv *v, uint64_t *out) {
  if (v->type == HS_JSON_NUMBER)
    return hs_json_as_u64(v, out);
  if (v->type != HS_JSON_STRING || v->u.string.len == 0 || v->u.string.len > 20)
    return -1;
  uint64_t r = 0;
  for (size_t i = 0; i < v->u.string.len; i++) {
    char ch = v->u.string.ptr[i];
    if (ch < '0' || ch > '9')
      return -1;
    unsigned dig = (unsigned)(ch - '0');
    if (r > (UINT64_MAX - dig) / 10)
      return -1;
    r = r * 10 + dig;
  }
  *out = r;
  return 0;
}

static int as_i64(const jv *v, int64_t *out) {
  if (v->type == HS_JSON_NUMBER)
    return hs_json_as_i64(v, out);
  if (v->type != HS_JSON_STRING || v->u.string.len == 0)
    return -1;
  int neg = v->u.string.ptr[0] == '-';
  jv tmp = *v;
  tmp.u.string.ptr += neg;
  tmp.u.string.len -= (size_t)neg;
  uint64_t m;
  if (as_u64(&tmp, &m))
    return -1;
  if (neg ? m > (uint64_t)INT64_MAX + 1 : m > (uint64_t)INT64_MAX)
    return -1;
  *out = neg ? (int64_t)(0 - m) : (int64_t)m;
  return 0;
}

/* An enum given as an integer or by one of its names (names[i] is value
 * i). */
static int as_enum(const jv *v, const char *const *names, int n, int *out) {
  int64_t x;
  if (v->type == HS_JSON_NUMBER) {
    if (hs_json_as_i64(v, &x) || x < INT32_MIN || x > INT32_MAX)
      return -1;
    *out = (int)x;
    return 0;
  }
  if (v->type != HS_JSON_STRING)
    return -1;
  for (int i = 0; i < n; i++)
    if (strcmp(v->u.string.ptr, names[i]) == 0) {
      *out = i;
      return 0;
    }
  return -1;
}

/* Hex id of exactly nbytes bytes into big-endian words. An empty string
 * is "absent" (returns 1) when allow_empty. */
static int hex_id(ctx *c, const jv *v, size_t nbytes, int allow_empty,
                  uint64_t *hi, uint64_t *lo, const char *what) {
  char msg[80];
  if (v->type != HS_JSON_STRING) {
    snprintf(msg, sizeof(msg), "%s must be a hex string", what);
    return bad(c, v, msg);
  }
  if (v->u.string.len == 0 && allow_empty)
    return 1;
  if (v->u.string.len != nbytes * 2) {
    snprintf(msg, sizeof(msg), "%s must have %zu hex digits", what, nbytes * 2);
    return bad(c, v, msg);
  }
  uint64_t w[2] = {0, 0};
  for (size_t i = 0; i < nbytes * 2; i++) {
    int h = hs_hexval((unsigned char)v->u.string.ptr[i]);
    if (h < 0) {
      snprintf(msg, sizeof(msg), "%s must be a hex string", what);
      return bad(c, v, msg);
    }
    size_t word = nbytes == 16 ? i / 16 : 1;
    w[word] = w[word] << 4 | (uint64_t)h;
  }
  if (hi)
    *hi = w[0];
  *lo = w[1];
  return 0;
}

static char *arena_jstr(ctx *c, const jv *v) {
  return hs_agent_arena_utf8(&c->d->arena, v->u.string.ptr, v->u.string.len);
}

/* An AnyValue as JSON text (arrays and kvlists keep their structure).
 * Depth is bounded by the JSON reader's depth cap. */
static int any_json(ctx *c, hs_buf *b, const jv *v) {
  const jv *x;
  int64_t i64;
  if (!v || v->type != HS_JSON_OBJECT)
    return bad(c, v, "AnyValue must be an object");
  if ((x = field(v, "stringValue", "string_value"))) {
    if (x->type != HS_JSON_STRING)
      return bad(c, x, "stringValue must be a string");
    hs_json_strn(b, x->u.string.ptr, x->u.string.len);
  } else if ((x = field(v, "boolValue", "bool_value"))) {
    if (x->type != HS_JSON_BOOL)
      return bad(c, x, "boolValue must be a boolean");
    hs_buf_puts(b, x->u.boolean ? "true" : "false");
  } else if ((x = field(v, "intValue", "int_value"))) {
    if (as_i64(x, &i64))
      return bad(c, x, "intValue must be an int64");
    hs_json_i64(b, i64);
  } else if ((x = field(v, "doubleValue", "double_value"))) {
    if (x->type == HS_JSON_NUMBER)
      hs_json_double(b, x->u.number.value);
    else if (x->type == HS_JSON_STRING)
      hs_json_strn(b, x->u.string.ptr, x->u.string.len);
    else
      return bad(c, x, "doubleValue must be a number");
  } else if ((x = field(v, "bytesValue", "bytes_value"))) {
    if (x->type != HS_JSON_STRING)
      return bad(c, x, "bytesValue must be a base64 string");
    hs_json_strn(b, x->u.string.ptr, x->u.string.len);
  } else if ((x = field(v, "arrayValue", "array_value"))) {
    const jv *vals = NULL;
    if (x->type != HS_JSON_OBJECT || array_field(c, x, "values", NULL, &vals))
      return bad(c, x, "arrayValue must be {\"values\": [...]}");
    hs_buf_putc(b, '[');
    for (size_t i = 0; vals && i < vals->u.array.len; i++) {
      if (i)
        hs_buf_putc(b, ',');
      int rc = any_json(c, b, &vals->u.array.items[i]);
      if (rc)
        return rc;
    }
    hs_buf_putc(b, ']');
  } else if ((x = field(v, "kvlistValue", "kvlist_value"))) {
    const jv *vals = NULL;
    if (x->type != HS_JSON_OBJECT || array_field(c, x, "values", NULL, &vals))
      return bad(c, x, "kvlistValue must be {\"values\": [...]}");
    hs_buf_putc(b, '{');
    for (size_t i = 0; vals && i < vals->u.array.len; i++) {
      const jv *kv = &vals->u.array.items[i];
      const jv *k = field(kv, "key", NULL);
      if (!k || k->type != HS_JSON_STRING)
        return bad(c, kv, "KeyValue needs a string key");
      if (i)
        hs_buf_putc(b, ',');
      hs_json_strn(b, k->u.string.ptr, k->u.string.len);
      hs_buf_putc(b, ':');
      const jv *val = field(kv, "value", NULL);
      if (!val) {
        hs_buf_puts(b, "null");
      } else {
        int rc = any_json(c, b, val);
        if (rc)
          return rc;
      }
    }
    hs_buf_putc(b, '}');
  } else {
    hs_buf_puts(b, "null");
  }
  return 0;
}

/* One KeyValue into kv (see decode_otlp.c for the value mapping). 1: no
 * value, skipped. */
static int attr_value(ctx *c, const jv *src, hs_ing_kv *kv) {
  const jv *k = field(src, "key", NULL);
  if (!k || k->type != HS_JSON_STRING)
    return bad(c, src, "attribute needs a string key");
  const jv *v = field(src, "value", NULL);
  if (!v)
    return 1;
  if (v->type != HS_JSON_OBJECT)
    return bad(c, v, "attribute value must be an AnyValue object");
  if (v->u.object.len == 0)
    return 1;
  if (!(kv->key = arena_jstr(c, k)))
    return oom(c);
  const jv *x;
  int64_t i64;
  if ((x = field(v, "stringValue", "string_value"))) {
    if (x->type != HS_JSON_STRING)
      return bad(c, x, "stringValue must be a string");
    if (!(kv->str = arena_jstr(c, x)))
      return oom(c);
    return 0;
  }
  if ((x = field(v, "boolValue", "bool_value"))) {
    if (x->type != HS_JSON_BOOL)
      return bad(c, x, "boolValue must be a boolean");
    kv->str = x->u.boolean ? "true" : "false";
    return 0;
  }
  if ((x = field(v, "intValue", "int_value"))) {
    if (as_i64(x, &i64))
      return bad(c, x, "intValue must be an int64");
    if (i64 >= -(INT64_C(1) << 53) && i64 <= (INT64_C(1) << 53)) {
      kv->num = (double)i64;
    } else {
      char tmp[32];
      snprintf(tmp, sizeof(tmp), "%" PRId64, i64);
      if (!(kv->str = hs_agent_arena_utf8(&c->d->arena, tmp, strlen(tmp))))
        return oom(c);
    }
    return 0;
  }
  if ((x = field(v, "doubleValue", "double_value")) &&
      x->type == HS_JSON_NUMBER) {
    kv->num = x->u.number.value;
    return 0;
  }
  if ((x = field(v, "bytesValue", "bytes_value")) &&
      x->type == HS_JSON_STRING) {
    if (!(kv->str = arena_jstr(c, x)))
      return oom(c);
    return 0;
  }
  /* "NaN"/"Infinity" doubles, arrays and kvlists: their JSON text. */
  hs_buf b;
  hs_buf_init(&b, c->d->arena.max);
  int rc = 0;
  if ((x = field(v, "doubleValue", "double_value"))) {
    if (x->type != HS_JSON_STRING)
      rc = bad(c, x, "doubleValue must be a number");
    else
      hs_buf_append(&b, x->u.string.ptr, x->u.string.len);
  } else {
    rc = any_json(c, &b, v);
  }
  if (!rc && hs_buf_failed(&b))
    rc = hs_agent_fail(c->err, c->errlen, HS_AGENT_ETOOBIG,
                       "otlp json: attribute value too large");
  if (!rc && !(kv->str = hs_agent_arena_utf8(&c->d->arena, b.data ? b.data : "",
                                             b.len)))
    rc = oom(c);
  hs_buf_free(&b);
  return rc;
}

/* The string value of attribute key in an attributes array, or NULL. */
static const jv *str_attr(const jv *attrs, const char *key) {
  for (size_t i = 0; attrs && i < attrs->u.array.len; i++) {
    const jv *kv = &attrs->u.array.items[i];
    const jv *k = field(kv, "key", NULL);
    if (!k || k->type != HS_JSON_STRING || strcmp(k->u.string.ptr, key) != 0)
      continue;
    const jv *v =
        field(field(kv, "value", NULL), "stringValue", "string_value");
    if (v && v->type == HS_JSON_STRING)
      return v;
  }
  return NULL;
}

/* An attributes array member of o into an arena array *out of *nout
 * entries. */
static int map_attrs(ctx *c, const jv *o, hs_ing_kv **out, uint32_t *nout) {
  const jv *attrs;
  *out = NULL;
  *nout = 0;
  int rc = array_field(c, o, "attributes", NULL, &attrs);
  if (rc || !attrs || !attrs->u.array.len)
    return rc;
  *out = hs_agent_arena_array(&c->d->arena, attrs->u.array.len, sizeof(**out));
  if (!*out)
    return oom(c);
  for (size_t i = 0; i < attrs->u.array.len; i++) {
    rc = attr_value(c, &attrs->u.array.items[i], &(*out)[*nout]);
    if (rc < 0)
      return rc;
    if (rc == 0)
      (*nout)++;
  }
  return 0;
}

/* An optional uint32 count member (dropped*Count); 0 when absent. */
static int count_field(ctx *c, const jv *o, const char *camel,
                       const char *snake, uint32_t *out) {
  const jv *v = field(o, camel, snake);
  uint64_t n = 0;
  if (v && (as_u64(v, &n) || n > UINT32_MAX))
    return bad(c, v, "dropped count must be a uint32");
  *out = (uint32_t)n;
  return 0;
}

static int map_event(ctx *c, const jv *e, hs_ing_event *x) {
  if (e->type != HS_JSON_OBJECT)
    return bad(c, e, "event must be an object");
  const jv *v;
  uint64_t t = 0;
  if ((v = field(e, "timeUnixNano", "time_unix_nano")) &&
      (as_u64(v, &t) || t > (uint64_t)INT64_MAX))
    return bad(c, v, "timeUnixNano must be an int64 of nanoseconds");
  x->time_ns = (int64_t)t;
  v = field(e, "name", NULL);
  if (v && v->type != HS_JSON_STRING)
    return bad(c, v, "event name must be a string");
  if (!(x->name = v ? arena_jstr(c, v) : ""))
    return oom(c);
  return map_attrs(c, e, &x->attrs, &x->nattrs);
}

static int map_link(ctx *c, const jv *l, hs_ing_link *x) {
  if (l->type != HS_JSON_OBJECT)
    return bad(c, l, "link must be an object");
  const jv *v = field(l, "traceId", "trace_id");
  if (!v)
    return bad(c, l, "link without traceId");
  int rc =
      hex_id(c, v, 16, 0, &x->trace_id_high, &x->trace_id_low, "link traceId");
  if (rc)
    return rc;
  if (!(v = field(l, "spanId", "span_id")))
    return bad(c, l, "link without spanId");
  if ((rc = hex_id(c, v, 8, 0, NULL, &x->span_id, "link spanId")))
    return rc;
  if ((v = field(l, "traceState", "trace_state"))) {
    if (v->type != HS_JSON_STRING)
      return bad(c, v, "link traceState must be a string");
    if (v->u.string.len && !(x->tracestate = arena_jstr(c, v)))
      return oom(c);
  }
  uint64_t flags = 0;
  if ((v = field(l, "flags", NULL)) &&
      (as_u64(v, &flags) || flags > UINT32_MAX))
    return bad(c, v, "link flags must be a uint32");
  x->flags = (uint32_t)flags;
  return map_attrs(c, l, &x->attrs, &x->nattrs);
}

/* Span events and links with their dropped counts. */
static int map_events_links(ctx *c, const jv *s, hs_ing_span *o) {
  const jv *arr;
  int rc = array_field(c, s, "events", NULL, &arr);
  if (rc)
    return rc;
  if (arr && arr->u.array.len) {
    o->events = hs_agent_arena_array(&c->d->arena, arr->u.array.len,
                                     sizeof(*o->events));
    if (!o->events)
      return oom(c);
    for (size_t i = 0; i < arr->u.array.len; i++)
      if ((rc = map_event(c, &arr->u.array.items[i], &o->events[o->nevents++])))
        return rc;
  }
  if ((rc = array_field(c, s, "links", NULL, &arr)))
    return rc;
  if (arr && arr->u.array.len) {
    o->links =
        hs_agent_arena_array(&c->d->arena, arr->u.array.len, sizeof(*o->links));
    if (!o->links)
      return oom(c);
    for (size_t i = 0; i < arr->u.array.len; i++)
      if ((rc = map_link(c, &arr->u.array.items[i], &o->links[o->nlinks++])))
        return rc;
  }
  if ((rc = count_field(c, s, "droppedEventsCount", "dropped_events_count",
                        &o->dropped_events)))
    return rc;
  return count_field(c, s, "droppedLinksCount", "dropped_links_count",
                     &o->dropped_links);
}

static const char *const kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
static const char *const status_names[] = {
    "STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

static int map_span(ctx *c, const jv *s, const char *service, hs_ing_span *o) {
  if (s->type != HS_JSON_OBJECT)
    return bad(c, s, "span must be an object");
  const jv *v = field(s, "traceId", "trace_id");
  if (!v)
    return bad(c, s, "span without traceId");
  int rc = hex_id(c, v, 16, 0, &o->trace_id_high, &o->trace_id_low, "traceId");
  if (rc)
    return rc;
  if (!(v = field(s, "spanId", "span_id")))
    return bad(c, s, "span without spanId");
  if ((rc = hex_id(c, v, 8, 0, NULL, &o->span_id, "spanId")))
    return rc;
  if ((v = field(s, "parentSpanId", "parent_span_id")) &&
      (rc = hex_id(c, v, 8, 1, NULL, &o->parent_id, "parentSpanId")) < 0)
    return rc;
  if ((o->trace_id_high == 0 && o->trace_id_low == 0) || o->span_id == 0)
    return bad(c, s, "all-zero traceId or spanId");
  uint64_t start = 0, end = 0;
  if ((v = field(s, "startTimeUnixNano", "start_time_unix_nano")) &&
      (as_u64(v, &start) || start > (uint64_t)INT64_MAX))
    return bad(c, v, "startTimeUnixNano must be an int64 of nanoseconds");
  if ((v = field(s, "endTimeUnixNano", "end_time_unix_nano")) &&
      (as_u64(v, &end) || end > (uint64_t)INT64_MAX))
    return bad(c, v, "endTimeUnixNano must be an int64 of nanoseconds");
  o->start_ns = (int64_t)start;
  o->duration_ns = end > start ? (int64_t)(end - start) : 0;
  int kind = 0;
  if ((v = field(s, "kind", NULL)) && as_enum(v, kind_names, 6, &kind))
    return bad(c, v, "kind must be a SpanKind number");
  o->kind = kind >= 0 && kind <= 5 ? (uint8_t)kind : 0;
  const jv *st = field(s, "status", NULL);
  if (st) {
    int code = 0;
    if (st->type != HS_JSON_OBJECT)
      return bad(c, st, "status must be an object");
    if ((v = field(st, "code", NULL)) && as_enum(v, status_names, 3, &code))
      return bad(c, v, "status.code must be a StatusCode number");
    o->error = code == 2;
  }
  o->service = service;
  v = field(s, "name", NULL);
  if (v && v->type != HS_JSON_STRING)
    return bad(c, v, "name must be a string");
  o->name = v ? arena_jstr(c, v) : "";
  const jv *attrs;
  if ((rc = array_field(c, s, "attributes", NULL, &attrs)))
    return rc;
  const jv *res = str_attr(attrs, "resource.name");
  const jv *type = str_attr(attrs, "span.type");
  o->resource = res ? arena_jstr(c, res) : o->name;
  o->type = type ? arena_jstr(c, type) : NULL;
  if (!o->name || !o->resource || (type && !o->type))
    return oom(c);
  if ((rc = map_attrs(c, s, &o->attrs, &o->nattrs)))
    return rc;
  return map_events_links(c, s, o);
}

/* Counts the spans (and checks the containers' types) so that the span
 * array is allocated once. */
static int count_spans(ctx *c, const jv *rss, size_t *total) {
  *total = 0;
  for (size_t i = 0; rss && i < rss->u.array.len; i++) {
    const jv *rs = &rss->u.array.items[i], *sss;
    if (rs->type != HS_JSON_OBJECT)
      return bad(c, rs, "resourceSpans item must be an object");
    int rc = array_field(c, rs, "scopeSpans", "scope_spans", &sss);
    if (rc)
      return rc;
    for (size_t j = 0; sss && j < sss->u.array.len; j++) {
      const jv *ss = &sss->u.array.items[j], *spans;
      if (ss->type != HS_JSON_OBJECT)
        return bad(c, ss, "scopeSpans item must be an object");
      if ((rc = array_field(c, ss, "spans", NULL, &spans)))
        return rc;
      *total += spans ? spans->u.array.len : 0;
    }
  }
  return 0;
}

static int map_request(ctx *c, const jv *root) {
  if (root->type != HS_JSON_OBJECT)
    return bad(c, root, "request must be an object");
  const jv *rss;
  int rc = array_field(c, root, "resourceSpans", "resource_spans", &rss);
  size_t total;
  if (rc || (rc = count_spans(c, rss, &total)))
    return rc;
  if (total == 0)
    return 0;
  hs_ing_batch *b = &c->d->batch;
  hs_ing_span *spans =
      hs_agent_arena_array(&c->d->arena, b->nspans + total, sizeof(*spans));
  if (!spans)
    return oom(c);
  if (b->nspans)
    memcpy(spans, b->spans, b->nspans * sizeof(*spans));
  b->spans = spans;
  for (size_t i = 0; i < rss->u.array.len; i++) {
    const jv *rs = &rss->u.array.items[i], *sss, *attrs = NULL;
    const jv *resource = field(rs, "resource", NULL);
    if (resource) {
      if (resource->type != HS_JSON_OBJECT)
        return bad(c, resource, "resource must be an object");
      if ((rc = array_field(c, resource, "attributes", NULL, &attrs)))
        return rc;
    }
    const jv *svc = str_attr(attrs, "service.name");
    const char *service =
        svc && svc->u.string.len
            ? arena_jstr(c, svc)
            : hs_agent_arena_utf8(&c->d->arena, "unknown_service", 15);
    if (!service)
      return oom(c);
    const jv *ver = str_attr(attrs, "service.version");
    hs_ing_kv *rattrs = NULL;
    uint32_t nrattrs = 0;
    if (resource && (rc = map_attrs(c, resource, &rattrs, &nrattrs)))
      return rc;
    array_field(c, rs, "scopeSpans", "scope_spans", &sss);
    for (size_t j = 0; sss && j < sss->u.array.len; j++) {
      const jv *list;
      array_field(c, &sss->u.array.items[j], "spans", NULL, &list);
      for (size_t k = 0; list && k < list->u.array.len; k++) {
        hs_ing_span *o = &b->spans[b->nspans];
        if ((rc = map_span(c, &list->u.array.items[k], service, o)))
          return rc;
        o->resource_attrs = rattrs;
        o->nresource_attrs = nrattrs;
        /* The store reads a trace's version from its root span. */
        if (ver && ver->u.string.len &&
            hs_agent_span_default_attr(&c->d->arena, o, "service.version",
                                       ver->u.string.ptr, ver->u.string.len))
          return oom(c);
        b->nspans++;
      }
    }
  }
  return 0;
}

int hs_agent_decode_otlp_json(const uint8_t *data, size_t len,
                              const hs_agent_limits *lim, hs_agent_decoded *d,
                              char *err, size_t errlen) {
  hs_agent_limits l;
  hs_agent_limits_resolve(lim, &l);
  size_t max_text = l.max_memory / 50;
  if (len > max_text)
    return hs_agent_fail(err, errlen, HS_AGENT_ETOOBIG,
                         "otlp json: %zu bytes of JSON (limit %zu)", len,
                         max_text);
  hs_json_limits jl = {max_text ? max_text : 1, 64};
  hs_json_doc *doc = NULL;
  char jerr[160];
  if (hs_json_parse((const char *)data, len, &jl, &doc, jerr, sizeof(jerr),
                    NULL))
    return hs_agent_fail(err, errlen, HS_AGENT_EINVAL, "otlp json: %s", jerr);
  ctx c = {d, err, errlen};
  int rc = map_request(&c, hs_json_root(doc));
  hs_json_free(doc);
  return rc;
}
