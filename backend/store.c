/* Dispatch from the hs_store_* functions to the implementation's table. */
#include "backend/store.h"

#include <stdio.h>

static int no_store(char *err, size_t errlen) {
  if (err && errlen)
    snprintf(err, errlen, "no store");
  return HS_STORE_ERR;
}

void hs_store_close(hs_store *s) {
  if (s)
    s->vt->close(s);
}

int hs_store_ingest(hs_store *s, const hs_ing_batch *b, char *err,
                    size_t errlen) {
  return s ? s->vt->ingest(s, b, err, errlen) : no_store(err, errlen);
}

int hs_store_retain(hs_store *s, const hs_store_retention *r,
                    hs_store_retain_stats *st, char *err, size_t errlen) {
  return s ? s->vt->retain(s, r, st, err, errlen) : no_store(err, errlen);
}

int hs_store_traces(hs_store *s, const hs_store_trace_filter *f,
                    hs_store_trace_cb cb, void *arg, char *err, size_t errlen) {
  return s ? s->vt->traces(s, f, cb, arg, err, errlen) : no_store(err, errlen);
}

int hs_store_get_trace(hs_store *s, uint64_t hi, uint64_t lo,
                       hs_store_trace_cb cb, void *arg, char *err,
                       size_t errlen) {
  return s ? s->vt->trace(s, hi, lo, cb, arg, err, errlen)
           : no_store(err, errlen);
}

int hs_store_trace_spans(hs_store *s, uint64_t hi, uint64_t lo,
                         hs_store_span_cb cb, void *arg, char *err,
                         size_t errlen) {
  return s ? s->vt->trace_spans(s, hi, lo, cb, arg, err, errlen)
           : no_store(err, errlen);
}

int hs_store_find_span(hs_store *s, uint64_t span_id, hs_store_span_cb cb,
                       void *arg, char *err, size_t errlen) {
  return s ? s->vt->find_span(s, span_id, cb, arg, err, errlen)
           : no_store(err, errlen);
}

int hs_store_samples(hs_store *s, const hs_store_sample_sel *sel,
                     hs_store_sample_cb cb, void *arg, char *err,
                     size_t errlen) {
  return s ? s->vt->samples(s, sel, cb, arg, err, errlen)
           : no_store(err, errlen);
}

int hs_store_stack(hs_store *s, int64_t stack_id, hs_store_stack_cb cb,
                   void *arg, char *err, size_t errlen) {
  return s ? s->vt->stack(s, stack_id, cb, arg, err, errlen)
           : no_store(err, errlen);
}

int hs_store_versions(hs_store *s, const char *service, hs_store_version_cb cb,
                      void *arg, char *err, size_t errlen) {
  return s ? s->vt->versions(s, service, cb, arg, err, errlen)
           : no_store(err, errlen);
}
