/* Skips that show. cmocka's skip() alone marks a test skipped and the
 * executable still exits 0, so ctest would count a pass. TS_SKIP prints
 * the reason and remembers the skip; main ends with
 *   return ts_exit(cmocka_run_group_tests(...));
 * which exits 77 (ctest's SKIP_RETURN_CODE for unit tests) when no test
 * failed and at least one was skipped. In CI (CI=true) scripts/test.sh
 * fails on any skipped test, so a missing tool never passes for green. */
#ifndef HS_TESTS_SUPPORT_SKIP_H
#define HS_TESTS_SUPPORT_SKIP_H

#define TS_SKIP(reason)                                                        \
  do {                                                                         \
    ts_note_skip(__func__, reason);                                            \
    skip();                                                                    \
  } while (0)

void ts_note_skip(const char *test, const char *reason);
/* failed: what cmocka_run_group_tests returned (the number of failures). */
int ts_exit(int failed);

#endif
