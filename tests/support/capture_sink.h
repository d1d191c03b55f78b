/* Test helper: a sink that copies every span it receives, so tests can
 * assert on what the tracer handed on. */
#ifndef HS_TESTS_SUPPORT_CAPTURE_SINK_H
#define HS_TESTS_SUPPORT_CAPTURE_SINK_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tracer/internal.h"

typedef struct cap_span {
  uint64_t trace_hi, trace_lo, span_id, parent_id, local_root_id;
  uint64_t start, duration;
  char name[64], resource[128], service[64], type[32];
  int kind, error, is_root, priority, partial;
  int ntags;
  char tag_keys[16][64];
  char tag_vals[16][128];
  char propagated[HOTSPAN_PROPAGATED_TAGS_MAX];
  uint32_t endpoint_id;
} cap_span;

typedef struct capture_sink {
  hs_trace_sink base;
  pthread_mutex_t mu;
  cap_span *spans;
  size_t n, cap;
  size_t chunks;
} capture_sink;

/* The tracer owns the sink after hs_tracer_add_sink; the test keeps the
 * pointer to read it before hotspan_tracer_free. */
capture_sink *capture_sink_new(void);

const cap_span *cap_find(capture_sink *cs, const char *name);

const char *cap_tag(const cap_span *s, const char *key);

/* A tracer that ignores the environment and writes to a capture sink. */
hotspan_tracer *capture_tracer(capture_sink **out, hotspan_config *cfg_or_null);

#endif
