/* Object pools for spans and traces, and the tracer's per-thread state.
 *
 * Workload: every span start takes one object and every flushed span gives
 * one back, usually on a different thread (the writer thread releases what
 * application threads allocated). Each thread keeps a small cache; caches
 * exchange whole batches with a process-wide list under a mutex, so the
 * mutex is taken once per HS_BATCH objects. New objects are carved from
 * slabs of HS_SLAB objects; slabs are never freed (they are reachable from
 * the slab list, so leak checkers stay quiet) and memory use is bounded by
 * the peak number of live spans. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tracer/internal.h"

#define HS_BATCH 32
#define HS_CACHE_MAX (4 * HS_BATCH)
#define HS_SLAB 64

typedef struct hs_free {
  struct hs_free *next;       /* next object in the same batch */
  struct hs_free *next_batch; /* global list: next batch (first object) */
  uint32_t batch_n;           /* global list: objects in this batch */
} hs_free;

typedef struct hs_cache {
  hs_free *head;
  uint32_t n;
} hs_cache;

typedef struct hs_slab {
  struct hs_slab *next;
  _Alignas(64) char objects[];
} hs_slab;

/* The global list holds whole batches, linked through their first object,
 * so that moving a batch in or out is O(1) under the mutex: no walk over
 * objects that were last touched by another core. */
typedef struct hs_pool {
  pthread_mutex_t mu;
  hs_free *batches;
  uint64_t n;
  hs_slab *slabs;
  size_t obj_size;
  unsigned prefetch_lines;
} hs_pool;

enum { POOL_SPAN, POOL_TRACE, POOL_CHUNK, POOL_COUNT };

/* How much of an object a new span, trace or chunk writes at once: the
 * span's header, tags and the start of its arena; the trace's fields
 * before its large context buffers; the whole chunk. */
#define HS_LINES(bytes) ((unsigned)(((bytes) + 63) / 64))

#define HS_POOL_INIT(type, hot)                                                \
  {                                                                            \
    PTHREAD_MUTEX_INITIALIZER, NULL, 0, NULL,                                  \
        (sizeof(type) + 63) & ~(size_t)63, HS_LINES(hot)                       \
  }
static hs_pool pools[POOL_COUNT] = {
    HS_POOL_INIT(hotspan_span, HS_SPAN_HOT_BYTES),
    HS_POOL_INIT(hs_trace, HS_TRACE_HOT_BYTES),
    HS_POOL_INIT(hs_chunk, sizeof(hs_chunk))};

_Static_assert(sizeof(hs_free) <= sizeof(hotspan_span) &&
                   sizeof(hs_free) <= sizeof(hs_trace) &&
                   sizeof(hs_free) <= sizeof(hs_chunk),
               "pool objects must hold the free-list links");

/* Refills an empty cache with one batch from the pool, carving a new slab
 * into a batch when the pool is empty. Returns 0, or -1 when out of
 * memory. */
static int cache_refill(hs_pool *p, hs_cache *c) {
  pthread_mutex_lock(&p->mu);
  hs_free *batch = p->batches;
  if (batch != NULL) {
    p->batches = batch->next_batch;
    p->n -= batch->batch_n;
    c->head = batch;
    c->n = batch->batch_n;
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  pthread_mutex_unlock(&p->mu);
  hs_slab *slab = malloc(sizeof *slab + p->obj_size * HS_SLAB);
  if (slab == NULL)
    return -1;
  hs_free *head = NULL;
  for (size_t i = HS_SLAB; i-- > 0;) {
    hs_free *f = (hs_free *)(slab->objects + i * p->obj_size);
    f->next = head;
    head = f;
  }
  pthread_mutex_lock(&p->mu);
  slab->next = p->slabs;
  p->slabs = slab;
  pthread_mutex_unlock(&p->mu);
  c->head = head;
  c->n = HS_SLAB;
  return 0;
}

/* Gives objects back to the pool in batches until at most keep remain. */
static void cache_spill(hs_pool *p, hs_cache *c, uint32_t keep) {
  while (c->n > keep) {
    uint32_t take = c->n - keep < HS_BATCH ? c->n - keep : HS_BATCH;
    hs_free *first = c->head, *last = first;
    for (uint32_t i = 1; i < take; i++)
      last = last->next;
    c->head = last->next;
    c->n -= take;
    last->next = NULL;
    first->batch_n = take;
    pthread_mutex_lock(&p->mu);
    first->next_batch = p->batches;
    p->batches = first;
    p->n += take;
    pthread_mutex_unlock(&p->mu);
  }
}

static void *pool_get(hs_pool *p, hs_cache *c) {
  if (c->head == NULL && cache_refill(p, c) != 0)
    return NULL;
  hs_free *f = c->head;
  c->head = f->next;
  c->n--;
  if (c->head != NULL) {
    const char *nx = (const char *)c->head;
    for (unsigned i = 0; i < p->prefetch_lines; i++)
      __builtin_prefetch(nx + 64 * i, 1, 3);
  }
  return f;
}

static void pool_put(hs_pool *p, hs_cache *c, void *obj) {
  hs_free *f = obj;
  f->next = c->head;
  c->head = f;
  if (++c->n > HS_CACHE_MAX)
    cache_spill(p, c, HS_CACHE_MAX - HS_BATCH);
}

/* ------------------------------------------------------------ tstate */

static __thread hs_tstate *tstate __attribute__((tls_model("initial-exec")));
static pthread_key_t tstate_key;
static pthread_once_t tstate_once = PTHREAD_ONCE_INIT;

typedef struct hs_tstate_block {
  hs_tstate st;
  hs_cache caches[POOL_COUNT];
} hs_tstate_block;

static void tstate_destroy(void *p) {
  hs_tstate_block *b = p;
  tstate = NULL;
  for (int i = 0; i < POOL_COUNT; i++)
    cache_spill(&pools[i], &b->caches[i], 0);
  free(b);
}

static const hs_fork_handler pools_fork;

static void tstate_key_init(void) {
  (void)pthread_key_create(&tstate_key, tstate_destroy);
  (void)hs_fork_register(&pools_fork);
}

hs_tstate *hs_tstate_get(void) {
  hs_tstate *ts = tstate;
  if (__builtin_expect(ts != NULL, 1))
    return ts;
  pthread_once(&tstate_once, tstate_key_init);
  hs_tstate_block *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  b->st.rec = hs_thread_ctx_get();
  if (b->st.rec == NULL || pthread_setspecific(tstate_key, b) != 0) {
    free(b);
    return NULL;
  }
  b->st.caches = b->caches;
  tstate = &b->st;
  return tstate;
}

/* ------------------------------------------------------------ objects */

static void *obj_get(int kind) {
  hs_tstate *ts = hs_tstate_get();
  return ts ? pool_get(&pools[kind], &ts->caches[kind]) : NULL;
}

static void obj_put(int kind, void *obj) {
  hs_tstate *ts = hs_tstate_get();
  if (ts != NULL) {
    pool_put(&pools[kind], &ts->caches[kind], obj);
    return;
  }
  /* No thread state (out of memory): hand the object straight back. */
  hs_cache one = {(hs_free *)obj, 1};
  ((hs_free *)obj)->next = NULL;
  cache_spill(&pools[kind], &one, 0);
}

hotspan_span *hs_span_alloc(void) {
  hotspan_span *s = obj_get(POOL_SPAN);
  if (s == NULL)
    return NULL;
  s->next = NULL;
  s->open_prev = s->open_next = NULL;
  s->prev_active = NULL;
  s->type = NULL;
  s->kind = 0;
  s->error = 0;
  s->activated = 0;
  s->is_local_root = 0;
  s->start_explicit = 0;
  s->duration_ns = 0;
  s->ntags = 0;
  s->cap_tags = HS_SPAN_INLINE_TAGS;
  s->tags = s->inline_tags;
  /* Exporters read these lists: a reused span must not show its previous
   * life's events and links. */
  s->events = s->events_tail = NULL;
  s->links = s->links_tail = NULL;
  s->nevents = s->nlinks = 0;
  s->dropped_events = s->dropped_links = 0;
  s->blocks = NULL;
  s->apos = s->arena;
  s->aend = s->arena + sizeof s->arena;
  atomic_store_explicit(&s->state, HS_SPAN_OPEN, memory_order_relaxed);
  return s;
}

void hs_span_release(hotspan_span *s) {
  if (s->tags != s->inline_tags)
    free(s->tags);
  for (hs_arena_block *b = s->blocks, *n; b != NULL; b = n) {
    n = b->next;
    free(b);
  }
  atomic_store_explicit(&s->state, HS_SPAN_FREE, memory_order_relaxed);
  obj_put(POOL_SPAN, s);
}

hs_trace *hs_trace_alloc(void) {
  hs_trace *tr = obj_get(POOL_TRACE);
  if (tr == NULL)
    return NULL;
  pthread_mutex_init(&tr->mu, NULL);
  atomic_store_explicit(&tr->refs, 1, memory_order_relaxed);
  atomic_store_explicit(&tr->endpoint_id, 0, memory_order_relaxed);
  tr->local_root = NULL;
  tr->priority = HOTSPAN_PRIORITY_UNSET;
  atomic_store_explicit(&tr->sampled_flag, 1, memory_order_relaxed);
  tr->live_prev = tr->live_next = NULL;
  tr->tracer = NULL;
  tr->mechanism = 0;
  tr->decided = 0;
  tr->rule_rate = -1;
  tr->limit_rate = -1;
  tr->agent_rate = -1;
  tr->open_head = NULL;
  tr->nopen = 0;
  tr->finished = NULL;
  tr->nfinished = 0;
  tr->n_created = 0;
  tr->n_finished = 0;
  tr->root_finished = 0;
  tr->has_remote = 0;
  tr->origin[0] = '\0';
  tr->propagated_tags[0] = '\0';
  tr->last_dd_parent_id[0] = '\0';
  tr->orphan_next = NULL;
  return tr;
}

void hs_trace_unref(hs_trace *tr) {
  hs_trace_unref_n(tr, 1);
}

void hs_trace_unref_n(hs_trace *tr, uint32_t n) {
  if (atomic_fetch_sub_explicit(&tr->refs, n, memory_order_acq_rel) != n)
    return;
  if (tr->tracer != NULL && (tr->n_created | tr->n_finished) != 0) {
    /* Counts not yet moved with a chunk (tracer/trace.c add_counts). */
    hs_counters *c = &tr->tracer->counters;
    atomic_fetch_add_explicit(&c->spans_created, tr->n_created,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&c->spans_finished, tr->n_finished,
                              memory_order_relaxed);
  }
  hs_trace_unregister(tr);
  pthread_mutex_destroy(&tr->mu);
  obj_put(POOL_TRACE, tr);
}

hs_chunk *hs_chunk_alloc(void) {
  return obj_get(POOL_CHUNK);
}

void hs_chunk_free(hs_chunk *c) {
  if (c == NULL)
    return;
  hs_trace *tr = c->trace;
  uint32_t n = 0;
  for (hotspan_span *s = c->spans, *next; s != NULL; s = next) {
    next = s->next;
    hs_span_release(s);
    n++;
  }
  /* One trace reference per released span, one for the chunk itself. */
  hs_trace_unref_n(tr, n + 1);
  obj_put(POOL_CHUNK, c);
}

/* ------------------------------------------------------------ fork */

/* Pool locks are held across fork() (after the tracers' locks, see
 * common/fork.h) so the child never inherits a mutex held by a thread
 * that does not exist there. */
static void pools_prepare(void) {
  for (int i = 0; i < POOL_COUNT; i++)
    pthread_mutex_lock(&pools[i].mu);
}

static void pools_parent(void) {
  for (int i = POOL_COUNT; i-- > 0;)
    pthread_mutex_unlock(&pools[i].mu);
}

static void pools_child(void) {
  for (int i = 0; i < POOL_COUNT; i++)
    pthread_mutex_init(&pools[i].mu, NULL);
}

static const hs_fork_handler pools_fork = {HS_FORK_RANK_POOLS, pools_prepare,
                                           pools_parent, pools_child};
