/* Spans: start, finish, tags, and the active span of each thread.
 *
 * Hot path budget (docs/PERFORMANCE.md): start + finish of a child span
 * with two string tags in ~100 ns. So: no malloc (pools), strings copied
 * into the span's inline arena, one uncontended trace mutex at start and at
 * finish, relaxed atomic counters. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "context/endpoints.h"
#include "tracer/internal.h"

/* ------------------------------------------------------------ arena */

static char *arena_alloc(hotspan_span *s, size_t n) {
  n = (n + 7) & ~(size_t)7;
  if ((size_t)(s->aend - s->apos) >= n) {
    char *p = s->apos;
    s->apos += n;
    return p;
  }
  size_t size = n > 1024 ? n : 1024;
  hs_arena_block *b = malloc(sizeof *b + size);
  if (b == NULL)
    return NULL;
  b->next = s->blocks;
  s->blocks = b;
  s->apos = b->data + n;
  s->aend = b->data + size;
  return b->data;
}

static const char *arena_strdup(hotspan_span *s, const char *str, size_t n) {
  char *p = arena_alloc(s, n + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, str, n);
  p[n] = '\0';
  return p;
}

/* Length of str if at most max bytes, else max + 1. */
static size_t bounded_len(const char *str, size_t max) {
  const char *nul = memchr(str, '\0', max + 1);
  return nul ? (size_t)(nul - str) : max + 1;
}

/* ------------------------------------------------------------ active */

static inline void fill_value(const hotspan_span *s, hs_ctx_value *v) {
  const hs_trace *tr = s->trace;
  v->trace_id_high = tr->id_high;
  v->trace_id_low = tr->id_low;
  v->span_id = s->span_id;
  v->local_root_span_id = tr->local_root_id;
  v->endpoint_id = atomic_load_explicit(&((hs_trace *)tr)->endpoint_id,
                                        memory_order_relaxed);
  /* Undecided traces are kept by default, so they read as sampled. */
  v->trace_flags = atomic_load_explicit(&((hs_trace *)tr)->sampled_flag,
                                        memory_order_relaxed);
}

static void hs_publish_active(hs_tstate *ts) {
  if (ts->active == NULL) {
    hs_thread_ctx_write(ts->rec, NULL);
    return;
  }
  hs_ctx_value v;
  fill_value(ts->active, &v);
  hs_thread_ctx_write(ts->rec, &v);
}

hotspan_span *hotspan_enter(hotspan_span *s) {
  hs_tstate *ts = hs_tstate_get();
  if (ts == NULL)
    return NULL;
  hotspan_span *prev = ts->active;
  ts->active = s;
  hs_publish_active(ts);
  return prev;
}

void hotspan_leave(hotspan_span *previous) {
  hs_tstate *ts = hs_tstate_get();
  if (ts == NULL)
    return;
  ts->active = previous;
  hs_publish_active(ts);
}

hotspan_span *hotspan_active_span(void) {
  hs_tstate *ts = hs_tstate_get();
  return ts ? ts->active : NULL;
}

int hotspan_span_activate(hotspan_span *s) {
  hs_tstate *ts;
  if (s == NULL || s->activated ||
      atomic_load_explicit(&s->state, memory_order_relaxed) != HS_SPAN_OPEN ||
      (ts = hs_tstate_get()) == NULL)
    return s == NULL ? HOTSPAN_EINVAL : HOTSPAN_ESTATE;
  s->prev_active = ts->active;
  s->activated = 1;
  ts->active = s;
  hs_publish_active(ts);
  return HOTSPAN_OK;
}

int hotspan_span_deactivate(hotspan_span *s) {
  if (s == NULL)
    return HOTSPAN_EINVAL;
  hs_tstate *ts = hs_tstate_get();
  if (ts == NULL || ts->active != s || !s->activated)
    return HOTSPAN_ESTATE;
  ts->active = s->prev_active;
  s->activated = 0;
  s->prev_active = NULL;
  hs_publish_active(ts);
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ start */

void hotspan_span_options_init(hotspan_span_options *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
}

static void trace_init_remote(hs_trace *tr, const hotspan_context *rc) {
  tr->id_high = rc->trace_id_high;
  tr->id_low = rc->trace_id_low;
  tr->has_remote = 1;
  if (rc->sampling_priority != HOTSPAN_PRIORITY_UNSET) {
    /* Decided upstream; _dd.p.dm travels in the propagated tags. */
    hs_trace_set_priority_locked(tr, rc->sampling_priority, -1);
  }
  /* The context struct is public: make sure its strings are terminated
   * before copying, whatever the caller put there. */
#define HS_COPY_FIELD(dst, src)                                                \
  do {                                                                         \
    size_t n_ = strnlen((src), sizeof(src));                                   \
    if (n_ >= sizeof(dst))                                                     \
      n_ = 0;                                                                  \
    memcpy((dst), (src), n_);                                                  \
    (dst)[n_] = '\0';                                                          \
  } while (0)
  HS_COPY_FIELD(tr->origin, rc->origin);
  HS_COPY_FIELD(tr->propagated_tags, rc->propagated_tags);
  HS_COPY_FIELD(tr->tracestate_other, rc->tracestate_other);
  HS_COPY_FIELD(tr->last_dd_parent_id, rc->last_dd_parent_id);
#undef HS_COPY_FIELD
}

hotspan_span *hotspan_span_start(hotspan_tracer *t, const char *name,
                                 const hotspan_span_options *opts) {
  if (t == NULL || name == NULL)
    return NULL;
  hs_tstate *ts = hs_tstate_get();
  if (ts == NULL)
    return NULL;
  const hotspan_span *parent = NULL;
  const hotspan_context *remote = NULL;
  hotspan_span_options sized;
  if (opts != NULL && opts->struct_size != sizeof *opts) {
    /* Older, shorter options struct: its prefix over the defaults. A size
     * that is not a known prefix means the struct was not initialised. */
    if (opts->struct_size <= offsetof(hotspan_span_options, parent) ||
        opts->struct_size > sizeof *opts)
      return NULL;
    hotspan_span_options_init(&sized);
    memcpy(&sized, opts, opts->struct_size);
    opts = &sized;
  }
  if (opts != NULL) {
    parent = opts->parent;
    remote = opts->remote_parent;
    if (remote != NULL && (remote->trace_id_low | remote->trace_id_high) == 0)
      remote = NULL; /* not a usable context: start a new trace */
  }
  if (parent == NULL && remote == NULL && !(opts != NULL && opts->root) &&
      ts->active != NULL && ts->active->trace->tracer == t)
    parent = ts->active;
  if (parent != NULL &&
      atomic_load_explicit(&parent->state, memory_order_relaxed) !=
          HS_SPAN_OPEN)
    parent = NULL; /* misuse: parent already finished; start a new trace */

  hotspan_span *s = hs_span_alloc();
  if (s == NULL)
    return NULL;
  s->span_id = hs_new_span_id(ts);
  s->start_mono = hs_now_mono_ns();
  s->start_explicit = opts != NULL && opts->start_ns != 0;
  s->start_ns =
      s->start_explicit ? opts->start_ns : hs_unix_from_mono(ts, s->start_mono);

  hs_trace *tr;
  if (parent != NULL) {
    tr = parent->trace;
    hs_trace_ref(tr);
    s->parent_id = parent->span_id;
  } else {
    tr = hs_trace_alloc();
    if (tr == NULL) {
      hs_span_release(s);
      return NULL;
    }
    hs_trace_register(t, tr);
    if (remote != NULL) {
      trace_init_remote(tr, remote);
      s->parent_id = remote->span_id;
    } else {
      tr->id_high = (s->start_ns / 1000000000u) << 32;
      tr->id_low = hs_random64(ts);
      if (tr->id_low == 0)
        tr->id_low = 1;
      s->parent_id = 0;
    }
    tr->local_root_id = s->span_id;
    tr->local_root = s;
    s->is_local_root = 1;
  }
  s->trace = tr;

  size_t nlen = strlen(name);
  s->name = arena_strdup(s, name, nlen);
  s->resource = s->name;
  s->service = t->settings.service;
  if (opts != NULL) {
    if (opts->resource != NULL)
      s->resource = arena_strdup(s, opts->resource, strlen(opts->resource));
    if (opts->service != NULL)
      s->service = arena_strdup(s, opts->service, strlen(opts->service));
    if (opts->type != NULL)
      s->type = arena_strdup(s, opts->type, strlen(opts->type));
    if (opts->kind >= HOTSPAN_KIND_UNSPECIFIED &&
        opts->kind <= HOTSPAN_KIND_CONSUMER)
      s->kind = (uint8_t)opts->kind;
  }
  if (s->name == NULL || s->resource == NULL || s->service == NULL) {
    /* Out of memory: give back the span's trace reference (for a new
     * trace its only one, which frees it). */
    hs_trace_unref(tr);
    hs_span_release(s);
    return NULL;
  }

  pthread_mutex_lock(&tr->mu);
  s->open_next = tr->open_head;
  if (tr->open_head != NULL)
    tr->open_head->open_prev = s;
  tr->open_head = s;
  tr->nopen++;
  tr->n_created++; /* added to the tracer's stats when the trace ends */
  pthread_mutex_unlock(&tr->mu);

  if (s->is_local_root && opts != NULL && opts->resource != NULL)
    atomic_store_explicit(
        &tr->endpoint_id,
        hs_endpoint_intern(opts->resource, strlen(opts->resource)),
        memory_order_relaxed);

  if (opts != NULL && opts->activate)
    (void)hotspan_span_activate(s);
  return s;
}

/* ------------------------------------------------------------ finish */

void hs_trace_span_finished(hotspan_span *s); /* tracer/trace.c */

void hotspan_span_finish_at(hotspan_span *s, uint64_t end_ns) {
  if (s == NULL)
    return;
  /* A span belongs to one thread at a time (tracer.h), so a plain check
   * catches a second finish; no locked instruction on this path. */
  if (atomic_load_explicit(&s->state, memory_order_relaxed) != HS_SPAN_OPEN)
    return; /* finished twice: ignore the second call */
  atomic_store_explicit(&s->state, HS_SPAN_FINISHED, memory_order_relaxed);
  hs_tstate *ts = hs_tstate_get();
  if (end_ns == 0 && s->start_explicit && ts != NULL)
    end_ns = hs_unix_from_mono(ts, hs_now_mono_ns()); /* back-dated start */
  if (end_ns != 0)
    s->duration_ns = end_ns > s->start_ns ? end_ns - s->start_ns : 0;
  else
    s->duration_ns = hs_now_mono_ns() - s->start_mono;

  if (ts != NULL && ts->active == s) {
    /* Activated: restore what was active before. Entered: nothing is
     * active until the matching hotspan_leave restores its caller's span.
     * Either way the record never shows a finished span. */
    ts->active = s->activated ? s->prev_active : NULL;
    hs_publish_active(ts);
  } else if (s->activated && ts != NULL) {
    /* Activated but not innermost (finished out of order): unlink it from
     * the chain of remembered spans, so that deactivating or finishing
     * the inner ones never restores a finished span. */
    for (hotspan_span *x = ts->active; x != NULL; x = x->prev_active) {
      if (x->prev_active == s) {
        x->prev_active = s->prev_active;
        break;
      }
    }
  }
  s->activated = 0;
  s->prev_active = NULL;
  if (s->is_local_root) {
    /* One request of its endpoint, for the profiles' endpoint_counts. */
    uint32_t ep =
        atomic_load_explicit(&s->trace->endpoint_id, memory_order_relaxed);
    if (ep != 0)
      hs_endpoint_count_request(ep);
  }
  hs_trace_span_finished(s);
}

void hotspan_span_finish(hotspan_span *s) {
  hotspan_span_finish_at(s, 0);
}

/* ------------------------------------------------------------ tags */

static inline int span_open(const hotspan_span *s) {
  return s != NULL &&
         atomic_load_explicit(&s->state, memory_order_relaxed) == HS_SPAN_OPEN;
}

/* Slot for key: the existing one (value replaced by the caller) or a new
 * one with the key copied. NULL when out of memory. */
static hs_tag *tag_slot(hotspan_span *s, const char *key, size_t klen) {
  for (uint16_t i = 0; i < s->ntags; i++)
    if (s->tags[i].klen == klen && memcmp(s->tags[i].key, key, klen) == 0)
      return &s->tags[i];
  if (s->ntags == s->cap_tags) {
    if (s->cap_tags >= HS_SPAN_MAX_TAGS)
      return NULL;
    uint16_t cap = (uint16_t)(s->cap_tags * 2);
    hs_tag *t;
    if (s->tags == s->inline_tags) {
      t = malloc(sizeof *t * cap);
      if (t != NULL)
        memcpy(t, s->inline_tags, sizeof s->inline_tags);
    } else {
      t = realloc(s->tags, sizeof *t * cap);
    }
    if (t == NULL)
      return NULL;
    s->tags = t;
    s->cap_tags = cap;
  }
  const char *k = arena_strdup(s, key, klen);
  if (k == NULL)
    return NULL;
  hs_tag *tag = &s->tags[s->ntags++];
  tag->key = k;
  tag->klen = (uint16_t)klen;
  tag->type = 0;
  return tag;
}

/* Why tag_slot returned NULL: the span's tag table is full, or memory ran
 * out. */
static int tag_error(const hotspan_span *s) {
  return s->ntags >= HS_SPAN_MAX_TAGS ? HOTSPAN_EFULL : HOTSPAN_ENOMEM;
}

static int check_key(const hotspan_span *s, const char *key, size_t *klen) {
  if (!span_open(s) || key == NULL || key[0] == '\0')
    return HOTSPAN_EINVAL;
  *klen = bounded_len(key, HS_TAG_KEY_MAX);
  return *klen > HS_TAG_KEY_MAX ? HOTSPAN_ETOOBIG : HOTSPAN_OK;
}

int hotspan_span_set_tag_str(hotspan_span *s, const char *key,
                             const char *value) {
  size_t klen;
  int rc = check_key(s, key, &klen);
  if (rc != HOTSPAN_OK)
    return rc;
  if (value == NULL)
    return HOTSPAN_EINVAL;
  size_t vlen = bounded_len(value, HS_TAG_VALUE_MAX);
  if (vlen > HS_TAG_VALUE_MAX)
    return HOTSPAN_ETOOBIG;
  const char *v = arena_strdup(s, value, vlen);
  hs_tag *tag = v ? tag_slot(s, key, klen) : NULL;
  if (tag == NULL)
    return tag_error(s);
  tag->type = HS_TAG_STR;
  tag->v.s = v;
  return HOTSPAN_OK;
}

#define HS_NUMERIC_SETTER(fname, ctype, tagtype, field)                        \
  int fname(hotspan_span *s, const char *key, ctype value) {                   \
    size_t klen;                                                               \
    int rc = check_key(s, key, &klen);                                         \
    if (rc != HOTSPAN_OK)                                                      \
      return rc;                                                               \
    hs_tag *tag = tag_slot(s, key, klen);                                      \
    if (tag == NULL)                                                           \
      return tag_error(s);                                                     \
    tag->type = (tagtype);                                                     \
    tag->v.field = value;                                                      \
    return HOTSPAN_OK;                                                         \
  }

HS_NUMERIC_SETTER(hotspan_span_set_tag_int, int64_t, HS_TAG_INT, i)
HS_NUMERIC_SETTER(hotspan_span_set_tag_double, double, HS_TAG_DOUBLE, d)

int hotspan_span_set_tag_bool(hotspan_span *s, const char *key, int value) {
  size_t klen;
  int rc = check_key(s, key, &klen);
  if (rc != HOTSPAN_OK)
    return rc;
  hs_tag *tag = tag_slot(s, key, klen);
  if (tag == NULL)
    return tag_error(s);
  tag->type = HS_TAG_BOOL;
  tag->v.i = value ? 1 : 0;
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ events */

/* Copies nattrs user attributes into the span's arena. Validates all of
 * them first, so a bad one leaves the span unchanged. */
static int copy_attrs(hotspan_span *s, const hotspan_attribute *attrs,
                      size_t nattrs, hs_tag **out) {
  *out = NULL;
  if (nattrs == 0)
    return HOTSPAN_OK;
  if (attrs == NULL)
    return HOTSPAN_EINVAL;
  if (nattrs > HS_SPAN_MAX_ATTRS)
    return HOTSPAN_EFULL;
  for (size_t i = 0; i < nattrs; i++) {
    const hotspan_attribute *a = &attrs[i];
    if (a->key == NULL || a->key[0] == '\0')
      return HOTSPAN_EINVAL;
    if (bounded_len(a->key, HS_TAG_KEY_MAX) > HS_TAG_KEY_MAX)
      return HOTSPAN_ETOOBIG;
    switch (a->type) {
    case HOTSPAN_ATTR_STRING:
      if (a->value.s == NULL)
        return HOTSPAN_EINVAL;
      if (bounded_len(a->value.s, HS_TAG_VALUE_MAX) > HS_TAG_VALUE_MAX)
        return HOTSPAN_ETOOBIG;
      break;
    case HOTSPAN_ATTR_INT:
    case HOTSPAN_ATTR_DOUBLE:
    case HOTSPAN_ATTR_BOOL:
      break;
    default:
      return HOTSPAN_EINVAL;
    }
  }
  hs_tag *t = (hs_tag *)(void *)arena_alloc(s, sizeof *t * nattrs);
  if (t == NULL)
    return HOTSPAN_ENOMEM;
  for (size_t i = 0; i < nattrs; i++) {
    const hotspan_attribute *a = &attrs[i];
    size_t klen = strlen(a->key); /* at most HS_TAG_KEY_MAX: checked */
    t[i].key = arena_strdup(s, a->key, klen);
    t[i].klen = (uint16_t)klen;
    if (t[i].key == NULL)
      return HOTSPAN_ENOMEM;
    switch (a->type) {
    case HOTSPAN_ATTR_STRING:
      t[i].type = HS_TAG_STR;
      t[i].v.s = arena_strdup(s, a->value.s, strlen(a->value.s));
      if (t[i].v.s == NULL)
        return HOTSPAN_ENOMEM;
      break;
    case HOTSPAN_ATTR_INT:
      t[i].type = HS_TAG_INT;
      t[i].v.i = a->value.i;
      break;
    case HOTSPAN_ATTR_DOUBLE:
      t[i].type = HS_TAG_DOUBLE;
      t[i].v.d = a->value.d;
      break;
    default:
      t[i].type = HS_TAG_BOOL;
      t[i].v.i = a->value.b ? 1 : 0;
      break;
    }
  }
  *out = t;
  return HOTSPAN_OK;
}

int hotspan_span_add_event(hotspan_span *s, const char *name,
                           uint64_t time_unix_ns,
                           const hotspan_attribute *attrs, size_t nattrs) {
  if (!span_open(s) || name == NULL || name[0] == '\0')
    return HOTSPAN_EINVAL;
  size_t nlen = bounded_len(name, HS_TAG_VALUE_MAX);
  if (nlen > HS_TAG_VALUE_MAX)
    return HOTSPAN_ETOOBIG;
  if (s->nevents >= HS_SPAN_MAX_EVENTS) {
    s->dropped_events++;
    return HOTSPAN_EFULL;
  }
  hs_span_event *e = (hs_span_event *)(void *)arena_alloc(s, sizeof *e);
  if (e == NULL)
    return HOTSPAN_ENOMEM;
  int rc = copy_attrs(s, attrs, nattrs, &e->attrs);
  if (rc != HOTSPAN_OK)
    return rc;
  e->name = arena_strdup(s, name, nlen);
  if (e->name == NULL)
    return HOTSPAN_ENOMEM;
  if (time_unix_ns == 0) {
    hs_tstate *ts = hs_tstate_get();
    time_unix_ns =
        ts != NULL ? hs_unix_from_mono(ts, hs_now_mono_ns()) : hs_now_unix_ns();
  }
  e->time_ns = time_unix_ns;
  e->nattrs = (uint16_t)nattrs;
  e->next = NULL;
  if (s->events_tail != NULL)
    s->events_tail->next = e;
  else
    s->events = e;
  s->events_tail = e;
  s->nevents++;
  return HOTSPAN_OK;
}

int hotspan_span_add_link(hotspan_span *s, const hotspan_context *ctx,
                          const hotspan_attribute *attrs, size_t nattrs) {
  if (!span_open(s) || ctx == NULL || ctx->trace_id_low == 0 ||
      ctx->span_id == 0)
    return HOTSPAN_EINVAL;
  size_t tslen = strnlen(ctx->tracestate_other, sizeof ctx->tracestate_other);
  if (tslen == sizeof ctx->tracestate_other)
    return HOTSPAN_EINVAL; /* not NUL-terminated */
  if (s->nlinks >= HS_SPAN_MAX_LINKS) {
    s->dropped_links++;
    return HOTSPAN_EFULL;
  }
  hs_span_link *l = (hs_span_link *)(void *)arena_alloc(s, sizeof *l);
  if (l == NULL)
    return HOTSPAN_ENOMEM;
  int rc = copy_attrs(s, attrs, nattrs, &l->attrs);
  if (rc != HOTSPAN_OK)
    return rc;
  l->tracestate = NULL;
  if (tslen > 0) {
    l->tracestate = arena_strdup(s, ctx->tracestate_other, tslen);
    if (l->tracestate == NULL)
      return HOTSPAN_ENOMEM;
  }
  l->trace_id_high = ctx->trace_id_high;
  l->trace_id_low = ctx->trace_id_low;
  l->span_id = ctx->span_id;
  l->trace_flags = ctx->trace_flags;
  l->remote = ctx->remote <= HOTSPAN_CONTEXT_REMOTE ? ctx->remote
                                                    : HOTSPAN_CONTEXT_UNKNOWN;
  l->nattrs = (uint16_t)nattrs;
  l->next = NULL;
  if (s->links_tail != NULL)
    s->links_tail->next = l;
  else
    s->links = l;
  s->links_tail = l;
  s->nlinks++;
  return HOTSPAN_OK;
}

/* Copies value into the span and stores it in *field. Fields of the local
 * root are read by the sampler under the trace mutex (possibly from the
 * thread that finishes another span of the trace), so they are written
 * under it too. */
static int set_string_field(hotspan_span *s, const char **field,
                            const char *value) {
  if (!span_open(s) || value == NULL)
    return HOTSPAN_EINVAL;
  size_t n = bounded_len(value, HS_TAG_VALUE_MAX);
  if (n > HS_TAG_VALUE_MAX)
    return HOTSPAN_ETOOBIG;
  const char *copy = arena_strdup(s, value, n);
  if (copy == NULL)
    return HOTSPAN_ENOMEM;
  if (s->is_local_root) {
    pthread_mutex_lock(&s->trace->mu);
    *field = copy;
    pthread_mutex_unlock(&s->trace->mu);
  } else {
    *field = copy;
  }
  return HOTSPAN_OK;
}

/* Sets the endpoint id and shows it at once on this thread if the active
 * span belongs to the trace. */
static void set_endpoint_id(hs_trace *tr, const char *name) {
  uint32_t id = hs_endpoint_intern(name, strlen(name));
  atomic_store_explicit(&tr->endpoint_id, id, memory_order_relaxed);
  hs_tstate *ts = hs_tstate_get();
  if (ts != NULL && ts->active != NULL && ts->active->trace == tr)
    hs_publish_active(ts);
}

int hotspan_span_set_resource(hotspan_span *s, const char *resource) {
  int rc = set_string_field(s, s ? &s->resource : NULL, resource);
  if (rc == HOTSPAN_OK && s->is_local_root)
    set_endpoint_id(s->trace, s->resource);
  return rc;
}

int hotspan_span_set_endpoint(hotspan_span *s, const char *endpoint) {
  if (!span_open(s) || endpoint == NULL)
    return HOTSPAN_EINVAL;
  if (s->is_local_root)
    return hotspan_span_set_resource(s, endpoint);
  if (bounded_len(endpoint, HS_TAG_VALUE_MAX) > HS_TAG_VALUE_MAX)
    return HOTSPAN_ETOOBIG;
  /* From another span: the root may belong to another thread, so its arena
   * is not ours to use. The registry's copy of the name lives as long as
   * the process; the root's resource points at it. */
  hs_trace *tr = s->trace;
  uint32_t id = hs_endpoint_intern(endpoint, strlen(endpoint));
  const char *name = hs_endpoint_name(id);
  /* Past the registry's cap the name is "other": then the root keeps its
   * resource and only the endpoint id changes. */
  pthread_mutex_lock(&tr->mu);
  if (tr->local_root != NULL && name != NULL && id != HS_ENDPOINT_OVERFLOW)
    tr->local_root->resource = name;
  pthread_mutex_unlock(&tr->mu);
  atomic_store_explicit(&tr->endpoint_id, id, memory_order_relaxed);
  hs_tstate *ts = hs_tstate_get();
  if (ts != NULL && ts->active != NULL && ts->active->trace == tr)
    hs_publish_active(ts);
  return HOTSPAN_OK;
}

int hotspan_span_set_service(hotspan_span *s, const char *service) {
  return set_string_field(s, s ? &s->service : NULL, service);
}

int hotspan_span_set_type(hotspan_span *s, const char *type) {
  return set_string_field(s, s ? &s->type : NULL, type);
}

int hotspan_span_set_kind(hotspan_span *s, hotspan_span_kind kind) {
  if (!span_open(s) || kind < HOTSPAN_KIND_UNSPECIFIED ||
      kind > HOTSPAN_KIND_CONSUMER)
    return HOTSPAN_EINVAL;
  s->kind = (uint8_t)kind;
  return HOTSPAN_OK;
}

int hotspan_span_set_error(hotspan_span *s, const char *type,
                           const char *message, const char *stack) {
  if (!span_open(s))
    return HOTSPAN_EINVAL;
  int rc = HOTSPAN_OK;
  if (type != NULL)
    rc = hotspan_span_set_tag_str(s, "error.type", type);
  if (rc == HOTSPAN_OK && message != NULL)
    rc = hotspan_span_set_tag_str(s, "error.message", message);
  if (rc == HOTSPAN_OK && stack != NULL)
    rc = hotspan_span_set_tag_str(s, "error.stack", stack);
  s->error = 1; /* the span is an error even if a detail did not fit */
  return rc;
}

int hotspan_span_set_sampling_priority(hotspan_span *s, int priority) {
  if (!span_open(s) || priority < HOTSPAN_PRIORITY_USER_REJECT ||
      priority > HOTSPAN_PRIORITY_USER_KEEP)
    return HOTSPAN_EINVAL;
  hs_trace *tr = s->trace;
  pthread_mutex_lock(&tr->mu);
  hs_trace_set_priority_locked(tr, priority, HS_MECH_MANUAL);
  tr->rule_rate = -1;
  tr->limit_rate = -1;
  tr->agent_rate = -1;
  pthread_mutex_unlock(&tr->mu);
  hs_tstate *ts = hs_tstate_get();
  if (ts != NULL && ts->active != NULL && ts->active->trace == tr)
    hs_publish_active(ts); /* trace_flags follow the decision */
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ ids */

uint64_t hotspan_span_id(const hotspan_span *s) {
  return s ? s->span_id : 0;
}
uint64_t hotspan_span_trace_id_low(const hotspan_span *s) {
  return s ? s->trace->id_low : 0;
}
uint64_t hotspan_span_trace_id_high(const hotspan_span *s) {
  return s ? s->trace->id_high : 0;
}
uint64_t hotspan_span_local_root_id(const hotspan_span *s) {
  return s ? s->trace->local_root_id : 0;
}
