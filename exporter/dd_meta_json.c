/* The JSON meta values of the Datadog encoder (exporter/dd_meta_json.h). */
#include "exporter/dd_meta_json.h"

#include <math.h>
#include <stdint.h>

/* Appends ",{...}" / "{...}" for one event or link, and rolls it back if
 * the array would pass HS_TAG_VALUE_MAX (a meta value's limit at the
 * agent); returns 0 when it did not fit (the array is then complete). */
static int json_fits(hs_buf *j, size_t mark) {
  if (!hs_buf_failed(j) && j->len + 1 <= HS_TAG_VALUE_MAX)
    return 1;
  j->len = mark;
  j->failed = 0;
  return 0;
}

static void json_attr_native(hs_buf *j, const hs_tag *t) {
  switch (t->type) {
  case HS_TAG_STR:
    hs_json_str(j, t->v.s);
    break;
  case HS_TAG_INT:
    hs_json_i64(j, t->v.i);
    break;
  case HS_TAG_DOUBLE:
    hs_json_double(j, t->v.d);
    break;
  default:
    hs_buf_puts(j, t->v.i ? "true" : "false");
    break;
  }
}

/* Span links carry string attributes only (Datadog's SpanLink). */
static void json_attr_string(hs_buf *j, const hs_tag *t) {
  switch (t->type) {
  case HS_TAG_STR:
    hs_json_str(j, t->v.s);
    break;
  case HS_TAG_INT:
    hs_buf_putc(j, '"');
    hs_json_i64(j, t->v.i);
    hs_buf_putc(j, '"');
    break;
  case HS_TAG_DOUBLE:
    hs_buf_putc(j, '"');
    if (isfinite(t->v.d))
      hs_json_double(j, t->v.d);
    else
      hs_buf_puts(j, isnan(t->v.d) ? "NaN" : t->v.d > 0 ? "Inf" : "-Inf");
    hs_buf_putc(j, '"');
    break;
  default:
    hs_buf_puts(j, t->v.i ? "\"true\"" : "\"false\"");
    break;
  }
}

static void json_attrs(hs_buf *j, const hs_tag *attrs, uint16_t n,
                       void (*value)(hs_buf *, const hs_tag *)) {
  hs_buf_puts(j, ",\"attributes\":{");
  for (uint16_t i = 0; i < n; i++) {
    if (i > 0)
      hs_buf_putc(j, ',');
    hs_json_str(j, attrs[i].key);
    hs_buf_putc(j, ':');
    value(j, &attrs[i]);
  }
  hs_buf_putc(j, '}');
}

/* [{"name":..,"time_unix_nano":..,"attributes":{..}},...] */
void hs_dd_events_json(hs_buf *j, const hotspan_span *s) {
  hs_buf_reset(j);
  hs_buf_putc(j, '[');
  int n = 0;
  for (const hs_span_event *ev = s->events; ev != NULL; ev = ev->next) {
    size_t mark = j->len;
    if (n > 0)
      hs_buf_putc(j, ',');
    hs_buf_puts(j, "{\"name\":");
    hs_json_str(j, ev->name);
    hs_buf_puts(j, ",\"time_unix_nano\":");
    hs_json_u64(j, ev->time_ns);
    if (ev->nattrs > 0)
      json_attrs(j, ev->attrs, ev->nattrs, json_attr_native);
    hs_buf_putc(j, '}');
    if (!json_fits(j, mark))
      break;
    n++;
  }
  hs_buf_putc(j, ']');
}

/* [{"trace_id":"<32 hex>","span_id":"<16 hex>",...},...] */
void hs_dd_links_json(hs_buf *j, const hotspan_span *s) {
  hs_buf_reset(j);
  hs_buf_putc(j, '[');
  int n = 0;
  for (const hs_span_link *l = s->links; l != NULL; l = l->next) {
    size_t mark = j->len;
    if (n > 0)
      hs_buf_putc(j, ',');
    hs_buf_puts(j, "{\"trace_id\":\"");
    hs_json_hex64(j, l->trace_id_high);
    hs_json_hex64(j, l->trace_id_low);
    hs_buf_puts(j, "\",\"span_id\":\"");
    hs_json_hex64(j, l->span_id);
    hs_buf_putc(j, '"');
    if (l->tracestate != NULL && l->tracestate[0] != '\0') {
      hs_buf_puts(j, ",\"tracestate\":");
      hs_json_str(j, l->tracestate);
    }
    /* Datadog: when flags are given, bit 31 says so. */
    hs_buf_puts(j, ",\"flags\":");
    hs_json_u64(j, UINT64_C(0x80000000) | l->trace_flags);
    if (l->nattrs > 0)
      json_attrs(j, l->attrs, l->nattrs, json_attr_string);
    hs_buf_putc(j, '}');
    if (!json_fits(j, mark))
      break;
    n++;
  }
  hs_buf_putc(j, ']');
}
