/* Library threads (common/thread.h). */
#include "common/thread.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fork.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                         void *);

/* Tids of live library threads; 0 marks a free entry. A library has few
 * threads (writer per tracer, one transport, two for the profiler): the
 * table only has to hold those running at the same time. */
#define MAX_INTERNAL 32
static _Atomic pid_t internal_tids[MAX_INTERNAL];

static __thread int self_internal __attribute__((tls_model("initial-exec")));
static __thread int creating __attribute__((tls_model("initial-exec")));

static _Atomic(create_fn) real_create;

pid_t hs_gettid(void) {
  return (pid_t)syscall(SYS_gettid);
}

int hs_thread_is_internal(pid_t tid) {
  if (tid <= 0)
    return 0;
  for (int i = 0; i < MAX_INTERNAL; i++)
    if (atomic_load_explicit(&internal_tids[i], memory_order_acquire) == tid)
      return 1;
  return 0;
}

int hs_thread_creating_internal(void) {
  return creating;
}

/* A sanitizer's interceptor when one is loaded (it must see every thread
 * that runs instrumented code; it calls on to the next pthread_create,
 * which may be the profiler's wrapper: that one sees `creating` and passes
 * through), else the next pthread_create after this object: the C
 * library's, never the profiler's wrapper. Looked up at load (see
 * resolve_early), never from a fork handler. */
static create_fn resolve(void) {
  create_fn f = atomic_load_explicit(&real_create, memory_order_acquire);
  if (f != NULL)
    return f;
  void *p = dlsym(RTLD_DEFAULT, "__interceptor_pthread_create");
  if (p == NULL)
    p = dlsym(RTLD_NEXT, "pthread_create");
  f = (create_fn)p;
  atomic_store_explicit(&real_create, f, memory_order_release);
  return f;
}

__attribute__((constructor)) static void resolve_early(void) {
  (void)resolve();
}

typedef struct start_arg {
  void *(*fn)(void *);
  void *arg;
  char name[16];
  _Atomic int listed; /* 1 once the tid is in the table (or cannot be) */
} start_arg;

static void list_self(pid_t tid) {
  for (int i = 0; i < MAX_INTERNAL; i++) {
    pid_t zero = 0;
    if (atomic_compare_exchange_strong(&internal_tids[i], &zero, tid))
      return;
  }
}

static void unlist_self(pid_t tid) {
  for (int i = 0; i < MAX_INTERNAL; i++) {
    pid_t mine = tid;
    if (atomic_compare_exchange_strong(&internal_tids[i], &mine, 0))
      return;
  }
}

static void *trampoline(void *p) {
  start_arg *sa = p;
  void *(*fn)(void *) = sa->fn;
  void *arg = sa->arg;
  pid_t tid = hs_gettid();
  self_internal = 1;
  list_self(tid);
  if (sa->name[0] != '\0')
    prctl(PR_SET_NAME, sa->name);
  atomic_store_explicit(&sa->listed, 1, memory_order_release);
  /* sa belongs to the starter from here on. */
  void *rv = fn(arg);
  unlist_self(tid);
  return rv;
}

/* In a child only the forking thread exists: every other library thread
 * stayed behind. */
static void fork_child(void) {
  pid_t self = self_internal ? hs_gettid() : 0;
  for (int i = 0; i < MAX_INTERNAL; i++)
    atomic_store(&internal_tids[i], 0);
  if (self != 0)
    list_self(self);
}

static const hs_fork_handler fork_handler = {HS_FORK_RANK_CORE, NULL, NULL,
                                             fork_child};
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void register_fork(void) {
  (void)hs_fork_register(&fork_handler);
}

int hs_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
                    const char *name) {
  create_fn f = resolve();
  if (f == NULL)
    return EAGAIN;
  pthread_once(&fork_once, register_fork);
  start_arg sa;
  memset(&sa, 0, sizeof sa);
  sa.fn = fn;
  sa.arg = arg;
  if (name != NULL)
    strncpy(sa.name, name, sizeof sa.name - 1);
  atomic_store(&sa.listed, 0);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  creating = 1;
  int rc = f(t, NULL, trampoline, &sa);
  creating = 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0)
    return rc;
  /* Wait until the thread is listed, so that no profiler scan takes it
   * for a program thread (and sa, on this stack, is no longer read). */
  while (!atomic_load_explicit(&sa.listed, memory_order_acquire))
    sched_yield();
  return 0;
}
