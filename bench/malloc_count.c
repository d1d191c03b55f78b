/* Counts heap allocations of the whole bench process by defining the
 * allocation functions in the executable, which takes precedence over
 * glibc's (glibc supports replacing malloc this way, and its own internal
 * calls then come here too). Each one counts and forwards to glibc's
 * allocator through its __libc_* entry points, so free() and
 * malloc_usable_size() stay glibc's and remain valid on every pointer.
 *
 * Sanitizer builds replace malloc themselves; defining it here as well would
 * mix two allocators, so counting is compiled out there. */
#include "bench_common.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||     \
    __has_feature(memory_sanitizer)
#define BENCH_NO_MALLOC_HOOK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_NO_MALLOC_HOOK 1
#endif

#ifdef BENCH_NO_MALLOC_HOOK

int bench_malloc_counting(void) {
  return 0;
}
uint64_t bench_malloc_calls(void) {
  return 0;
}

#else

/* Relaxed: the counter is read after the measured work has finished on the
 * reading thread; background threads' calls are counted, but only their
 * total matters. */
static _Atomic uint64_t g_calls;

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);

static inline void count(void) {
  atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
}

void *malloc(size_t size) {
  count();
  return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
  count();
  return __libc_realloc(p, size);
}

void *memalign(size_t align, size_t size) {
  count();
  return __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size) {
  count();
  return __libc_memalign(align, size);
}

void *valloc(size_t size) {
  count();
  return __libc_valloc(size);
}

int posix_memalign(void **out, size_t align, size_t size) {
  /* The checks glibc makes: a power of two multiple of sizeof(void *). */
  if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0 || align == 0)
    return EINVAL;
  count();
  void *p = __libc_memalign(align, size);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

int bench_malloc_counting(void) {
  return 1;
}

uint64_t bench_malloc_calls(void) {
  return atomic_load_explicit(&g_calls, memory_order_relaxed);
}

#endif
