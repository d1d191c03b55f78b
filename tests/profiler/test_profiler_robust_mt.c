/* Profiler engine robustness: the program's own SIGPROF handler keeps
 * working, a handler installed after ours is detected, repeated start/stop,
 * thousands of short-lived threads without leaked timers, fork, threads the
 * wrapper never saw, explicit (un)registration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "hotspan/profiler.h"
#include "support/prof.h"
#include "support/sanitizer.h"

/* Written after a burn so that the caller does not tail-call the burner. */
static __thread volatile double sink;

/* pthread_create past the profiler's wrapper, as a program thread made
 * by code the wrapper never sees (a library bound to libc directly): a
 * sanitizer's interceptor when there is one, else the C library's. */
static int pthread_create_behind_our_back(pthread_t *t,
                                          const pthread_attr_t *attr,
                                          void *(*fn)(void *), void *arg) {
  typedef int (*create_fn)(pthread_t *, const pthread_attr_t *,
                           void *(*)(void *), void *);
  void *p = dlsym(RTLD_DEFAULT, "__interceptor_pthread_create");
  if (p == NULL)
    p = dlsym(RTLD_NEXT, "pthread_create");
  return p != NULL ? ((create_fn)p)(t, attr, fn, arg) : EAGAIN;
}

static hotspan_profiler_stats stats(void) {
  hotspan_profiler_stats st = {.struct_size = sizeof st};
  assert_int_equal(hotspan_profiler_get_stats(&st), HOTSPAN_OK);
  return st;
}

/* POSIX timers of this process, as the kernel lists them. */
static int kernel_timers(void) {
  FILE *f = fopen("/proc/self/timers", "r");
  if (f == NULL)
    return -1;
  char line[256];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL)
    n += strncmp(line, "ID:", 3) == 0;
  fclose(f);
  return n;
}

/* Threads of this process, without the profiler's own two. */
static int program_threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  return hotspan_profiler_running() ? n - 2 : n;
}

/* Waits (bounded) until cond() holds, letting the aggregator run. */
static int eventually(int (*cond)(void), int timeout_ms) {
  uint64_t until = pt_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  while (!cond()) {
    if (pt_mono_ns() > until)
      return 0;
    hs_prof_engine_sync(1000);
    pt_sleep_ms(20);
  }
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Chaining to the program's handler. */

static _Atomic int app_calls, app_calls_timer, app_calls_tkill;

static void app_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  atomic_fetch_add(&app_calls, 1);
  if (si->si_code == SI_TIMER)
    atomic_fetch_add(&app_calls_timer, 1);
  if (si->si_code == SI_TKILL)
    atomic_fetch_add(&app_calls_tkill, 1);
}

/* Sends a signal with send() and waits until the program's handler ran
 * once more. Signals of one number merge while pending (POSIX), so a
 * program's signal that coincides with one of ours is delivered once and
 * taken as ours: then it is sent again, up to five times. */
static int reaches_program(int (*send)(void)) {
  int before = atomic_load(&app_calls);
  for (int attempt = 0; attempt < 5; attempt++) {
    if (send() != 0)
      return 0;
    uint64_t until = pt_mono_ns() + 500000000ull;
    while (atomic_load(&app_calls) == before && pt_mono_ns() < until)
      pt_sleep_ms(1);
    if (atomic_load(&app_calls) > before)
      return 1;
  }
  return 0;
}

static int send_kill(void) {
  return kill(getpid(), SIGPROF);
}
static int send_tgkill(void) {
  return (int)syscall(SYS_tgkill, getpid(), pt_gettid(), SIGPROF);
}
static int send_sigqueue(void) {
  union sigval v = {.sival_int = 42};
  return sigqueue(getpid(), SIGPROF, v);
}

static void test_program_handler_is_chained(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = app_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGPROF, &sa, &old), 0);
  atomic_store(&app_calls, 0);
  atomic_store(&app_calls_timer, 0);
  atomic_store(&app_calls_tkill, 0);

  assert_int_equal(pt_start(199, 97, HOTSPAN_UNWINDER_AUTO, 0, 0), HOTSPAN_OK);
  pt_burn_cpu(300);
  pt_sleep_ms(100);
  /* Our own timer and tgkill signals never reach the program. */
  assert_int_equal(atomic_load(&app_calls), 0);
  assert_true(stats().samples_cpu > 0);
  assert_true(stats().samples_wall > 0);

  /* The program's own profiling timer (setitimer) still reaches it. How
   * many of its expirations become signals depends on the load: the
   * kernel checks process CPU timers on scheduler ticks and sends one
   * signal per check. */
  struct itimerval it = {{0, 5000}, {0, 5000}}, off = {{0, 0}, {0, 0}};
  assert_int_equal(setitimer(ITIMER_PROF, &it, NULL), 0);
  for (int i = 0; i < 100 && atomic_load(&app_calls) < 3; i++)
    pt_burn_cpu(20);
  assert_int_equal(setitimer(ITIMER_PROF, &off, NULL), 0);
  pt_sleep_ms(20);
  assert_true(atomic_load(&app_calls) >= 3);
  assert_int_equal(atomic_load(&app_calls_timer), 0);
  assert_int_equal(atomic_load(&app_calls_tkill), 0);

  /* Signals the program sends itself reach its handler: kill (SI_USER),
   * sigqueue (SI_QUEUE) and a tgkill to its own thread, which looks like
   * our wall-clock requests but was not one. */
  for (int i = 0; i < 3; i++) {
    assert_true(reaches_program(send_kill));
    assert_true(reaches_program(send_sigqueue));
    assert_true(reaches_program(send_tgkill));
  }
  assert_true(atomic_load(&app_calls_tkill) >= 3);
  assert_int_equal(atomic_load(&app_calls_timer), 0);
  assert_true(stats().foreign_signals >= (uint64_t)atomic_load(&app_calls));

  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
  /* Stopped: foreign signals still reach the program. */
  assert_true(reaches_program(send_kill));
  assert_true(reaches_program(send_tgkill));
  assert_int_equal(sigaction(SIGPROF, &old, NULL), 0);
}

static int displaced_and_no_timers(void) {
  return stats().handler_displaced == 1 && hs_prof_engine_timer_count() == 0;
}

/* A handler installed after ours takes the signal; the profiler notices,
 * stops its timers and leaves the program's handler alone. */
static void test_program_handler_installed_later(void **state) {
  (void)state;
  atomic_store(&app_calls, 0);
  atomic_store(&app_calls_timer, 0);
  assert_int_equal(pt_start(199, 97, HOTSPAN_UNWINDER_AUTO, 0, 0), HOTSPAN_OK);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = app_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGPROF, &sa, &old), 0);
  assert_true(eventually(displaced_and_no_timers, 5000));
  /* Let anything already queued arrive, then nothing more may come. */
  pt_sleep_ms(100);
  int calls = atomic_load(&app_calls);
  pt_burn_cpu(200);
  pt_sleep_ms(200);
  assert_int_equal(atomic_load(&app_calls), calls);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);

  /* A new start installs ours again, chaining to the program's. */
  assert_int_equal(pt_start(199, 0, HOTSPAN_UNWINDER_AUTO, 0, 0), HOTSPAN_OK);
  pt_burn_cpu(100);
  assert_int_equal(stats().handler_displaced, 0);
  assert_true(stats().samples_cpu > 0);
  assert_int_equal(kill(getpid(), SIGPROF), 0);
  pt_sleep_ms(50);
  assert_true(atomic_load(&app_calls) > calls);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
  /* Give SIGPROF back to the profiler's handler for later tests. */
  assert_int_equal(sigaction(SIGPROF, &old, NULL), 0);
}

/* ---------------------------------------------------------------------- */

static _Atomic int workers_stop;

static void *worker_main(void *arg) {
  (void)arg;
  while (!atomic_load(&workers_stop)) {
    pt_burn_cpu(2);
    pt_sleep_ms(1);
  }
  return NULL;
}

static void test_start_stop_100_times(void **state) {
  (void)state;
  int base = kernel_timers();
  atomic_store(&workers_stop, 0);
  pthread_t w[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&w[i], NULL, worker_main, NULL), 0);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(pt_start(997, 97, HOTSPAN_UNWINDER_AUTO, 0, 0),
                     HOTSPAN_OK);
    assert_int_equal(pt_start(997, 97, HOTSPAN_UNWINDER_AUTO, 0, 0),
                     HOTSPAN_ESTATE);
    assert_true(hotspan_profiler_running());
    /* This thread, the two workers (found in /proc/self/task) and any
     * thread a sanitizer runtime runs. */
    assert_int_equal(hs_prof_engine_timer_count(), program_threads());
    pt_burn_cpu(1);
    assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
    assert_false(hotspan_profiler_running());
    assert_int_equal(hs_prof_engine_timer_count(), 0);
  }
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK); /* idempotent */
  atomic_store(&workers_stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(w[i], NULL);
  assert_int_equal(kernel_timers(), base);
}

/* ---------------------------------------------------------------------- */

static void *short_main(void *arg) {
  (void)arg;
  sink += 1;
  return NULL;
}

#if UNDER_TSAN || UNDER_ASAN
#define MANY_THREADS 2000
#else
#define MANY_THREADS 10000
#endif

static void test_many_short_threads(void **state) {
  (void)state;
  int base = kernel_timers();
  assert_int_equal(pt_start(997, 97, HOTSPAN_UNWINDER_AUTO, 0, 0), HOTSPAN_OK);
  int reg0 = (int)hs_prof_engine_timer_count();
  enum { BATCH = 16 };
  for (int i = 0; i < MANY_THREADS; i += BATCH) {
    pthread_t t[BATCH];
    for (int k = 0; k < BATCH; k++)
      assert_int_equal(pthread_create(&t[k], NULL, short_main, NULL), 0);
    for (int k = 0; k < BATCH; k++)
      pthread_join(t[k], NULL);
  }
  assert_int_equal(hs_prof_engine_sync(5000), HOTSPAN_OK);
  hotspan_profiler_stats st = stats();
  /* Every thread was registered and, at its exit, unregistered. */
  assert_true(st.threads_registered >= MANY_THREADS);
  assert_int_equal(st.threads_rejected, 0);
  assert_int_equal(st.threads_active, reg0);
  assert_int_equal(hs_prof_engine_timer_count(), reg0);
  assert_int_equal(kernel_timers(), base + reg0);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
  assert_int_equal(kernel_timers(), base);
}

/* ---------------------------------------------------------------------- */

static void test_fork_child_profiles_itself(void **state) {
  (void)state;
#if UNDER_TSAN
  /* ThreadSanitizer kills a child of a multi-threaded process that starts
   * threads; the other builds run this test. */
  skip();
#endif
  assert_int_equal(pt_start(199, 97, HOTSPAN_UNWINDER_AUTO, 0, 0), HOTSPAN_OK);
  pt_burn_cpu(50);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* Child: clean state, its own timer, its own threads, new samples. The
     * exit status names the first check that failed. */
    if (!hotspan_profiler_running() || hs_prof_engine_timer_count() != 1)
      _exit(10);
    hotspan_profiler_stats st = {.struct_size = sizeof st};
    hotspan_profiler_get_stats(&st);
    if (st.samples_cpu != 0 || st.threads_active != 1)
      _exit(11);
    pt_burn_cpu(200);
    if (hs_prof_engine_sync(5000) != HOTSPAN_OK)
      _exit(12);
    hotspan_profiler_get_stats(&st);
    /* 200 ms of CPU at 199 Hz: ~40 periods, some folded into one signal
     * (overruns) when the machine is busy. */
    if (st.samples_cpu + st.timer_overruns < 10)
      _exit(13);
    if (hotspan_profiler_stop() != HOTSPAN_OK ||
        hs_prof_engine_timer_count() != 0)
      _exit(14);
    _exit(0);
  }
  /* Parent: keeps profiling while the child runs. */
  uint64_t before = stats().samples_cpu;
  pt_burn_cpu(100);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_true(stats().samples_cpu > before);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
}

/* ---------------------------------------------------------------------- */
/* Threads the pthread_create wrapper did not see. */

static _Atomic int remote_phase;

static void *remote_main(void *arg) {
  _Atomic int *rc = arg;
  while (atomic_load(&remote_phase) == 0)
    pt_burn_cpu(5);
  /* Registered by the scan; explicit calls still behave. */
  rc[0] = hotspan_profiler_register_thread();   /* upgrade: OK */
  rc[1] = hotspan_profiler_unregister_thread(); /* OK */
  rc[2] = hotspan_profiler_unregister_thread(); /* not registered */
  while (atomic_load(&remote_phase) == 1)
    pt_burn_cpu(5);
  rc[3] = hotspan_profiler_register_thread(); /* again: OK */
  while (atomic_load(&remote_phase) == 2)
    pt_burn_cpu(5);
  return NULL; /* exits registered: the key destructor unregisters */
}

static void *silent_main(void *arg) {
  (void)arg;
  while (atomic_load(&remote_phase) < 4)
    pt_burn_cpu(5);
  return NULL; /* never registered itself: the reaper must notice */
}

static uint32_t reg_base; /* timers right after start */

static int two_more_timers(void) {
  return hs_prof_engine_timer_count() == reg_base + 2;
}
static int no_more_timers(void) {
  return hs_prof_engine_timer_count() == reg_base;
}

static void wait_rc(_Atomic int *rc) {
  while (atomic_load(rc) == -99)
    pt_sleep_ms(5);
}

static void test_threads_created_behind_our_back(void **state) {
  (void)state;
  int base = kernel_timers();
  assert_int_equal(pt_start(199, 0, HOTSPAN_UNWINDER_AUTO, 0, 0), HOTSPAN_OK);
  reg_base = hs_prof_engine_timer_count();
  assert_true(reg_base >= 1);
  atomic_store(&remote_phase, 0);
  _Atomic int rc[4] = {-99, -99, -99, -99};
  pthread_t a, b;
  assert_int_equal(pthread_create_behind_our_back(&a, NULL, remote_main, rc),
                   0);
  assert_int_equal(pthread_create_behind_our_back(&b, NULL, silent_main, NULL),
                   0);
  /* Found by the scan within a second or two. */
  assert_true(eventually(two_more_timers, 5000));

  atomic_store(&remote_phase, 1);
  wait_rc(&rc[2]);
  assert_int_equal(rc[0], HOTSPAN_OK);
  assert_int_equal(rc[1], HOTSPAN_OK);
  assert_int_equal(rc[2], HOTSPAN_ESTATE);
  /* An unregistered thread stays so: later scans leave it alone. */
  assert_int_equal(hs_prof_engine_timer_count(), reg_base + 1);
  pt_sleep_ms(1200);
  assert_int_equal(hs_prof_engine_sync(5000), HOTSPAN_OK);
  assert_int_equal(hs_prof_engine_timer_count(), reg_base + 1);

  atomic_store(&remote_phase, 2);
  wait_rc(&rc[3]);
  assert_int_equal(rc[3], HOTSPAN_OK);
  assert_int_equal(hs_prof_engine_timer_count(), reg_base + 2);

  atomic_store(&remote_phase, 3);
  pthread_join(a, NULL);
  /* a unregistered at exit through the key destructor. */
  assert_int_equal(hs_prof_engine_timer_count(), reg_base + 1);
  atomic_store(&remote_phase, 4);
  pthread_join(b, NULL);
  /* b is reaped by the aggregator. */
  assert_true(eventually(no_more_timers, 5000));
  assert_int_equal(kernel_timers(), base + (int)reg_base);
  assert_true(stats().samples_cpu > 0);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
  assert_int_equal(kernel_timers(), base);
  /* Not running: registration is refused. */
  assert_int_equal(hotspan_profiler_register_thread(), HOTSPAN_ESTATE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_program_handler_is_chained, pt_teardown),
      cmocka_unit_test_teardown(test_program_handler_installed_later,
                                pt_teardown),
      cmocka_unit_test_teardown(test_start_stop_100_times, pt_teardown),
      cmocka_unit_test_teardown(test_many_short_threads, pt_teardown),
      cmocka_unit_test_teardown(test_fork_child_profiles_itself, pt_teardown),
      cmocka_unit_test_teardown(test_threads_created_behind_our_back,
                                pt_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
