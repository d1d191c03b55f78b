#include "profiler/ring.h"

#include <string.h>
#include <sys/mman.h>

/* Every record starts with this 8-byte header. */
typedef struct rec_hdr {
  uint32_t len;  /* payload bytes */
  uint32_t kind; /* REC_DATA or REC_PAD */
} rec_hdr;

enum { REC_DATA = 1, REC_PAD = 2 };

static size_t align8(size_t n) {
  return (n + 7) & ~(size_t)7;
}

int hs_ring_init(hs_ring *r, size_t min_size) {
  size_t size = 4096;
  while (size < min_size && size < ((size_t)1 << 30))
    size <<= 1;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(r, 0, sizeof *r);
  if (p == MAP_FAILED)
    return -1;
  r->buf = p;
  r->size = size;
  return 0;
}

void hs_ring_destroy(hs_ring *r) {
  if (r == NULL || r->buf == NULL)
    return;
  munmap(r->buf, r->size);
  r->buf = NULL;
  r->size = 0;
  atomic_store(&r->head, 0);
  atomic_store(&r->tail, 0);
}

void hs_ring_reset(hs_ring *r) {
  atomic_store(&r->head, 0);
  atomic_store(&r->tail, 0);
  r->resv = 0;
}

void *hs_ring_reserve(hs_ring *r, size_t max_len) {
  if (r->buf == NULL || max_len > hs_ring_max_record(r))
    return NULL;
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  size_t need = sizeof(rec_hdr) + align8(max_len);
  size_t off = (size_t)(head & (r->size - 1));
  size_t pad = (off + need > r->size) ? r->size - off : 0;
  if (head + pad + need - tail > r->size)
    return NULL;
  if (pad > 0) {
    /* The consumer reads this marker only after the commit below publishes
     * head past it. */
    rec_hdr h = {(uint32_t)(pad - sizeof(rec_hdr)), REC_PAD};
    memcpy(r->buf + off, &h, sizeof h);
    head += pad;
    off = 0;
  }
  r->resv = head;
  return r->buf + off + sizeof(rec_hdr);
}

void hs_ring_commit(hs_ring *r, size_t len) {
  size_t off = (size_t)(r->resv & (r->size - 1));
  rec_hdr h = {(uint32_t)len, REC_DATA};
  memcpy(r->buf + off, &h, sizeof h);
  atomic_store_explicit(&r->head, r->resv + sizeof(rec_hdr) + align8(len),
                        memory_order_release);
}

const void *hs_ring_peek(hs_ring *r, size_t *len) {
  if (r->buf == NULL)
    return NULL;
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  while (tail != head) {
    size_t off = (size_t)(tail & (r->size - 1));
    rec_hdr h;
    memcpy(&h, r->buf + off, sizeof h);
    if (h.kind == REC_PAD) {
      tail += sizeof(rec_hdr) + h.len;
      atomic_store_explicit(&r->tail, tail, memory_order_release);
      continue;
    }
    *len = h.len;
    return r->buf + off + sizeof(rec_hdr);
  }
  return NULL;
}

void hs_ring_release(hs_ring *r) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  size_t off = (size_t)(tail & (r->size - 1));
  rec_hdr h;
  memcpy(&h, r->buf + off, sizeof h);
  atomic_store_explicit(&r->tail, tail + sizeof(rec_hdr) + align8(h.len),
                        memory_order_release);
}
