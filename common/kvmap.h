/* A hash map from byte strings to int64 values, for the store's dedup
 * caches and the engine's aggregations. Keys are copied into the map.
 * Open addressing with linear probing; grows at 70 % load. Not
 * thread-safe. */
#ifndef HS_COMMON_KVMAP_H
#define HS_COMMON_KVMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_kv_slot {
  char *key; /* NULL: empty */
  size_t klen;
  uint64_t hash;
  int64_t val;
} hs_kv_slot;

typedef struct hs_kvmap {
  hs_kv_slot *slots;
  size_t cap, n; /* cap is a power of two (or 0) */
} hs_kvmap;

void hs_kvmap_init(hs_kvmap *m);
void hs_kvmap_free(hs_kvmap *m); /* empties; the map may be reused */
/* The slot for key, or NULL. */
hs_kv_slot *hs_kvmap_get(const hs_kvmap *m, const void *key, size_t klen);
/* The slot for key, inserted with val if absent (*added = 1 then). NULL if
 * out of memory. The pointer is valid until the next insertion. */
hs_kv_slot *hs_kvmap_put(hs_kvmap *m, const void *key, size_t klen, int64_t val,
                         int *added);

#endif
