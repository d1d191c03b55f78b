/* Trace assembly and sampling decisions.
 *
 * The finished spans of a local trace are buffered in the trace and handed
 * on as one chunk when the local root finishes. Long traces are flushed in
 * parts (partial_flush_min_spans). Spans finishing after their root are
 * flushed as chunks of their own. Spans still open when the root finishes
 * are counted (spans_unfinished); the trace keeps them on the tracer's
 * orphan list so that their memory is reclaimed when they finish, or when
 * the tracer is freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "hotspan/propagation.h"
#include "tracer/internal.h"

/* ------------------------------------------------------------ sampling */

/* Appends "_dd.p.dm=-N" to the trace's propagated tags unless upstream
 * already set a decision maker. Under tr->mu. */
static void add_decision_maker(hs_trace *tr) {
  if (strstr(tr->propagated_tags, "_dd.p.dm=") != NULL)
    return;
  size_t len = strlen(tr->propagated_tags);
  int n = snprintf(tr->propagated_tags + len, sizeof tr->propagated_tags - len,
                   "%s_dd.p.dm=-%d", len ? "," : "", tr->mechanism);
  if (n < 0 || (size_t)n >= sizeof tr->propagated_tags - len)
    tr->propagated_tags[len] = '\0'; /* does not fit: leave tags as they were */
}

/* Under tr->mu. */
static int decide_locked(hs_trace *tr) {
  if (tr->decided)
    return tr->priority;
  hotspan_tracer *t = tr->tracer;
  const hotspan_span *root = tr->local_root;
  hs_sampling_decision d;
  hs_sampler_decide(t->sampler, root ? root->service : t->settings.service,
                    root ? root->name : NULL, root ? root->resource : NULL,
                    tr->id_low, hs_now_mono_ns(), &d);
  tr->priority = d.priority;
  tr->mechanism = d.mechanism;
  tr->rule_rate = d.rule_rate;
  tr->limit_rate = d.limit_rate;
  tr->decided = 1;
  if (d.priority > 0)
    add_decision_maker(tr);
  else if (d.rule_rate >= 0 && d.limit_rate >= 0)
    atomic_fetch_add_explicit(&t->counters.traces_rate_limited, 1,
                              memory_order_relaxed);
  return tr->priority;
}

int hs_trace_decide(hs_trace *tr) {
  pthread_mutex_lock(&tr->mu);
  int p = decide_locked(tr);
  pthread_mutex_unlock(&tr->mu);
  return p;
}

/* ------------------------------------------------------------ flushing */

/* Detaches the finished spans into a chunk. Under tr->mu. */
static hs_chunk *take_finished(hs_trace *tr, int partial) {
  hs_chunk *c = malloc(sizeof *c);
  if (c == NULL)
    return NULL;
  c->trace = tr;
  c->spans = tr->finished;
  c->nspans = tr->nfinished;
  c->partial = (uint8_t)partial;
  c->next = NULL;
  tr->finished = NULL;
  tr->nfinished = 0;
  hs_trace_ref(tr); /* the chunk's own reference */
  return c;
}

/* Sends a chunk on, or drops it if the trace is not kept. Outside tr->mu. */
static void dispatch(hotspan_tracer *t, hs_chunk *c, int keep) {
  if (keep) {
    hs_writer_enqueue(t, c);
    return;
  }
  atomic_fetch_add_explicit(&t->counters.spans_dropped, c->nspans,
                            memory_order_relaxed);
  hs_chunk_free(c);
}

/* Orphan list operations run under tr->mu (lock order: tr->mu, then
 * orphans_mu), so that adding and the last late finish cannot cross. */
static void orphan_add(hotspan_tracer *t, hs_trace *tr) {
  hs_trace_ref(tr);
  pthread_mutex_lock(&t->orphans_mu);
  tr->orphan_next = t->orphans;
  t->orphans = tr;
  pthread_mutex_unlock(&t->orphans_mu);
}

/* Returns 1 if tr was on the list; the caller then drops the list's
 * reference after unlocking tr->mu. */
static int orphan_remove(hotspan_tracer *t, hs_trace *tr) {
  int found = 0;
  pthread_mutex_lock(&t->orphans_mu);
  for (hs_trace **pp = &t->orphans; *pp != NULL; pp = &(*pp)->orphan_next) {
    if (*pp == tr) {
      *pp = tr->orphan_next;
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&t->orphans_mu);
  return found;
}

void hs_trace_span_finished(hotspan_span *s) {
  hs_trace *tr = s->trace;
  hotspan_tracer *t = tr->tracer;
  hs_chunk *chunk = NULL;
  int keep = 0, drop_orphan_ref = 0;
  uint32_t left_open = 0;

  pthread_mutex_lock(&tr->mu);
  if (s->open_prev != NULL)
    s->open_prev->open_next = s->open_next;
  else
    tr->open_head = s->open_next;
  if (s->open_next != NULL)
    s->open_next->open_prev = s->open_prev;
  s->open_prev = s->open_next = NULL;
  tr->nopen--;
  s->next = tr->finished;
  tr->finished = s;
  tr->nfinished++;

  if (s->is_local_root) {
    tr->root_finished = 1;
    keep = decide_locked(tr) > 0;
    tr->local_root = NULL;
    chunk = take_finished(tr, 0);
    left_open = tr->nopen;
    if (left_open > 0)
      orphan_add(t, tr);
  } else if (tr->root_finished) {
    keep = decide_locked(tr) > 0;
    chunk = take_finished(tr, 1);
    if (tr->nopen == 0)
      drop_orphan_ref = orphan_remove(t, tr);
  } else if (tr->nfinished >= t->settings.partial_flush_min_spans) {
    keep = decide_locked(tr) > 0;
    chunk = take_finished(tr, 1);
    atomic_fetch_add_explicit(&t->counters.chunks_partial, 1,
                              memory_order_relaxed);
  }
  pthread_mutex_unlock(&tr->mu);

  atomic_fetch_add_explicit(&t->counters.spans_finished, 1,
                            memory_order_relaxed);
  if (s->is_local_root) {
    atomic_fetch_add_explicit(keep ? &t->counters.traces_kept
                                   : &t->counters.traces_dropped,
                              1, memory_order_relaxed);
    if (left_open > 0)
      atomic_fetch_add_explicit(&t->counters.spans_unfinished, left_open,
                                memory_order_relaxed);
  }
  if (chunk == NULL) {
    if (s->is_local_root || tr->root_finished)
      hs_log(HS_LOG_WARN, "out of memory: spans of a trace are lost");
  } else {
    dispatch(t, chunk, keep);
  }
  if (drop_orphan_ref)
    hs_trace_unref(tr); /* may be the last if the chunk is already written */
}

/* Frees traces whose spans were never finished (tracer shutdown). Their
 * open spans are released; the user's pointers to them are invalid from
 * now on, as hotspan_tracer_free documents. */
void hs_trace_reclaim_orphans(hotspan_tracer *t) {
  pthread_mutex_lock(&t->orphans_mu);
  hs_trace *list = t->orphans;
  t->orphans = NULL;
  pthread_mutex_unlock(&t->orphans_mu);
  while (list != NULL) {
    hs_trace *tr = list;
    list = tr->orphan_next;
    pthread_mutex_lock(&tr->mu);
    hotspan_span *open = tr->open_head;
    hotspan_span *fin = tr->finished;
    tr->open_head = NULL;
    tr->finished = NULL;
    tr->nopen = 0;
    tr->nfinished = 0;
    pthread_mutex_unlock(&tr->mu);
    uint32_t n = 0;
    for (hotspan_span *s = open, *next; s != NULL; s = next) {
      next = s->open_next;
      hs_span_release(s);
      n++;
    }
    for (hotspan_span *s = fin, *next; s != NULL; s = next) {
      next = s->next;
      hs_span_release(s);
      n++;
    }
    hs_trace_unref_n(tr, n + 1); /* its spans' and the orphan list's */
  }
}

/* ------------------------------------------------------------ context */

static void fill_context(hs_trace *tr, const hotspan_span *s,
                         hotspan_context *out) {
  memset(out, 0, sizeof *out);
  out->trace_id_high = tr->id_high;
  out->trace_id_low = tr->id_low;
  out->span_id = s->span_id;
  pthread_mutex_lock(&tr->mu);
  out->sampling_priority = tr->decided ? tr->priority : HOTSPAN_PRIORITY_UNSET;
  out->trace_flags =
      (!tr->decided || tr->priority > 0) ? 1 : 0; /* undecided: kept */
  memcpy(out->origin, tr->origin, sizeof out->origin);
  memcpy(out->propagated_tags, tr->propagated_tags,
         sizeof out->propagated_tags);
  memcpy(out->tracestate_other, tr->tracestate_other,
         sizeof out->tracestate_other);
  pthread_mutex_unlock(&tr->mu);
}

int hotspan_span_context(const hotspan_span *s, hotspan_context *out) {
  if (s == NULL || out == NULL)
    return HOTSPAN_EINVAL;
  fill_context(s->trace, s, out);
  return HOTSPAN_OK;
}

int hotspan_inject(hotspan_tracer *t, hotspan_span *s,
                   const hotspan_carrier_writer *writer, void *carrier) {
  if (t == NULL || s == NULL || writer == NULL || writer->set == NULL)
    return HOTSPAN_EINVAL;
  hs_trace_decide(s->trace);
  hotspan_context ctx;
  fill_context(s->trace, s, &ctx);
  return hs_prop_inject(&t->settings.inject, &ctx, writer, carrier);
}

int hotspan_extract(hotspan_tracer *t, const hotspan_carrier_reader *reader,
                    void *carrier, hotspan_context *out) {
  if (t == NULL || reader == NULL || reader->foreach == NULL || out == NULL)
    return HOTSPAN_EINVAL;
  uint64_t malformed = 0;
  int rc =
      hs_prop_extract(&t->settings.extract, reader, carrier, out, &malformed);
  if (malformed > 0)
    atomic_fetch_add_explicit(&t->counters.extract_errors, malformed,
                              memory_order_relaxed);
  return rc;
}

typedef struct pairs_carrier {
  const char *const *pairs;
  size_t n;
} pairs_carrier;

static int pairs_foreach(void *carrier, hotspan_header_visit_fn visit,
                         void *arg) {
  const pairs_carrier *pc = carrier;
  for (size_t i = 0; i < pc->n; i++) {
    const char *k = pc->pairs[2 * i], *v = pc->pairs[2 * i + 1];
    if (k == NULL || v == NULL)
      continue;
    if (visit(arg, k, strlen(k), v, strlen(v)) != 0)
      break;
  }
  return 0;
}

int hotspan_extract_pairs(hotspan_tracer *t, const char *const *pairs, size_t n,
                          hotspan_context *out) {
  if (pairs == NULL && n != 0)
    return HOTSPAN_EINVAL;
  pairs_carrier pc = {pairs, n};
  hotspan_carrier_reader r = {pairs_foreach};
  return hotspan_extract(t, &r, &pc, out);
}
