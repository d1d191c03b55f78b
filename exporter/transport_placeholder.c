/* PLACEHOLDER for exporter/transport.c, which is written separately: it
 * only lets the library link until then, and must be deleted when the
 * real transport is merged (the duplicate definitions make the link fail
 * otherwise, so it cannot be forgotten). Every target creation fails, so
 * exporters log that they have no target and send nothing. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "exporter/transport.h"
#include "hotspan/error.h"

hs_target *hs_target_new(const hs_target_config *cfg) {
  hs_log(HS_LOG_WARN, "%s: no HTTP transport in this build",
         cfg && cfg->name ? cfg->name : "target");
  return NULL;
}

int hs_target_send(hs_target *t, char *body, size_t len,
                   const char *const *headers, uint32_t items) {
  (void)t;
  (void)len;
  (void)headers;
  (void)items;
  free(body);
  return HOTSPAN_ENOTSUP;
}

int hs_target_flush(hs_target *t, int timeout_ms) {
  (void)t;
  (void)timeout_ms;
  return HOTSPAN_OK;
}

void hs_target_free(hs_target *t, int timeout_ms) {
  (void)t;
  (void)timeout_ms;
}

void hs_target_get_stats(hs_target *t, hs_target_stats *out) {
  (void)t;
  memset(out, 0, sizeof *out);
}

const char *hs_target_name(const hs_target *t) {
  (void)t;
  return "";
}
