/* Single-producer single-consumer ring of variable-size records.
 *
 * The producer is a signal handler running on the thread that owns the ring;
 * the consumer is the aggregator thread. Neither side locks or allocates: the
 * producer reserves room for the largest record it may write, writes the
 * record in place, then commits its real size. A record never wraps: when the
 * tail end of the buffer is too short, the producer writes a padding marker
 * and starts again at offset 0. When the ring has no room the producer gets
 * NULL and drops its record (the caller counts it).
 *
 * Positions are byte counters that only grow; the buffer size is a power of
 * two, so a position's offset is pos & (size - 1). The producer publishes
 * head with release order after writing; the consumer publishes tail with
 * release order after reading. Records are 8-byte aligned.
 */
#ifndef HS_PROFILER_RING_H
#define HS_PROFILER_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hs_ring {
  _Atomic uint64_t head; /* written by the producer only */
  _Atomic uint64_t tail; /* written by the consumer only */
  uint64_t resv;         /* producer: start of the reserved record */
  uint8_t *buf;
  size_t size; /* power of two; 0 when not allocated */
} hs_ring;

/* Allocates a ring of at least min_size bytes (rounded up to a power of two,
 * at least 4096) with mmap. Not async-signal-safe. Returns 0, or -1 when out
 * of memory (the ring is left empty). */
int hs_ring_init(hs_ring *r, size_t min_size);

/* Unmaps the buffer; no producer or consumer may use the ring any more.
 * NULL-safe and idempotent. */
void hs_ring_destroy(hs_ring *r);

/* Empties the ring. Only when neither side can run (after fork, in the
 * child). */
void hs_ring_reset(hs_ring *r);

/* Largest record a ring of this size accepts: a quarter of its size, so
 * that a full-size record fits even behind a padding marker. */
static inline size_t hs_ring_max_record(const hs_ring *r) {
  return r->size / 4 - 8;
}

/* Producer: returns 8-byte aligned room for max_len bytes, or NULL if the
 * ring lacks room (or max_len exceeds hs_ring_max_record). Nothing becomes
 * visible to the consumer until hs_ring_commit. Async-signal-safe. */
void *hs_ring_reserve(hs_ring *r, size_t max_len);

/* Producer: publishes the record reserved last, of len <= max_len bytes.
 * Async-signal-safe. */
void hs_ring_commit(hs_ring *r, size_t len);

/* Consumer: the oldest record and its length, or NULL if the ring is empty.
 * The record stays valid until hs_ring_release. */
const void *hs_ring_peek(hs_ring *r, size_t *len);

/* Consumer: frees the record returned by the last hs_ring_peek. */
void hs_ring_release(hs_ring *r);

#endif
