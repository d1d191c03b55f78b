#include "context/endpoints.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

/* Open-addressing table of ids, sized to twice the cap so it never fills.
 * Writers hold the mutex; readers of hs_endpoint_name only load the names
 * array, published with release stores. */
#define TABLE_SIZE (HS_ENDPOINT_MAX * 2)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t table[TABLE_SIZE]; /* 0 = empty, else id; set once */
static _Atomic(const char *) names[HS_ENDPOINT_MAX + 1];
static uint32_t count;
/* Requests per id since the last drain; [0] is the overflow id's. 32 KiB
 * of zeroed memory, no allocation. */
static _Atomic uint64_t requests[HS_ENDPOINT_MAX + 1];

/* Lock-free probe: slots go from 0 to an id once and never change again,
 * and an id's name is published before the slot, so a reader that finds
 * the name needs no lock. Every request's root span interns its endpoint:
 * the common case (a name seen before) must not serialise threads. */
static uint32_t find(const char *name, size_t len, uint64_t h) {
  for (size_t i = h % TABLE_SIZE;; i = (i + 1) % TABLE_SIZE) {
    uint32_t cur = atomic_load_explicit(&table[i], memory_order_acquire);
    if (cur == 0)
      return 0;
    const char *nm = atomic_load_explicit(&names[cur], memory_order_acquire);
    if (strncmp(nm, name, len) == 0 && nm[len] == '\0')
      return cur;
  }
}

uint32_t hs_endpoint_intern(const char *name, size_t len) {
  if (name == NULL || len == 0)
    return 0;
  uint64_t h = hs_hash_bytes(name, len);
  uint32_t id = find(name, len, h);
  if (id != 0)
    return id;
  pthread_mutex_lock(&mu);
  for (size_t i = h % TABLE_SIZE;; i = (i + 1) % TABLE_SIZE) {
    uint32_t cur = atomic_load_explicit(&table[i], memory_order_relaxed);
    if (cur == 0) {
      if (count >= HS_ENDPOINT_MAX) {
        id = HS_ENDPOINT_OVERFLOW;
        break;
      }
      char *copy = malloc(len + 1);
      if (copy == NULL) {
        id = HS_ENDPOINT_OVERFLOW;
        break;
      }
      memcpy(copy, name, len);
      copy[len] = '\0';
      id = ++count;
      atomic_store_explicit(&names[id], copy, memory_order_release);
      atomic_store_explicit(&table[i], id, memory_order_release);
      break;
    }
    const char *nm = atomic_load_explicit(&names[cur], memory_order_relaxed);
    if (strncmp(nm, name, len) == 0 && nm[len] == '\0') {
      id = cur;
      break;
    }
  }
  pthread_mutex_unlock(&mu);
  return id;
}

const char *hs_endpoint_name(uint32_t id) {
  if (id == HS_ENDPOINT_OVERFLOW)
    return "other";
  if (id == 0 || id > HS_ENDPOINT_MAX)
    return NULL;
  return atomic_load_explicit(&names[id], memory_order_acquire);
}

void hs_endpoint_count_request(uint32_t id) {
  size_t slot;
  if (id == HS_ENDPOINT_OVERFLOW)
    slot = 0;
  else if (id >= 1 && id <= HS_ENDPOINT_MAX)
    slot = id;
  else
    return;
  atomic_fetch_add_explicit(&requests[slot], 1, memory_order_relaxed);
}

size_t hs_endpoint_counts_drain(hs_endpoint_count_fn fn, void *arg) {
  size_t n = 0;
  for (uint32_t i = 1; i <= HS_ENDPOINT_MAX; i++) {
    /* Ids are handed out in order: the first id without a name ends the
     * used range (a slot is only counted after its name was published). */
    const char *name = atomic_load_explicit(&names[i], memory_order_acquire);
    if (name == NULL)
      break;
    if (atomic_load_explicit(&requests[i], memory_order_relaxed) == 0)
      continue;
    uint64_t c =
        atomic_exchange_explicit(&requests[i], 0, memory_order_relaxed);
    if (c != 0 && fn != NULL) {
      fn(name, c, arg);
      n++;
    }
  }
  uint64_t other =
      atomic_exchange_explicit(&requests[0], 0, memory_order_relaxed);
  if (other != 0 && fn != NULL) {
    fn(hs_endpoint_name(HS_ENDPOINT_OVERFLOW), other, arg);
    n++;
  }
  return n;
}
