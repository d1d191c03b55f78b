/* JSON written into meta values of Datadog spans: the span's events
 * (meta "events") and links (meta "_dd.span_links"). Each array stays
 * under HS_TAG_VALUE_MAX bytes (a meta value's limit at the agent): an
 * entry that would pass it is left out with those after it. */
#ifndef HS_EXPORTER_DD_META_JSON_H
#define HS_EXPORTER_DD_META_JSON_H

#include "common/buf.h"
#include "tracer/trace_sink.h"

/* j is reset first. [{"name","time_unix_nano","attributes":{..}},...]
 * with attribute values of their own types. */
void hs_dd_events_json(hs_buf *j, const hotspan_span *s);
/* j is reset first. [{"trace_id" (32 hex),"span_id" (16 hex),
 * "tracestate","flags" (bit 31 set: flags given),"attributes"},...] with
 * string attribute values (Datadog's SpanLink). */
void hs_dd_links_json(hs_buf *j, const hotspan_span *s);

#endif
