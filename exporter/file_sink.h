/* File sink: DIR/traces.jsonl, one JSON object per span (the format is
 * in docs/configuration.md, "File sink"), so that a program traced
 * without any backend still leaves its traces behind. */
#ifndef HS_EXPORTER_FILE_SINK_H
#define HS_EXPORTER_FILE_SINK_H

#include "common/buf.h"
#include "tracer/trace_sink.h"

/* A sink writing DIR/traces.jsonl for the tracer of h (its settings give
 * env, version and global tags). Creates DIR if missing. Returns NULL and
 * logs on failure. */
hs_trace_sink *hs_file_sink_new(const hs_trace_sink_host *h, const char *dir);

/* Appends span s as one JSON object (no newline), with the tracer
 * settings st. */
void hs_span_to_json(const hotspan_span *s, const hs_tracer_settings *st,
                     hs_buf *out);
/* A span's links as a JSON array of {"trace_id" (32 hex),"span_id" (16
 * hex),"tracestate" (if any),"flags","attributes"}. dd_form 1 writes Datadog's
 * "_dd.span_links" form: attribute values as strings, flags with bit 31
 * set, attributes left out when empty. Empty lists give "[]". */
void hs_span_links_json(const hotspan_span *s, hs_buf *out, int dd_form);

#endif
