/* A small shared library for tests/scripts/test_symbolize_debug.sh: its
 * static function has no dynamic symbol, so once the library is stripped
 * only a separate debug file can name it. */
#include <stdint.h>

static volatile int sink;

__attribute__((noinline)) static int symtest_hidden_static(int x) {
  int acc = 0;
  for (int i = 0; i < x; i++)
    acc += i ^ x;
  sink = acc;
  return acc;
}

/* Returns the address of the static function (and calls it, so that it is
 * kept). */
uintptr_t symtest_entry(int x) {
  sink = symtest_hidden_static(x);
  return (uintptr_t)&symtest_hidden_static;
}
