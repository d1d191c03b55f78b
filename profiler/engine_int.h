/* Private state shared by the engine's files: the thread slots, the
 * counters and the handler's view of the configuration. Not for use outside
 * profiler/engine*.c, profiler/handler.c and profiler/unwind.c. */
#ifndef HS_PROFILER_ENGINE_INT_H
#define HS_PROFILER_ENGINE_INT_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "profiler/engine.h"
#include "profiler/ring.h"

/* Slot states. A slot goes FREE -> ACTIVE (registered) -> RETIRING (being
 * unregistered: handlers back off) -> DRAINING (the aggregator still has to
 * fold its ring) -> FREE, or -> PARKED when a live thread unregistered
 * itself (kept so that scans of /proc/self/task leave it alone; freed when
 * the thread exits). Slots are never freed, only reused, so a pointer to
 * one stays valid for the life of the process. */
enum { SLOT_FREE = 0, SLOT_ACTIVE, SLOT_RETIRING, SLOT_DRAINING, SLOT_PARKED };

/* wall_pending: the sampler claims the slot (SENDING), sends the signal,
 * then marks it SENT unless a handler took it in between; a handler of a
 * wall signal takes any nonzero value. A handler that finds SENT while our
 * signal is no longer pending knows the kernel dropped the wall signal (a
 * standard signal is not queued twice) and takes the wall sample itself. */
enum { WALL_IDLE = 0, WALL_SENDING = 1, WALL_SENT = 2 };

/* How a slot was registered. */
enum {
  SLOT_SELF = 1,   /* by its own thread: TLS and thread-exit key are set */
  SLOT_REMOTE = 2, /* found in /proc/self/task: reaped when the tid dies */
};

typedef struct hs_prof_slot {
  _Atomic int state;
  _Atomic int busy;         /* a handler is running on this slot */
  _Atomic int wall_pending; /* WALL_*: a wall signal not yet handled */
  _Atomic pid_t tid;
  int how;  /* SLOT_SELF or SLOT_REMOTE */
  int park; /* DRAINING: go to PARKED, not FREE */
  uint32_t index;
  /* Stack range for the frame-pointer walk; stack_hi 0 = unknown (remote
   * threads until the aggregator found the mapping holding last_sp). */
  _Atomic uintptr_t stack_lo, stack_hi;
  _Atomic uintptr_t last_sp; /* set by the handler while stack_hi is 0 */
  timer_t timer;
  int has_timer;
  uint64_t last_wall_mono; /* handler-owned: time of the last wall sample */
  hs_ring ring;
  char name[16]; /* thread name; written under the registry lock */
  /* The last thread that used this slot and when it unregistered: a scan
   * of /proc/self/task may still list a thread that is past its exit
   * handler, which must not be registered again. */
  pid_t gone_tid;
  uint64_t gone_mono;
} hs_prof_slot;

/* Counters (relaxed atomics; the handler adds to them). */
typedef struct hs_prof_counters {
  _Atomic uint64_t samples_cpu, samples_wall;
  _Atomic uint64_t dropped_ring_full, dropped_reentrant, dropped_unwind,
      dropped_no_thread, dropped_aggregate;
  _Atomic uint64_t unwind_incomplete, stacks_truncated, unwind_fp,
      unwind_libunwind;
  _Atomic uint64_t timer_overruns, wall_signals_sent, wall_signals_missed,
      foreign_signals;
  _Atomic uint64_t handler_ns_total, handler_ns_max;
  _Atomic uint64_t threads_registered, threads_active, threads_rejected;
  _Atomic uint64_t profiles_written, profile_errors, handler_displaced;
} hs_prof_counters;

/* What the handler needs, published before `enabled` is set. */
typedef struct hs_prof_hstate {
  _Atomic int enabled;  /* handlers may take samples */
  _Atomic int inflight; /* handlers between entry and exit */
  _Atomic int signo;    /* read by every handler call, before `enabled` */
  uint64_t cpu_period_ns;
  uint32_t max_depth;
  int unwinder;
  hs_prof_slot *slots; /* NULL until the first start */
  uint32_t nslots;
} hs_prof_hstate;

extern hs_prof_hstate hs_prof_h;
extern hs_prof_counters hs_prof_ctr;

/* The calling thread's slot, when it registered itself. Initial-exec TLS:
 * one pointer, safe to read in a signal handler. */
extern __thread hs_prof_slot *hs_prof_tls
    __attribute__((tls_model("initial-exec")));

/* The sival of our timers: a magic tag plus the slot index. */
#define HS_PROF_TIMER_MAGIC 0x68737066u /* "hspf" */
static inline void *hs_prof_timer_cookie(uint32_t index) {
  return (void *)(((uintptr_t)HS_PROF_TIMER_MAGIC << 32) | index);
}

/* Bytes a sample record takes at most. */
static inline size_t hs_prof_sample_max_bytes(uint32_t max_depth) {
  return sizeof(hs_sample) + (size_t)max_depth * sizeof(uintptr_t);
}

/* handler.c: installs the handler for signo once (idempotent; remembers the
 * previous action for chaining). Returns 0 or -1 (errno set). */
int hs_prof_handler_install(int signo);
/* Nonzero if our handler is still the installed one for signo. */
int hs_prof_handler_installed(int signo);

/* unwind.c */
/* Chooses libunwind's caching policy and warms it up; call once per start,
 * outside signal context. */
void hs_prof_unwind_init(void);
/* Refreshes the table of executable address ranges when objects were
 * loaded or unloaded since the last call. Aggregator thread only. */
void hs_prof_unwind_refresh_maps(void);
/* Unwinds the interrupted context into pcs (at most max entries), leaf
 * first. stack_hi 0 = unknown bounds. Sets *truncated, *incomplete and
 * *used_fp. Returns the depth (>= 1 when uc is usable). Async-signal-safe. */
uint32_t hs_prof_unwind(const ucontext_t *uc, int unwinder, uintptr_t stack_hi,
                        uintptr_t *pcs, uint32_t max, int *truncated,
                        int *incomplete, int *used_fp);

/* ---- state shared by engine.c, engine_slots.c and engine_scan.c ---- */

/* Locks, in the order they nest: life_lock (engine.c: start, stop, fork),
 * hs_pe.reg_lock (the slot table), ctl_lock (engine.c: the background
 * threads' wake-ups and the sync handshake). The signal handler takes none
 * of them. */
typedef struct hs_prof_engine_state {
  pthread_mutex_t reg_lock;
  _Atomic int running;    /* lifecycle: a session is on */
  int session;            /* under reg_lock: registrations allowed */
  _Atomic int displaced;  /* another handler replaced ours */
  hs_prof_settings set;   /* the session's settings (set at start) */
  size_t ring_bytes;      /* per-thread ring size this session */
  pthread_key_t exit_key; /* thread-exit destructor of self-registered slots */
} hs_prof_engine_state;

extern hs_prof_engine_state hs_pe;

/* engine.c */
pid_t hs_pe_gettid_(void);
uint64_t hs_pe_rng_next(void);
#define SCAN_INTERVAL_NS 1000000000ull /* thread scan: once a second */
#define NAMES_PER_SCAN 64              /* thread names re-read per scan */

/* engine_slots.c (reg_lock held) */
/* Thread-exit destructor of hs_pe.exit_key (takes reg_lock). */
void hs_pe_on_thread_exit(void *p);
void hs_pe_slot_timer_delete(hs_prof_slot *s);
void hs_pe_read_comm(pid_t tid, char name[16]);
void hs_pe_slot_free(hs_prof_slot *s);
void hs_pe_slot_retire(hs_prof_slot *s, int self);
int hs_pe_slot_activate(hs_prof_slot *s, pid_t tid, int how);
int hs_pe_register_self_locked(pid_t tid, hs_prof_slot **out);
int hs_pe_register_remote_locked(pid_t tid);
/* engine_scan.c (reg_lock held, except hs_pe_periodic_scan) */
int hs_pe_is_internal(pid_t tid);
void hs_pe_scan_tasks_locked(void);
void hs_pe_periodic_scan(void);

#endif
