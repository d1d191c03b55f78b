/* The profiler's signal handler.
 *
 * Signals we send are told apart from the program's own by si_code and
 * payload: a CPU timer's signal has si_code SI_TIMER and our cookie in
 * si_value; a wall sample is requested with tgkill (si_code SI_TKILL, si_pid
 * our pid) after the sampler set the target slot's wall_pending flag, which
 * the handler clears (a wall signal the kernel dropped because a signal of
 * the same number was pending is taken with that one: merged_wall_request).
 * Anything else is foreign and goes to the handler the
 * program had installed before us (none: ignored, even where the default
 * action would terminate the process).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "common/clock.h"
#include "context/thread_ctx.h"
#include "profiler/engine_int.h"

static struct sigaction prev_action[_NSIG];
static _Atomic int installed[_NSIG];

static void counter_add(_Atomic uint64_t *c, uint64_t v) {
  atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static void counter_max(_Atomic uint64_t *c, uint64_t v) {
  uint64_t cur = atomic_load_explicit(c, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak_explicit(
                        c, &cur, v, memory_order_relaxed, memory_order_relaxed))
    ;
}

/* Calls the handler the program had before ours, with its mask. */
static void chain(int sig, siginfo_t *si, void *uc) {
  const struct sigaction *p = &prev_action[sig];
  sigset_t old;
  if (p->sa_flags & SA_SIGINFO) {
    if (p->sa_sigaction == NULL)
      return;
    pthread_sigmask(SIG_BLOCK, &p->sa_mask, &old);
    p->sa_sigaction(sig, si, uc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  } else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN &&
             p->sa_handler != NULL) {
    pthread_sigmask(SIG_BLOCK, &p->sa_mask, &old);
    p->sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
}

/* The slot registered for tid, or NULL. A linear scan, done once per
 * thread that did not register itself: the result is then kept in TLS. */
static hs_prof_slot *find_slot(pid_t tid) {
  hs_prof_slot *slots = hs_prof_h.slots;
  for (uint32_t i = 0; slots != NULL && i < hs_prof_h.nslots; i++)
    if (atomic_load_explicit(&slots[i].tid, memory_order_relaxed) == tid &&
        atomic_load(&slots[i].state) == SLOT_ACTIVE)
      return &slots[i];
  return NULL;
}

enum { NOT_OURS = 0, OURS = 1 };

/* Takes one sample on slot s (busy is held). */
static void sample(hs_prof_slot *s, pid_t tid, int kind, const siginfo_t *si,
                   ucontext_t *uc) {
  uint64_t now_mono = hs_now_mono_ns();
  uint64_t wall_ns = 0, cpu_ns = 0;
  if (kind == HS_SAMPLE_WALL) {
    uint64_t prev = s->last_wall_mono;
    wall_ns = now_mono > prev ? now_mono - prev : 0;
    s->last_wall_mono = now_mono;
  } else {
    int over = si->si_overrun > 0 ? si->si_overrun : 0;
    cpu_ns = hs_prof_h.cpu_period_ns * (uint64_t)(1 + over);
    if (over > 0)
      counter_add(&hs_prof_ctr.timer_overruns, (uint64_t)over);
  }

  uint32_t max_depth = hs_prof_h.max_depth;
  hs_sample *smp =
      hs_ring_reserve(&s->ring, hs_prof_sample_max_bytes(max_depth));
  if (smp == NULL) {
    counter_add(&hs_prof_ctr.dropped_ring_full, 1);
    return;
  }
  smp->time_ns = hs_now_unix_ns();
  smp->cpu_ns = cpu_ns;
  smp->wall_ns = wall_ns;
  smp->tid = (uint32_t)tid;
  smp->kind = (uint8_t)kind;
  memset(&smp->ctx, 0, sizeof smp->ctx);
  smp->has_ctx = (uint8_t)hs_thread_ctx_read(hs_thread_ctx_peek(), &smp->ctx);

  /* The frame walk may only read the stack the thread is running on; a
   * thread running on another stack (a coroutine, an alternate signal
   * stack) counts as "bounds unknown". */
  uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
  uintptr_t lo = atomic_load_explicit(&s->stack_lo, memory_order_relaxed);
  uintptr_t hi = atomic_load_explicit(&s->stack_hi, memory_order_relaxed);
  if (hi == 0 || sp < lo || sp >= hi) {
    if (hi == 0)
      atomic_store_explicit(&s->last_sp, sp, memory_order_relaxed);
    hi = 0;
  }
  int truncated, incomplete, used_fp;
  uint32_t depth = hs_prof_unwind(uc, hs_prof_h.unwinder, hi, smp->pcs,
                                  max_depth, &truncated, &incomplete, &used_fp);
  if (depth == 0) {
    counter_add(&hs_prof_ctr.dropped_unwind, 1);
    return;
  }
  smp->depth = (uint16_t)depth;
  smp->truncated = (uint8_t)truncated;
  hs_ring_commit(&s->ring, sizeof(hs_sample) + depth * sizeof(uintptr_t));

  counter_add(kind == HS_SAMPLE_CPU ? &hs_prof_ctr.samples_cpu
                                    : &hs_prof_ctr.samples_wall,
              1);
  counter_add(used_fp ? &hs_prof_ctr.unwind_fp : &hs_prof_ctr.unwind_libunwind,
              1);
  if (truncated)
    counter_add(&hs_prof_ctr.stacks_truncated, 1);
  if (incomplete)
    counter_add(&hs_prof_ctr.unwind_incomplete, 1);
}

/* Nonzero if the wall signal the sampler sent this thread was merged into
 * the signal being handled now, and claims it. One standard signal of a
 * number can be pending per thread: the kernel drops a tgkill that finds
 * the signal pending (a CPU timer's, which is queued regardless, or the
 * program's own), and nothing else would ever clear wall_pending, so the
 * thread would get no wall sample again. SENT means the tgkill returned;
 * while this handler runs the signal is blocked, so a wall signal that
 * was not dropped is still pending and shows in sigpending(). */
static int merged_wall_request(hs_prof_slot *s, int signo) {
  if (atomic_load(&s->wall_pending) != WALL_SENT)
    return 0;
  sigset_t pending;
  if (sigpending(&pending) != 0 || sigismember(&pending, signo))
    return 0; /* still on its way (or unknown): its own delivery counts */
  int sent = WALL_SENT;
  return atomic_compare_exchange_strong(&s->wall_pending, &sent, WALL_IDLE);
}

/* Handles a signal of the sampling signal's number: kind is the sample it
 * asks for, or 0 for a signal we did not send (which may still carry a
 * merged wall request). Returns OURS or NOT_OURS. */
static int handle(int kind, int signo, const siginfo_t *si, ucontext_t *uc) {
  pid_t tid = (pid_t)syscall(SYS_gettid);
  hs_prof_slot *s = hs_prof_tls;
  if (s == NULL || atomic_load_explicit(&s->tid, memory_order_relaxed) != tid) {
    s = find_slot(tid);
    if (s != NULL)
      hs_prof_tls = s;
  }
  if (kind == HS_SAMPLE_WALL &&
      (s == NULL || !atomic_exchange(&s->wall_pending, WALL_IDLE)))
    kind = 0; /* the program's own tgkill */
  int ours = kind != 0 ? OURS : NOT_OURS;
  if (!atomic_load(&hs_prof_h.enabled))
    return ours; /* a late signal of a stopped profiler */
  if (s == NULL) {
    if (ours)
      counter_add(&hs_prof_ctr.dropped_no_thread, 1);
    return ours;
  }
  if (atomic_exchange(&s->busy, 1)) {
    if (ours)
      counter_add(&hs_prof_ctr.dropped_reentrant, 1);
    return ours;
  }
  if (atomic_load(&s->state) == SLOT_ACTIVE &&
      atomic_load_explicit(&s->tid, memory_order_relaxed) == tid) {
    if (kind != 0)
      sample(s, tid, kind, si, uc);
    if (kind != HS_SAMPLE_WALL && merged_wall_request(s, signo))
      sample(s, tid, HS_SAMPLE_WALL, si, uc);
  } else if (ours) {
    counter_add(&hs_prof_ctr.dropped_no_thread, 1);
  }
  atomic_store(&s->busy, 0);
  return ours;
}

/* Signal handler rules (they keep the host program safe whatever it was
 * doing when the signal arrived):
 *   - only preallocated memory: the slot table and the thread's ring exist
 *     before its timer does; no malloc, no locks of ours, no stdio, no
 *     dladdr, no libcurl, nothing that may take a lock the interrupted
 *     code could hold. libunwind takes its own cache lock with all signals
 *     blocked, so the holder is never a thread we interrupted;
 *   - errno is saved on entry and restored before returning (and before
 *     chaining, so the program's handler sees the interrupted code's value);
 *   - reentrancy guard: the slot's busy flag; a handler that finds it set
 *     drops its sample (counted);
 *   - the thread context record is read with hs_thread_ctx_read(), which
 *     tolerates an update in progress (valid == 0 reads as "no span");
 *   - the stack is read only inside the running thread's stack, bounds
 *     checked (frame pointers) or through libunwind, which validates memory
 *     accesses;
 *   - the sample goes to a lock-free single-producer ring; when it is full
 *     the sample is dropped and counted;
 *   - `inflight` counts handlers past the entry check, so that stop() can
 *     wait until no handler touches memory it is about to release; it is
 *     decremented before chaining, since the program's handler may never
 *     return (siglongjmp).
 * Handler time is measured with the vDSO clock and counted. */
static void on_signal(int sig, siginfo_t *si, void *ucv) {
  int saved_errno = errno;
  uint64_t t0 = hs_now_mono_ns();
  int ours = NOT_OURS;
  if (si != NULL &&
      sig == atomic_load_explicit(&hs_prof_h.signo, memory_order_relaxed)) {
    int kind = 0;
    if (si->si_code == SI_TIMER &&
        ((uintptr_t)si->si_value.sival_ptr >> 32) == HS_PROF_TIMER_MAGIC)
      kind = HS_SAMPLE_CPU;
    else if (si->si_code == SI_TKILL && si->si_pid == getpid())
      kind = HS_SAMPLE_WALL;
    atomic_fetch_add(&hs_prof_h.inflight, 1);
    ours = handle(kind, sig, si, ucv);
    atomic_fetch_sub(&hs_prof_h.inflight, 1);
  }
  if (ours) {
    uint64_t dt = hs_now_mono_ns() - t0;
    counter_add(&hs_prof_ctr.handler_ns_total, dt);
    counter_max(&hs_prof_ctr.handler_ns_max, dt);
  } else {
    counter_add(&hs_prof_ctr.foreign_signals, 1);
    errno = saved_errno;
    chain(sig, si, ucv);
  }
  errno = saved_errno;
}

int hs_prof_handler_install(int signo) {
  if (signo <= 0 || signo >= _NSIG)
    return -1;
  /* Installed before and still ours: nothing to do. Replaced by the
   * program since: install again, chaining to the program's handler. */
  if (atomic_load(&installed[signo]) && hs_prof_handler_installed(signo))
    return 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  /* Read the program's action first, so that prev_action is complete
   * before our handler can run and chain to it. */
  if (sigaction(signo, NULL, &prev_action[signo]) != 0 ||
      sigaction(signo, &sa, NULL) != 0)
    return -1;
  atomic_store(&installed[signo], 1);
  return 0;
}

int hs_prof_handler_installed(int signo) {
  struct sigaction cur;
  if (signo <= 0 || signo >= _NSIG || sigaction(signo, NULL, &cur) != 0)
    return 0;
  return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_signal;
}
