/* The fork-handler registry (common/fork.h).
 *
 * No lock: a part registers while holding its own locks, and prepare takes
 * those same locks, so a registry mutex held from prepare to parent (or
 * taken inside a registration) would order the two sets of locks both
 * ways. Registration publishes a pointer in the slot of its rank with one
 * compare-and-swap; prepare walks the slots in rank order and remembers,
 * in the forking thread, which handlers it prepared; parent and child run
 * exactly those. A handler registered while a fork is in progress takes
 * part from the next fork on. */
#include "common/fork.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

static _Atomic(const hs_fork_handler *) by_rank[HS_FORK_RANK_LIMIT];
static _Atomic unsigned generation;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;

/* The ranks this thread's fork prepared, one bit each (a slot, once set,
 * never changes). The child is the forking thread's copy, so it sees the
 * same bits. */
static __thread uint64_t prepared __attribute__((tls_model("initial-exec")));

unsigned hs_fork_generation(void) {
  return atomic_load_explicit(&generation, memory_order_relaxed);
}

static const hs_fork_handler *at(int r) {
  return atomic_load_explicit(&by_rank[r], memory_order_acquire);
}

static void run_prepare(void) {
  prepared = 0;
  for (int r = 0; r < HS_FORK_RANK_LIMIT; r++) {
    const hs_fork_handler *h = at(r);
    if (h == NULL)
      continue;
    prepared |= (uint64_t)1 << r;
    if (h->prepare != NULL)
      h->prepare();
  }
}

static void run_parent(void) {
  for (int r = HS_FORK_RANK_LIMIT; r-- > 0;)
    if ((prepared >> r & 1) && at(r)->parent != NULL)
      at(r)->parent();
  prepared = 0;
}

static void run_child(void) {
  atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
  for (int r = HS_FORK_RANK_LIMIT; r-- > 0;)
    if ((prepared >> r & 1) && at(r)->child != NULL)
      at(r)->child();
  prepared = 0;
}

static void install(void) {
  installed = pthread_atfork(run_prepare, run_parent, run_child) == 0;
}

int hs_fork_register(const hs_fork_handler *h) {
  pthread_once(&install_once, install);
  if (!installed || h == NULL || h->rank < 0 || h->rank >= HS_FORK_RANK_LIMIT)
    return -1;
  const hs_fork_handler *expect = NULL;
  if (atomic_compare_exchange_strong_explicit(&by_rank[h->rank], &expect, h,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
    return 0;
  return expect == h ? 0 : -1;
}
