#include "support/skip.h"

#include <stdatomic.h>
#include <stdio.h>

static _Atomic int skipped;

void ts_note_skip(const char *test, const char *reason) {
  fprintf(stderr, "SKIP: %s: %s\n", test, reason);
  atomic_fetch_add(&skipped, 1);
}

int ts_exit(int failed) {
  if (failed != 0)
    return failed;
  return atomic_load(&skipped) > 0 ? 77 : 0;
}
