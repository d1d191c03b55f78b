#include "support/env.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

void ts_clear_env(void) {
  static const char *const prefixes[] = {"HOTSPAN_", "DD_", "OTEL_",
                                         "PYROSCOPE_"};
  /* unsetenv changes environ: look again from the start after each one. */
  for (;;) {
    char name[256] = "";
    for (char **e = environ; e != NULL && *e != NULL && name[0] == '\0'; e++)
      for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        const char *eq = strchr(*e, '=');
        size_t n = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
        if (strncmp(*e, prefixes[i], strlen(prefixes[i])) == 0 &&
            n < sizeof name) {
          memcpy(name, *e, n);
          name[n] = '\0';
          break;
        }
      }
    if (name[0] == '\0')
      return;
    unsetenv(name);
  }
}

int ts_clear_env_fixture(void **state) {
  (void)state;
  ts_clear_env();
  return 0;
}
