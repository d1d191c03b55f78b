#include "common/kvmap.h"

#include "common/hash.h"

#include <stdlib.h>
#include <string.h>

void hs_kvmap_init(hs_kvmap *m) {
  memset(m, 0, sizeof *m);
}

void hs_kvmap_free(hs_kvmap *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].key);
  free(m->slots);
  memset(m, 0, sizeof *m);
}

static hs_kv_slot *find(const hs_kvmap *m, const void *key, size_t klen,
                        uint64_t h) {
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    hs_kv_slot *s = &m->slots[i];
    if (!s->key ||
        (s->hash == h && s->klen == klen && !memcmp(s->key, key, klen)))
      return s;
  }
}

hs_kv_slot *hs_kvmap_get(const hs_kvmap *m, const void *key, size_t klen) {
  if (!m->cap)
    return NULL;
  hs_kv_slot *s = find(m, key, klen, hs_hash_bytes(key, klen));
  return s->key ? s : NULL;
}

static int grow(hs_kvmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  hs_kv_slot *ns = calloc(ncap, sizeof *ns);
  if (!ns)
    return -1;
  hs_kvmap old = *m;
  m->slots = ns;
  m->cap = ncap;
  for (size_t i = 0; i < old.cap; i++) {
    if (old.slots[i].key)
      *find(m, old.slots[i].key, old.slots[i].klen, old.slots[i].hash) =
          old.slots[i];
  }
  free(old.slots);
  return 0;
}

hs_kv_slot *hs_kvmap_put(hs_kvmap *m, const void *key, size_t klen, int64_t val,
                         int *added) {
  if (added)
    *added = 0;
  if ((m->n + 1) * 10 > m->cap * 7 && grow(m) < 0)
    return NULL;
  uint64_t h = hs_hash_bytes(key, klen);
  hs_kv_slot *s = find(m, key, klen, h);
  if (s->key)
    return s;
  /* +1: keys are often strings that callers read back NUL-terminated. */
  char *k = malloc(klen + 1);
  if (!k)
    return NULL;
  memcpy(k, key, klen);
  k[klen] = 0;
  s->key = k;
  s->klen = klen;
  s->hash = h;
  s->val = val;
  m->n++;
  if (added)
    *added = 1;
  return s;
}
