/* The aggregator's once-a-second work on threads: discovery of threads in
 * /proc/self/task, reaping of those gone, thread names, stack bounds of
 * threads found by a scan, and the check that our handler is still
 * installed (reg_lock held; lock order in engine_int.h). */
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

static uint32_t name_cursor; /* next slot for name refresh */

/* ------------------------------------------------------------------------
 * Thread discovery, reaping, names, stack bounds (aggregator, 1/s). */

/* The library's own threads (this engine's, the tracer's writer, the
 * exporters') are never registered (common/thread.h). */
int hs_pe_is_internal(pid_t tid) {
  return hs_thread_is_internal(tid);
}

static int cmp_tid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return x < y ? -1 : x > y;
}

/* Registers threads of /proc/self/task that have no slot. hs_pe.reg_lock held.
 */
void hs_pe_scan_tasks_locked(void) {
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
    if (hs_pe_is_internal(tid) ||
        (nknown > 0 && bsearch(&tid, known, nknown, sizeof *known, cmp_tid)))
      continue;
    if (hs_pe_register_remote_locked(tid) == HOTSPAN_EFULL)
      break;
  }
  closedir(d);
  free(known);
}

/* Retires slots whose thread is gone (threads that did not unregister:
 * found by a scan, or ended without hs_pe.running key destructors), and slots
 * of library threads. */
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
    if (!(st == SLOT_ACTIVE && hs_pe_is_internal(tid)) &&
        (syscall(SYS_tgkill, pid, tid, 0) == 0 || errno != ESRCH))
      continue;
    if (st == SLOT_ACTIVE) {
      hs_pe_slot_retire(s, 0);
      s->park = 0;
    } else {
      hs_pe_slot_free(s);
    }
  }
}

/* Stack bounds of remote threads: the mapping holding the stack pointer
 * their handler saw. hs_pe.reg_lock held. */
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
      hs_pe_read_comm(atomic_load(&s->tid), s->name);
      done++;
    }
    if (k + 1 == n || done == NAMES_PER_SCAN)
      name_cursor = (name_cursor + k + 1) % n;
  }
}

static void check_handler(void) {
  if (atomic_load(&hs_pe.displaced) ||
      hs_prof_handler_installed(hs_pe.set.signo))
    return;
  atomic_store(&hs_pe.displaced, 1);
  atomic_store(&hs_prof_ctr.handler_displaced, 1);
  hs_log(HS_LOG_WARN,
         "profiler: the program replaced the handler of signal %d; "
         "sampling stops (see docs/profiling.md)",
         hs_pe.set.signo);
  pthread_mutex_lock(&hs_pe.reg_lock);
  for (uint32_t i = 0; i < hs_prof_h.nslots; i++)
    hs_pe_slot_timer_delete(&hs_prof_h.slots[i]);
  pthread_mutex_unlock(&hs_pe.reg_lock);
}

void hs_pe_periodic_scan(void) {
  check_handler();
  hs_prof_unwind_refresh_maps();
  pthread_mutex_lock(&hs_pe.reg_lock);
  reap_locked();
  hs_pe_scan_tasks_locked();
  resolve_stacks_locked();
  refresh_names_locked();
  pthread_mutex_unlock(&hs_pe.reg_lock);
}
