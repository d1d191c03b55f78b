/* Thread slots of the engine: per-thread CPU timers, registration of the
 * calling thread or of one found by a scan, and thread exit (reg_lock held
 * unless said otherwise; lock order in engine_int.h). */
#include "common/clock.h"
#include "common/fork.h"
#include "common/log.h"
#include "common/random.h"
#include "common/thread.h"
#include "profiler/engine_int.h"
#include "profiler/profile.h"
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

/* ------------------------------------------------------------------------
 * Timers and slots (hs_pe.reg_lock held). */

/* Linux names a thread's CPU clock by its tid: ((~tid) << 3) | 6, where 6
 * is CPUCLOCK_PERTHREAD_MASK | CPUCLOCK_SCHED (the clock
 * pthread_getcpuclockid returns for a thread). This lets us give a timer to
 * a thread we only know from /proc/self/task. */
static clockid_t thread_cpu_clock(pid_t tid) {
  return (clockid_t)((~(unsigned)tid << 3) | 6u);
}

static int slot_timer_create(hs_prof_slot *s) {
  if (hs_pe.set.cpu_period_ns == 0 || atomic_load(&hs_pe.displaced))
    return 0;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = hs_pe.set.signo;
  sev.sigev_value.sival_ptr = hs_prof_timer_cookie(s->index);
  sev._sigev_un._tid = atomic_load(&s->tid);
  timer_t t;
  if (timer_create(thread_cpu_clock(atomic_load(&s->tid)), &sev, &t) != 0)
    return -1;
  /* A random first expiry spreads threads over the period, so that threads
   * started together do not take their samples in lockstep. */
  uint64_t first = 1 + hs_pe_rng_next() % hs_pe.set.cpu_period_ns;
  struct itimerspec its;
  its.it_value.tv_sec = (time_t)(first / 1000000000u);
  its.it_value.tv_nsec = (long)(first % 1000000000u);
  its.it_interval.tv_sec = (time_t)(hs_pe.set.cpu_period_ns / 1000000000u);
  its.it_interval.tv_nsec = (long)(hs_pe.set.cpu_period_ns % 1000000000u);
  if (timer_settime(t, 0, &its, NULL) != 0) {
    timer_delete(t);
    return -1;
  }
  s->timer = t;
  s->has_timer = 1;
  return 0;
}

void hs_pe_slot_timer_delete(hs_prof_slot *s) {
  if (s->has_timer) {
    timer_delete(s->timer);
    s->has_timer = 0;
  }
}

void hs_pe_read_comm(pid_t tid, char name[16]) {
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
void hs_pe_slot_free(hs_prof_slot *s) {
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
void hs_pe_slot_retire(hs_prof_slot *s, int self) {
  atomic_store(&s->state, SLOT_RETIRING);
  slot_quiesce(s);
  hs_pe_slot_timer_delete(s);
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
    if (s->ring.buf == NULL && hs_ring_init(&s->ring, hs_pe.ring_bytes) != 0)
      return NULL;
    return s;
  }
  atomic_fetch_add(&hs_prof_ctr.threads_rejected, 1);
  return NULL;
}

/* Makes s ACTIVE for tid and gives it a timer. */
int hs_pe_slot_activate(hs_prof_slot *s, pid_t tid, int how) {
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

int hs_pe_register_self_locked(pid_t tid, hs_prof_slot **out) {
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
    int rc = hs_pe_slot_activate(s, tid, SLOT_SELF);
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
  int rc = hs_pe_slot_activate(s, tid, SLOT_SELF);
  if (rc == HOTSPAN_OK)
    *out = s;
  return rc;
}

int hs_pe_register_remote_locked(pid_t tid) {
  hs_prof_slot *s = slot_alloc();
  if (s == NULL)
    return HOTSPAN_EFULL;
  atomic_store(&s->stack_lo, 0);
  atomic_store(&s->stack_hi, 0);
  memset(s->name, 0, sizeof s->name);
  hs_pe_read_comm(tid, s->name);
  return hs_pe_slot_activate(s, tid, SLOT_REMOTE);
}

/* Thread exit of a self-registered thread (pthread key destructor). */
void hs_pe_on_thread_exit(void *p) {
  hs_prof_slot *s = p;
  pid_t tid = hs_pe_gettid_();
  pthread_mutex_lock(&hs_pe.reg_lock);
  if (atomic_load(&s->tid) == tid) {
    int st = atomic_load(&s->state);
    if (st == SLOT_ACTIVE)
      hs_pe_slot_retire(s, 1);
    else if (st == SLOT_PARKED)
      hs_pe_slot_free(s);
    else if (st == SLOT_DRAINING)
      s->park = 0;
  }
  pthread_mutex_unlock(&hs_pe.reg_lock);
  hs_prof_tls = NULL;
}

int hs_prof_register_self(void) {
  if (!atomic_load(&hs_pe.running))
    return HOTSPAN_ESTATE;
  pid_t tid = hs_pe_gettid_();
  if (hs_pe_is_internal(tid))
    return HOTSPAN_EINVAL;
  hs_prof_slot *s = NULL;
  pthread_mutex_lock(&hs_pe.reg_lock);
  int rc = hs_pe.session ? hs_pe_register_self_locked(tid, &s) : HOTSPAN_ESTATE;
  pthread_mutex_unlock(&hs_pe.reg_lock);
  if (rc == HOTSPAN_OK) {
    hs_prof_tls = s;
    pthread_setspecific(hs_pe.exit_key, s);
  }
  return rc;
}

int hs_prof_unregister_self(void) {
  pid_t tid = hs_pe_gettid_();
  int rc = HOTSPAN_ESTATE;
  pthread_mutex_lock(&hs_pe.reg_lock);
  hs_prof_slot *s = hs_prof_h.slots ? slot_by_tid(tid) : NULL;
  if (s != NULL && atomic_load(&s->state) == SLOT_ACTIVE) {
    hs_pe_slot_retire(s, 1);
    s->park = 1;
    rc = HOTSPAN_OK;
  }
  pthread_mutex_unlock(&hs_pe.reg_lock);
  hs_prof_tls = NULL;
  if (rc == HOTSPAN_OK) /* the exit handler frees the parked slot */
    pthread_setspecific(hs_pe.exit_key, s);
  return rc;
}

void hs_prof_on_thread_start(void) {
  (void)hs_prof_register_self();
}

uint32_t hs_prof_engine_timer_count(void) {
  uint32_t n = 0;
  pthread_mutex_lock(&hs_pe.reg_lock);
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++)
    n += hs_prof_h.slots[i].has_timer ? 1 : 0;
  pthread_mutex_unlock(&hs_pe.reg_lock);
  return n;
}
