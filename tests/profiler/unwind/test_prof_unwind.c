/* Unwinders on -O2 code built with (CHAIN_VARIANT_fp) and without
 * (CHAIN_VARIANT_nofp) frame pointers: samples taken in chain_c must show
 * chain_c <- chain_b <- chain_a <- chain_thread. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>

#include "hotspan/profiler.h"
#include "support/prof.h"
#include "support/sanitizer.h"

void chain_a(unsigned ms);

static _Atomic pid_t chain_tid;
static hotspan_profiler_stats last_stats;

static void *chain_thread(void *arg) {
  (void)arg;
  atomic_store(&chain_tid, pt_gettid());
  chain_a(400);
  return NULL;
}

/* Share of samples in chain_c that show the whole chain. */
static double complete_share(int unwinder, size_t *n_out) {
  pt_reset();
  hs_prof_set_sample_hook(pt_hook, NULL);
  hotspan_profiler_config c;
  hotspan_profiler_config_init(&c);
  c.ignore_environment = 1;
  c.cpu_hz = 199;
  c.wall_enabled = 0;
  c.unwinder = (hotspan_profiler_unwinder)unwinder;
  assert_int_equal(hotspan_profiler_start(&c), HOTSPAN_OK);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, chain_thread, NULL), 0);
  pthread_join(t, NULL);
  assert_int_equal(hs_prof_engine_sync(5000), HOTSPAN_OK);
  last_stats.struct_size = sizeof last_stats;
  assert_int_equal(hotspan_profiler_get_stats(&last_stats), HOTSPAN_OK);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
  hs_prof_set_sample_hook(NULL, NULL);

  static const char *const chain[] = {"chain_c", "chain_b", "chain_a",
                                      "chain_thread"};
  size_t n = 0, complete = 0;
  for (size_t i = 0; i < pt_n; i++) {
    const pt_sample *p = &pt_samples[i];
    if ((pid_t)p->s.tid != atomic_load(&chain_tid) ||
        strcmp(pt_func(p->pcs, 0), "chain_c") != 0)
      continue;
    n++;
    complete += pt_chain(p, chain, 4);
  }
  pt_sym_close();
  *n_out = n;
  return n ? (double)complete / (double)n : 0.0;
}

static void check(int unwinder, double want, const char *what) {
  size_t n;
  double share = complete_share(unwinder, &n);
  print_message("%s: %zu samples in chain_c, %.0f %% complete\n", what, n,
                share * 100);
  /* 400 ms at 199 Hz: ~80; far fewer under ThreadSanitizer, which delays
   * signals. Ten samples still show whether the chains are complete. */
  assert_true(n >= 10);
  assert_true(share >= want);
}

static void test_libunwind(void **state) {
  (void)state;
  check(HOTSPAN_UNWINDER_LIBUNWIND, 0.95, "libunwind");
}

static void test_auto(void **state) {
  (void)state;
  check(HOTSPAN_UNWINDER_AUTO, 0.95, "auto");
  uint64_t fp = last_stats.unwind_fp, unw = last_stats.unwind_libunwind;
  print_message("auto: %llu by frame pointers, %llu by libunwind\n",
                (unsigned long long)fp, (unsigned long long)unw);
#if defined(CHAIN_VARIANT_fp) && !UNDER_TSAN
  /* Code with frame pointers: the cheap walk is kept for most samples.
   * (Not under ThreadSanitizer: its runtime, built without frame pointers,
   * starts every thread, so every stack passes through it.) */
  assert_true(fp > unw);
#elif !defined(CHAIN_VARIANT_fp)
  assert_true(unw > fp);
#endif
}

static void test_fp(void **state) {
  (void)state;
#if defined(CHAIN_VARIANT_fp)
  check(HOTSPAN_UNWINDER_FP, 0.9, "fp");
#else
  /* Without frame pointers the walk skips frames (documented): samples
   * must still be taken, without crashing. */
  check(HOTSPAN_UNWINDER_FP, 0.0, "fp on code without frame pointers");
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_libunwind),
      cmocka_unit_test(test_auto),
      cmocka_unit_test(test_fp),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  pt_free();
  return rc;
}
