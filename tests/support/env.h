/* A clean environment for tests of settings read from it. */
#ifndef HS_TESTS_SUPPORT_ENV_H
#define HS_TESTS_SUPPORT_ENV_H

/* Unsets every variable hotspan or a peer's convention reads: those whose
 * names start with HOTSPAN_, DD_, OTEL_ or PYROSCOPE_. */
void ts_clear_env(void);
/* The same as a cmocka setup or teardown function. */
int ts_clear_env_fixture(void **state);

#endif
