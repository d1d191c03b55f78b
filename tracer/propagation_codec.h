/* Propagation codecs over plain hotspan_context values (no tracer state):
 * W3C tracecontext, Datadog, B3 multi and B3 single. The public
 * hotspan_extract / hotspan_inject wrap these with the tracer's styles. */
#ifndef HS_TRACER_PROPAGATION_CODEC_H
#define HS_TRACER_PROPAGATION_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "hotspan/propagation.h"

enum hs_prop_style {
  HS_STYLE_DATADOG = 1,
  HS_STYLE_TRACECONTEXT = 2,
  HS_STYLE_B3MULTI = 3,
  HS_STYLE_B3SINGLE = 4
};
#define HS_PROP_MAX_STYLES 4

typedef struct hs_prop_styles {
  uint8_t n;
  uint8_t style[HS_PROP_MAX_STYLES];
} hs_prop_styles;

/* Parses a comma (or space) separated style list, case-insensitive:
 * "datadog", "tracecontext", "b3multi", "b3" / "b3 single header" (single),
 * "none" (empty list). Duplicates are kept once. Returns 0, or -1 when a
 * name is unknown (then *out holds the known ones and the caller logs). */
int hs_prop_parse_styles(const char *list, hs_prop_styles *out);

/* Formats a style list ("datadog,tracecontext") into buf. */
void hs_prop_format_styles(const hs_prop_styles *s, char *buf, size_t len);

/* Extracts per styles (see hotspan_extract). *malformed is incremented for
 * every style whose headers were present but rejected. */
int hs_prop_extract(const hs_prop_styles *styles,
                    const hotspan_carrier_reader *reader, void *carrier,
                    hotspan_context *out, uint64_t *malformed);

/* Injects ctx per styles. ctx->span_id is the id of the span whose children
 * will be downstream; ctx->sampling_priority must be decided. */
int hs_prop_inject(const hs_prop_styles *styles, const hotspan_context *ctx,
                   const hotspan_carrier_writer *writer, void *carrier);

/* The W3C tracestate header value that injecting ctx writes: the dd member
 * ("dd=s:..;p:<span id>;o:..;t.*"), then other vendors' members. out must
 * hold HS_W3C_TRACESTATE_OUT bytes; returns the length (NUL-terminated).
 * *span_id_at is where the 16 hex digits of ctx->span_id are, so that a
 * caller can reuse the value for another span of the same trace. */
#define HS_W3C_TRACESTATE_OUT (256 + 1 + HOTSPAN_TRACESTATE_MAX + 1)
size_t hs_prop_w3c_tracestate(const hotspan_context *ctx, char *out,
                              size_t *span_id_at);

#endif
