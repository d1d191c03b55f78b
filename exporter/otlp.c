/* OTLP/HTTP protobuf trace encoder (see otlp.h).
 *
 * Workload: one payload holds up to a few thousand spans, each with a
 * handful of tags; the writer thread encodes up to ~10^6 spans/s. Each span
 * is written in the wire format as it is added, into its service's buffer,
 * and a payload is those buffers behind a few bytes of resource and scope.
 * protobuf-c's generated code reads the collector's responses (and the
 * tests read our requests with it); writing through its message structs
 * cost two generic passes over a tree built per span, three times the
 * time of the whole direct encoding (docs/PERFORMANCE.md, "Exporters"). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/gzip.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/text.h"
#include "exporter/otlp.h"
#include "hotspan/error.h"
#include "hotspan/version.h"
#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse
    pb_response;

#define FLAG_SAMPLED 0x01u
#define FLAG_HAS_IS_REMOTE 0x100u
#define FLAG_IS_REMOTE 0x200u

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
  size_t klen = strlen(key);
  t->klen = (uint16_t)(klen <= UINT16_MAX ? klen : UINT16_MAX);
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

/* ------------------------------------------------------------ wire */

/* Protocol Buffers wire format, written directly: a field is its key
 * (field number << 3 | wire type) as a varint, then a varint, 8 or 4
 * little-endian bytes, or a varint length and that many bytes. Fields are
 * written in field-number order and proto3 defaults (0, "", empty bytes)
 * are left out, except inside the AnyValue oneof, where the member written
 * is the value. Nested messages are sized first (the *_size functions), so
 * that each length is written once, minimally, with no second pass. */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static size_t vlen(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static void put_varint_long(hs_buf *b, uint64_t v) {
  uint8_t t[10];
  size_t n = 0;
  while (v >= 0x80) {
    t[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  t[n++] = (uint8_t)v;
  hs_buf_append(b, t, n);
}

/* Most varints here (keys, lengths of short strings) are one byte. */
static inline void put_varint(hs_buf *b, uint64_t v) {
  if (v < 0x80)
    hs_buf_putc(b, (char)v);
  else
    put_varint_long(b, v);
}

static void put_key(hs_buf *b, unsigned field, unsigned wt) {
  put_varint(b, (uint64_t)field << 3 | wt);
}

/* A fixed64 (wt WT_I64, 8 bytes) or fixed32 (WT_I32, 4) field. */
static void put_fixed(hs_buf *b, unsigned field, unsigned wt, uint64_t v) {
  uint8_t t[8];
  size_t n = wt == WT_I64 ? 8 : 4;
  for (size_t i = 0; i < n; i++)
    t[i] = (uint8_t)(v >> (8 * i));
  put_key(b, field, wt);
  hs_buf_append(b, t, n);
}

static void put_fixed64(hs_buf *b, unsigned field, uint64_t v) {
  put_fixed(b, field, WT_I64, v);
}

static void put_fixed32(hs_buf *b, unsigned field, uint32_t v) {
  put_fixed(b, field, WT_I32, v);
}

/* A length-delimited field: key, length, n bytes of p. */
static void put_lenfield(hs_buf *b, unsigned field, const void *p, size_t n) {
  put_key(b, field, WT_LEN);
  put_varint(b, n);
  hs_buf_append(b, p, n);
}

/* The key and length of a field whose n bytes the caller writes next. */
static void put_lenhead(hs_buf *b, unsigned field, size_t n) {
  put_key(b, field, WT_LEN);
  put_varint(b, n);
}

/* A proto3 string field; left out when empty. */
static void put_str(hs_buf *b, unsigned field, const char *s, size_t n) {
  if (n > 0)
    put_lenfield(b, field, s, n);
}

/* Size of a length-delimited field (key of a field below 16) of n bytes. */
static size_t lenfield_size(size_t n) {
  return 1 + vlen(n) + n;
}

/* AnyValue (string 1, bool 2, int 3, double 4) of a tag. */
static size_t any_size(const hs_tag *t, size_t slen) {
  switch (t->type) {
  case HS_TAG_STR:
    return lenfield_size(slen);
  case HS_TAG_INT:
    return 1 + vlen((uint64_t)t->v.i);
  case HS_TAG_DOUBLE:
    return 1 + 8;
  default:
    return 1 + 1;
  }
}

static void put_any(hs_buf *b, const hs_tag *t, size_t slen) {
  switch (t->type) {
  case HS_TAG_STR:
    put_lenfield(b, 1, t->v.s, slen);
    break;
  case HS_TAG_INT:
    put_key(b, 3, WT_VARINT);
    put_varint(b, (uint64_t)t->v.i);
    break;
  case HS_TAG_DOUBLE: {
    uint64_t bits;
    memcpy(&bits, &t->v.d, sizeof bits);
    put_fixed64(b, 4, bits);
    break;
  }
  default:
    put_key(b, 2, WT_VARINT);
    put_varint(b, t->v.i != 0);
    break;
  }
}

/* KeyValue (key 1, value 2) of a tag. */
static size_t kv_size(const hs_tag *t, size_t klen, size_t slen) {
  return (klen > 0 ? lenfield_size(klen) : 0) +
         lenfield_size(any_size(t, slen));
}

static size_t tag_slen(const hs_tag *t) {
  return t->type == HS_TAG_STR ? strlen(t->v.s) : 0;
}

/* One attribute as field `field` (a KeyValue) of the enclosing message. */
static void put_attr(hs_buf *b, unsigned field, const hs_tag *t) {
  size_t klen = strlen(t->key), slen = tag_slen(t);
  put_lenhead(b, field, kv_size(t, klen, slen));
  put_str(b, 1, t->key, klen);
  put_lenhead(b, 2, any_size(t, slen));
  put_any(b, t, slen);
}

/* Total size of n attributes written as field numbers below 16. */
static size_t attrs_size(const hs_tag *tags, size_t n) {
  size_t sz = 0;
  for (size_t i = 0; i < n; i++)
    sz += lenfield_size(
        kv_size(&tags[i], strlen(tags[i].key), tag_slen(&tags[i])));
  return sz;
}

static void put_attrs(hs_buf *b, unsigned field, const hs_tag *tags, size_t n) {
  for (size_t i = 0; i < n; i++)
    put_attr(b, field, &tags[i]);
}

/* A string attribute that is not a span tag (resource.name, span.type). */
static void put_str_attr(hs_buf *b, unsigned field, const char *key,
                         const char *value) {
  hs_tag t = {.key = key,
              .klen = (uint16_t)strlen(key),
              .type = HS_TAG_STR,
              .v.s = value};
  put_attr(b, field, &t);
}

static void put_id(hs_buf *b, unsigned field, uint64_t id) {
  uint8_t t[8];
  hs_otlp_span_id_bytes(id, t);
  put_lenfield(b, field, t, 8);
}

static void put_trace_id(hs_buf *b, unsigned field, uint64_t high,
                         uint64_t low) {
  uint8_t t[16];
  hs_otlp_trace_id_bytes(high, low, t);
  put_lenfield(b, field, t, 16);
}

/* ------------------------------------------------------------ encoder */

/* The spans of one service (one ResourceSpans), already encoded as the
 * repeated `spans` field (2) of its ScopeSpans. Kept between payloads. */
typedef struct group {
  char *service;
  hs_buf spans;
  uint32_t n;
} group;

#define MAX_GROUPS 64 /* services kept between payloads */

struct hs_otlp_encoder {
  /* The resource of the tracer's service: service.name first. */
  hs_otlp_resource res;
  size_t pid_idx; /* index of process.pid, or SIZE_MAX */
  char *scope_version;
  group *groups; /* groups[0]: the tracer's service */
  size_t ngroups;
  hs_buf span; /* one span's message, before its length is known */
  uint32_t nspans;
  size_t bytes; /* encoded spans pending, all groups */
};

hs_otlp_encoder *hs_otlp_encoder_new(const hs_otlp_resource *res,
                                     const char *service,
                                     const char *scope_version) {
  hs_otlp_encoder *e = calloc(1, sizeof *e);
  if (e == NULL)
    return NULL;
  e->pid_idx = SIZE_MAX;
  hs_buf_init(&e->span, 0);
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
  e->groups = calloc(MAX_GROUPS, sizeof *e->groups);
  if (!ok || e->scope_version == NULL || e->groups == NULL) {
    hs_otlp_encoder_free(e);
    return NULL;
  }
  for (size_t i = 0; i < e->res.nattrs; i++)
    if (strcmp(e->res.attrs[i].key, "process.pid") == 0)
      e->pid_idx = i;
  e->groups[0].service = strdup(e->res.attrs[0].v.s);
  if (e->groups[0].service == NULL) {
    hs_otlp_encoder_free(e);
    return NULL;
  }
  hs_buf_init(&e->groups[0].spans, 0);
  e->ngroups = 1;
  return e;
}

static void group_free(group *g) {
  free(g->service);
  hs_buf_free(&g->spans);
  memset(g, 0, sizeof *g);
}

void hs_otlp_encoder_free(hs_otlp_encoder *e) {
  if (e == NULL)
    return;
  for (size_t i = 0; e->groups != NULL && i < e->ngroups; i++)
    group_free(&e->groups[i]);
  free(e->groups);
  hs_buf_free(&e->span);
  free(e->scope_version);
  hs_otlp_resource_free(&e->res);
  free(e);
}

uint32_t hs_otlp_encoder_spans(const hs_otlp_encoder *e) {
  return e->nspans;
}

size_t hs_otlp_encoder_bytes(const hs_otlp_encoder *e) {
  return e->bytes;
}

static void hs_otlp_encoder_reset(hs_otlp_encoder *e) {
  for (size_t i = 0; i < e->ngroups; i++) {
    hs_buf_reset(&e->groups[i].spans);
    e->groups[i].n = 0;
  }
  /* Services seen once should not pin memory forever. */
  if (e->ngroups > MAX_GROUPS / 2) {
    for (size_t i = 1; i < e->ngroups; i++)
      group_free(&e->groups[i]);
    e->ngroups = 1;
  }
  e->nspans = 0;
  e->bytes = 0;
}

/* The group of a service; NULL when out of memory or out of groups. */
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
  hs_buf_init(&g->spans, 0);
  e->ngroups++;
  return g;
}

/* Span.Event (time 1, name 2, attributes 3) as field 11. */
static void put_events(hs_buf *b, const hotspan_span *s) {
  uint16_t i = 0;
  for (const hs_span_event *x = s->events; x != NULL && i < s->nevents;
       x = x->next, i++) {
    size_t nlen = x->name != NULL ? strlen(x->name) : 0;
    size_t sz = (x->time_ns != 0 ? 9 : 0) +
                (nlen > 0 ? lenfield_size(nlen) : 0) +
                attrs_size(x->attrs, x->nattrs);
    put_lenhead(b, 11, sz);
    if (x->time_ns != 0)
      put_fixed64(b, 1, x->time_ns);
    put_str(b, 2, x->name, nlen);
    put_attrs(b, 3, x->attrs, x->nattrs);
  }
}

/* Span.Link (trace_id 1, span_id 2, trace_state 3, attributes 4, flags 6)
 * as field 13. flags: the W3C flags byte, plus HAS_IS_REMOTE (and
 * IS_REMOTE) when the linked context says where it came from. */
static void put_links(hs_buf *b, const hotspan_span *s) {
  uint16_t i = 0;
  for (const hs_span_link *x = s->links; x != NULL && i < s->nlinks;
       x = x->next, i++) {
    size_t tslen = x->tracestate != NULL ? strlen(x->tracestate) : 0;
    size_t sz = lenfield_size(16) + lenfield_size(8) +
                (tslen > 0 ? lenfield_size(tslen) : 0) +
                attrs_size(x->attrs, x->nattrs);
    uint32_t flags = x->trace_flags;
    if (x->remote != HOTSPAN_CONTEXT_UNKNOWN)
      flags |= FLAG_HAS_IS_REMOTE;
    if (x->remote == HOTSPAN_CONTEXT_REMOTE)
      flags |= FLAG_IS_REMOTE;
    if (flags != 0)
      sz += 5;
    put_lenhead(b, 13, sz);
    put_trace_id(b, 1, x->trace_id_high, x->trace_id_low);
    put_id(b, 2, x->span_id);
    put_str(b, 3, x->tracestate, tslen);
    put_attrs(b, 4, x->attrs, x->nattrs);
    if (flags != 0)
      put_fixed32(b, 6, flags);
  }
}

/* One Span message into b (empty). trace_state: the chunk's, with this
 * span's id already in it. */
static void encode_span(hs_buf *b, const hotspan_span *s,
                        const hs_trace_view *tv, const char *trace_state,
                        size_t ts_len) {
  put_trace_id(b, 1, tv->id_high, tv->id_low);
  put_id(b, 2, s->span_id);
  put_str(b, 3, trace_state, ts_len);
  if (s->parent_id != 0)
    put_id(b, 4, s->parent_id);
  if (s->name != NULL)
    put_str(b, 5, s->name, strlen(s->name));
  if (s->kind >= 1 && s->kind <= 5) {
    put_key(b, 6, WT_VARINT);
    put_varint(b, s->kind);
  }
  if (s->start_ns != 0)
    put_fixed64(b, 7, s->start_ns);
  if (s->start_ns + s->duration_ns != 0)
    put_fixed64(b, 8, s->start_ns + s->duration_ns);
  put_attrs(b, 9, s->tags, s->ntags);
  if (s->resource != NULL && s->resource[0] != '\0' &&
      (s->name == NULL || strcmp(s->resource, s->name) != 0))
    put_str_attr(b, 9, "resource.name", s->resource);
  if (s->type != NULL && s->type[0] != '\0')
    put_str_attr(b, 9, "span.type", s->type);
  put_events(b, s);
  if (s->dropped_events != 0) {
    put_key(b, 12, WT_VARINT);
    put_varint(b, s->dropped_events);
  }
  put_links(b, s);
  if (s->dropped_links != 0) {
    put_key(b, 14, WT_VARINT);
    put_varint(b, s->dropped_links);
  }
  if (s->error) {
    /* Status (message 2, code 3): the error.message tag is the message. */
    const char *msg = NULL;
    for (uint16_t i = 0; i < s->ntags && msg == NULL; i++)
      if (s->tags[i].type == HS_TAG_STR &&
          strcmp(s->tags[i].key, "error.message") == 0)
        msg = s->tags[i].v.s;
    size_t mlen = msg != NULL ? strlen(msg) : 0;
    put_lenhead(b, 15, (mlen > 0 ? lenfield_size(mlen) : 0) + 2);
    put_str(b, 2, msg, mlen);
    put_key(b, 3, WT_VARINT);
    put_varint(b, 2); /* STATUS_CODE_ERROR */
  }
  /* The parent of a local root with a parent id came from another
   * process; every other span's parent is in this process. */
  uint32_t flags = (tv->priority > 0 ? FLAG_SAMPLED : 0) | FLAG_HAS_IS_REMOTE;
  if (s->is_local_root && s->parent_id != 0 && tv->has_remote)
    flags |= FLAG_IS_REMOTE;
  put_fixed32(b, 16, flags);
}

/* The W3C tracestate a span of the chunk would propagate (the dd member
 * with the sampling priority, origin and propagated tags, then other
 * vendors' members): the same for every span but for the dd member's p:
 * value, the span's own id. Built once per chunk; *id_at is where p:'s
 * digits are. */
static size_t chunk_tracestate(const hs_trace_view *tv, char *out,
                               size_t *id_at) {
  /* Only what the tracestate is made of; the strings are copied up to
   * their NUL (the buffers are 1 KiB in all and usually empty). */
  hotspan_context ctx;
  ctx.trace_id_high = ctx.trace_id_low = ctx.span_id = 0;
  ctx.sampling_priority = tv->priority;
  ctx.trace_flags = 0;
  ctx.remote = HOTSPAN_CONTEXT_UNKNOWN;
  hs_copy_field(ctx.origin, tv->origin, sizeof ctx.origin);
  hs_copy_field(ctx.propagated_tags, tv->propagated_tags,
                sizeof ctx.propagated_tags);
  hs_copy_field(ctx.tracestate_other, tv->tracestate_other,
                sizeof ctx.tracestate_other);
  ctx.last_dd_parent_id[0] = '\0';
  return hs_prop_w3c_tracestate(&ctx, out, id_at);
}

int hs_otlp_encoder_add_chunk(hs_otlp_encoder *e, const hs_chunk *c) {
  hs_trace_view tv;
  hs_trace_snapshot(c->trace, &tv);
  char ts[HS_W3C_TRACESTATE_OUT];
  size_t ts_id_at = 0;
  size_t ts_len = chunk_tracestate(&tv, ts, &ts_id_at);
  group *last = &e->groups[0];
  const char *last_service = last->service;
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
    hs_hex16(ts + ts_id_at, s->span_id);
    hs_buf_reset(&e->span);
    encode_span(&e->span, s, &tv, ts, ts_len);
    if (hs_buf_failed(&e->span))
      return HOTSPAN_ENOMEM; /* over 64 MiB, or out of memory */
    size_t before = g->spans.len;
    put_lenfield(&g->spans, 2, e->span.data, e->span.len);
    if (hs_buf_failed(&g->spans)) {
      /* Does not fit the group's buffer: leave what was there. */
      g->spans.len = before;
      g->spans.failed = 0;
      return HOTSPAN_ENOMEM;
    }
    g->n++;
    e->bytes += g->spans.len - before;
    e->nspans++;
  }
  return HOTSPAN_OK;
}

/* Resource (attributes 1) of group g: the encoder's attributes, with the
 * group's service as service.name (always the first). */
static size_t resource_size(const hs_otlp_encoder *e, const group *g) {
  hs_tag svc = {
      .key = "service.name", .klen = 12, .type = HS_TAG_STR, .v.s = g->service};
  size_t sz = lenfield_size(kv_size(&svc, 12, strlen(g->service)));
  return sz + attrs_size(e->res.attrs + 1, e->res.nattrs - 1);
}

static size_t scope_size(const hs_otlp_encoder *e) {
  size_t vl = strlen(e->scope_version);
  return lenfield_size(7) + (vl > 0 ? lenfield_size(vl) : 0);
}

int hs_otlp_encoder_finish(hs_otlp_encoder *e, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (e->nspans == 0) {
    hs_otlp_encoder_reset(e);
    return HOTSPAN_OK;
  }
  if (e->pid_idx != SIZE_MAX) /* a forked child reports its own pid */
    e->res.attrs[e->pid_idx].v.i = hs_process_id();
  /* ExportTraceServiceRequest: resource_spans (1) per service, each with
   * its resource (1) and one ScopeSpans (2) of scope (1) and spans (2). */
  size_t total = 0, scope = scope_size(e);
  for (size_t i = 0; i < e->ngroups; i++) {
    const group *g = &e->groups[i];
    if (g->n == 0)
      continue;
    size_t ss = lenfield_size(scope) + g->spans.len;
    size_t rs = lenfield_size(resource_size(e, g)) + lenfield_size(ss);
    total += lenfield_size(rs);
  }
  hs_buf b;
  hs_buf_init(&b, total + 1);
  if (hs_buf_reserve(&b, total) != 0) {
    hs_buf_free(&b);
    hs_otlp_encoder_reset(e);
    return HOTSPAN_ENOMEM;
  }
  for (size_t i = 0; i < e->ngroups; i++) {
    const group *g = &e->groups[i];
    if (g->n == 0)
      continue;
    size_t res = resource_size(e, g);
    size_t ss = lenfield_size(scope) + g->spans.len;
    put_lenhead(&b, 1, lenfield_size(res) + lenfield_size(ss));
    put_lenhead(&b, 1, res);
    put_str_attr(&b, 1, "service.name", g->service);
    put_attrs(&b, 1, e->res.attrs + 1, e->res.nattrs - 1);
    put_lenhead(&b, 2, ss);
    put_lenhead(&b, 1, scope);
    put_str(&b, 1, "hotspan", 7);
    put_str(&b, 2, e->scope_version, strlen(e->scope_version));
    hs_buf_append(&b, g->spans.data, g->spans.len);
  }
  hs_otlp_encoder_reset(e);
  if (hs_buf_failed(&b) || b.len != total) {
    /* Cannot happen with consistent sizes; never send a broken body. */
    hs_buf_free(&b);
    return HOTSPAN_EIO;
  }
  *out = (uint8_t *)b.data;
  *len = b.len;
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ gzip */

int hs_otlp_gzip(const uint8_t *in, size_t len, int level, uint8_t **out,
                 size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  hs_buf b;
  /* Room for incompressible input too (deflate adds 5 bytes per block). */
  hs_buf_init(&b, len + len / 64 + 1024);
  int rc = hs_gzip_append(&b, in, len, level);
  if (rc != HOTSPAN_OK) {
    hs_buf_free(&b);
    return rc;
  }
  *out = (uint8_t *)b.data;
  *outlen = b.len;
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
