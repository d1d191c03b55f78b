/* pthread_create interposition: registers every new thread with the
 * profiler before its start routine runs, so that it is sampled from its
 * first instruction and unregistered (timer deleted) when it exits.
 *
 * libhotspan.so exports pthread_create. When the library is preloaded or
 * linked, the program's calls reach this wrapper, which calls the C
 * library's function found with dlsym(RTLD_NEXT). The program's references
 * are versioned (pthread_create@GLIBC_2.34, or @GLIBC_2.2.5 for programs
 * built before glibc 2.34), and the dynamic linker binds a versioned
 * reference only to a definition of the same version, so the wrapper is
 * exported under both versions (hotspan.map declares the version nodes).
 * When libhotspan is loaded with dlopen the program's calls are already
 * bound to libc; threads are then found by the aggregator's scan of
 * /proc/self/task within a second.
 *
 * Sanitizer runtimes intercept pthread_create too; see resolve(). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/thread.h"
#include "profiler/engine.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                         void *);

static _Atomic(create_fn) real_create;

int hs_pthread_create_wrapper(pthread_t *t, const pthread_attr_t *attr,
                              void *(*fn)(void *), void *arg);

/* Nonzero if a and b lie in the same loaded object. */
static int same_object(void *a, void *b) {
  Dl_info ia, ib;
  return dladdr(a, &ia) != 0 && dladdr(b, &ib) != 0 &&
         ia.dli_fbase == ib.dli_fbase;
}

/* The next pthread_create after ours. Normally the C library's, or a
 * sanitizer's interceptor loaded as a shared runtime (which calls on to the
 * C library; when the sanitizer runtime comes first, its interceptor calls
 * ours, and ours must then not call it back). A sanitizer runtime linked
 * statically into the same object as this code (clang's default) defines
 * pthread_create there as a weak alias that ours overrides: then its
 * interceptor is called explicitly, so that it keeps seeing threads. */
static create_fn resolve(void) {
  create_fn f = atomic_load_explicit(&real_create, memory_order_acquire);
  if (f != NULL)
    return f;
  void *p = dlsym(RTLD_DEFAULT, "__interceptor_pthread_create");
  if (p == NULL || p == (void *)hs_pthread_create_wrapper ||
      !same_object(p, (void *)hs_pthread_create_wrapper))
    p = dlsym(RTLD_NEXT, "pthread_create");
  f = (create_fn)p;
  atomic_store_explicit(&real_create, f, memory_order_release);
  return f;
}

/* ThreadSanitizer's runtime in another object (gcc's shared libtsan) comes
 * before us: its interceptor calls our wrapper with its own start routine,
 * which sets up the sanitizer's thread state. A trampoline of ours in front
 * of it would run instrumented code before that setup (ThreadSanitizer
 * faults), so the wrapper then passes calls through, and new threads are
 * found by the aggregator's /proc/self/task scan instead (within a second).
 * Only sanitizer builds take this path. Other runtimes (ASan) cope with our
 * trampoline. Decided once, at load (see resolve_early). */
static atomic_int sanitizer_outside;

static void detect_sanitizer_outside(void) {
  void *first = dlsym(RTLD_DEFAULT, "pthread_create");
  int outside = first != NULL && first != (void *)hs_pthread_create_wrapper &&
                !same_object(first, (void *)hs_pthread_create_wrapper) &&
                dlsym(RTLD_DEFAULT, "__tsan_init") != NULL;
  atomic_store(&sanitizer_outside, outside);
}

int hs_prof_interpose_active(void) {
  return !atomic_load_explicit(&sanitizer_outside, memory_order_relaxed);
}

typedef struct tramp {
  void *(*fn)(void *);
  void *arg;
} tramp;

static void *tramp_start(void *p) {
  tramp t = *(tramp *)p;
  free(p);
  /* Unregistration happens in the profiler's thread-exit key destructor,
   * which also runs when the routine calls pthread_exit. */
  hs_prof_on_thread_start();
  return t.fn(t.arg);
}

__attribute__((visibility("default"))) int
hs_pthread_create_wrapper(pthread_t *t, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg) {
  create_fn real = resolve();
  if (real == NULL)
    return EAGAIN;
  /* The library's own threads (common/thread.h) are passed through: they
   * are never registered. */
  if (hs_thread_creating_internal() || !hs_prof_engine_running() ||
      fn == NULL ||
      atomic_load_explicit(&sanitizer_outside, memory_order_relaxed))
    return real(t, attr, fn, arg);
  tramp *tr = malloc(sizeof *tr);
  if (tr == NULL)
    return real(t, attr, fn, arg);
  tr->fn = fn;
  tr->arg = arg;
  int rc = real(t, attr, tramp_start, tr);
  if (rc != 0)
    free(tr);
  return rc;
}

#if defined(__x86_64__)
__asm__(".symver hs_pthread_create_wrapper, pthread_create@@GLIBC_2.34");
__asm__(".symver hs_pthread_create_compat, pthread_create@GLIBC_2.2.5");
__attribute__((visibility("default"))) int
hs_pthread_create_compat(pthread_t *t, const pthread_attr_t *attr,
                         void *(*fn)(void *), void *arg)
    __attribute__((alias("hs_pthread_create_wrapper")));
#endif

/* Resolve early, outside any unusual context (a constructor of another
 * library, a thread being created from a signal handler). */
__attribute__((constructor)) static void resolve_early(void) {
  (void)resolve();
  detect_sanitizer_outside();
}
