/* The profiler engine: lifecycle, thread registry, wall sampler thread,
 * aggregator thread, fork handling. The signal handler is in handler.c, the
 * unwinders in unwind.c, profile files in output.c.
 *
 * Locks, in the order they nest:
 *   life_lock  start / stop / fork: one lifecycle change at a time;
 *   reg_lock   the slot table (registration, draining, wall ticks);
 *   ctl_lock   the background threads' wake-ups and the sync handshake.
 * The signal handler takes none of them. */
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
#include "profiler/pprof_file.h"
#include "profiler/profile.h"

hs_prof_hstate hs_prof_h;
hs_prof_counters hs_prof_ctr;
__thread hs_prof_slot *hs_prof_tls __attribute__((tls_model("initial-exec")));

#define DRAIN_INTERVAL_NS 50000000ull  /* 50 ms */
#define SCAN_INTERVAL_NS 1000000000ull /* 1 s */
#define NAMES_PER_SCAN 64              /* thread names re-read per scan */
#define STOP_WAIT_NS 2000000000ull     /* longest wait for handlers */

static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ctl_cond; /* CLOCK_MONOTONIC; set up once */

static _Atomic int running;   /* lifecycle: a session is on */
static int session;           /* under reg_lock: registrations allowed */
static _Atomic int displaced; /* another handler replaced ours */
static hs_prof_settings set;  /* the session's settings */
static size_t ring_bytes;     /* per-thread ring size this session */
static uint64_t rng_state;    /* under reg_lock */
static uint32_t name_cursor;  /* aggregator: next slot for name refresh */

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

static pthread_key_t exit_key;
static _Atomic int once_done;

static pid_t gettid_(void) {
  return hs_gettid();
}

static uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_state = x;
  return x;
}

/* ------------------------------------------------------------------------
 * Timers and slots (reg_lock held). */

/* Linux names a thread's CPU clock by its tid: ((~tid) << 3) | 6, where 6
 * is CPUCLOCK_PERTHREAD_MASK | CPUCLOCK_SCHED (the clock
 * pthread_getcpuclockid returns for a thread). This lets us give a timer to
 * a thread we only know from /proc/self/task. */
static clockid_t thread_cpu_clock(pid_t tid) {
  return (clockid_t)((~(unsigned)tid << 3) | 6u);
}

static int slot_timer_create(hs_prof_slot *s) {
  if (set.cpu_period_ns == 0 || atomic_load(&displaced))
    return 0;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = set.signo;
  sev.sigev_value.sival_ptr = hs_prof_timer_cookie(s->index);
  sev._sigev_un._tid = atomic_load(&s->tid);
  timer_t t;
  if (timer_create(thread_cpu_clock(atomic_load(&s->tid)), &sev, &t) != 0)
    return -1;
  /* A random first expiry spreads threads over the period, so that threads
   * started together do not take their samples in lockstep. */
  uint64_t first = 1 + rng_next() % set.cpu_period_ns;
  struct itimerspec its;
  its.it_value.tv_sec = (time_t)(first / 1000000000u);
  its.it_value.tv_nsec = (long)(first % 1000000000u);
  its.it_interval.tv_sec = (time_t)(set.cpu_period_ns / 1000000000u);
  its.it_interval.tv_nsec = (long)(set.cpu_period_ns % 1000000000u);
  if (timer_settime(t, 0, &its, NULL) != 0) {
    timer_delete(t);
    return -1;
  }
  s->timer = t;
  s->has_timer = 1;
  return 0;
}

static void slot_timer_delete(hs_prof_slot *s) {
  if (s->has_timer) {
    timer_delete(s->timer);
    s->has_timer = 0;
  }
}

static void read_comm(pid_t tid, char name[16]) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return;
  char buf[32];
  if (fgets(buf, sizeof buf, f) != NULL) {
    buf[strcspn(buf, "\n")] = '\0';
    buf[15] = '\0';
    memcpy(name, buf, strlen(buf) + 1);
  }
  fclose(f);
}

/* The slot of a live registration of tid (ACTIVE or PARKED), or NULL. */
static hs_prof_slot *slot_by_tid(pid_t tid) {
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    int st = atomic_load(&s->state);
    if ((st == SLOT_ACTIVE || st == SLOT_PARKED) && atomic_load(&s->tid) == tid)
      return s;
  }
  return NULL;
}

/* A slot of tid still draining after its thread unregistered itself. */
static hs_prof_slot *slot_draining_parked(pid_t tid) {
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    if (atomic_load(&s->state) == SLOT_DRAINING && s->park &&
        atomic_load(&s->tid) == tid)
      return s;
  }
  return NULL;
}

/* PARKED or DRAINING -> FREE bookkeeping: remember who left and when. */
static void slot_free(hs_prof_slot *s) {
  s->gone_tid = atomic_load(&s->tid);
  s->gone_mono = hs_now_mono_ns();
  s->park = 0;
  atomic_store(&s->tid, 0);
  atomic_store(&s->state, SLOT_FREE);
}

/* Waits until no handler runs on s (state is no longer ACTIVE, so none will
 * start). Bounded: a handler is short; after the bound the slot is left to
 * a later drain rather than hanging the caller. */
static void slot_quiesce(hs_prof_slot *s) {
  for (int i = 0; i < 100000 && atomic_load(&s->busy); i++)
    sched_yield();
}

/* ACTIVE -> DRAINING: no more samples, the aggregator folds the rest. */
static void slot_retire(hs_prof_slot *s, int self) {
  atomic_store(&s->state, SLOT_RETIRING);
  slot_quiesce(s);
  slot_timer_delete(s);
  if (self)
    prctl(PR_GET_NAME, s->name); /* the name the thread ends with */
  atomic_store(&s->state, SLOT_DRAINING);
  atomic_fetch_sub(&hs_prof_ctr.threads_active, 1);
}

/* A free slot with a ring, or NULL (counted) when the table is full. */
static hs_prof_slot *slot_alloc(void) {
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    if (atomic_load(&s->state) != SLOT_FREE)
      continue;
    if (s->ring.buf == NULL && hs_ring_init(&s->ring, ring_bytes) != 0)
      return NULL;
    return s;
  }
  atomic_fetch_add(&hs_prof_ctr.threads_rejected, 1);
  return NULL;
}

/* Makes s ACTIVE for tid and gives it a timer. */
static int slot_activate(hs_prof_slot *s, pid_t tid, int how) {
  atomic_store(&s->tid, tid);
  s->how = how;
  atomic_store(&s->busy, 0);
  atomic_store(&s->wall_pending, WALL_IDLE);
  atomic_store(&s->last_sp, 0);
  s->park = 0;
  s->last_wall_mono = hs_now_mono_ns();
  atomic_store(&s->state, SLOT_ACTIVE);
  if (slot_timer_create(s) != 0) {
    int e = errno;
    if (e != ESRCH && e != EINVAL) /* not a thread that just exited */
      hs_log(HS_LOG_WARN, "profiler: no CPU timer for thread %d: %s", (int)tid,
             strerror(e));
    atomic_store(&s->state, SLOT_FREE);
    atomic_store(&s->tid, 0);
    return HOTSPAN_ESYS;
  }
  atomic_fetch_add(&hs_prof_ctr.threads_registered, 1);
  atomic_fetch_add(&hs_prof_ctr.threads_active, 1);
  return HOTSPAN_OK;
}

static void self_stack(hs_prof_slot *s) {
  pthread_attr_t attr;
  void *addr = NULL;
  size_t size = 0;
  atomic_store(&s->stack_lo, 0);
  atomic_store(&s->stack_hi, 0);
  if (pthread_getattr_np(pthread_self(), &attr) != 0)
    return;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != NULL) {
    atomic_store(&s->stack_lo, (uintptr_t)addr);
    atomic_store(&s->stack_hi, (uintptr_t)addr + size);
  }
  pthread_attr_destroy(&attr);
}

static int is_internal(pid_t tid);

static int register_self_locked(pid_t tid, hs_prof_slot **out) {
  hs_prof_slot *s = slot_by_tid(tid);
  if (s != NULL && atomic_load(&s->state) == SLOT_ACTIVE) {
    if (s->how == SLOT_REMOTE) { /* found by a scan first: upgrade */
      self_stack(s);
      s->how = SLOT_SELF;
    }
    *out = s;
    return HOTSPAN_OK;
  }
  if (s != NULL) { /* PARKED: this thread unregistered itself before */
    self_stack(s);
    int rc = slot_activate(s, tid, SLOT_SELF);
    if (rc == HOTSPAN_OK)
      *out = s;
    return rc;
  }
  hs_prof_slot *d = slot_draining_parked(tid);
  if (d != NULL) /* unregistered a moment ago: let that slot go free */
    d->park = 0;
  s = slot_alloc();
  if (s == NULL)
    return hs_prof_h.slots ? HOTSPAN_EFULL : HOTSPAN_ENOMEM;
  self_stack(s);
  memset(s->name, 0, sizeof s->name);
  prctl(PR_GET_NAME, s->name);
  int rc = slot_activate(s, tid, SLOT_SELF);
  if (rc == HOTSPAN_OK)
    *out = s;
  return rc;
}

static int register_remote_locked(pid_t tid) {
  hs_prof_slot *s = slot_alloc();
  if (s == NULL)
    return HOTSPAN_EFULL;
  atomic_store(&s->stack_lo, 0);
  atomic_store(&s->stack_hi, 0);
  memset(s->name, 0, sizeof s->name);
  read_comm(tid, s->name);
  return slot_activate(s, tid, SLOT_REMOTE);
}

/* Thread exit of a self-registered thread (pthread key destructor). */
static void on_thread_exit(void *p) {
  hs_prof_slot *s = p;
  pid_t tid = gettid_();
  pthread_mutex_lock(&reg_lock);
  if (atomic_load(&s->tid) == tid) {
    int st = atomic_load(&s->state);
    if (st == SLOT_ACTIVE)
      slot_retire(s, 1);
    else if (st == SLOT_PARKED)
      slot_free(s);
    else if (st == SLOT_DRAINING)
      s->park = 0;
  }
  pthread_mutex_unlock(&reg_lock);
  hs_prof_tls = NULL;
}

int hs_prof_register_self(void) {
  if (!atomic_load(&running))
    return HOTSPAN_ESTATE;
  pid_t tid = gettid_();
  if (is_internal(tid))
    return HOTSPAN_EINVAL;
  hs_prof_slot *s = NULL;
  pthread_mutex_lock(&reg_lock);
  int rc = session ? register_self_locked(tid, &s) : HOTSPAN_ESTATE;
  pthread_mutex_unlock(&reg_lock);
  if (rc == HOTSPAN_OK) {
    hs_prof_tls = s;
    pthread_setspecific(exit_key, s);
  }
  return rc;
}

int hs_prof_unregister_self(void) {
  pid_t tid = gettid_();
  int rc = HOTSPAN_ESTATE;
  pthread_mutex_lock(&reg_lock);
  hs_prof_slot *s = hs_prof_h.slots ? slot_by_tid(tid) : NULL;
  if (s != NULL && atomic_load(&s->state) == SLOT_ACTIVE) {
    slot_retire(s, 1);
    s->park = 1;
    rc = HOTSPAN_OK;
  }
  pthread_mutex_unlock(&reg_lock);
  hs_prof_tls = NULL;
  if (rc == HOTSPAN_OK) /* the exit handler frees the parked slot */
    pthread_setspecific(exit_key, s);
  return rc;
}

void hs_prof_on_thread_start(void) {
  (void)hs_prof_register_self();
}

uint32_t hs_prof_engine_timer_count(void) {
  uint32_t n = 0;
  pthread_mutex_lock(&reg_lock);
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++)
    n += hs_prof_h.slots[i].has_timer ? 1 : 0;
  pthread_mutex_unlock(&reg_lock);
  return n;
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

/* Folds every ring; frees drained slots of gone threads. reg_lock held. */
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
        slot_free(s);
    }
  }
  atomic_store(&agg_in_profiles, 0);
}

static void drain(void) {
  pthread_mutex_lock(&reg_lock);
  drain_locked();
  pthread_mutex_unlock(&reg_lock);
}

static void free_profile(hs_profile *p) {
  hs_profile_free(p);
}

static hs_profile *new_profile(int type, uint64_t start_unix) {
  hs_profile_config pc;
  memset(&pc, 0, sizeof pc);
  pc.type = type;
  pc.period_ns =
      type == HS_PROFILE_CPU ? set.cpu_period_ns : set.wall_period_ns;
  pc.start_unix_ns = start_unix;
  return hs_profile_new(&pc);
}

/* Encodes p and hands it to the file writer and the sink. */
static int emit_profile(hs_profile *p, int type, uint64_t start, uint64_t end) {
  hs_prof_profile_sink sink = atomic_load(&profile_sink);
  if (hs_profile_sample_count(p) == 0 ||
      (set.output_dir[0] == '\0' && sink == NULL))
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
    if (set.output_dir[0] != '\0') {
      /* Created here rather than once at start: it may have been removed
       * since (a tmp cleaner), and one mkdir per period costs nothing. */
      (void)mkdir(set.output_dir, 0755);
      if (hs_pprof_write_file(set.output_dir, NULL, type, start, end, &out,
                              NULL) != HOTSPAN_OK)
        failed = 1;
      else
        atomic_fetch_add(&hs_prof_ctr.profiles_written, 1);
    }
    if (sink != NULL)
      sink(type, (const uint8_t *)out.data, out.len, start, end,
           atomic_load(&profile_sink_arg));
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
 * Thread discovery, reaping, names, stack bounds (aggregator, 1/s). */

/* The library's own threads (this engine's, the tracer's writer, the
 * exporters') are never registered (common/thread.h). */
static int is_internal(pid_t tid) {
  return hs_thread_is_internal(tid);
}

static int cmp_tid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return x < y ? -1 : x > y;
}

/* Registers threads of /proc/self/task that have no slot. reg_lock held. */
static void scan_tasks_locked(void) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return;
  /* Tids not to register: those with a slot, and those that unregistered
   * in the last two seconds (a thread past its exit handler may still be
   * listed while it finishes exiting). */
  uint64_t now = hs_now_mono_ns();
  size_t nknown = 0;
  pid_t *known = malloc(2 * (size_t)hs_prof_h.nslots * sizeof *known);
  if (known == NULL) {
    closedir(d);
    return;
  }
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    if (atomic_load(&s->state) != SLOT_FREE)
      known[nknown++] = atomic_load(&s->tid);
    if (s->gone_tid != 0 && now - s->gone_mono < 2 * SCAN_INTERVAL_NS)
      known[nknown++] = s->gone_tid;
  }
  if (nknown > 1)
    qsort(known, nknown, sizeof *known, cmp_tid);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long v = strtol(e->d_name, &end, 10);
    if (*end != '\0' || v <= 0)
      continue;
    pid_t tid = (pid_t)v;
    if (is_internal(tid) ||
        (nknown > 0 && bsearch(&tid, known, nknown, sizeof *known, cmp_tid)))
      continue;
    if (register_remote_locked(tid) == HOTSPAN_EFULL)
      break;
  }
  closedir(d);
  free(known);
}

/* Retires slots whose thread is gone (threads that did not unregister:
 * found by a scan, or ended without running key destructors), and slots of
 * library threads. */
static void reap_locked(void) {
  pid_t pid = getpid();
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    int st = atomic_load(&s->state);
    if (st != SLOT_ACTIVE && st != SLOT_PARKED)
      continue;
    /* A library thread found by a scan in the instant between its
     * creation and its listing (common/thread.h) is let go too. */
    pid_t tid = atomic_load(&s->tid);
    if (!(st == SLOT_ACTIVE && is_internal(tid)) &&
        (syscall(SYS_tgkill, pid, tid, 0) == 0 || errno != ESRCH))
      continue;
    if (st == SLOT_ACTIVE) {
      slot_retire(s, 0);
      s->park = 0;
    } else {
      slot_free(s);
    }
  }
}

/* Stack bounds of remote threads: the mapping holding the stack pointer
 * their handler saw. reg_lock held. */
static void resolve_stacks_locked(void) {
  int want = 0;
  for (uint32_t i = 0; i < hs_prof_h.nslots && !want; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    want = atomic_load(&s->state) == SLOT_ACTIVE &&
           atomic_load(&s->stack_hi) == 0 && atomic_load(&s->last_sp) != 0;
  }
  if (!want)
    return;
  FILE *f = fopen("/proc/self/maps", "re");
  if (f == NULL)
    return;
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
        perms[1] != 'w')
      continue;
    for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
      hs_prof_slot *s = &hs_prof_h.slots[i];
      uintptr_t sp = atomic_load(&s->last_sp);
      if (atomic_load(&s->state) != SLOT_ACTIVE ||
          atomic_load(&s->stack_hi) != 0 || sp < lo || sp >= hi)
        continue;
      atomic_store(&s->stack_lo, (uintptr_t)lo);
      atomic_store(&s->stack_hi, (uintptr_t)hi);
    }
  }
  fclose(f);
}

/* Re-reads a few thread names per call, round robin: threads often name
 * themselves after they started. */
static void refresh_names_locked(void) {
  uint32_t n = hs_prof_h.nslots, done = 0;
  for (uint32_t k = 0; k < n && done < NAMES_PER_SCAN; k++) {
    hs_prof_slot *s = &hs_prof_h.slots[(name_cursor + k) % n];
    if (atomic_load(&s->state) == SLOT_ACTIVE) {
      read_comm(atomic_load(&s->tid), s->name);
      done++;
    }
    if (k + 1 == n || done == NAMES_PER_SCAN)
      name_cursor = (name_cursor + k + 1) % n;
  }
}

static void check_handler(void) {
  if (atomic_load(&displaced) || hs_prof_handler_installed(set.signo))
    return;
  atomic_store(&displaced, 1);
  atomic_store(&hs_prof_ctr.handler_displaced, 1);
  hs_log(HS_LOG_WARN,
         "profiler: the program replaced the handler of signal %d; "
         "sampling stops (see docs/profiling.md)",
         set.signo);
  pthread_mutex_lock(&reg_lock);
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++)
    slot_timer_delete(&hs_prof_h.slots[i]);
  pthread_mutex_unlock(&reg_lock);
}

static void periodic_scan(void) {
  check_handler();
  hs_prof_unwind_refresh_maps();
  pthread_mutex_lock(&reg_lock);
  reap_locked();
  scan_tasks_locked();
  resolve_stacks_locked();
  refresh_names_locked();
  pthread_mutex_unlock(&reg_lock);
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
  uint64_t period_end = now + set.export_period_ns;
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
      periodic_scan();
      next_scan = now + SCAN_INTERVAL_NS;
    }
    if (now >= period_end) {
      export_period(0);
      period_end += set.export_period_ns;
      if (period_end <= now)
        period_end = now + set.export_period_ns;
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
  pthread_mutex_lock(&reg_lock);
  uint32_t k;
  for (k = 0; k < n && sent < set.wall_threads_per_tick; k++) {
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
    if (syscall(SYS_tgkill, pid, atomic_load(&s->tid), set.signo) != 0) {
      atomic_store(&s->wall_pending, WALL_IDLE);
      continue;
    }
    atomic_fetch_add(&hs_prof_ctr.wall_signals_sent, 1);
    /* Fails if the handler already took the signal: it is IDLE again. */
    int sending = WALL_SENDING;
    atomic_compare_exchange_strong(&s->wall_pending, &sending, WALL_SENT);
  }
  *cursor = (*cursor + k) % (n ? n : 1);
  pthread_mutex_unlock(&reg_lock);
}

static void *wall_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&reg_lock);
  uint32_t cursor =
      (uint32_t)(rng_next() % (hs_prof_h.nslots ? hs_prof_h.nslots : 1));
  pthread_mutex_unlock(&reg_lock);
  uint64_t next = hs_now_mono_ns() + set.wall_period_ns;
  pthread_mutex_lock(&ctl_lock);
  while (!ctl_stop) {
    struct timespec ts;
    abs_deadline(&ts, next);
    if (pthread_cond_timedwait(&ctl_cond, &ctl_lock, &ts) != ETIMEDOUT)
      continue; /* woken for another reason: re-check, wait again */
    pthread_mutex_unlock(&ctl_lock);
    if (!atomic_load(&displaced))
      wall_tick(&cursor);
    uint64_t now = hs_now_mono_ns();
    next += set.wall_period_ns;
    if (next <= now) /* late (suspended, overloaded): skip missed ticks */
      next = now + set.wall_period_ns;
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
  if (set.wall_period_ns > 0) {
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
  if (pthread_key_create(&exit_key, on_thread_exit) != 0) {
    free(slots);
    return -1;
  }
  static const hs_fork_handler fork_handler = {
      HS_FORK_RANK_PROFILER, atfork_prepare, atfork_parent, atfork_child};
  if (hs_fork_register(&fork_handler) != 0) {
    free(slots);
    return -1;
  }
  pthread_mutex_lock(&reg_lock);
  hs_prof_h.slots = slots;
  hs_prof_h.nslots = max_threads;
  pthread_mutex_unlock(&reg_lock);
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

/* Releases everything of a session: timers, rings (when no handler can
 * touch them), profiles. reg_lock not held. */
static void teardown(int free_rings) {
  pthread_mutex_lock(&reg_lock);
  session = 0;
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++) {
    hs_prof_slot *s = &hs_prof_h.slots[i];
    slot_timer_delete(s);
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
  pthread_mutex_unlock(&reg_lock);
}

/* The effective settings, once per start, as one JSON line (level info),
 * like the tracer's "hotspan.config" line. */
static void log_settings(void) {
  static const char *const unw[] = {"", "auto", "fp", "libunwind"};
  if (!hs_log_enabled(HS_LOG_INFO))
    return;
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_buf_printf(&b,
                "{\"event\":\"hotspan.profiler.config\",\"cpu_hz\":%.4g,"
                "\"wall_hz\":%.4g,\"max_depth\":%u,\"export_period_s\":%.4g,"
                "\"signal\":%d,\"unwinder\":\"%s\","
                "\"wall_threads_per_tick\":%u,\"max_threads\":%u,"
                "\"output_dir\":",
                set.cpu_period_ns ? 1e9 / (double)set.cpu_period_ns : 0.0,
                set.wall_period_ns ? 1e9 / (double)set.wall_period_ns : 0.0,
                set.max_depth, (double)set.export_period_ns / 1e9, set.signo,
                unw[set.unwinder & 3], set.wall_threads_per_tick,
                hs_prof_h.nslots);
  hs_json_str(&b, set.output_dir[0] ? set.output_dir : NULL);
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
  if (atomic_load(&running)) {
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_ESTATE;
  }
  if (once_init(s->max_threads) != 0) {
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_ENOMEM;
  }
  set = *s;
  ring_bytes = 8 * hs_prof_sample_max_bytes(set.max_depth);
  if (ring_bytes < 16384)
    ring_bytes = 16384;
  reset_counters();
  atomic_store(&displaced, 0);
  rng_state = hs_random_seed64();
  hs_prof_unwind_init();

  if (hs_prof_handler_install(set.signo) != 0) {
    int e = errno;
    hs_log(HS_LOG_ERROR,
           "profiler: cannot install the handler of signal %d: %s", set.signo,
           strerror(e));
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_ESYS;
  }
  symbolizer = hs_symbolizer_new();
  period_start_unix = hs_now_unix_ns();
  prof_cpu =
      set.cpu_period_ns ? new_profile(HS_PROFILE_CPU, period_start_unix) : NULL;
  prof_wall = set.wall_period_ns
                  ? new_profile(HS_PROFILE_WALL, period_start_unix)
                  : NULL;

  atomic_store(&hs_prof_h.signo, set.signo);
  hs_prof_h.cpu_period_ns = set.cpu_period_ns;
  hs_prof_h.max_depth = set.max_depth;
  hs_prof_h.unwinder = set.unwinder;
  atomic_store(&hs_prof_h.enabled, 1);
  atomic_store(&running, 1);

  int rc = HOTSPAN_OK;
  if (start_threads() != 0) {
    rc = HOTSPAN_ESYS;
  } else {
    pthread_mutex_lock(&reg_lock);
    session = 1;
    hs_prof_slot *self = NULL;
    pid_t tid = gettid_();
    if (register_self_locked(tid, &self) == HOTSPAN_OK) {
      hs_prof_tls = self;
      pthread_setspecific(exit_key, self);
    }
    scan_tasks_locked();
    pthread_mutex_unlock(&reg_lock);
  }
  if (rc != HOTSPAN_OK) {
    atomic_store(&hs_prof_h.enabled, 0);
    atomic_store(&running, 0);
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
  if (!atomic_load(&running)) {
    pthread_mutex_unlock(&life_lock);
    return HOTSPAN_OK;
  }
  atomic_store(&running, 0);
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
  return atomic_load(&running);
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
  if (!atomic_load(&running))
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
  if (atomic_load(&running)) {
    atomic_store(&hs_prof_h.enabled, 0);
    wait_handlers();
  }
  pthread_mutex_lock(&reg_lock);
}

static void atfork_parent(void) {
  pthread_mutex_unlock(&reg_lock);
  if (atomic_load(&running))
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
  if (!atomic_load(&running)) {
    pthread_mutex_unlock(&reg_lock);
    pthread_mutex_unlock(&life_lock);
    return;
  }
  pid_t tid = gettid_();
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
  prof_cpu =
      set.cpu_period_ns ? new_profile(HS_PROFILE_CPU, period_start_unix) : NULL;
  prof_wall = set.wall_period_ns
                  ? new_profile(HS_PROFILE_WALL, period_start_unix)
                  : NULL;
  int mine_state = mine != NULL ? atomic_load(&mine->state) : SLOT_FREE;
  if (mine_state == SLOT_ACTIVE) {
    slot_activate(mine, tid, SLOT_SELF);
  } else if (mine_state == SLOT_PARKED) {
    atomic_store(&mine->tid, tid); /* stays unregistered in the child */
  } else {
    if (mine != NULL && mine_state != SLOT_FREE) { /* retiring */
      atomic_store(&mine->state, SLOT_FREE);
      atomic_store(&mine->tid, 0);
    }
    hs_prof_slot *s = NULL;
    if (register_self_locked(tid, &s) == HOTSPAN_OK) {
      hs_prof_tls = s;
      pthread_setspecific(exit_key, s);
    }
  }
  pthread_mutex_unlock(&reg_lock);
  atomic_store(&hs_prof_h.enabled, 1);
  if (start_threads() != 0) {
    hs_log(HS_LOG_WARN, "profiler: cannot restart in the forked child");
    atomic_store(&hs_prof_h.enabled, 0);
    atomic_store(&running, 0);
    teardown(1);
  }
  pthread_mutex_unlock(&life_lock);
}
