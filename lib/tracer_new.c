/* hotspan_tracer_new: the tracer with the sinks its settings ask for
 * (the file sink under output_dir, the Datadog and OTLP exporters). The
 * tracer and the exporters do not know each other; this is where they
 * meet. */
#include <string.h>

#include "exporter/dd_trace_sink.h"
#include "exporter/file_sink.h"
#include "exporter/otlp.h"
#include "hotspan/error.h"
#include "hotspan/tracer.h"
#include "tracer/build.h"

/* The network exporters chosen by the settings. An address given in code
 * that the exporter refuses is a configuration error; one from the
 * environment was already logged, and the tracer runs without it. */
static int add_exporters(hotspan_tracer *t, const hs_trace_sink_host *h) {
  const hs_tracer_settings *st = h->settings;
  if (st->exporters & HS_EXPORT_DATADOG) {
    hs_dd_trace_options o;
    memset(&o, 0, sizeof o);
    o.agent_url = st->agent_url;
    if (o.agent_url == NULL && !st->use_env)
      o.agent_url = HS_DD_DEFAULT_AGENT_URL;
    o.byte_budget = (size_t)st->export_max_bytes;
    o.timeout_ms = st->export_timeout_ms;
    hs_trace_sink *s = hs_dd_trace_sink_new(h, &o);
    if (s == NULL && st->agent_url != NULL)
      return HOTSPAN_ECONFIG;
    if (s != NULL)
      hs_tracer_add_sink(t, s);
  }
  if (st->exporters & HS_EXPORT_OTLP) {
    hs_otlp_trace_options o;
    memset(&o, 0, sizeof o);
    o.compression = -1;
    o.byte_budget = (size_t)st->export_max_bytes;
    o.timeout_ms = st->export_timeout_ms;
    hs_trace_sink *s = hs_otlp_trace_sink_new(h, &o);
    if (s == NULL && st->otlp_endpoint != NULL)
      return HOTSPAN_ECONFIG;
    if (s != NULL)
      hs_tracer_add_sink(t, s);
  }
  return HOTSPAN_OK;
}

int hotspan_tracer_new(const hotspan_config *cfg, hotspan_tracer **out) {
  if (out == NULL)
    return HOTSPAN_EINVAL;
  *out = NULL;
  hotspan_tracer *t;
  int rc = hs_tracer_create(cfg, &t);
  if (rc != HOTSPAN_OK)
    return rc;
  const hs_trace_sink_host *h = hs_tracer_sink_host(t);
  if (h->settings->output_dir != NULL) {
    hs_trace_sink *fs = hs_file_sink_new(h, h->settings->output_dir);
    if (fs != NULL)
      hs_tracer_add_sink(t, fs);
  }
  rc = add_exporters(t, h);
  if (rc == HOTSPAN_OK)
    rc = hs_tracer_launch(t);
  if (rc != HOTSPAN_OK) {
    hs_tracer_discard(t);
    return rc;
  }
  *out = t;
  return HOTSPAN_OK;
}
