/* The public form of exporter counters (hotspan_exporter_stats), shared by
 * every trace and profile exporter. */
#include <stdio.h>
#include <string.h>

#include "exporter/transport.h"
#include "hotspan/tracer.h"

void hs_target_public_stats(hs_target *t, hotspan_exporter_stats *out) {
  hs_target_stats st;
  memset(&st, 0, sizeof st);
  hs_target_get_stats(t, &st);
  snprintf(out->name, sizeof out->name, "%s", hs_target_name(t));
  snprintf(out->url, sizeof out->url, "%s", hs_target_url(t));
  out->payloads_sent = st.payloads_sent;
  out->items_sent = st.items_sent;
  out->bytes_sent = st.bytes_sent;
  out->retries = st.retries;
  out->dropped_budget = st.dropped_budget + st.dropped_nomem;
  out->dropped_attempts = st.dropped_attempts;
  out->dropped_rejected = st.dropped_rejected;
  out->dropped_shutdown = st.dropped_shutdown;
  out->items_dropped = st.items_dropped;
  out->bytes_queued = st.bytes_queued;
  out->bytes_budget = hs_target_budget(t);
  out->last_status = st.last_status;
  snprintf(out->last_error, sizeof out->last_error, "%s", st.last_error);
}
