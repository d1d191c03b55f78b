/* Stack unwinding inside the profiler's signal handler: frame pointers,
 * libunwind, and the "auto" choice between them.
 *
 * Frame pointers cost a few loads per frame but see only code built with
 * them, and miss the caller of a leaf function that has none (most of libc
 * on common distributions: a thread blocked in read() shows read's caller's
 * caller). libunwind reads DWARF call frame information (.eh_frame), which
 * nearly every object has, at roughly ten times the cost. "auto" walks the
 * frame pointers first and keeps the result when it is sane:
 *   - the walk stayed inside the thread's stack, frame addresses grew
 *     strictly and were 8-byte aligned (checked for every frame, in every
 *     mode: this is what makes the walk safe to do at all);
 *   - it found at least one return address;
 *   - every address found lies in an executable segment of a loaded object;
 *   - the interrupted pc and the first return address lie in the same
 *     object. A leaf in another object than its caller is, in practice, a
 *     call into a library built without frame pointers (libc), exactly the
 *     case where the walk would silently skip the caller.
 * Otherwise it unwinds again with libunwind.
 *
 * libunwind is used through unw_init_local2(UNW_INIT_SIGNAL_FRAME) and
 * unw_step(), which the libunwind manual lists as safe in signal handlers.
 * unw_backtrace() is not used: its trace cache calls pthread_once and
 * pthread_setspecific on a thread's first use. */
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "common/log.h"
#include "profiler/engine_int.h"

/* ------------------------------------------------------------------------
 * Executable ranges of loaded objects, for the "auto" sanity check.
 * Two fixed tables of atomics: the aggregator fills the one not in use and
 * then publishes it. A handler still reading the old one while it is being
 * refilled (it would have to be preempted for a full refresh period) gets a
 * wrong answer, never a fault: the tables hold numbers only and are never
 * freed. */

#define RANGES_MAX 2048

typedef struct xrange {
  _Atomic uintptr_t start, end;
  _Atomic uint32_t obj;
} xrange;

static xrange ranges[2][RANGES_MAX];
static _Atomic uint32_t ranges_n[2];
static _Atomic int ranges_cur;
static unsigned long long seen_adds = ~0ull, seen_subs = ~0ull;

typedef struct plain_range {
  uintptr_t start, end;
  uint32_t obj;
} plain_range;

typedef struct collect_ctx {
  plain_range *r;
  size_t n, cap;
  uint32_t obj;
} collect_ctx;

static int collect_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  collect_ctx *c = arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0)
      continue;
    if (c->n == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 64;
      plain_range *nr = realloc(c->r, cap * sizeof *nr);
      if (nr == NULL)
        return 1;
      c->r = nr;
      c->cap = cap;
    }
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    c->r[c->n++] = (plain_range){start, start + ph->p_memsz, c->obj};
  }
  c->obj++;
  return 0;
}

static int cmp_range(const void *a, const void *b) {
  const plain_range *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

static int counts_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  unsigned long long *out = arg;
  if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
    return 1;
  out[0] = info->dlpi_adds;
  out[1] = info->dlpi_subs;
  return 1; /* the counters are the same in every entry: stop at once */
}

void hs_prof_unwind_refresh_maps(void) {
  unsigned long long counts[2] = {0, 0};
  dl_iterate_phdr(counts_cb, counts);
  if (counts[0] == seen_adds && counts[1] == seen_subs)
    return;
  collect_ctx c = {0};
  dl_iterate_phdr(collect_cb, &c);
  if (c.r == NULL)
    return;
  qsort(c.r, c.n, sizeof *c.r, cmp_range);
  int next = 1 - atomic_load(&ranges_cur);
  size_t n = c.n < RANGES_MAX ? c.n : RANGES_MAX;
  for (size_t i = 0; i < n; i++) {
    atomic_store_explicit(&ranges[next][i].start, c.r[i].start,
                          memory_order_relaxed);
    atomic_store_explicit(&ranges[next][i].end, c.r[i].end,
                          memory_order_relaxed);
    atomic_store_explicit(&ranges[next][i].obj, c.r[i].obj,
                          memory_order_relaxed);
  }
  atomic_store_explicit(&ranges_n[next], (uint32_t)n, memory_order_release);
  atomic_store_explicit(&ranges_cur, next, memory_order_release);
  free(c.r);
  seen_adds = counts[0];
  seen_subs = counts[1];
}

/* Object index of the executable range holding pc, or -1. */
static int range_obj(uintptr_t pc) {
  int cur = atomic_load_explicit(&ranges_cur, memory_order_acquire);
  uint32_t n = atomic_load_explicit(&ranges_n[cur], memory_order_acquire);
  const xrange *r = ranges[cur];
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (atomic_load_explicit(&r[mid].start, memory_order_relaxed) <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return -1;
  const xrange *x = &r[lo - 1];
  if (pc >= atomic_load_explicit(&x->end, memory_order_relaxed))
    return -1;
  return (int)atomic_load_explicit(&x->obj, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * libunwind setup. */

/* libunwind honours UNW_CACHE_PER_THREAD only when it was built with
 * --enable-per-thread-cache; otherwise that policy makes it use the global
 * cache *without* its lock, a data race between threads unwinding at once.
 * A per-thread cache lives in libunwind's TLS, which then is kilobytes
 * large, so the size of its TLS segment tells which build this is. The
 * global cache's lock is taken with all signals blocked, so a handler never
 * waits on a lock held by the thread it interrupted. */
static int unw_tls_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  size_t *tls = arg;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libunwind") == NULL)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_TLS)
      *tls = info->dlpi_phdr[i].p_memsz;
  return 1;
}

/* Runs libunwind once outside signal context so that its one-time setup
 * (which takes a lock and maps memory) never happens in the handler. */
static __attribute__((noinline)) void unw_warm_up(void) {
  unw_context_t ctx;
  unw_cursor_t cur;
  if (unw_getcontext(&ctx) != 0 || unw_init_local(&cur, &ctx) != 0)
    return;
  for (int i = 0; i < 64 && unw_step(&cur) > 0; i++)
    ;
}

void hs_prof_unwind_init(void) {
  static int done;
  if (!done) {
    size_t tls = 0;
    dl_iterate_phdr(unw_tls_cb, &tls);
    unw_caching_policy_t pol =
        tls >= 1024 ? UNW_CACHE_PER_THREAD : UNW_CACHE_GLOBAL;
    unw_set_caching_policy(unw_local_addr_space, pol);
    hs_log(HS_LOG_DEBUG, "libunwind caching policy: %s",
           pol == UNW_CACHE_PER_THREAD ? "per thread" : "global");
    done = 1;
  }
  unw_warm_up();
  hs_prof_unwind_refresh_maps();
}

/* ------------------------------------------------------------------------
 * The walks. */

/* Frame-pointer walk. Reads only [sp, stack_hi): the live part of the
 * interrupted thread's stack, which is mapped. Excluded from ASan because it
 * reads stack words that may belong to other frames' redzones. */
__attribute__((no_sanitize_address)) static uint32_t
fp_walk(const ucontext_t *uc, uintptr_t stack_hi, uintptr_t *pcs, uint32_t max,
        int *truncated) {
  uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
  uintptr_t lo = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
  uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
  uint32_t n = 0;
  pcs[n++] = pc;
  if (stack_hi == 0)
    return n;
  while (fp >= lo && fp <= stack_hi - 2 * sizeof(uintptr_t) &&
         (fp & (sizeof(uintptr_t) - 1)) == 0) {
    const uintptr_t *frame = (const uintptr_t *)fp;
    uintptr_t next = frame[0];
    uintptr_t ret = frame[1];
    if (ret < 4096)
      break;
    if (n == max) {
      *truncated = 1;
      break;
    }
    pcs[n++] = ret;
    if (next <= fp)
      break;
    lo = fp + 2 * sizeof(uintptr_t);
    fp = next;
  }
  return n;
}

static int fp_sane(const uintptr_t *pcs, uint32_t n) {
  if (n < 2)
    return 0;
  int leaf = range_obj(pcs[0]);
  if (leaf < 0 || range_obj(pcs[1] - 1) != leaf)
    return 0;
  for (uint32_t i = 2; i < n; i++)
    if (range_obj(pcs[i] - 1) < 0)
      return 0;
  return 1;
}

static uint32_t unw_walk(ucontext_t *uc, uintptr_t *pcs, uint32_t max,
                         int *truncated, int *incomplete) {
  unw_cursor_t cur;
  uint32_t n = 0;
  if (unw_init_local2(&cur, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) != 0) {
    pcs[n++] = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *incomplete = 1;
    return n;
  }
  for (;;) {
    unw_word_t ip = 0;
    if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
      break;
    if (n == max) {
      *truncated = 1;
      break;
    }
    pcs[n++] = (uintptr_t)ip;
    int r = unw_step(&cur);
    if (r < 0)
      *incomplete = 1;
    if (r <= 0)
      break;
  }
  if (n == 0) {
    pcs[n++] = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *incomplete = 1;
  }
  return n;
}

uint32_t hs_prof_unwind(const ucontext_t *uc, int unwinder, uintptr_t stack_hi,
                        uintptr_t *pcs, uint32_t max, int *truncated,
                        int *incomplete, int *used_fp) {
  *truncated = 0;
  *incomplete = 0;
  *used_fp = 0;
  if (uc == NULL || max == 0)
    return 0;
  ucontext_t *muc = (ucontext_t *)(uintptr_t)uc;
  if (unwinder == HOTSPAN_UNWINDER_LIBUNWIND)
    return unw_walk(muc, pcs, max, truncated, incomplete);
  uint32_t n = fp_walk(uc, stack_hi, pcs, max, truncated);
  if (unwinder == HOTSPAN_UNWINDER_FP) {
    *used_fp = 1;
    if (n < 2 && stack_hi == 0)
      *incomplete = 1;
    return n;
  }
  if (stack_hi != 0 && fp_sane(pcs, n)) {
    *used_fp = 1;
    return n;
  }
  *truncated = 0;
  return unw_walk(muc, pcs, max, truncated, incomplete);
}
