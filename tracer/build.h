/* Assembling a tracer: what the wiring code (lib/tracer_new.c) uses to
 * build hotspan_tracer_new from the tracer and the exporters, which do
 * not know each other. Order: hs_tracer_create, hs_tracer_add_sink for
 * each sink (built with hs_tracer_sink_host), hs_tracer_launch; on a
 * failure before launch, hs_tracer_discard. */
#ifndef HS_TRACER_BUILD_H
#define HS_TRACER_BUILD_H

#include "hotspan/tracer.h"
#include "tracer/trace_sink.h"

/* Resolves cfg (NULL: defaults) and the environment into a tracer with no
 * sink and no thread yet. Same results as hotspan_tracer_new. */
int hs_tracer_create(const hotspan_config *cfg, hotspan_tracer **out);

/* What a sink built for t may use of it; valid as long as t. */
const hs_trace_sink_host *hs_tracer_sink_host(hotspan_tracer *t);

/* Adds a sink; the tracer owns it from then on (destroy at free). Call
 * before spans are created. Returns HOTSPAN_OK or HOTSPAN_EINVAL. */
int hs_tracer_add_sink(hotspan_tracer *t, hs_trace_sink *sink);

/* Starts t's writer thread, logs its configuration, and makes t's
 * identity the process's if it is the first tracer. HOTSPAN_OK or
 * HOTSPAN_ESYS (t is then still unlaunched: hs_tracer_discard it). */
int hs_tracer_launch(hotspan_tracer *t);

/* Frees a tracer that was never launched, with its sinks. */
void hs_tracer_discard(hotspan_tracer *t);

#endif
