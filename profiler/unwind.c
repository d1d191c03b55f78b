/* Stack unwinding inside the profiler's signal handler: frame pointers,
 * libunwind, and the "auto" choice between them.
 *
 * Frame pointers cost a few loads per frame but only work through code
 * built with them: a function without a frame pointer leaves its caller's
 * frame pointer in place, so the walk silently skips a frame (most of libc
 * on common distributions: a thread blocked in read() shows read's caller's
 * caller). libunwind reads DWARF call frame information (.eh_frame), which
 * nearly every object has, at several times the cost.
 *
 * "auto" walks the frame pointers first and keeps the result when it is
 * sane, else unwinds again with libunwind. Sane means:
 *   - the walk stayed inside the thread's stack, frame addresses grew
 *     strictly and were 8-byte aligned (checked for every frame, in every
 *     mode: this is what makes the walk safe at all);
 *   - it found at least one return address;
 *   - the interrupted pc and every return address but the outermost lie in
 *     an object built with frame pointers. The outermost may lie anywhere
 *     executable: the walk stops there, so its frame pointer was not used.
 *   - one libunwind step from the interrupted context finds the same
 *     caller as the walk. This catches the leaf-frame problem: a leaf
 *     function without a frame of its own (compilers omit it in small
 *     leaves even with -fno-omit-frame-pointer), or a sample in a
 *     prologue, makes the walk skip the leaf's caller. Deeper functions
 *     call others, so in code built with frame pointers they have frames.
 * Whether an object was built with frame pointers is decided once per
 * object, outside signal context: .eh_frame_hdr lists the start address of
 * every function with unwind information, and a sample of up to 256 of them
 * is checked for the prologue "push %rbp; ...; mov %rsp,%rbp". In code
 * built with frame pointers about 60 % of functions start that way (leaves
 * and tail-calling wrappers do not), in code built without them 0-2 % do;
 * the threshold is 25 %.
 * The check costs one libunwind step; a full libunwind walk costs one step
 * per frame, so "auto" stays several times cheaper than "libunwind" on code
 * built with frame pointers.
 *
 * libunwind is used through unw_init_local2(UNW_INIT_SIGNAL_FRAME) and
 * unw_step(), which the libunwind manual lists as safe in signal handlers.
 * unw_backtrace() is not used: its trace cache calls pthread_once and
 * pthread_setspecific on a thread's first use. */
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
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
#define RANGE_FP 0x80000000u /* in obj: the object uses frame pointers */

typedef struct xrange {
  _Atomic uintptr_t start, end;
  _Atomic uint32_t obj; /* object index | RANGE_FP */
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

/* Nonzero if [p, p + n) lies in a readable executable segment of info. */
static int in_code(const struct dl_phdr_info *info, uintptr_t p, size_t n) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || (ph->p_flags & (PF_X | PF_R)) != (PF_X | PF_R))
      continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (p >= lo && p + n <= lo + ph->p_memsz)
      return 1;
  }
  return 0;
}

/* "push %rbp" first (after an optional endbr64), then "mov %rsp,%rbp"
 * within the next 16 bytes (compilers may schedule other instructions in
 * between). */
static int has_fp_prologue(const uint8_t *f) {
  static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
  if (memcmp(f, endbr64, 4) == 0)
    f += 4;
  if (f[0] != 0x55)
    return 0;
  for (int i = 1; i < 17; i++)
    if (f[i] == 0x48 && f[i + 1] == 0x89 && f[i + 2] == 0xe5)
      return 1;
  return 0;
}

/* Decides whether the object was built with frame pointers (see the top of
 * this file). Reads its .eh_frame_hdr and code in memory. Returns 0 when in
 * doubt (unknown encodings, no header): libunwind is then used. */
static int object_uses_fp(const struct dl_phdr_info *info) {
  const uint8_t *hdr = NULL;
  size_t hdr_size = 0;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME) {
      hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
      hdr_size = info->dlpi_phdr[i].p_memsz;
    }
  /* version 1; eh_frame_ptr encoded as (pc|data)rel sdata4; fde_count as
   * udata4; table entries as datarel sdata4 pairs, the layout GNU ld, gold
   * and lld write. */
  if (hdr == NULL || hdr_size < 12 || hdr[0] != 1 || (hdr[1] & 0x0f) != 0x0b ||
      hdr[2] != 0x03 || hdr[3] != 0x3b)
    return 0;
  uint32_t count;
  memcpy(&count, hdr + 8, 4);
  if (count == 0 || 12 + (size_t)count * 8 > hdr_size)
    return 0;
  uint32_t step = count > 256 ? count / 256 : 1, checked = 0, with_fp = 0;
  for (uint32_t i = 0; i < count; i += step) {
    int32_t rel;
    memcpy(&rel, hdr + 12 + (size_t)i * 8, 4);
    uintptr_t fn = (uintptr_t)hdr + (intptr_t)rel;
    if (!in_code(info, fn, 24))
      continue;
    checked++;
    with_fp += has_fp_prologue((const uint8_t *)fn) ? 1 : 0;
  }
  return checked >= 4 && with_fp * 4 >= checked;
}

static int collect_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  collect_ctx *c = arg;
  uint32_t fp = 0;
  int fp_known = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0)
      continue;
    if (!fp_known) {
      fp = object_uses_fp(info) ? RANGE_FP : 0;
      fp_known = 1;
      hs_log(HS_LOG_DEBUG, "profiler: %s: %s",
             info->dlpi_name[0] ? info->dlpi_name : "(main program)",
             fp ? "frame pointers" : "no frame pointers");
    }
    if (c->n == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 64;
      plain_range *nr = realloc(c->r, cap * sizeof *nr);
      if (nr == NULL)
        return 1;
      c->r = nr;
      c->cap = cap;
    }
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    c->r[c->n++] = (plain_range){start, start + ph->p_memsz, c->obj | fp};
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

/* Object index (| RANGE_FP) of the executable range holding pc, or -1. */
static int64_t range_obj(uintptr_t pc) {
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
  return (int64_t)atomic_load_explicit(&x->obj, memory_order_relaxed);
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

/* The walk went only through frames of code built with frame pointers
 * (see the top of this file). */
static int fp_chain_ok(const uintptr_t *pcs, uint32_t n) {
  if (n < 2)
    return 0;
  int64_t leaf = range_obj(pcs[0]);
  if (leaf < 0 || !(leaf & RANGE_FP))
    return 0;
  for (uint32_t i = 1; i + 1 < n; i++) {
    int64_t o = range_obj(pcs[i] - 1);
    if (o < 0 || !(o & RANGE_FP))
      return 0;
  }
  return range_obj(pcs[n - 1] - 1) >= 0;
}

/* One libunwind step from the interrupted context: the caller's return
 * address and its frame pointer. Returns 0 if the step fails. */
static int leaf_step(ucontext_t *uc, uintptr_t *caller, uintptr_t *caller_bp) {
  unw_cursor_t cur;
  unw_word_t ip = 0, bp = 0;
  if (unw_init_local2(&cur, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) != 0 ||
      unw_step(&cur) <= 0 || unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 ||
      unw_get_reg(&cur, UNW_X86_64_RBP, &bp) != 0)
    return 0;
  *caller = (uintptr_t)ip;
  *caller_bp = (uintptr_t)bp;
  return 1;
}

/* The frame-pointer walk is right from pcs[1] on; decides whether its first
 * link is right too, and repairs the one case that is common: a leaf
 * without a frame of its own (gcc leaves small leaf functions frameless;
 * samples in a prologue or epilogue look the same). Then RBP still holds
 * the caller's frame, so the walk skipped the caller: libunwind's one step
 * finds it, with the same RBP, and it is inserted as pcs[1]. Returns the
 * new depth, or 0 if the walk cannot be trusted. */
static uint32_t fix_leaf_link(ucontext_t *uc, uintptr_t *pcs, uint32_t n,
                              uint32_t max, int *truncated) {
  uintptr_t caller = 0, caller_bp = 0;
  if (!leaf_step(uc, &caller, &caller_bp))
    return 0;
  if (caller == pcs[1])
    return n;
  uintptr_t bp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
  int64_t o = range_obj(caller - 1);
  if (caller_bp != bp || o < 0 || !(o & RANGE_FP))
    return 0;
  /* Shift by hand (no library call in a signal handler); the outermost
   * frame falls off when the buffer is full. */
  uint32_t keep = n < max ? n : max - 1;
  for (uint32_t i = keep; i > 1; i--)
    pcs[i] = pcs[i - 1];
  pcs[1] = caller;
  if (n >= max)
    *truncated = 1;
  return keep + 1;
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
  if (stack_hi != 0 && max >= 2 && fp_chain_ok(pcs, n)) {
    uint32_t fixed = fix_leaf_link(muc, pcs, n, max, truncated);
    if (fixed != 0) {
      *used_fp = 1;
      return fixed;
    }
  }
  *truncated = 0;
  return unw_walk(muc, pcs, max, truncated, incomplete);
}
