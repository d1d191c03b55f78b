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
#include "common/text.h"
#include "hotspan/propagation.h"
#include "tracer/internal.h"

/* ------------------------------------------------------------ sampling */

/* Removes the "_dd.p.dm=..." entry from the propagated tags. Under mu. */
static void remove_decision_maker(hs_trace *tr) {
  char *tags = tr->propagated_tags;
  char *p = tags;
  while (*p != '\0') {
    char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (strncmp(p, "_dd.p.dm=", 9) == 0) {
      if (end != NULL)
        memmove(p, end + 1, strlen(end + 1) + 1);
      else if (p > tags)
        p[-1] = '\0'; /* last entry: drop it with its comma */
      else
        p[0] = '\0';
      return;
    }
    p += n;
    if (*p == ',')
      p++;
  }
}

/* Sets "_dd.p.dm=-N" in the trace's propagated tags, replacing an earlier
 * value. Under tr->mu. */
static void add_decision_maker(hs_trace *tr) {
  if (tr->propagated_tags[0] != '\0')
    remove_decision_maker(tr);
  /* Formatted without snprintf: this runs once per trace, and snprintf
   * costs more than the rest of the decision. */
  char digits[24];
  size_t nd =
      hs_fmt_u64(digits, tr->mechanism > 0 ? (uint64_t)tr->mechanism : 0);
  size_t len = strlen(tr->propagated_tags);
  size_t need = (len ? 1 : 0) + 10 + nd; /* [,]_dd.p.dm=-N */
  if (len + need >= sizeof tr->propagated_tags)
    return; /* does not fit: leave tags as they were */
  char *p = tr->propagated_tags + len;
  if (len)
    *p++ = ',';
  memcpy(p, "_dd.p.dm=-", 10);
  memcpy(p + 10, digits, nd + 1);
}

void hs_trace_set_priority_locked(hs_trace *tr, int priority, int mechanism) {
  tr->priority = priority;
  tr->mechanism = mechanism;
  tr->decided = 1;
  atomic_store_explicit(&tr->sampled_flag, priority > 0 ? 1 : 0,
                        memory_order_relaxed);
  if (mechanism < 0)
    return; /* decided upstream: its tags stay as they came */
  if (priority > 0)
    add_decision_maker(tr);
  else
    remove_decision_maker(tr);
}

/* Under tr->mu. */
static int decide_locked(hs_trace *tr) {
  if (tr->decided)
    return tr->priority;
  hotspan_tracer *t = tr->tracer;
  const hotspan_span *root = tr->local_root;
  hs_sampling_decision d;
  hs_sampler_decide(t->sampler, root ? root->service : t->settings.service,
                    t->settings.env, root ? root->name : NULL,
                    root ? root->resource : NULL, tr->id_low, hs_now_mono_ns(),
                    &d);
  hs_trace_set_priority_locked(tr, d.priority, d.mechanism);
  tr->rule_rate = d.rule_rate;
  tr->limit_rate = d.limit_rate;
  tr->agent_rate = d.agent_rate;
  if (d.priority <= 0 && d.rule_rate >= 0 && d.limit_rate >= 0)
    atomic_fetch_add_explicit(&t->counters.traces_rate_limited, 1,
                              memory_order_relaxed);
  return tr->priority;
}

static int hs_trace_decide(hs_trace *tr) {
  pthread_mutex_lock(&tr->mu);
  int p = decide_locked(tr);
  pthread_mutex_unlock(&tr->mu);
  return p;
}

/* ------------------------------------------------------------ flushing */

/* Moves the trace's span counts into the tracer's counters: one pair of
 * atomic additions per chunk instead of two per span. Outside tr->mu,
 * with counts taken under it. */
static void add_counts(hotspan_tracer *t, uint32_t created, uint32_t finished) {
  if (created != 0)
    atomic_fetch_add_explicit(&t->counters.spans_created, created,
                              memory_order_relaxed);
  if (finished != 0)
    atomic_fetch_add_explicit(&t->counters.spans_finished, finished,
                              memory_order_relaxed);
}

/* Detaches the finished spans into a chunk. Under tr->mu. */
static hs_chunk *take_finished(hs_trace *tr, int partial) {
  hs_chunk *c = hs_chunk_alloc();
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
  uint32_t created = 0, finished = 0;
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
  tr->n_finished++;
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
  if (chunk != NULL) {
    created = tr->n_created;
    finished = tr->n_finished;
    tr->n_created = tr->n_finished = 0;
  }
  pthread_mutex_unlock(&tr->mu);
  add_counts(t, created, finished);

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

/* ------------------------------------------------------------ registry */

static unsigned shard_of(const hs_trace *tr) {
  uintptr_t p = (uintptr_t)tr;
  return (unsigned)((p >> 6) ^ (p >> 12)) % HS_LIVE_SHARDS;
}

void hs_trace_register(hotspan_tracer *t, hs_trace *tr) {
  tr->tracer = t;
  tr->live_shard = (uint8_t)shard_of(tr);
  pthread_mutex_lock(&t->live[tr->live_shard].mu);
  tr->live_prev = NULL;
  tr->live_next = t->live[tr->live_shard].head;
  if (tr->live_next != NULL)
    tr->live_next->live_prev = tr;
  t->live[tr->live_shard].head = tr;
  pthread_mutex_unlock(&t->live[tr->live_shard].mu);
}

void hs_trace_unregister(hs_trace *tr) {
  hotspan_tracer *t = tr->tracer;
  if (t == NULL)
    return;
  pthread_mutex_lock(&t->live[tr->live_shard].mu);
  if (tr->live_prev != NULL)
    tr->live_prev->live_next = tr->live_next;
  else
    t->live[tr->live_shard].head = tr->live_next;
  if (tr->live_next != NULL)
    tr->live_next->live_prev = tr->live_prev;
  pthread_mutex_unlock(&t->live[tr->live_shard].mu);
  tr->live_prev = tr->live_next = NULL;
  tr->tracer = NULL;
}

/* Tracer shutdown, before the writer stops: every trace still alive gets
 * its finished spans written (nothing finished is lost), and its open
 * spans, which will never finish now, are counted as unfinished and
 * reclaimed. The user's pointers to them are invalid from then on, as
 * hotspan_tracer_free documents. */
void hs_trace_close_all(hotspan_tracer *t) {
  for (unsigned sh = 0; sh < HS_LIVE_SHARDS; sh++) {
    for (;;) {
      /* Take one trace at a time with a reference, so that the shard lock
       * is not held while spans are released (which unregisters). */
      pthread_mutex_lock(&t->live[sh].mu);
      hs_trace *tr = t->live[sh].head;
      while (tr != NULL && tr->root_finished && tr->nopen == 0 &&
             tr->nfinished == 0)
        tr = tr->live_next; /* only waiting for chunks in flight */
      if (tr != NULL)
        hs_trace_ref(tr);
      pthread_mutex_unlock(&t->live[sh].mu);
      if (tr == NULL)
        break;

      pthread_mutex_lock(&tr->mu);
      hs_chunk *chunk = NULL;
      int keep = 0;
      if (tr->nfinished > 0) {
        keep = decide_locked(tr) > 0;
        chunk = take_finished(tr, tr->local_root == NULL ? 1 : 0);
      }
      uint32_t created = tr->n_created, finished = tr->n_finished;
      tr->n_created = tr->n_finished = 0;
      hotspan_span *open = tr->open_head;
      uint32_t nopen = tr->nopen;
      tr->open_head = NULL;
      tr->nopen = 0;
      tr->local_root = NULL;
      tr->root_finished = 1;
      pthread_mutex_unlock(&tr->mu);

      add_counts(t, created, finished);
      if (chunk != NULL)
        dispatch(t, chunk, keep);
      atomic_fetch_add_explicit(&t->counters.spans_unfinished, nopen,
                                memory_order_relaxed);
      for (hotspan_span *s = open, *next; s != NULL; s = next) {
        next = s->open_next;
        atomic_store_explicit(&s->state, HS_SPAN_FINISHED,
                              memory_order_relaxed);
        hs_span_release(s);
      }
      hs_trace_unref_n(tr, nopen + 1); /* its open spans' and ours */
    }
  }
}

/* After hs_trace_close_all and the writer's last flush: drops the orphan
 * list's references. */
void hs_trace_reclaim_orphans(hotspan_tracer *t) {
  pthread_mutex_lock(&t->orphans_mu);
  hs_trace *list = t->orphans;
  t->orphans = NULL;
  pthread_mutex_unlock(&t->orphans_mu);
  while (list != NULL) {
    hs_trace *tr = list;
    list = tr->orphan_next;
    hs_trace_unref(tr);
  }
}

/* ------------------------------------------------------------ context */

/* The trace's context strings into buffers of the public sizes (those of
 * hotspan_context and hs_trace_view). tr->mu held. */
static void copy_strings(const hs_trace *tr, char origin[HOTSPAN_ORIGIN_MAX],
                         char ptags[HOTSPAN_PROPAGATED_TAGS_MAX],
                         char ts_other[HOTSPAN_TRACESTATE_MAX],
                         char last_p[17]) {
  hs_copy_field(origin, tr->origin, HOTSPAN_ORIGIN_MAX);
  hs_copy_field(ptags, tr->propagated_tags, HOTSPAN_PROPAGATED_TAGS_MAX);
  if (tr->has_remote)
    hs_copy_field(ts_other, tr->tracestate_other, HOTSPAN_TRACESTATE_MAX);
  else
    ts_other[0] = '\0';
  hs_copy_field(last_p, tr->last_dd_parent_id, 17);
}

void hs_trace_snapshot(hs_trace *tr, hs_trace_view *out) {
  out->id_high = tr->id_high;
  out->id_low = tr->id_low;
  pthread_mutex_lock(&tr->mu);
  out->priority = tr->priority;
  out->rule_rate = tr->rule_rate;
  out->limit_rate = tr->limit_rate;
  out->mechanism = tr->mechanism;
  out->agent_rate = tr->agent_rate;
  out->has_remote = tr->has_remote;
  copy_strings(tr, out->origin, out->propagated_tags, out->tracestate_other,
               out->last_dd_parent_id);
  pthread_mutex_unlock(&tr->mu);
  out->endpoint_id =
      atomic_load_explicit(&tr->endpoint_id, memory_order_relaxed);
}

static void fill_context(hs_trace *tr, const hotspan_span *s,
                         hotspan_context *out) {
  out->trace_id_high = tr->id_high;
  out->trace_id_low = tr->id_low;
  out->span_id = s->span_id;
  out->remote = HOTSPAN_CONTEXT_LOCAL;
  pthread_mutex_lock(&tr->mu);
  out->sampling_priority = tr->decided ? tr->priority : HOTSPAN_PRIORITY_UNSET;
  out->trace_flags =
      (!tr->decided || tr->priority > 0) ? 1 : 0; /* undecided: kept */
  copy_strings(tr, out->origin, out->propagated_tags, out->tracestate_other,
               out->last_dd_parent_id);
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
