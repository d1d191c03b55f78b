/* The agent's request trust checks (agent/trust.h), table-driven: which
 * Host, Origin, Sec-Fetch-Site and Authorization values a loopback
 * listener and one beyond loopback accept, and the answer to the rest.
 * Mutations tried: accepting any Host (the evil.example rows fail),
 * ignoring the port (the :9999 rows fail), comparing tokens by prefix
 * (the "s3cret-more" row fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/trust.h"
#include "common/token.h"

#define PORT 8126

typedef struct row {
  const char *host, *origin, *fetch_site, *authz;
  int status; /* 0: accepted */
} row;

static void run_rows(const hs_agent_trust *t, const row *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const row *r = &rows[i];
    const char *why = NULL;
    int st = hs_agent_trust_check(t, PORT, r->host, r->origin, r->fetch_site,
                                  r->authz, &why);
    if (st != r->status)
      fail_msg("row %zu (Host %s, Origin %s, Sec-Fetch-Site %s, "
               "Authorization %s): %d, want %d",
               i, r->host ? r->host : "-", r->origin ? r->origin : "-",
               r->fetch_site ? r->fetch_site : "-", r->authz ? r->authz : "-",
               st, r->status);
    if (st)
      assert_non_null(why);
  }
}

static void test_loopback_listener(void **state) {
  (void)state;
  static const char *const extra[] = {"devbox", NULL};
  hs_agent_trust t = {1, "127.0.0.1", extra, NULL};
  static const row rows[] = {
      {"127.0.0.1:8126", NULL, NULL, NULL, 0},
      {"localhost:8126", NULL, NULL, NULL, 0},
      {"LOCALHOST", NULL, NULL, NULL, 0},
      {"[::1]:8126", NULL, NULL, NULL, 0},
      {"devbox:8126", NULL, NULL, NULL, 0},
      {"127.0.0.1:8126", "http://127.0.0.1:8126", "same-origin", NULL, 0},
      {"localhost:8126", NULL, "none", NULL, 0},
      /* DNS rebinding: the page's own name reaches 127.0.0.1 */
      {"evil.example:8126", NULL, NULL, NULL, 403},
      {"evil.example:8126", "http://evil.example:8126", "same-origin", NULL,
       403},
      {"127.0.0.1.evil.example:8126", NULL, NULL, NULL, 403},
      {"localhost:9999", NULL, NULL, NULL, 403},
      {"localhost:81260", NULL, NULL, NULL, 403},
      {"localhost:", NULL, NULL, NULL, 403},
      {"[::1", NULL, NULL, NULL, 403},
      {"user@localhost:8126", NULL, NULL, NULL, 403},
      {"local host", NULL, NULL, NULL, 403},
      {NULL, NULL, NULL, NULL, 400},
      {"", NULL, NULL, NULL, 400},
      /* any other web page, whatever it posts */
      {"127.0.0.1:8126", "http://evil.example", NULL, NULL, 403},
      {"127.0.0.1:8126", "null", NULL, NULL, 403},
      {"127.0.0.1:8126", "https://127.0.0.1:8126", NULL, NULL, 403},
      {"127.0.0.1:8126", "http://127.0.0.1", NULL, NULL, 403},
      {"127.0.0.1:8126", "http://localhost:3000", NULL, NULL, 403},
      {"127.0.0.1:8126", NULL, "cross-site", NULL, 403},
      {"127.0.0.1:8126", NULL, "same-site", NULL, 403},
  };
  run_rows(&t, rows, sizeof rows / sizeof rows[0]);
}

static void test_token_beyond_loopback(void **state) {
  (void)state;
  hs_agent_trust t = {0, "0.0.0.0", NULL, "s3cret"};
  static const row rows[] = {
      {"agent.internal:8126", NULL, NULL, "Bearer s3cret", 0},
      {"10.0.0.5:8126", NULL, NULL, "bearer  s3cret ", 0},
      {"agent.internal:8126", NULL, NULL, NULL, 401},
      {"agent.internal:8126", NULL, NULL, "Bearer s3cre", 401},
      {"agent.internal:8126", NULL, NULL, "Bearer s3cret-more", 401},
      {"agent.internal:8126", NULL, NULL, "Basic czNjcmV0", 401},
      {"agent.internal:8126", NULL, NULL, "s3cret", 401},
      /* Without a Host check, an Origin must still be the request's own. */
      {"agent.internal:8126", "http://agent.internal:8126", NULL,
       "Bearer s3cret", 0},
      {"agent.internal:8126", "http://evil.example", NULL, "Bearer s3cret",
       403},
  };
  run_rows(&t, rows, sizeof rows / sizeof rows[0]);
  /* No token configured: no Authorization needed. */
  hs_agent_trust open = {0, "0.0.0.0", NULL, NULL};
  const char *why;
  assert_int_equal(
      hs_agent_trust_check(&open, PORT, "x:1", NULL, NULL, NULL, &why), 0);
}

static void test_loopback_and_tokens(void **state) {
  (void)state;
  assert_true(hs_agent_is_loopback("127.0.0.1"));
  assert_true(hs_agent_is_loopback("127.1.2.3"));
  assert_true(hs_agent_is_loopback("::1"));
  assert_true(hs_agent_is_loopback("localhost"));
  assert_false(hs_agent_is_loopback("0.0.0.0"));
  assert_false(hs_agent_is_loopback("::"));
  assert_false(hs_agent_is_loopback("10.0.0.1"));
  assert_false(hs_agent_is_loopback("127.0.0"));
  assert_false(hs_agent_is_loopback("127.0.0.1.5"));
  assert_false(hs_agent_is_loopback("127.0.0.1000"));
  assert_false(hs_agent_is_loopback(NULL));

  assert_null(hs_token_invalid("abc-DEF_123.~+/="));
  assert_non_null(hs_token_invalid(""));
  assert_non_null(hs_token_invalid(NULL));
  assert_non_null(hs_token_invalid("two words"));
  assert_non_null(hs_token_invalid("line\r\nX-Injected: 1"));
  assert_non_null(hs_token_invalid("caf\xc3\xa9"));
  char big[HS_TOKEN_MAX + 2];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  assert_non_null(hs_token_invalid(big));
  big[HS_TOKEN_MAX] = 0;
  assert_null(hs_token_invalid(big));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loopback_listener),
      cmocka_unit_test(test_token_beyond_loopback),
      cmocka_unit_test(test_loopback_and_tokens),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
