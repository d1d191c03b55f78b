/* Endpoint registry (see endpoints.h).
 *
 * Interning is rare (once per distinct endpoint name per process) and
 * lookups are frequent (every profile sample with a span), so interning
 * takes a mutex and lookups read an array of published name pointers with
 * acquire loads and never lock. */
#include "correlation/endpoints.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Open-addressing table of ids, twice the cap so probes stay short. */
#define EP_SLOTS (2 * HS_ENDPOINT_MAX)

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t ep_slots[EP_SLOTS]; /* 0 = empty, else id; under ep_lock */
static uint32_t ep_count;           /* ids handed out; under ep_lock */
/* ep_names[id] for 1 <= id <= HS_ENDPOINT_MAX; written once (release)
 * under ep_lock, read lock-free (acquire). */
static _Atomic(const char *) ep_names[HS_ENDPOINT_MAX + 1];

static uint32_t ep_hash(const char *s, size_t len) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

uint32_t hs_endpoint_intern(const char *name, size_t len) {
  if (name == NULL)
    return 0;
  len = strnlen(name, len); /* a name ends at its first NUL, if any */
  if (len == 0)
    return 0;
  uint32_t h = ep_hash(name, len);
  uint32_t id = HS_ENDPOINT_OVERFLOW;
  pthread_mutex_lock(&ep_lock);
  for (uint32_t i = h % EP_SLOTS;; i = (i + 1) % EP_SLOTS) {
    uint32_t cur = ep_slots[i];
    if (cur == 0) {
      if (ep_count >= HS_ENDPOINT_MAX)
        break; /* full: overflow id, table unchanged */
      char *copy = malloc(len + 1);
      if (copy == NULL)
        break; /* out of memory: the name is folded into "other" */
      memcpy(copy, name, len);
      copy[len] = '\0';
      id = ++ep_count;
      atomic_store_explicit(&ep_names[id], copy, memory_order_release);
      ep_slots[i] = id;
      break;
    }
    const char *n = atomic_load_explicit(&ep_names[cur], memory_order_relaxed);
    if (strncmp(n, name, len) == 0 && n[len] == '\0') {
      id = cur;
      break;
    }
  }
  pthread_mutex_unlock(&ep_lock);
  return id;
}

const char *hs_endpoint_name(uint32_t id) {
  if (id == HS_ENDPOINT_OVERFLOW)
    return "other";
  if (id == 0 || id > HS_ENDPOINT_MAX)
    return NULL;
  return atomic_load_explicit(&ep_names[id], memory_order_acquire);
}
