/* The profiler engine: lifecycle (start, stop, sync), the aggregator and
 * wall-sampler threads, aggregation into profiles, and fork handling. The
 * thread slots are in engine_slots.c, the thread scans in engine_scan.c,
 * the signal handler in handler.c, the unwinders in unwind.c. Encoded
 * profiles go to the profile sink (profile_sink.h), which the wiring code
 * installs (files and uploads are exporters'). Lock order: engine_int.h. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fork.h"
#include "common/log.h"
#include "common/random.h"
#include "common/thread.h"
#include "profiler/engine_int.h"
#include "profiler/profile.h"

hs_prof_hstate hs_prof_h;
hs_prof_counters hs_prof_ctr;
hs_prof_engine_state hs_pe = {.reg_lock = PTHREAD_MUTEX_INITIALIZER};
__thread hs_prof_slot *hs_prof_tls __attribute__((tls_model("initial-exec")));

#define DRAIN_INTERVAL_NS 50000000ull /* 50 ms */
#define STOP_WAIT_NS 2000000000ull    /* longest wait for handlers */

static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ctl_cond; /* CLOCK_MONOTONIC; hs_pe.set up once */

static uint64_t rng_state; /* under hs_pe.reg_lock */

/* Background threads. */
static pthread_t agg_thread, wall_thread;
static int agg_started, wall_started;
static int ctl_stop;                 /* under ctl_lock */
static uint64_t sync_req, sync_done; /* under ctl_lock */

/* Aggregation state: owned by the aggregator thread while it runs, by the
 * lifecycle functions otherwise. */
static hs_profile *prof_cpu, *prof_wall;
static hs_symbolizer *symbolizer;
static uint64_t period_start_unix;
static _Atomic int agg_in_profiles; /* aggregator is touching profiles */

static _Atomic(hs_prof_sample_hook) sample_hook;
static void *_Atomic sample_hook_arg;
static _Atomic(hs_prof_profile_sink) profile_sink;
static void *_Atomic profile_sink_arg;

static _Atomic int once_done;

pid_t hs_pe_gettid_(void) {
  return hs_gettid();
}

uint64_t hs_pe_rng_next(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_state = x;
  return x;
}

/* ------------------------------------------------------------------------
 * Aggregation. */

static void fold(const hs_sample *smp, const char *name) {
  hs_prof_sample_hook hook = atomic_load(&sample_hook);
  if (hook != NULL)
    hook(smp, name, atomic_load(&sample_hook_arg));
  hs_profile *p = smp->kind == HS_SAMPLE_CPU ? prof_cpu : prof_wall;
  if (p != NULL && hs_profile_add(p, smp, name[0] ? name : NULL) != HOTSPAN_OK)
    atomic_fetch_add(&hs_prof_ctr.dropped_aggregate, 1);
}

/* Folds every ring; frees drained slots of gone threads. hs_pe.reg_lock held.
 */
static void drain_locked(void) {
  atomic_store(&agg_in_profiles, 1);
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    int st = atomic_load(&s->state);
    if (st == SLOT_FREE || st == SLOT_PARKED || s->ring.buf == NULL)
      continue;
    size_t len;
    const void *rec;
    while ((rec = hs_ring_peek(&s->ring, &len)) != NULL) {
      if (len >= sizeof(hs_sample)) {
        const hs_sample *smp = rec;
        if (len >= sizeof(hs_sample) + smp->depth * sizeof(uintptr_t))
          fold(smp, s->name);
      }
      hs_ring_release(&s->ring);
    }
    if (st == SLOT_DRAINING) {
      if (s->park)
        atomic_store(&s->state, SLOT_PARKED);
      else
        hs_pe_slot_free(s);
    }
  }
  atomic_store(&agg_in_profiles, 0);
}

static void drain(void) {
  pthread_mutex_lock(&hs_pe.reg_lock);
  drain_locked();
  pthread_mutex_unlock(&hs_pe.reg_lock);
}

static void free_profile(hs_profile *p) {
  hs_profile_free(p);
}

static hs_profile *new_profile(int type, uint64_t start_unix) {
  hs_profile_config pc;
  memset(&pc, 0, sizeof pc);
  pc.type = type;
  pc.period_ns = type == HS_PROFILE_CPU ? hs_pe.set.cpu_period_ns
                                        : hs_pe.set.wall_period_ns;
  pc.start_unix_ns = start_unix;
  return hs_profile_new(&pc);
}

/* Encodes p and hands it to the sink, which says whether it wrote a file
 * (profiles_written) or lost the profile (profile_errors). */
static int emit_profile(hs_profile *p, int type, uint64_t start, uint64_t end) {
  hs_prof_profile_sink sink = atomic_load(&profile_sink);
  if (hs_profile_sample_count(p) == 0 || sink == NULL)
    return 0; /* nobody takes it: do not even encode */
  hs_buf out;
  hs_buf_init(&out, 0);
  int rc = hs_profile_encode_identified(p, symbolizer, end, &out);
  int failed = 0;
  if (rc != HOTSPAN_OK) {
    hs_log(HS_LOG_WARN, "profiler: profile not encoded: %s",
           hotspan_strerror(rc));
    failed = 1;
  } else {
    int kept = sink(type, (const uint8_t *)out.data, out.len, start, end,
                    atomic_load(&profile_sink_arg));
    if (kept < 0)
      failed = 1;
    else if (kept > 0)
      atomic_fetch_add(&hs_prof_ctr.profiles_written, (uint64_t)kept);
  }
  hs_buf_free(&out);
  if (failed)
    atomic_fetch_add(&hs_prof_ctr.profile_errors, 1);
  return failed ? -1 : 0;
}

/* Ends the current period: encodes and writes its profiles and starts new
 * ones (unless final). Returns 0, or -1 if a profile was lost. */
static int export_period(int final) {
  uint64_t end = hs_now_unix_ns();
  uint64_t start = period_start_unix;
  int rc = 0;
  atomic_store(&agg_in_profiles, 1);
  hs_profile *old_cpu = prof_cpu, *old_wall = prof_wall;
  prof_cpu = !final && old_cpu ? new_profile(HS_PROFILE_CPU, end) : NULL;
  prof_wall = !final && old_wall ? new_profile(HS_PROFILE_WALL, end) : NULL;
  period_start_unix = end;
  if (old_cpu && emit_profile(old_cpu, HS_PROFILE_CPU, start, end) != 0)
    rc = -1;
  if (old_wall && emit_profile(old_wall, HS_PROFILE_WALL, start, end) != 0)
    rc = -1;
  free_profile(old_cpu);
  free_profile(old_wall);
  atomic_store(&agg_in_profiles, 0);
  return rc;
}

/* ------------------------------------------------------------------------
 * Background threads. */

static void abs_deadline(struct timespec *ts, uint64_t mono_ns) {
  ts->tv_sec = (time_t)(mono_ns / 1000000000u);
  ts->tv_nsec = (long)(mono_ns % 1000000000u);
}

static void *agg_main(void *arg) {
  (void)arg;
  uint64_t now = hs_now_mono_ns();
  uint64_t next_drain = now + DRAIN_INTERVAL_NS;
  uint64_t next_scan = now + SCAN_INTERVAL_NS;
  uint64_t period_end = now + hs_pe.set.export_period_ns;
  pthread_mutex_lock(&ctl_lock);
  for (;;) {
    while (!ctl_stop && sync_req == sync_done &&
           hs_now_mono_ns() < next_drain) {
      struct timespec ts;
      abs_deadline(&ts, next_drain);
      pthread_cond_timedwait(&ctl_cond, &ctl_lock, &ts);
    }
    if (ctl_stop)
      break;
    uint64_t req = sync_req;
    pthread_mutex_unlock(&ctl_lock);

    drain();
    now = hs_now_mono_ns();
    if (now >= next_drain)
      next_drain = now + DRAIN_INTERVAL_NS;
    if (now >= next_scan) {
      hs_pe_periodic_scan();
      next_scan = now + SCAN_INTERVAL_NS;
    }
    if (now >= period_end) {
      export_period(0);
      period_end += hs_pe.set.export_period_ns;
      if (period_end <= now)
        period_end = now + hs_pe.set.export_period_ns;
    }

    pthread_mutex_lock(&ctl_lock);
    if (req != sync_done) {
      sync_done = req;
      pthread_cond_broadcast(&ctl_cond);
    }
  }
  pthread_mutex_unlock(&ctl_lock);
  return NULL;
}

/* One wall tick: signals up to wall_threads_per_tick registered threads,
 * taking turns from a rotating position so that every thread is reached
 * when there are more; each sample weighs the wall time since the thread's
 * previous one, so fewer samples per thread carry more time each. */
static void wall_tick(uint32_t *cursor) {
  pid_t pid = getpid();
  uint32_t sent = 0, n = hs_prof_h.nslots;
  pthread_mutex_lock(&hs_pe.reg_lock);
  uint32_t k;
  for (k = 0; k < n && sent < hs_pe.set.wall_threads_per_tick; k++) {
    hs_prof_slot *s = &hs_prof_h.slots[(*cursor + k) % n];
    if (atomic_load(&s->state) != SLOT_ACTIVE)
      continue;
    sent++;
    int idle = WALL_IDLE;
    if (!atomic_compare_exchange_strong(&s->wall_pending, &idle,
                                        WALL_SENDING)) {
      /* The last signal was not handled yet (the thread blocks the signal,
       * or has not run since): do not queue another. */
      atomic_fetch_add(&hs_prof_ctr.wall_signals_missed, 1);
      continue;
    }
    if (syscall(SYS_tgkill, pid, atomic_load(&s->tid), hs_pe.set.signo) != 0) {
      atomic_store(&s->wall_pending, WALL_IDLE);
      continue;
    }
    atomic_fetch_add(&hs_prof_ctr.wall_signals_sent, 1);
    /* Fails if the handler already took the signal: it is IDLE again. */
    int sending = WALL_SENDING;
    atomic_compare_exchange_strong(&s->wall_pending, &sending, WALL_SENT);
  }
  *cursor = (*cursor + k) % (n ? n : 1);
  pthread_mutex_unlock(&hs_pe.reg_lock);
}

static void *wall_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&hs_pe.reg_lock);
  uint32_t cursor =
      (uint32_t)(hs_pe_rng_next() % (hs_prof_h.nslots ? hs_prof_h.nslots : 1));
  pthread_mutex_unlock(&hs_pe.reg_lock);
  uint64_t next = hs_now_mono_ns() + hs_pe.set.wall_period_ns;
  pthread_mutex_lock(&ctl_lock);
  while (!ctl_stop) {
    struct timespec ts;
    abs_deadline(&ts, next);
    if (pthread_cond_timedwait(&ctl_cond, &ctl_lock, &ts) != ETIMEDOUT)
      continue; /* woken for another reason: re-check, wait again */
    pthread_mutex_unlock(&ctl_lock);
    if (!atomic_load(&hs_pe.displaced))
      wall_tick(&cursor);
    uint64_t now = hs_now_mono_ns();
    next += hs_pe.set.wall_period_ns;
    if (next <= now) /* late (suspended, overloaded): skip missed ticks */
      next = now + hs_pe.set.wall_period_ns;
    pthread_mutex_lock(&ctl_lock);
  }
  pthread_mutex_unlock(&ctl_lock);
  return NULL;
}

/* Starts a library thread: every signal blocked, never sampled. */
static int start_internal(pthread_t *t, void *(*fn)(void *), const char *name) {
  return hs_thread_start(t, fn, NULL, name) == 0 ? 0 : -1;
}

static void stop_threads(void) {
  pthread_mutex_lock(&ctl_lock);
  ctl_stop = 1;
  pthread_cond_broadcast(&ctl_cond);
  pthread_mutex_unlock(&ctl_lock);
  if (wall_started)
    pthread_join(wall_thread, NULL);
  if (agg_started)
    pthread_join(agg_thread, NULL);
  wall_started = agg_started = 0;
}

static int start_threads(void) {
  pthread_mutex_lock(&ctl_lock);
  ctl_stop = 0;
  sync_req = sync_done = 0;
  pthread_mutex_unlock(&ctl_lock);
  if (start_internal(&agg_thread, agg_main, "hotspan-prof") != 0)
    return -1;
  agg_started = 1;
  if (hs_pe.set.wall_period_ns > 0) {
    if (start_internal(&wall_thread, wall_main, "hotspan-wall") != 0)
      return -1;
    wall_started = 1;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Lifecycle. */

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

/* Keeps libhotspan loaded for good: its signal handler stays installed
 * after stop (signals may still be pending), so its code must stay mapped
 * even if the program dlclose()s the library. */
static void pin_library(void) {
  Dl_info info;
  if (dladdr((void *)pin_library, &info) != 0 && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static int once_init(uint32_t max_threads) {
  if (once_done)
    return 0;
  pin_library();
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ctl_cond, &ca);
  pthread_condattr_destroy(&ca);
  hs_prof_slot *slots = calloc(max_threads, sizeof *slots);
  if (slots == NULL)
    return -1;
  for (uint32_t i = 0; i < max_threads; i++)
    slots[i].index = i;
  if (pthread_key_create(&hs_pe.exit_key, hs_pe_on_thread_exit) != 0) {
    free(slots);
    return -1;
  }
  static const hs_fork_handler fork_handler = {
      HS_FORK_RANK_PROFILER, atfork_prepare, atfork_parent, atfork_child};
  if (hs_fork_register(&fork_handler) != 0) {
    free(slots);
    return -1;
  }
  pthread_mutex_lock(&hs_pe.reg_lock);
  hs_prof_h.slots = slots;
  hs_prof_h.nslots = max_threads;
  pthread_mutex_unlock(&hs_pe.reg_lock);
  once_done = 1;
  return 0;
}

static void reset_counters(void) {
  _Atomic uint64_t *c = (_Atomic uint64_t *)&hs_prof_ctr;
  for (size_t i = 0; i < sizeof hs_prof_ctr / sizeof *c; i++)
    atomic_store(&c[i], 0);
}

/* Waits until no handler is past its entry check. Returns 0, or -1 when a
 * handler did not finish in time (its memory is then kept). */
static int wait_handlers(void) {
  uint64_t until = hs_now_mono_ns() + STOP_WAIT_NS;
  while (atomic_load(&hs_prof_h.inflight) != 0) {
    if (hs_now_mono_ns() > until)
      return -1;
    sched_yield();
  }
  return 0;
}

/* Releases everything of a hs_pe.session: timers, rings (when no handler can
 * touch them), profiles. hs_pe.reg_lock not held. */
static void teardown(int free_rings) {
  pthread_mutex_lock(&hs_pe.reg_lock);
  hs_pe.session = 0;
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    hs_pe_slot_timer_delete(s);
    if (atomic_load(&s->state) == SLOT_ACTIVE)
      atomic_store(&s->state, SLOT_DRAINING);
  }
  drain_locked();
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    atomic_store(&s->state, SLOT_FREE);
    atomic_store(&s->tid, 0);
    s->park = 0;
    s->gone_tid = 0;
    if (free_rings)
      hs_ring_destroy(&s->ring);
  }
  atomic_store(&hs_prof_ctr.threads_active, 0);
  pthread_mutex_unlock(&hs_pe.reg_lock);
}

/* The effective settings, once per start, as one JSON line (level info),
 * like the tracer's "hotspan.config" line. */
static void log_settings(void) {
  static const char *const unw[] = {"", "auto", "fp", "libunwind"};
  if (!hs_log_enabled(HS_LOG_INFO))
    return;
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_buf_printf(
      &b,
      "{\"event\":\"hotspan.profiler.config\",\"cpu_hz\":%.4g,"
      "\"wall_hz\":%.4g,\"max_depth\":%u,\"export_period_s\":%.4g,"
      "\"signal\":%d,\"unwinder\":\"%s\","
      "\"wall_threads_per_tick\":%u,\"max_threads\":%u,"
      "\"new_threads\":\"%s\",\"output_dir\":",
      hs_pe.set.cpu_period_ns ? 1e9 / (double)hs_pe.set.cpu_period_ns : 0.0,
      hs_pe.set.wall_period_ns ? 1e9 / (double)hs_pe.set.wall_period_ns : 0.0,
      hs_pe.set.max_depth, (double)hs_pe.set.export_period_ns / 1e9,
      hs_pe.set.signo, unw[hs_pe.set.unwinder & 3],
      hs_pe.set.wall_threads_per_tick, hs_prof_h.nslots,
      hs_prof_interpose_active() ? "at_create" : "by_scan");
  hs_json_str(&b, hs_pe.set.output_dir[0] ? hs_pe.set.output_dir : NULL);
  hs_buf_putc(&b, '}');
  if (!hs_buf_failed(&b))
    hs_log_raw(HS_LOG_INFO, hs_buf_cstr(&b));
  hs_buf_free(&b);
}

int hs_prof_engine_start(const hs_prof_settings *s) {
  if (s == NULL || !hs_prof_signal_usable(s->signo) || s->max_depth == 0 ||
      s->max_depth > HS_PROF_MAX_DEPTH_LIMIT || s->export_period_ns == 0 ||
      s->max_threads == 0 || s->wall_threads_per_tick == 0)
    return HOTSPAN_ECONFIG;
  pthread_mutex_lock(&life_lock);
  if (atomic_load(&hs_pe.running)) {
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_ESTATE;
  }
  if (once_init(s->max_threads) != 0) {
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_ENOMEM;
  }
  hs_pe.set = *s;
  hs_pe.ring_bytes = 8 * hs_prof_sample_max_bytes(hs_pe.set.max_depth);
  if (hs_pe.ring_bytes < 16384)
    hs_pe.ring_bytes = 16384;
  reset_counters();
  atomic_store(&hs_pe.displaced, 0);
  rng_state = hs_random_seed64();
  hs_prof_unwind_init();

  if (hs_prof_handler_install(hs_pe.set.signo) != 0) {
    int e = errno;
    hs_log(HS_LOG_ERROR,
           "profiler: cannot install the handler of signal %d: %s",
           hs_pe.set.signo, strerror(e));
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_ESYS;
  }
  symbolizer = hs_symbolizer_new();
  period_start_unix = hs_now_unix_ns();
  prof_cpu = hs_pe.set.cpu_period_ns
                 ? new_profile(HS_PROFILE_CPU, period_start_unix)
                 : NULL;
  prof_wall = hs_pe.set.wall_period_ns
                  ? new_profile(HS_PROFILE_WALL, period_start_unix)
                  : NULL;

  atomic_store(&hs_prof_h.signo, hs_pe.set.signo);
  hs_prof_h.cpu_period_ns = hs_pe.set.cpu_period_ns;
  hs_prof_h.max_depth = hs_pe.set.max_depth;
  hs_prof_h.unwinder = hs_pe.set.unwinder;
  atomic_store(&hs_prof_h.enabled, 1);
  atomic_store(&hs_pe.running, 1);

  int rc = HOTSPAN_OK;
  if (start_threads() != 0) {
    rc = HOTSPAN_ESYS;
  } else {
    pthread_mutex_lock(&hs_pe.reg_lock);
    hs_pe.session = 1;
    hs_prof_slot *self = NULL;
    pid_t tid = hs_pe_gettid_();
    if (hs_pe_register_self_locked(tid, &self) == HOTSPAN_OK) {
      hs_prof_tls = self;
      pthread_setspecific(hs_pe.exit_key, self);
    }
    hs_pe_scan_tasks_locked();
    pthread_mutex_unlock(&hs_pe.reg_lock);
  }
  if (rc != HOTSPAN_OK) {
    atomic_store(&hs_prof_h.enabled, 0);
    atomic_store(&hs_pe.running, 0);
    stop_threads();
    teardown(wait_handlers() == 0);
    free_profile(prof_cpu);
    free_profile(prof_wall);
    prof_cpu = prof_wall = NULL;
    hs_symbolizer_free(symbolizer);
    symbolizer = NULL;
    pthread_mutex_unlock(&life_lock);
    return rc;
  }
  log_settings();
  pthread_mutex_unlock(&life_lock);
  return HOTSPAN_OK;
}

int hs_prof_engine_stop(void) {
  pthread_mutex_lock(&life_lock);
  if (!atomic_load(&hs_pe.running)) {
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_OK;
  }
  atomic_store(&hs_pe.running, 0);
  atomic_store(&hs_prof_h.enabled, 0);
  int quiet = wait_handlers() == 0;
  if (!quiet)
    hs_log(HS_LOG_WARN, "profiler: a signal handler did not finish; its "
                        "memory is kept");
  stop_threads();
  teardown(quiet);
  int rc = HOTSPAN_OK;
  if (export_period(1) != 0)
    rc = HOTSPAN_EIO;
  hs_symbolizer_free(symbolizer);
  prof_cpu = prof_wall = NULL;
  symbolizer = NULL;
  pthread_mutex_unlock(&life_lock);
  return rc;
}

int hs_prof_engine_running(void) {
  return atomic_load(&hs_pe.running);
}

void hs_prof_engine_stats(hotspan_profiler_stats *out) {
  hotspan_profiler_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
#define C(f) st.f = atomic_load_explicit(&hs_prof_ctr.f, memory_order_relaxed)
  C(samples_cpu);
  C(samples_wall);
  C(dropped_ring_full);
  C(dropped_reentrant);
  C(dropped_unwind);
  C(dropped_no_thread);
  C(dropped_aggregate);
  C(unwind_incomplete);
  C(stacks_truncated);
  C(unwind_fp);
  C(unwind_libunwind);
  C(timer_overruns);
  C(wall_signals_sent);
  C(wall_signals_missed);
  C(foreign_signals);
  C(handler_ns_total);
  C(handler_ns_max);
  C(threads_registered);
  C(threads_active);
  C(threads_rejected);
  C(profiles_written);
  C(profile_errors);
  C(handler_displaced);
#undef C
  size_t n = out->struct_size < sizeof st ? out->struct_size : sizeof st;
  uint32_t want = out->struct_size;
  memcpy(out, &st, n);
  out->struct_size = (uint32_t)n < want ? (uint32_t)n : want;
}

void hs_prof_set_sample_hook(hs_prof_sample_hook fn, void *arg) {
  atomic_store(&sample_hook_arg, arg);
  atomic_store(&sample_hook, fn);
}

void hs_prof_set_profile_sink(hs_prof_profile_sink fn, void *arg) {
  atomic_store(&profile_sink_arg, arg);
  atomic_store(&profile_sink, fn);
}

int hs_prof_engine_sync(int timeout_ms) {
  if (!atomic_load(&hs_pe.running))
    return HOTSPAN_ESTATE;
  struct timespec ts;
  abs_deadline(&ts, hs_now_mono_ns() + (uint64_t)timeout_ms * 1000000u);
  int rc = HOTSPAN_OK;
  pthread_mutex_lock(&ctl_lock);
  uint64_t my = ++sync_req;
  pthread_cond_broadcast(&ctl_cond);
  while (sync_done < my && !ctl_stop && rc == HOTSPAN_OK)
    if (pthread_cond_timedwait(&ctl_cond, &ctl_lock, &ts) == ETIMEDOUT)
      rc = HOTSPAN_EIO;
  if (sync_done >= my)
    rc = HOTSPAN_OK;
  pthread_mutex_unlock(&ctl_lock);
  return rc;
}

/* ------------------------------------------------------------------------
 * Fork. The child keeps profiling, as its own process: it starts with empty
 * rings and profiles (the parent writes what it sampled), its only thread
 * (the one that forked) gets a new timer, and it starts its own sampler and
 * aggregator threads. Profile files carry the pid, so parent and child never
 * write the same file. Before the fork, sampling pauses until no handler
 * runs, so that no lock a handler may hold (libunwind's) is copied locked
 * into the child. */

static void atfork_prepare(void) {
  pthread_mutex_lock(&life_lock);
  if (atomic_load(&hs_pe.running)) {
    atomic_store(&hs_prof_h.enabled, 0);
    wait_handlers();
  }
  pthread_mutex_lock(&hs_pe.reg_lock);
}

static void atfork_parent(void) {
  pthread_mutex_unlock(&hs_pe.reg_lock);
  if (atomic_load(&hs_pe.running))
    atomic_store(&hs_prof_h.enabled, 1);
  pthread_mutex_unlock(&life_lock);
}

static void atfork_child(void) {
  /* The background threads are gone; whatever they held is reset. */
  pthread_mutex_init(&ctl_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ctl_cond, &ca);
  pthread_condattr_destroy(&ca);
  agg_started = wall_started = 0;
  if (!atomic_load(&hs_pe.running)) {
    pthread_mutex_unlock(&hs_pe.reg_lock);
    pthread_mutex_unlock(&life_lock);
    return;
  }
  pid_t tid = hs_pe_gettid_();
  hs_prof_slot *mine = hs_prof_tls;
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    s->has_timer = 0; /* timers are not inherited */
    hs_ring_reset(&s->ring);
    atomic_store(&s->busy, 0);
    atomic_store(&s->wall_pending, WALL_IDLE);
    s->gone_tid = 0;
    if (s != mine) {
      atomic_store(&s->state, SLOT_FREE);
      atomic_store(&s->tid, 0);
      s->park = 0;
    }
  }
  reset_counters();
  /* The parent's profiles may have been in use by its aggregator at the
   * instant of the fork; then they are abandoned, never touched. */
  if (!atomic_load(&agg_in_profiles)) {
    free_profile(prof_cpu);
    free_profile(prof_wall);
    hs_symbolizer_free(symbolizer);
  }
  atomic_store(&agg_in_profiles, 0);
  period_start_unix = hs_now_unix_ns();
  symbolizer = hs_symbolizer_new();
  prof_cpu = hs_pe.set.cpu_period_ns
                 ? new_profile(HS_PROFILE_CPU, period_start_unix)
                 : NULL;
  prof_wall = hs_pe.set.wall_period_ns
                  ? new_profile(HS_PROFILE_WALL, period_start_unix)
                  : NULL;
  int mine_state = mine != NULL ? atomic_load(&mine->state) : SLOT_FREE;
  if (mine_state == SLOT_ACTIVE) {
    hs_pe_slot_activate(mine, tid, SLOT_SELF);
  } else if (mine_state == SLOT_PARKED) {
    atomic_store(&mine->tid, tid); /* stays unregistered in the child */
  } else {
    if (mine != NULL && mine_state != SLOT_FREE) { /* retiring */
      atomic_store(&mine->state, SLOT_FREE);
      atomic_store(&mine->tid, 0);
    }
    hs_prof_slot *s = NULL;
    if (hs_pe_register_self_locked(tid, &s) == HOTSPAN_OK) {
      hs_prof_tls = s;
      pthread_setspecific(hs_pe.exit_key, s);
    }
  }
  pthread_mutex_unlock(&hs_pe.reg_lock);
  atomic_store(&hs_prof_h.enabled, 1);
  if (start_threads() != 0) {
    hs_log(HS_LOG_WARN, "profiler: cannot restart in the forked child");
    atomic_store(&hs_prof_h.enabled, 0);
    atomic_store(&hs_pe.running, 0);
    teardown(1);
  }
  pthread_mutex_unlock(&life_lock);
}
