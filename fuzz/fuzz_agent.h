/* Shared body of the agent decoder fuzz targets: each defines
 * FUZZ_DECODE(data, len, lim, d, err, errlen) and includes this file.
 * Properties checked beyond "no crash, no sanitizer report": the result is
 * one of the documented codes; an error comes with a message; a success
 * gives a batch whose counts and pointers are consistent. Limits are kept
 * small so that the fuzzer also explores the limit paths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/decode.h"

static size_t walk_kvs(const hs_ing_kv *kvs, uint32_t n) {
  size_t sum = 0;
  for (uint32_t k = 0; k < n; k++)
    sum += strlen(kvs[k].key) + (kvs[k].str ? strlen(kvs[k].str) : 0);
  return sum;
}

static void check_batch(const hs_ing_batch *b) {
  volatile size_t sink = 0;
  for (size_t i = 0; i < b->nspans; i++) {
    const hs_ing_span *s = &b->spans[i];
    sink += walk_kvs(s->attrs, s->nattrs);
    sink += walk_kvs(s->resource_attrs, s->nresource_attrs);
    for (uint32_t k = 0; k < s->nevents; k++)
      sink += strlen(s->events[k].name) +
              walk_kvs(s->events[k].attrs, s->events[k].nattrs);
    for (uint32_t k = 0; k < s->nlinks; k++) {
      if (s->links[k].tracestate)
        sink += strlen(s->links[k].tracestate);
      sink += walk_kvs(s->links[k].attrs, s->links[k].nattrs);
    }
    if (s->error != 0 && s->error != 1)
      abort();
  }
  for (size_t i = 0; i < b->nsamples; i++) {
    const hs_ing_sample *s = &b->samples[i];
    if (s->type != HS_PT_CPU && s->type != HS_PT_WALL)
      abort();
    for (uint32_t k = 0; k < s->nframes; k++)
      if (!s->frames[k].function)
        abort();
      else
        sink += strlen(s->frames[k].function);
  }
  (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  hs_agent_limits lim = {1 << 20, 16 << 20};
  hs_agent_decoded d;
  char err[256] = "";
  hs_agent_decoded_init(&d, &lim);
  int rc = FUZZ_DECODE(data, len, &lim, &d, err, sizeof(err));
  if (rc == HS_AGENT_OK)
    check_batch(&d.batch);
  else if (rc != HS_AGENT_EINVAL && rc != HS_AGENT_ETOOBIG &&
           rc != HS_AGENT_ENOMEM)
    abort();
  else if (err[0] == 0)
    abort();
  hs_agent_decoded_free(&d);
  return 0;
}
