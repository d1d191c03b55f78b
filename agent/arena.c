/* Per-request arena and small helpers shared by the decoders. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ingest.h"
#include "common/utf8.h"

struct hs_agent_chunk {
  struct hs_agent_chunk *next;
  size_t size; /* usable bytes after the header */
  size_t used;
  /* 16-byte alignment for the data that follows */
  _Alignas(16) unsigned char data[];
};

#define CHUNK_MIN ((size_t)64 << 10)

void hs_agent_limits_resolve(const hs_agent_limits *in, hs_agent_limits *out) {
  hs_agent_limits l = {0, 0};
  if (in)
    l = *in;
  if (!l.max_inflated)
    l.max_inflated = HS_AGENT_DEFAULT_MAX_INFLATED;
  if (!l.max_memory)
    l.max_memory = HS_AGENT_DEFAULT_MAX_MEMORY;
  *out = l;
}

static void arena_init(hs_agent_arena *a, size_t max) {
  a->head = NULL;
  a->total = 0;
  a->max = max ? max : HS_AGENT_DEFAULT_MAX_MEMORY;
  a->failed = 0;
}

/* Zeroed, 16-byte aligned memory, or NULL. n may be 0. */
static void *arena_alloc(hs_agent_arena *a, size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  if (need < n) {
    a->failed = HS_AGENT_ETOOBIG;
    return NULL;
  }
  struct hs_agent_chunk *c = a->head;
  if (!c || c->size - c->used < need) {
    size_t size = need > CHUNK_MIN ? need : CHUNK_MIN;
    if (size > a->max || a->total > a->max - size) {
      a->failed = HS_AGENT_ETOOBIG;
      return NULL;
    }
    c = malloc(sizeof(*c) + size);
    if (!c) {
      a->failed = HS_AGENT_ENOMEM;
      return NULL;
    }
    c->size = size;
    c->used = 0;
    c->next = a->head;
    a->head = c;
    a->total += size;
  }
  void *p = c->data + c->used;
  c->used += need;
  memset(p, 0, n);
  return p;
}

void *hs_agent_arena_array(hs_agent_arena *a, size_t n, size_t sz) {
  if (sz && n > (size_t)-1 / sz) {
    a->failed = HS_AGENT_ETOOBIG;
    return NULL;
  }
  return arena_alloc(a, n * sz);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if
 * invalid. A NUL byte counts as invalid too: the strings become C
 * strings. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  return n > 0 && s[0] == 0 ? 0 : hs_utf8_seq(s, n);
}

char *hs_agent_arena_utf8(hs_agent_arena *a, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t out = 0;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(u + i, n - i);
    out += k ? k : 3;
    i += k ? k : 1;
  }
  char *d = arena_alloc(a, out + 1);
  if (!d)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(u + i, n - i);
    if (k) {
      memcpy(d + o, s + i, k);
      o += k;
      i += k;
    } else {
      memcpy(d + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    }
  }
  d[o] = 0;
  return d;
}

static void arena_free(hs_agent_arena *a) {
  struct hs_agent_chunk *c = a->head;
  while (c) {
    struct hs_agent_chunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
  a->total = 0;
}

void hs_agent_decoded_init(hs_agent_decoded *d, const hs_agent_limits *lim) {
  hs_agent_limits l;
  hs_agent_limits_resolve(lim, &l);
  memset(&d->batch, 0, sizeof(d->batch));
  arena_init(&d->arena, l.max_memory);
}

void hs_agent_decoded_free(hs_agent_decoded *d) {
  arena_free(&d->arena);
  memset(&d->batch, 0, sizeof(d->batch));
}

int hs_agent_fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

int hs_agent_span_default_attr(hs_agent_arena *a, hs_ing_span *s,
                               const char *key, const char *val, size_t vlen) {
  for (uint32_t i = 0; i < s->nattrs; i++)
    if (strcmp(s->attrs[i].key, key) == 0)
      return 0;
  hs_ing_kv *kv = hs_agent_arena_array(a, (size_t)s->nattrs + 1, sizeof *kv);
  if (kv == NULL)
    return -1;
  if (s->nattrs > 0)
    memcpy(kv, s->attrs, s->nattrs * sizeof *kv);
  kv[s->nattrs].key = hs_agent_arena_utf8(a, key, strlen(key));
  kv[s->nattrs].str = hs_agent_arena_utf8(a, val, vlen);
  kv[s->nattrs].num = 0;
  if (kv[s->nattrs].key == NULL || kv[s->nattrs].str == NULL)
    return -1;
  s->attrs = kv;
  s->nattrs++;
  return 0;
}
