/* OTLP/HTTP protobuf trace encoder (see otlp.h).
 *
 * Workload: one payload holds up to a few thousand spans, each with a
 * handful of tags; the writer thread encodes ~10^5 spans/s in busy
 * services. So every message struct, id and string of a payload comes from
 * one bump arena that is rewound, not freed, after each payload, and the
 * request is sized and packed once. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/log.h"
#include "exporter/otlp.h"
#include "hotspan/error.h"
#include "hotspan/version.h"
#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_rspans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_sspans;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    pb_request;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse
    pb_response;

static const pb_any any_init =
    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
static const pb_kv kv_init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
static const pb_span span_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
static const pb_event event_init =
    OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
static const pb_link link_init =
    OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
static const pb_status status_init =
    OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;

#define FLAG_SAMPLED 0x01u
#define FLAG_HAS_IS_REMOTE 0x100u
#define FLAG_IS_REMOTE 0x200u

/* ------------------------------------------------------------ arena */

#define ARENA_BLOCK ((size_t)64 << 10)

typedef struct ablock {
  struct ablock *next;
  size_t cap;
  size_t used;
  _Alignas(16) char data[];
} ablock;

typedef struct arena {
  ablock *head;
  ablock *cur;
  size_t used; /* bytes handed out since the last rewind */
} arena;

/* n bytes, 8-aligned; NULL when out of memory. */
static void *arena_alloc(arena *a, size_t n) {
  n = (n + 7) & ~(size_t)7;
  ablock *b = a->cur;
  if (b != NULL && b->cap - b->used >= n) {
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    return p;
  }
  /* Next kept block if it is big enough, else a new one after cur. */
  if (b != NULL && b->next != NULL && b->next->cap >= n) {
    b = b->next;
  } else {
    size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    ablock *nb = malloc(sizeof *nb + cap);
    if (nb == NULL)
      return NULL;
    nb->cap = cap;
    if (b == NULL) {
      nb->next = a->head;
      a->head = nb;
    } else {
      nb->next = b->next;
      b->next = nb;
    }
    b = nb;
  }
  b->used = n;
  a->cur = b;
  a->used += n;
  return b->data;
}

static void arena_rewind(arena *a) {
  a->cur = a->head;
  if (a->cur != NULL)
    a->cur->used = 0;
  a->used = 0;
}

static void arena_free(arena *a) {
  ablock *b = a->head;
  while (b != NULL) {
    ablock *n = b->next;
    free(b);
    b = n;
  }
  a->head = a->cur = NULL;
  a->used = 0;
}

static char *arena_strdup(arena *a, const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s);
  char *p = arena_alloc(a, n + 1);
  if (p != NULL)
    memcpy(p, s, n + 1);
  return p;
}

/* ------------------------------------------------------------ ids */

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

void hs_otlp_trace_id_bytes(uint64_t high, uint64_t low, uint8_t out[16]) {
  put_be64(out, high);
  put_be64(out + 8, low);
}

void hs_otlp_span_id_bytes(uint64_t id, uint8_t out[8]) {
  put_be64(out, id);
}

/* ------------------------------------------------------------ resource */

static int res_push(hs_otlp_resource *r, const char *key, hs_tag **out) {
  for (size_t i = 0; i < r->nattrs; i++)
    if (strcmp(r->attrs[i].key, key) == 0)
      return 1; /* first one wins */
  if (r->nattrs == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    hs_tag *na = realloc(r->attrs, cap * sizeof *na);
    if (na == NULL)
      return -1;
    r->attrs = na;
    r->cap = cap;
  }
  hs_tag *t = &r->attrs[r->nattrs];
  t->key = strdup(key);
  if (t->key == NULL)
    return -1;
  *out = t;
  return 0;
}

int hs_otlp_resource_add_str(hs_otlp_resource *r, const char *key,
                             const char *value) {
  hs_tag *t;
  int rc = res_push(r, key, &t);
  if (rc != 0)
    return rc > 0 ? HOTSPAN_OK : HOTSPAN_ENOMEM;
  t->type = HS_TAG_STR;
  t->v.s = strdup(value);
  if (t->v.s == NULL) {
    free((char *)t->key);
    return HOTSPAN_ENOMEM;
  }
  r->nattrs++;
  return HOTSPAN_OK;
}

int hs_otlp_resource_add_int(hs_otlp_resource *r, const char *key,
                             int64_t value) {
  hs_tag *t;
  int rc = res_push(r, key, &t);
  if (rc != 0)
    return rc > 0 ? HOTSPAN_OK : HOTSPAN_ENOMEM;
  t->type = HS_TAG_INT;
  t->v.i = value;
  r->nattrs++;
  return HOTSPAN_OK;
}

void hs_otlp_resource_free(hs_otlp_resource *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->nattrs; i++) {
    free((char *)r->attrs[i].key);
    if (r->attrs[i].type == HS_TAG_STR)
      free((char *)r->attrs[i].v.s);
  }
  free(r->attrs);
  r->attrs = NULL;
  r->nattrs = r->cap = 0;
}

/* /proc/self/cmdline with NULs turned into spaces, cut at cap-1 bytes. */
static void read_cmdline(char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen("/proc/self/cmdline", "re");
  if (f == NULL)
    return;
  size_t n = fread(out, 1, cap - 1, f);
  fclose(f);
  while (n > 0 && out[n - 1] == '\0')
    n--;
  for (size_t i = 0; i < n; i++)
    if (out[i] == '\0')
      out[i] = ' ';
  out[n] = '\0';
}

int hs_otlp_resource_init(hs_otlp_resource *r, const hs_tracer_settings *st) {
  memset(r, 0, sizeof *r);
  int rc = HOTSPAN_OK;
#define ADD_S(k, v)                                                            \
  do {                                                                         \
    if (rc == HOTSPAN_OK && (v) != NULL && (v)[0] != '\0')                     \
      rc = hs_otlp_resource_add_str(r, k, v);                                  \
  } while (0)
  ADD_S("service.name",
        st != NULL && st->service != NULL ? st->service : "unknown_service");
  if (st != NULL) {
    ADD_S("service.version", st->version);
    ADD_S("deployment.environment", st->env);
    ADD_S("deployment.environment.name", st->env);
  }
  ADD_S("telemetry.sdk.name", "hotspan");
  ADD_S("telemetry.sdk.language", "c");
  ADD_S("telemetry.sdk.version", HOTSPAN_VERSION_STRING);
  if (rc == HOTSPAN_OK)
    rc = hs_otlp_resource_add_int(r, "process.pid", (int64_t)getpid());
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) {
    path[n] = '\0';
    const char *slash = strrchr(path, '/');
    ADD_S("process.executable.name", slash != NULL ? slash + 1 : path);
    ADD_S("process.executable.path", path);
  }
  char cmd[HS_OTLP_CMDLINE_MAX + 1];
  read_cmdline(cmd, sizeof cmd);
  ADD_S("process.command_line", cmd);
  char host[256];
  if (gethostname(host, sizeof host) == 0) {
    host[sizeof host - 1] = '\0';
    ADD_S("host.name", host);
  }
  if (st != NULL)
    for (size_t i = 0; i < st->ntags; i++)
      ADD_S(st->tags[i].key, st->tags[i].value);
#undef ADD_S
  if (rc != HOTSPAN_OK)
    hs_otlp_resource_free(r);
  return rc;
}

/* ------------------------------------------------------------ encoder */

/* The spans of one service (one ResourceSpans). Kept between payloads. */
typedef struct group {
  char *service;
  pb_span **spans;
  size_t n;
  size_t cap;
} group;

#define MAX_GROUPS 64 /* services kept between payloads */

struct hs_otlp_encoder {
  arena a;
  /* The resource of the tracer's service, built once. */
  pb_kv *res_kv;
  pb_any *res_any;
  pb_kv **res_ptrs;
  size_t nres;
  size_t service_idx; /* index of service.name in res_ptrs */
  size_t pid_idx;     /* index of process.pid, or SIZE_MAX */
  hs_otlp_resource res;
  char *scope_version;
  group *groups; /* groups[0]: the tracer's service */
  size_t ngroups;
  uint32_t nspans;
};

static void tag_to_any(const hs_tag *t, pb_any *v, const char *s) {
  *v = any_init;
  switch (t->type) {
  case HS_TAG_STR:
    v->value_case =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    break;
  case HS_TAG_INT:
    v->value_case =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = t->v.i;
    break;
  case HS_TAG_DOUBLE:
    v->value_case =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = t->v.d;
    break;
  default:
    v->value_case =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = t->v.i != 0;
    break;
  }
}

hs_otlp_encoder *hs_otlp_encoder_new(const hs_otlp_resource *res,
                                     const char *service,
                                     const char *scope_version) {
  hs_otlp_encoder *e = calloc(1, sizeof *e);
  if (e == NULL)
    return NULL;
  e->pid_idx = SIZE_MAX;
  /* Copy of the attributes, service.name first. */
  int ok = hs_otlp_resource_add_str(
               &e->res, "service.name",
               service != NULL ? service : "unknown_service") == HOTSPAN_OK;
  for (size_t i = 0; ok && res != NULL && i < res->nattrs; i++) {
    const hs_tag *t = &res->attrs[i];
    if (t->type == HS_TAG_STR)
      ok = hs_otlp_resource_add_str(&e->res, t->key, t->v.s) == HOTSPAN_OK;
    else if (t->type == HS_TAG_INT)
      ok = hs_otlp_resource_add_int(&e->res, t->key, t->v.i) == HOTSPAN_OK;
  }
  e->scope_version = strdup(scope_version != NULL ? scope_version : "");
  e->nres = e->res.nattrs;
  e->res_kv = calloc(e->nres, sizeof *e->res_kv);
  e->res_any = calloc(e->nres, sizeof *e->res_any);
  e->res_ptrs = calloc(e->nres, sizeof *e->res_ptrs);
  e->groups = calloc(MAX_GROUPS, sizeof *e->groups);
  if (!ok || e->scope_version == NULL || e->res_kv == NULL ||
      e->res_any == NULL || e->res_ptrs == NULL || e->groups == NULL) {
    hs_otlp_encoder_free(e);
    return NULL;
  }
  for (size_t i = 0; i < e->nres; i++) {
    const hs_tag *t = &e->res.attrs[i];
    e->res_kv[i] = kv_init;
    e->res_kv[i].key = (char *)t->key;
    tag_to_any(t, &e->res_any[i], t->v.s);
    e->res_kv[i].value = &e->res_any[i];
    e->res_ptrs[i] = &e->res_kv[i];
    if (strcmp(t->key, "process.pid") == 0)
      e->pid_idx = i;
  }
  e->service_idx = 0;
  e->groups[0].service = strdup(e->res.attrs[0].v.s);
  if (e->groups[0].service == NULL) {
    hs_otlp_encoder_free(e);
    return NULL;
  }
  e->ngroups = 1;
  return e;
}

void hs_otlp_encoder_free(hs_otlp_encoder *e) {
  if (e == NULL)
    return;
  arena_free(&e->a);
  for (size_t i = 0; e->groups != NULL && i < e->ngroups; i++) {
    free(e->groups[i].service);
    free(e->groups[i].spans);
  }
  free(e->groups);
  free(e->res_kv);
  free(e->res_any);
  free(e->res_ptrs);
  free(e->scope_version);
  hs_otlp_resource_free(&e->res);
  free(e);
}

uint32_t hs_otlp_encoder_spans(const hs_otlp_encoder *e) {
  return e->nspans;
}

size_t hs_otlp_encoder_bytes(const hs_otlp_encoder *e) {
  return e->a.used;
}

void hs_otlp_encoder_reset(hs_otlp_encoder *e) {
  arena_rewind(&e->a);
  for (size_t i = 0; i < e->ngroups; i++)
    e->groups[i].n = 0;
  /* Services seen once should not pin memory forever. */
  if (e->ngroups > MAX_GROUPS / 2) {
    for (size_t i = 1; i < e->ngroups; i++) {
      free(e->groups[i].service);
      free(e->groups[i].spans);
      memset(&e->groups[i], 0, sizeof e->groups[i]);
    }
    e->ngroups = 1;
  }
  e->nspans = 0;
}

/* The group of a service; NULL when out of memory or out of groups. The
 * common case (the tracer's own service string) is one pointer or string
 * compare. */
static group *group_for(hs_otlp_encoder *e, const char *service) {
  if (service == NULL)
    return &e->groups[0];
  for (size_t i = 0; i < e->ngroups; i++)
    if (strcmp(e->groups[i].service, service) == 0)
      return &e->groups[i];
  if (e->ngroups == MAX_GROUPS)
    return NULL;
  group *g = &e->groups[e->ngroups];
  g->service = strdup(service);
  if (g->service == NULL)
    return NULL;
  e->ngroups++;
  return g;
}

static int group_push(group *g, pb_span *sp) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 256;
    pb_span **ns = realloc(g->spans, cap * sizeof *ns);
    if (ns == NULL)
      return -1;
    g->spans = ns;
    g->cap = cap;
  }
  g->spans[g->n++] = sp;
  return 0;
}

/* n KeyValues for tags (copied) plus extra slots left for the caller;
 * fills *out_ptrs. Returns 0, -1 on out of memory. */
static int build_attrs(arena *a, const hs_tag *tags, size_t n, size_t extra,
                       pb_kv ***out_ptrs) {
  size_t total = n + extra;
  *out_ptrs = NULL;
  if (total == 0)
    return 0;
  pb_kv **ptrs = arena_alloc(a, total * sizeof *ptrs);
  pb_kv *kvs = arena_alloc(a, total * sizeof *kvs);
  pb_any *anys = arena_alloc(a, total * sizeof *anys);
  if (ptrs == NULL || kvs == NULL || anys == NULL)
    return -1;
  for (size_t i = 0; i < total; i++) {
    kvs[i] = kv_init;
    anys[i] = any_init;
    kvs[i].value = &anys[i];
    ptrs[i] = &kvs[i];
  }
  for (size_t i = 0; i < n; i++) {
    const hs_tag *t = &tags[i];
    kvs[i].key = arena_strdup(a, t->key);
    const char *s = NULL;
    if (t->type == HS_TAG_STR && (s = arena_strdup(a, t->v.s)) == NULL)
      return -1;
    if (kvs[i].key == NULL)
      return -1;
    tag_to_any(t, &anys[i], s);
  }
  *out_ptrs = ptrs;
  return 0;
}

static void set_str_attr(pb_kv *kv, const char *key, char *value) {
  kv->key = (char *)key;
  kv->value->value_case =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  kv->value->string_value = value;
}

static ProtobufCBinaryData id_bytes(arena *a, uint64_t high, uint64_t low,
                                    int wide) {
  ProtobufCBinaryData b = {0, NULL};
  uint8_t *p = arena_alloc(a, wide ? 16 : 8);
  if (p == NULL)
    return b;
  if (wide)
    hs_otlp_trace_id_bytes(high, low, p);
  else
    hs_otlp_span_id_bytes(low, p);
  b.data = p;
  b.len = wide ? 16 : 8;
  return b;
}

static int add_events(arena *a, const hotspan_span *s, pb_span *sp) {
  if (s->nevents == 0)
    return 0;
  pb_event **evs = arena_alloc(a, s->nevents * sizeof *evs);
  pb_event *ev = arena_alloc(a, s->nevents * sizeof *ev);
  if (evs == NULL || ev == NULL)
    return -1;
  size_t i = 0;
  for (const hs_span_event *x = s->events; x != NULL && i < s->nevents;
       x = x->next, i++) {
    ev[i] = event_init;
    ev[i].time_unix_nano = x->time_ns;
    ev[i].name = arena_strdup(a, x->name);
    if (ev[i].name == NULL ||
        build_attrs(a, x->attrs, x->nattrs, 0, &ev[i].attributes) != 0)
      return -1;
    ev[i].n_attributes = x->nattrs;
    evs[i] = &ev[i];
  }
  sp->events = evs;
  sp->n_events = i;
  return 0;
}

static int add_links(arena *a, const hotspan_span *s, pb_span *sp) {
  if (s->nlinks == 0)
    return 0;
  pb_link **lks = arena_alloc(a, s->nlinks * sizeof *lks);
  pb_link *lk = arena_alloc(a, s->nlinks * sizeof *lk);
  if (lks == NULL || lk == NULL)
    return -1;
  size_t i = 0;
  for (const hs_span_link *x = s->links; x != NULL && i < s->nlinks;
       x = x->next, i++) {
    lk[i] = link_init;
    lk[i].trace_id = id_bytes(a, x->trace_id_high, x->trace_id_low, 1);
    lk[i].span_id = id_bytes(a, 0, x->span_id, 0);
    if (lk[i].trace_id.data == NULL || lk[i].span_id.data == NULL)
      return -1;
    if (x->tracestate != NULL && x->tracestate[0] != '\0' &&
        (lk[i].trace_state = arena_strdup(a, x->tracestate)) == NULL)
      return -1;
    /* Whether the linked context is remote is not recorded: only the W3C
     * flags, without HAS_IS_REMOTE. */
    lk[i].flags = x->trace_flags;
    if (build_attrs(a, x->attrs, x->nattrs, 0, &lk[i].attributes) != 0)
      return -1;
    lk[i].n_attributes = x->nattrs;
    lks[i] = &lk[i];
  }
  sp->links = lks;
  sp->n_links = i;
  return 0;
}

static pb_span *encode_span(hs_otlp_encoder *e, const hotspan_span *s,
                            const hs_trace_view *tv, char *trace_state) {
  arena *a = &e->a;
  const hs_trace *tr = s->trace;
  pb_span *sp = arena_alloc(a, sizeof *sp);
  if (sp == NULL)
    return NULL;
  *sp = span_init;
  sp->trace_id = id_bytes(a, tr->id_high, tr->id_low, 1);
  sp->span_id = id_bytes(a, 0, s->span_id, 0);
  if (sp->trace_id.data == NULL || sp->span_id.data == NULL)
    return NULL;
  if (s->parent_id != 0) {
    sp->parent_span_id = id_bytes(a, 0, s->parent_id, 0);
    if (sp->parent_span_id.data == NULL)
      return NULL;
  }
  sp->trace_state = trace_state;
  sp->name = arena_strdup(a, s->name != NULL ? s->name : "");
  if (sp->name == NULL)
    return NULL;
  sp->kind =
      (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(s->kind <= 5 ? s->kind
                                                                     : 0);
  sp->start_time_unix_nano = s->start_ns;
  sp->end_time_unix_nano = s->start_ns + s->duration_ns;
  /* The parent of a local root with a parent id came from another
   * process; every other span's parent is in this process. */
  uint32_t flags = (tv->priority > 0 ? FLAG_SAMPLED : 0) | FLAG_HAS_IS_REMOTE;
  if (s->is_local_root && s->parent_id != 0 && tv->has_remote)
    flags |= FLAG_IS_REMOTE;
  sp->flags = flags;

  int has_res = s->resource != NULL && s->resource[0] != '\0' &&
                (s->name == NULL || strcmp(s->resource, s->name) != 0);
  int has_type = s->type != NULL && s->type[0] != '\0';
  size_t extra = (size_t)has_res + (size_t)has_type;
  if (build_attrs(a, s->tags, s->ntags, extra, &sp->attributes) != 0)
    return NULL;
  size_t k = s->ntags;
  if (has_res) {
    char *v = arena_strdup(a, s->resource);
    if (v == NULL)
      return NULL;
    set_str_attr(sp->attributes[k++], "resource.name", v);
  }
  if (has_type) {
    char *v = arena_strdup(a, s->type);
    if (v == NULL)
      return NULL;
    set_str_attr(sp->attributes[k++], "span.type", v);
  }
  sp->n_attributes = k;
  sp->dropped_events_count = s->dropped_events;
  sp->dropped_links_count = s->dropped_links;
  if (add_events(a, s, sp) != 0 || add_links(a, s, sp) != 0)
    return NULL;
  if (s->error) {
    pb_status *st = arena_alloc(a, sizeof *st);
    if (st == NULL)
      return NULL;
    *st = status_init;
    st->code =
        OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    for (size_t i = 0; i < s->ntags; i++)
      if (s->tags[i].type == HS_TAG_STR &&
          strcmp(s->tags[i].key, "error.message") == 0) {
        /* The attribute copy made above serves as the message too. */
        st->message = sp->attributes[i]->value->string_value;
        break;
      }
    sp->status = st;
  }
  return sp;
}

/* The W3C tracestate a span of the chunk would propagate (the dd member
 * with the sampling priority, origin and propagated tags, then other
 * vendors' members): the same for every span but for the dd member's p:
 * value, the span's own id. Built once per chunk; *id_at is where p:'s
 * digits are. */
static size_t chunk_tracestate(const hs_trace_view *tv, char *out,
                               size_t *id_at) {
  hotspan_context ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.sampling_priority = tv->priority;
  memcpy(ctx.origin, tv->origin, sizeof ctx.origin);
  memcpy(ctx.propagated_tags, tv->propagated_tags, sizeof ctx.propagated_tags);
  memcpy(ctx.tracestate_other, tv->tracestate_other,
         sizeof ctx.tracestate_other);
  return hs_prop_w3c_tracestate(&ctx, out, id_at);
}

int hs_otlp_encoder_add_chunk(hs_otlp_encoder *e, const hs_chunk *c) {
  hs_trace_view tv;
  hs_trace_snapshot(c->trace, &tv);
  char ts[HS_W3C_TRACESTATE_OUT];
  size_t ts_id_at = 0;
  size_t ts_len = chunk_tracestate(&tv, ts, &ts_id_at);
  const char *own = e->groups[0].service;
  group *last = &e->groups[0];
  const char *last_service = own;
  for (const hotspan_span *s = c->spans; s != NULL; s = s->next) {
    hs_span_prefetch(s->next);
    group *g = last;
    if (s->service != last_service && s->service != NULL &&
        strcmp(s->service, last->service) != 0) {
      g = group_for(e, s->service);
      if (g == NULL)
        return HOTSPAN_ENOMEM;
    }
    last = g;
    last_service = s->service;
    char *trace_state = arena_alloc(&e->a, ts_len + 1);
    if (trace_state == NULL)
      return HOTSPAN_ENOMEM;
    memcpy(trace_state, ts, ts_len + 1);
    hs_hex16(trace_state + ts_id_at, s->span_id);
    pb_span *sp = encode_span(e, s, &tv, trace_state);
    if (sp == NULL || group_push(g, sp) != 0)
      return HOTSPAN_ENOMEM;
    e->nspans++;
  }
  return HOTSPAN_OK;
}

int hs_otlp_encoder_finish(hs_otlp_encoder *e, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (e->nspans == 0) {
    hs_otlp_encoder_reset(e);
    return HOTSPAN_OK;
  }
  arena *a = &e->a;
  int rc = HOTSPAN_ENOMEM;
  if (e->pid_idx != SIZE_MAX) /* a forked child reports its own pid */
    e->res_any[e->pid_idx].int_value = hs_process_id();
  size_t nused = 0;
  for (size_t i = 0; i < e->ngroups; i++)
    nused += e->groups[i].n > 0;
  pb_rspans **rs = arena_alloc(a, nused * sizeof *rs);
  pb_scope *scope = arena_alloc(a, sizeof *scope);
  if (rs == NULL || scope == NULL)
    goto done;
  *scope =
      (pb_scope)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  scope->name = "hotspan";
  scope->version = e->scope_version;
  size_t k = 0;
  for (size_t i = 0; i < e->ngroups; i++) {
    group *g = &e->groups[i];
    if (g->n == 0)
      continue;
    pb_rspans *r = arena_alloc(a, sizeof *r);
    pb_sspans *ss = arena_alloc(a, sizeof *ss);
    pb_sspans **ssp = arena_alloc(a, sizeof *ssp);
    pb_resource *res = arena_alloc(a, sizeof *res);
    if (r == NULL || ss == NULL || ssp == NULL || res == NULL)
      goto done;
    *r = (pb_rspans)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    *ss = (pb_sspans)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    *res = (pb_resource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res->n_attributes = e->nres;
    if (i == 0) {
      res->attributes = e->res_ptrs;
    } else {
      /* Same attributes, another service.name. */
      pb_kv **ptrs = arena_alloc(a, e->nres * sizeof *ptrs);
      pb_kv *kv = arena_alloc(a, sizeof *kv);
      pb_any *v = arena_alloc(a, sizeof *v);
      if (ptrs == NULL || kv == NULL || v == NULL)
        goto done;
      memcpy(ptrs, e->res_ptrs, e->nres * sizeof *ptrs);
      *kv = kv_init;
      *v = any_init;
      kv->value = v;
      set_str_attr(kv, "service.name", g->service);
      ptrs[e->service_idx] = kv;
      res->attributes = ptrs;
    }
    ss->scope = scope;
    ss->spans = g->spans;
    ss->n_spans = g->n;
    ssp[0] = ss;
    r->resource = res;
    r->scope_spans = ssp;
    r->n_scope_spans = 1;
    rs[k++] = r;
  }
  pb_request req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.resource_spans = rs;
  req.n_resource_spans = k;
  size_t n = protobuf_c_message_get_packed_size(&req.base);
  uint8_t *buf = malloc(n > 0 ? n : 1);
  if (buf == NULL)
    goto done;
  size_t w = protobuf_c_message_pack(&req.base, buf);
  if (w != n) { /* cannot happen with consistent structs; never send junk */
    free(buf);
    rc = HOTSPAN_EIO;
    goto done;
  }
  *out = buf;
  *len = n;
  rc = HOTSPAN_OK;
done:
  hs_otlp_encoder_reset(e);
  return rc;
}

/* ------------------------------------------------------------ gzip */

int hs_otlp_gzip(const uint8_t *in, size_t len, int level, uint8_t **out,
                 size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* windowBits 15 + 16: the gzip wrapper Content-Encoding: gzip means. */
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return HOTSPAN_ENOMEM;
  size_t cap = deflateBound(&zs, (uLong)len);
  uint8_t *buf = malloc(cap);
  if (buf == NULL) {
    deflateEnd(&zs);
    return HOTSPAN_ENOMEM;
  }
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = buf;
  zs.avail_out = (uInt)cap;
  int zr = deflate(&zs, Z_FINISH);
  size_t n = zs.total_out;
  deflateEnd(&zs);
  if (zr != Z_STREAM_END) {
    free(buf);
    return HOTSPAN_EIO;
  }
  *out = buf;
  *outlen = n;
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ response */

int hs_otlp_decode_response(const uint8_t *body, size_t len, int64_t *rejected,
                            char *msg, size_t msglen) {
  *rejected = 0;
  if (msg != NULL && msglen > 0)
    msg[0] = '\0';
  if (len == 0)
    return 1;
  pb_response *r = (pb_response *)protobuf_c_message_unpack(
      &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor,
      NULL, len, body);
  if (r == NULL)
    return 0;
  int rc = 1;
  if (r->partial_success != NULL) {
    rc = 2;
    int64_t v = r->partial_success->rejected_spans;
    *rejected = v > 0 ? v : 0;
    const char *m = r->partial_success->error_message;
    if (msg != NULL && msglen > 0 && m != NULL)
      snprintf(msg, msglen, "%s", m);
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}
