/* Sample ring: records come out in order and intact, wrap-around with
 * padding, full ring refuses (nothing overwritten), oversized records are
 * refused, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "profiler/ring.h"

static void put(hs_ring *r, uint32_t seq, size_t len) {
  uint8_t *p = hs_ring_reserve(r, len);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % 8, 0);
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(seq + i);
  hs_ring_commit(r, len);
}

static void get(hs_ring *r, uint32_t seq, size_t want_len) {
  size_t len = 0;
  const uint8_t *p = hs_ring_peek(r, &len);
  assert_non_null(p);
  assert_int_equal(len, want_len);
  for (size_t i = 0; i < len; i++)
    assert_int_equal(p[i], (uint8_t)(seq + i));
  hs_ring_release(r);
}

static void test_fifo_and_wrap(void **state) {
  (void)state;
  hs_ring r;
  assert_int_equal(hs_ring_init(&r, 4096), 0);
  assert_int_equal(r.size, 4096);
  size_t len = 0;
  assert_null(hs_ring_peek(&r, &len));
  /* Many rounds of odd sizes: every record crosses the end at some point,
   * so the padding path runs many times. */
  uint32_t wseq = 0, rseq = 0;
  for (int round = 0; round < 2000; round++) {
    size_t n = 1 + (size_t)(round * 37) % 500;
    put(&r, wseq++, n);
    if (round % 3 == 0) {
      put(&r, wseq++, n / 2 + 1);
      get(&r, rseq, 1 + (size_t)(round * 37) % 500);
      rseq++;
      get(&r, rseq++, n / 2 + 1);
    } else {
      get(&r, rseq++, n);
    }
  }
  assert_null(hs_ring_peek(&r, &len));
  hs_ring_destroy(&r);
  hs_ring_destroy(&r); /* idempotent */
  hs_ring_destroy(NULL);
}

static void test_full_ring_refuses_without_overwriting(void **state) {
  (void)state;
  hs_ring r;
  assert_int_equal(hs_ring_init(&r, 4096), 0);
  uint32_t n = 0;
  while (hs_ring_reserve(&r, 200) != NULL) {
    hs_ring_commit(&r, 200);
    n++;
  }
  /* 4096 bytes hold 19 records of 208 bytes, minus room kept for the
   * largest reservation. */
  assert_true(n >= 10 && n <= 19);
  /* What is in there is untouched; after reading one, one more fits. */
  size_t len;
  assert_non_null(hs_ring_peek(&r, &len));
  assert_int_equal(len, 200);
  hs_ring_release(&r);
  assert_non_null(hs_ring_reserve(&r, 200));
  hs_ring_commit(&r, 10);
  uint32_t count = 0;
  while (hs_ring_peek(&r, &len) != NULL) {
    hs_ring_release(&r);
    count++;
  }
  assert_int_equal(count, n);
  hs_ring_destroy(&r);
}

static void test_oversized_and_empty(void **state) {
  (void)state;
  hs_ring r;
  assert_int_equal(hs_ring_init(&r, 5000), 0);
  assert_int_equal(r.size, 8192); /* rounded up to a power of two */
  assert_null(hs_ring_reserve(&r, hs_ring_max_record(&r) + 1));
  assert_non_null(hs_ring_reserve(&r, hs_ring_max_record(&r)));
  hs_ring_commit(&r, 0); /* an empty record is a record */
  size_t len = 99;
  assert_non_null(hs_ring_peek(&r, &len));
  assert_int_equal(len, 0);
  hs_ring_release(&r);
  put(&r, 1, 16);
  hs_ring_reset(&r);
  assert_null(hs_ring_peek(&r, &len));
  hs_ring_destroy(&r);
  /* A destroyed ring refuses everything. */
  assert_null(hs_ring_reserve(&r, 8));
  assert_null(hs_ring_peek(&r, &len));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fifo_and_wrap),
      cmocka_unit_test(test_full_ring_refuses_without_overwriting),
      cmocka_unit_test(test_oversized_and_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
