/* Trace sampler: the Knuth rate rule, rules and globs, the rate limiter,
 * priorities and decision makers, configuration errors, describe, and the
 * OpenTelemetry sampler mapping. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/json_read.h"
#include "hotspan/error.h"
#include "hotspan/tracer.h"
#include "tracer/sampler.h"

#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(1000) * SEC) /* an arbitrary monotonic start time */

static hs_sampler *make(double rate, const char *rules, double limit) {
  hs_sampler_config cfg = {rate, rules, limit};
  hs_sampler *s = NULL;
  char err[512] = "";
  int rc = hs_sampler_new(&cfg, &s, err, sizeof err);
  if (rc != HOTSPAN_OK)
    print_error("hs_sampler_new failed: %s\n", err);
  assert_int_equal(rc, HOTSPAN_OK);
  assert_string_equal(err, "");
  assert_non_null(s);
  return s;
}

static hs_sampling_decision decide(hs_sampler *s, const char *service,
                                   const char *name, const char *resource,
                                   uint64_t id, uint64_t now) {
  hs_sampling_decision d;
  memset(&d, 0x5a, sizeof d);
  hs_sampler_decide(s, service, NULL, name, resource, id, now, &d);
  return d;
}

static int kept_by_rate(double rate, uint64_t id) {
  hs_sampler *s = make(rate, NULL, 0);
  hs_sampling_decision d = decide(s, "svc", "op", "res", id, T0);
  hs_sampler_free(s);
  assert_int_equal(d.mechanism, HS_MECH_RULE);
  assert_true(d.rule_rate == rate);
  assert_true(d.limit_rate < 0); /* no limiter configured */
  assert_true(d.priority == HOTSPAN_PRIORITY_USER_KEEP ||
              d.priority == HOTSPAN_PRIORITY_USER_REJECT);
  return d.priority == HOTSPAN_PRIORITY_USER_KEEP;
}

/* Decisions for specific ids, worked out by hand:
 *   h(id) = id * 1111111111111111111 mod 2^64, keep iff h < rate * 2^64.
 *   h(1)  = 1111111111111111111            (0.0602 of 2^64)
 *   h(2)  = 2222222222222222222            (0.1205)
 *   h(9)  = 9999999999999999999            (0.5421)
 *   h(17) = 18888888888888888887 - 2^64 = 442144815179337271 (0.0240)
 *   h(2^64-1) = 2^64 - 1111111111111111111 = 17335632962598440505 (0.9398)
 *   h(2^63) = 2^63 (the factor is odd), exactly the threshold of rate 0.5. */
static void test_knuth_known_ids(void **state) {
  (void)state;
  assert_true(kept_by_rate(0.5, 1));
  assert_true(kept_by_rate(0.1, 1));
  assert_false(kept_by_rate(0.05, 1));
  assert_true(kept_by_rate(0.5, 2));
  assert_false(kept_by_rate(0.1, 2));
  assert_false(kept_by_rate(0.5, 9));
  assert_true(kept_by_rate(0.55, 9));
  assert_true(kept_by_rate(0.03, 17));
  assert_false(kept_by_rate(0.01, 17));
  assert_true(kept_by_rate(0.95, UINT64_MAX));
  assert_false(kept_by_rate(0.9, UINT64_MAX));
  /* Strictly less than: h == threshold is dropped. */
  assert_false(kept_by_rate(0.5, UINT64_C(1) << 63));
  assert_true(kept_by_rate(nextafter(0.5, 1.0), UINT64_C(1) << 63));
  /* Rate 1 keeps everything, rate 0 nothing, including id 0 (h = 0). */
  assert_true(kept_by_rate(1.0, 0));
  assert_true(kept_by_rate(1.0, UINT64_MAX));
  assert_false(kept_by_rate(0.0, 0));
  assert_false(kept_by_rate(0.0, 1));
  /* The smallest positive rate keeps h = 0 (id 0) only. */
  assert_true(kept_by_rate(5e-324, 0));
  assert_false(kept_by_rate(5e-324, 1));
}

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* The sampler agrees with an independent 128-bit evaluation of the rule on
 * many random ids and rates. */
static void test_knuth_matches_128bit_reference(void **state) {
  (void)state;
  static const double rates[] = {0.001, 0.1, 0.25, 1.0 / 3, 0.5, 0.75, 0.999};
  uint64_t seed = 42;
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    hs_sampler *s = make(rates[r], NULL, 0);
    for (int i = 0; i < 20000; i++) {
      uint64_t id = splitmix(&seed);
      unsigned __int128 prod = (unsigned __int128)id * 1111111111111111111u;
      uint64_t h = (uint64_t)prod; /* mod 2^64 */
      /* long double has a 64-bit mantissa: h and rate * 2^64 are exact. */
      int want =
          (long double)h < (long double)rates[r] * 18446744073709551616.0L;
      hs_sampling_decision d = decide(s, NULL, NULL, NULL, id, T0);
      assert_int_equal(d.priority, want ? HOTSPAN_PRIORITY_USER_KEEP
                                        : HOTSPAN_PRIORITY_USER_REJECT);
    }
    hs_sampler_free(s);
  }
}

static double kept_fraction(double rate, int sequential) {
  hs_sampler *s = make(rate, NULL, 0);
  uint64_t seed = 7, kept = 0, n = 100000;
  for (uint64_t i = 1; i <= n; i++) {
    uint64_t id = sequential ? i : splitmix(&seed);
    if (decide(s, "svc", "op", NULL, id, T0).priority ==
        HOTSPAN_PRIORITY_USER_KEEP)
      kept++;
  }
  hs_sampler_free(s);
  return (double)kept / (double)n;
}

static void test_rate_fraction(void **state) {
  (void)state;
  static const double rates[] = {0.5, 0.1, 0.9, 0.01};
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    for (int seq = 0; seq <= 1; seq++) {
      double f = kept_fraction(rates[r], seq);
      if (fabs(f - rates[r]) > 0.01)
        print_error("rate %g (%s ids): kept %g\n", rates[r],
                    seq ? "sequential" : "random", f);
      assert_true(fabs(f - rates[r]) <= 0.01);
    }
  }
}

static void test_limiter_burst_and_refill(void **state) {
  (void)state;
  hs_sampler *s = make(1.0, NULL, 100);
  int kept = 0;
  hs_sampling_decision d;
  for (int i = 0; i < 1000; i++) {
    d = decide(s, "svc", "op", "res", (uint64_t)i + 1, T0);
    assert_int_equal(d.mechanism, HS_MECH_RULE);
    assert_true(d.rule_rate == 1.0);
    if (i == 0)
      assert_true(d.limit_rate == 1.0); /* 1 allowed of 1 seen */
    if (d.priority == HOTSPAN_PRIORITY_USER_KEEP) {
      kept++;
    } else {
      /* A limiter drop after a rule keep is a user reject (Datadog). */
      assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_REJECT);
    }
  }
  assert_int_equal(kept, 100);
  assert_true(d.limit_rate == 0.1); /* 100 of 1000 */

  /* Half a second later: 50 tokens. */
  kept = 0;
  for (int i = 0; i < 1000; i++)
    kept += decide(s, "svc", "op", "res", 7, T0 + SEC / 2).priority ==
            HOTSPAN_PRIORITY_USER_KEEP;
  assert_int_equal(kept, 50);

  /* One second after the start the window rolls over: the effective rate
   * covers the previous window (150 of 2000) and this one (1 of 1). 50
   * tokens were refilled, so this one is kept. */
  d = decide(s, "svc", "op", "res", 7, T0 + SEC);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_KEEP);
  assert_true(fabs(d.limit_rate - 151.0 / 2001.0) < 1e-12);

  /* Long idle: the bucket holds at most its capacity (100), and windows
   * older than the previous one are forgotten. */
  kept = 0;
  for (int i = 0; i < 1000; i++) {
    d = decide(s, "svc", "op", "res", 7, T0 + 10 * SEC);
    if (i == 0)
      assert_true(d.limit_rate == 1.0);
    kept += d.priority == HOTSPAN_PRIORITY_USER_KEEP;
  }
  assert_int_equal(kept, 100);
  hs_sampler_free(s);
}

static void test_limiter_only_after_a_keep(void **state) {
  (void)state;
  /* Capacity 1: the ids the rate drops must not use up the only token. */
  hs_sampler *s = make(0.5, NULL, 1);
  for (int i = 0; i < 10; i++) {
    hs_sampling_decision d = decide(s, "svc", "op", NULL, 9, T0); /* drop */
    assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_REJECT);
    assert_int_equal(d.mechanism, HS_MECH_RULE);
    assert_true(d.rule_rate == 0.5);
    assert_true(d.limit_rate < 0); /* limiter not consulted */
  }
  hs_sampling_decision d = decide(s, "svc", "op", NULL, 1, T0); /* keep */
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_KEEP);
  assert_true(d.limit_rate == 1.0);
  d = decide(s, "svc", "op", NULL, 1, T0);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_REJECT);
  assert_true(d.limit_rate == 0.5);
  hs_sampler_free(s);
}

static void test_limiter_fractional_and_backwards_time(void **state) {
  (void)state;
  /* 0.5 traces/s: one trace every two seconds. */
  hs_sampler *s = make(1.0, NULL, 0.5);
  assert_int_equal(decide(s, NULL, NULL, NULL, 1, T0).priority,
                   HOTSPAN_PRIORITY_USER_KEEP);
  assert_int_equal(decide(s, NULL, NULL, NULL, 1, T0).priority,
                   HOTSPAN_PRIORITY_USER_REJECT);
  assert_int_equal(decide(s, NULL, NULL, NULL, 1, T0 + SEC).priority,
                   HOTSPAN_PRIORITY_USER_REJECT);
  assert_int_equal(decide(s, NULL, NULL, NULL, 1, T0 + 2 * SEC).priority,
                   HOTSPAN_PRIORITY_USER_KEEP);
  hs_sampler_free(s);

  /* A time earlier than one already seen adds no tokens. */
  s = make(1.0, NULL, 10);
  int kept = 0;
  for (int i = 0; i < 20; i++)
    kept += decide(s, NULL, NULL, NULL, 1, T0 + 5 * SEC).priority ==
            HOTSPAN_PRIORITY_USER_KEEP;
  assert_int_equal(kept, 10);
  assert_int_equal(decide(s, NULL, NULL, NULL, 1, T0 + 4 * SEC).priority,
                   HOTSPAN_PRIORITY_USER_REJECT);
  /* 0.1 s after the latest time: exactly one token. */
  assert_int_equal(
      decide(s, NULL, NULL, NULL, 1, T0 + 5 * SEC + SEC / 10).priority,
      HOTSPAN_PRIORITY_USER_KEEP);
  assert_int_equal(
      decide(s, NULL, NULL, NULL, 1, T0 + 5 * SEC + SEC / 10).priority,
      HOTSPAN_PRIORITY_USER_REJECT);
  hs_sampler_free(s);
}

static void test_default_decision(void **state) {
  (void)state;
  /* No rules, no rate: keep, decided by default; the limiter does not
   * apply to default decisions. */
  hs_sampler *s = make(-1, NULL, 1);
  for (int i = 0; i < 100; i++) {
    hs_sampling_decision d = decide(s, "svc", "op", "res", (uint64_t)i, T0);
    assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_KEEP);
    assert_int_equal(d.mechanism, HS_MECH_DEFAULT);
    assert_true(d.rule_rate == -1.0);
    assert_true(d.limit_rate == -1.0);
  }
  hs_sampler_free(s);
  /* Rules that do not match fall through to the default too. */
  s = make(-1, "[{\"service\":\"other\",\"sample_rate\":0}]", -1);
  hs_sampling_decision d = decide(s, "svc", "op", "res", 9, T0);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_KEEP);
  assert_int_equal(d.mechanism, HS_MECH_DEFAULT);
  hs_sampler_free(s);
  /* A NULL sampler gives the default decision; NULL out is ignored. */
  d = decide(NULL, "svc", "op", "res", 9, T0);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_KEEP);
  assert_int_equal(d.mechanism, HS_MECH_DEFAULT);
  hs_sampler_decide(NULL, NULL, NULL, NULL, NULL, 0, 0, NULL);
  hs_sampler_free(NULL);
}

static void test_rules_order_and_global_rate(void **state) {
  (void)state;
  const char *rules = "["
                      "{\"service\":\"web\",\"sample_rate\":0},"
                      "{\"service\":\"web\",\"name\":\"x\",\"sample_rate\":1},"
                      "{\"name\":\"db.*\",\"sample_rate\":0.25},"
                      "{\"service\":\"api\",\"name\":\"http.request\","
                      "\"resource\":\"GET /health\",\"sample_rate\":0}"
                      "]";
  hs_sampler *s = make(0.75, rules, 0);
  /* First match wins even though rule 1 is more specific. */
  hs_sampling_decision d = decide(s, "web", "x", NULL, 1, T0);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_REJECT);
  assert_int_equal(d.mechanism, HS_MECH_RULE);
  assert_true(d.rule_rate == 0.0);
  d = decide(s, "api", "db.query", "SELECT 1", 1, T0);
  assert_true(d.rule_rate == 0.25);
  /* All given fields must match. */
  d = decide(s, "api", "http.request", "GET /health", 1, T0);
  assert_true(d.rule_rate == 0.0);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_REJECT);
  d = decide(s, "api", "http.request", "GET /users", 1, T0);
  /* No rule: the global rate is the catch-all, also a rule decision. */
  assert_int_equal(d.mechanism, HS_MECH_RULE);
  assert_true(d.rule_rate == 0.75);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_KEEP);
  d = decide(s, NULL, NULL, NULL, 9, T0); /* h(9) = 0.542 < 0.75 */
  assert_true(d.rule_rate == 0.75);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_KEEP);
  d = decide(s, NULL, NULL, NULL, UINT64_MAX, T0); /* 0.9398 >= 0.75 */
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_REJECT);
  hs_sampler_free(s);

  /* A rule without patterns matches everything, before the global rate. */
  s = make(0.0, "[{\"sample_rate\":1}]", 0);
  d = decide(s, NULL, NULL, NULL, 9, T0);
  assert_true(d.rule_rate == 1.0);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_KEEP);
  hs_sampler_free(s);
}

/* Does the rule {<field>: pattern} match subject? */
static int rule_field_matches(const char *field, const char *pattern,
                              const char *subject) {
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_buf_puts(&b, "[{");
  hs_json_str(&b, field);
  hs_buf_putc(&b, ':');
  hs_json_str(&b, pattern);
  hs_buf_puts(&b, ",\"sample_rate\":1}]");
  hs_sampler *s = make(-1, hs_buf_cstr(&b), 0);
  hs_buf_free(&b);
  const char *svc = strcmp(field, "service") == 0 ? subject : "svc";
  const char *name = strcmp(field, "name") == 0 ? subject : "op";
  const char *res = strcmp(field, "resource") == 0 ? subject : "res";
  hs_sampling_decision d = decide(s, svc, name, res, 1, T0);
  hs_sampler_free(s);
  return d.mechanism == HS_MECH_RULE;
}

static void test_globs(void **state) {
  (void)state;
  static const struct {
    const char *pattern, *subject;
    int match;
  } cases[] = {
      {"*", "", 1},
      {"*", "anything at all", 1},
      {"**", "", 1},
      {"", "", 1},
      {"", "a", 0},
      {"a", "", 0},
      {"abc", "abc", 1},
      {"abc", "abcd", 0},
      {"abc", "ab", 0},
      {"a*b*c", "abc", 1},
      {"a*b*c", "aXbYc", 1},
      {"a*b*c", "abbbcbc", 1},
      {"a*b*c", "abcX", 0},
      {"a*b*c", "acb", 0},
      {"a*b*c", "ac", 0},
      {"??", "ab", 1},
      {"??", "a", 0},
      {"??", "abc", 0},
      {"??", "", 0},
      {"*?", "", 0},
      {"*?", "x", 1},
      {"?*?", "x", 0},
      {"?*?", "xy", 1},
      {"h?llo", "hello", 1},
      {"h?llo", "hllo", 0},
      {"c*t?r*", "contoroller", 1},
      {"c*t?r*", "car", 0},
      {"*.request", "http.request", 1},
      {"*.request", "http.requests", 0},
      {"*a", "bbb", 0},
      {"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
      {"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 1},
      /* ASCII case is ignored; '?' and '*' are not special in subjects. */
      {"HTTP.*", "http.request", 1},
      {"h?llo", "HELLO", 1},
      {"web", "WEB", 1},
      {"a?c", "a*c", 1},
      {"a*c", "a?c", 1},
      {"a.c", "abc", 0}, /* not a regex */
      /* '?' is one character, not one byte: "é" is 2 bytes, "😀" 4. */
      {"?", "\xc3\xa9", 1},
      {"??", "\xc3\xa9", 0},
      {"??", "\xc3\xa9!", 1},
      {"caf?", "caf\xc3\xa9", 1},
      {"?", "\xf0\x9f\x98\x80", 1},
      {"*\xc3\xa9", "caf\xc3\xa9", 1},
      {"CAF\xc3\xa9", "caf\xc3\xa9", 1},
      /* Non-ASCII letters are compared as bytes (no Unicode case folding). */
      {"caf\xc3\x89", "caf\xc3\xa9", 0},
  };
  static const char *const fields[] = {"service", "name", "resource"};
  for (size_t f = 0; f < 3; f++) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      int got =
          rule_field_matches(fields[f], cases[i].pattern, cases[i].subject);
      if (got != cases[i].match)
        print_error("%s pattern \"%s\" subject \"%s\": got %d\n", fields[f],
                    cases[i].pattern, cases[i].subject, got);
      assert_int_equal(got, cases[i].match);
    }
  }
}

static void test_missing_values(void **state) {
  (void)state;
  /* A span without a resource: only an absent or all-star pattern
   * matches it; "" does not (it matches an empty resource). */
  hs_sampler *s = make(-1,
                       "[{\"resource\":\"\",\"sample_rate\":0.5},"
                       "{\"resource\":\"*\",\"sample_rate\":0.25}]",
                       0);
  assert_true(decide(s, "svc", "op", NULL, 1, T0).rule_rate == 0.25);
  assert_true(decide(s, "svc", "op", "", 1, T0).rule_rate == 0.5);
  hs_sampler_free(s);
  s = make(-1, "[{\"service\":\"a*\",\"sample_rate\":0.5}]", 0);
  assert_int_equal(decide(s, NULL, "op", "r", 1, T0).mechanism,
                   HS_MECH_DEFAULT);
  hs_sampler_free(s);
}

static void expect_bad(const char *rules, const char *needle) {
  hs_sampler_config cfg = {-1, rules, -1};
  hs_sampler *s = (hs_sampler *)(uintptr_t)1;
  char err[512] = "";
  int rc = hs_sampler_new(&cfg, &s, err, sizeof err);
  if (rc != HOTSPAN_ECONFIG || strstr(err, needle) == NULL)
    print_error("rules %.80s: rc %d, message \"%s\"; want \"%s\"\n", rules, rc,
                err, needle);
  assert_int_equal(rc, HOTSPAN_ECONFIG);
  assert_null(s);
  assert_non_null(strstr(err, needle));
  assert_non_null(strstr(err, "sampling rules: "));
}

static void test_bad_rules(void **state) {
  (void)state;
  expect_bad("{}", "expected a JSON array of rule objects, got an object");
  expect_bad("\"x\"", "got a string");
  expect_bad("[1]", "rules[0] (byte 1) is a number; each rule must be an "
                    "object");
  expect_bad("[{\"sample_rate\":1},[]]", "rules[1] (byte 19) is an array");
  expect_bad("[{}]", "rules[0] (byte 1) has no \"sample_rate\"");
  expect_bad("[{\"service\":\"a\"}]", "has no \"sample_rate\"");
  expect_bad("[{\"sample_rate\":1.5}]",
             "rules[0]: \"sample_rate\" must be between 0 and 1, got 1.5 at "
             "byte 16");
  expect_bad("[{\"sample_rate\":-0.1}]", "got -0.1");
  expect_bad("[{\"sample_rate\":\"0.5\"}]",
             "\"sample_rate\" must be a number between 0 and 1, got string");
  expect_bad("[{\"sample_rate\":null}]", "got null");
  expect_bad("[{\"sample_rate\":true}]", "got boolean");
  expect_bad("[{\"sample_rate\":1e999}]", "out of range");
  expect_bad("[{\"sample_rate\":NaN}]", "unexpected character 'N'");
  expect_bad("[{\"sample_rate\":1,\"service\":5}]",
             "rules[0]: \"service\" must be a string (a glob pattern), got "
             "number");
  expect_bad("[{\"sample_rate\":1,\"name\":[\"a\"]}]", "\"name\" must be a "
                                                       "string");
  expect_bad("[{\"sample_rate\":1,\"resource\":null}]",
             "\"resource\" must be a string");
  expect_bad("[{\"sample_rate\":1,\"service\":\"a\\u0000b\"}]",
             "\"service\" contains a NUL character");
  expect_bad("[{\"sample_rate\":1,\"servce\":\"web\"}]",
             "rules[0]: unknown key \"servce\" at byte 18");
  expect_bad("[{\"sample_rate\":1},{\"sample_rate\":1,\"Service\":\"a\"}]",
             "rules[1]: unknown key \"Service\"");
  expect_bad("[{\"sample_rate\":1,\"tags\":{\"env\":\"prod\"}}]",
             "\"tags\" (byte 18) is not supported");
  expect_bad("[{\"sample_rate\":1,\"max_per_second\":10}]",
             "\"max_per_second\" (byte 18) is not supported");
  expect_bad("[{\"sample_rate\":1,\"sample_rate\":0}]",
             "duplicate key \"sample_rate\"");
  expect_bad("[", "invalid JSON at byte 1");
  expect_bad("[{\"sample_rate\":1},]", "invalid JSON at byte 19");
  expect_bad("[{\"sample_rate\":1}] x", "invalid JSON at byte 20");
  expect_bad("   ", "invalid JSON at byte 3");
  expect_bad("[[[[[]]]]]", "nesting deeper than 4 levels");
  /* The error of the second rule is found after the first was copied:
   * nothing may leak (ASan). */
  expect_bad("[{\"service\":\"a\",\"name\":\"b\",\"resource\":\"c\","
             "\"sample_rate\":1},{\"service\":\"x\",\"sample_rate\":2}]",
             "rules[1]: \"sample_rate\" must be between 0 and 1, got 2");
  expect_bad("[{\"service\":\"a\",\"name\":7,\"sample_rate\":1}]",
             "\"name\" must be a string");
}

static char *repeat_rules(size_t n) {
  const char *one = "{\"sample_rate\":1},";
  size_t len = strlen(one);
  char *text = malloc(n * len + 3);
  assert_non_null(text);
  text[0] = '[';
  for (size_t i = 0; i < n; i++)
    memcpy(text + 1 + i * len, one, len);
  text[n * len] = ']'; /* replaces the last ',' */
  text[n * len + 1] = '\0';
  return text;
}

static void test_rule_limits(void **state) {
  (void)state;
  char *text = repeat_rules(256);
  hs_sampler *s = make(-1, text, 0);
  assert_true(decide(s, "a", "b", "c", 1, T0).rule_rate == 1.0);
  hs_sampler_free(s);
  free(text);

  text = repeat_rules(257);
  expect_bad(text, "257 rules given; at most 256 are supported");
  free(text);

  /* 64 KiB of JSON is accepted (padding with whitespace), one byte more
   * is not. */
  size_t cap = 64 * 1024;
  text = malloc(cap + 2);
  assert_non_null(text);
  memset(text, ' ', cap + 1);
  memcpy(text, "[{\"sample_rate\":0.5}]", 21);
  text[cap] = '\0';
  s = make(-1, text, 0);
  assert_true(decide(s, "a", "b", "c", 1, T0).rule_rate == 0.5);
  hs_sampler_free(s);
  text[cap] = ' ';
  text[cap + 1] = '\0';
  expect_bad(text, "larger than 65536 bytes");
  free(text);

  /* Huge input: only the first 64 KiB + 1 bytes are ever looked at. */
  size_t huge = 8u << 20;
  text = malloc(huge + 1);
  assert_non_null(text);
  memset(text, '[', huge);
  text[huge] = '\0';
  expect_bad(text, "larger than 65536 bytes");
  free(text);
}

static void expect_bad_cfg(double rate, double limit, const char *needle) {
  hs_sampler_config cfg = {rate, NULL, limit};
  hs_sampler *s = NULL;
  char err[256] = "";
  assert_int_equal(hs_sampler_new(&cfg, &s, err, sizeof err), HOTSPAN_ECONFIG);
  assert_null(s);
  if (strstr(err, needle) == NULL)
    print_error("message \"%s\", want \"%s\"\n", err, needle);
  assert_non_null(strstr(err, needle));
}

static void test_bad_config(void **state) {
  (void)state;
  expect_bad_cfg(1.5, -1, "sample rate must be between 0 and 1 (got 1.5)");
  expect_bad_cfg(NAN, -1, "sample rate must be between 0 and 1 (got nan)");
  expect_bad_cfg(INFINITY, -1, "sample rate must be between 0 and 1");
  expect_bad_cfg(0.5, NAN, "rate limit must be a finite number");
  expect_bad_cfg(0.5, INFINITY, "rate limit must be a finite number");
  /* Negative rates mean unset; -inf included. */
  hs_sampler *s = make(-INFINITY, NULL, -1);
  assert_int_equal(decide(s, "a", "b", "c", 9, T0).mechanism, HS_MECH_DEFAULT);
  hs_sampler_free(s);

  hs_sampler_config cfg = {0.5, NULL, 0};
  char err[64];
  assert_int_equal(hs_sampler_new(&cfg, NULL, err, sizeof err), HOTSPAN_EINVAL);
  s = (hs_sampler *)(uintptr_t)1;
  assert_int_equal(hs_sampler_new(NULL, &s, err, sizeof err), HOTSPAN_EINVAL);
  assert_null(s);
  /* No error buffer: still fails cleanly. */
  cfg.rules_json = "[";
  assert_int_equal(hs_sampler_new(&cfg, &s, NULL, 0), HOTSPAN_ECONFIG);
  assert_null(s);
  /* "" and "[]" mean no rules. */
  cfg.rules_json = "";
  s = make(-1, "", 0);
  assert_int_equal(decide(s, "a", "b", "c", 9, T0).mechanism, HS_MECH_DEFAULT);
  hs_sampler_free(s);
  s = make(-1, "[]", 0);
  assert_int_equal(decide(s, "a", "b", "c", 9, T0).mechanism, HS_MECH_DEFAULT);
  hs_sampler_free(s);
}

static char *describe(hs_sampler *s) {
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_sampler_describe(s, &b);
  assert_false(hs_buf_failed(&b));
  char *out = strdup(hs_buf_cstr(&b));
  hs_buf_free(&b);
  return out;
}

static void test_describe(void **state) {
  (void)state;
  hs_sampler *s = make(0.5,
                       "[{\"resource\":\"GET \\\"/a\\\"\",\"name\":\"http.*\","
                       "\"service\":\"web\",\"sample_rate\":0.1},"
                       " {\"sample_rate\":1}]",
                       -1);
  char *text = describe(s);
  assert_string_equal(text, "{\"sample_rate\":0.5,\"rules\":["
                            "{\"service\":\"web\",\"name\":\"http.*\","
                            "\"resource\":\"GET \\\"/a\\\"\",\"sample_rate\":"
                            "0.1},{\"sample_rate\":1}],\"rate_limit\":100}");
  /* And it is valid JSON by our own strict reader. */
  hs_json_doc *doc = NULL;
  char err[128];
  assert_int_equal(
      hs_json_parse(text, strlen(text), NULL, &doc, err, sizeof err, NULL), 0);
  const hs_json_value *rules = hs_json_get(hs_json_root(doc), "rules");
  assert_int_equal(rules->u.array.len, 2);
  assert_string_equal(
      hs_json_get(&rules->u.array.items[0], "resource")->u.string.ptr,
      "GET \"/a\"");
  hs_json_free(doc);
  free(text);
  hs_sampler_free(s);

  s = make(-1, NULL, 0);
  text = describe(s);
  assert_string_equal(text,
                      "{\"sample_rate\":null,\"rules\":[],\"rate_limit\":0}");
  free(text);
  hs_sampler_free(s);

  s = make(0, NULL, 2.5);
  text = describe(s);
  assert_string_equal(text,
                      "{\"sample_rate\":0,\"rules\":[],\"rate_limit\":2.5}");
  free(text);
  hs_sampler_free(s);

  text = describe(NULL);
  assert_string_equal(text, "null");
  free(text);
}

static void test_otel_mapping(void **state) {
  (void)state;
  static const struct {
    const char *sampler, *arg;
    int rc;
    double rate;
  } cases[] = {
      {"always_on", NULL, 0, 1.0},
      {"always_off", NULL, 0, 0.0},
      {"always_on", "0.3", 0, 1.0}, /* arg ignored */
      {"parentbased_always_on", NULL, 0, 1.0},
      {"parentbased_always_off", NULL, 0, 0.0},
      {"traceidratio", "0.25", 0, 0.25},
      {"traceidratio", NULL, 0, 1.0},
      {"traceidratio", "", 0, 1.0},
      {"traceidratio", "0", 0, 0.0},
      {"traceidratio", "1", 0, 1.0},
      {"parentbased_traceidratio", "0.125", 0, 0.125},
      {"parentbased_traceidratio", NULL, 0, 1.0},
      {"ParentBased_TraceIdRatio", "0.5", 0, 0.5},
      {"ALWAYS_OFF", NULL, 0, 0.0},
      {"traceidratio", "1.5", -1, 0},
      {"traceidratio", "-0.1", -1, 0},
      {"traceidratio", "abc", -1, 0},
      {"traceidratio", "0.5x", -1, 0},
      {"traceidratio", "nan", -1, 0},
      {"traceidratio", "inf", -1, 0},
      {"parentbased_traceidratio", "2", -1, 0},
      {"jaeger_remote", NULL, -1, 0},
      {"parentbased_jaeger_remote", "x", -1, 0},
      {"xray", NULL, -1, 0},
      {"", NULL, -1, 0},
      {"always_on ", NULL, -1, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double rate = 42.0;
    int rc = hs_sampler_rate_from_otel(cases[i].sampler, cases[i].arg, &rate);
    if (rc != cases[i].rc)
      print_error("%s / %s: rc %d\n", cases[i].sampler,
                  cases[i].arg ? cases[i].arg : "(null)", rc);
    assert_int_equal(rc, cases[i].rc);
    if (rc == 0)
      assert_true(rate == cases[i].rate);
    else
      assert_true(rate == 42.0);
  }
  double rate = 0;
  assert_int_equal(hs_sampler_rate_from_otel(NULL, NULL, &rate), -1);
  assert_int_equal(hs_sampler_rate_from_otel("always_on", NULL, NULL), -1);
}

/* ---------------------------------------------------------- agent rates */

static int set_rates(hs_sampler *s, const char *json) {
  char err[256] = "";
  int rc = hs_sampler_set_agent_rates(s, json, strlen(json), err, sizeof err);
  if (rc == HOTSPAN_OK)
    assert_string_equal(err, "");
  else
    assert_true(err[0] != '\0'); /* every refusal says why */
  return rc;
}

static hs_sampling_decision decide_env(hs_sampler *s, const char *service,
                                       const char *env, uint64_t id) {
  hs_sampling_decision d;
  memset(&d, 0x5a, sizeof d);
  hs_sampler_decide(s, service, env, "op", "res", id, T0, &d);
  return d;
}

static void test_agent_rates_decide(void **state) {
  (void)state;
  /* A limit of 1/s: agent-rate keeps must not pass through the limiter. */
  hs_sampler *s = make(-1, "[{\"service\":\"ruled\",\"sample_rate\":1}]", 1);
  /* Before any answer: the default decision. */
  hs_sampling_decision d = decide_env(s, "web", "prod", 9);
  assert_int_equal(d.mechanism, HS_MECH_DEFAULT);
  assert_true(d.agent_rate == -1.0);

  assert_int_equal(set_rates(s, "{\"rate_by_service\":{"
                                "\"service:web,env:prod\":0.5,"
                                "\"service:web,env:\":1,"
                                "\"service:,env:\":0}}"),
                   HOTSPAN_OK);
  /* web/prod at 0.5: id 1 (h = 0.06 of 2^64) kept, id 9 (0.54) dropped —
   * the same ids a 0.5 rule keeps (see test_knuth_known_ids). */
  for (int rep = 0; rep < 3; rep++) { /* deterministic by trace id */
    d = decide_env(s, "web", "prod", 1);
    assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_KEEP);
    assert_int_equal(d.mechanism, HS_MECH_AGENT_RATE);
    assert_true(d.agent_rate == 0.5);
    assert_true(d.rule_rate == -1.0);
    assert_true(d.limit_rate == -1.0);
    d = decide_env(s, "web", "prod", 9);
    assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_REJECT);
    assert_int_equal(d.mechanism, HS_MECH_AGENT_RATE);
  }
  for (uint64_t id = 1; id < 2000; id += 7)
    assert_int_equal(decide_env(s, "web", "prod", id).priority ==
                         HOTSPAN_PRIORITY_AUTO_KEEP,
                     kept_by_rate(0.5, id));
  /* Many keeps in the same instant: no limiter for agent rates. */
  for (uint64_t id = 1; id < 50; id++)
    assert_int_equal(decide_env(s, "web", NULL, id).priority,
                     HOTSPAN_PRIORITY_AUTO_KEEP);
  /* No env: the key "service:web,env:" (rate 1); "" is the same. */
  d = decide_env(s, "web", "", 9);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_KEEP);
  assert_true(d.agent_rate == 1.0);
  /* Unknown service or env: the default key (rate 0). */
  d = decide_env(s, "other", "prod", 1);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_REJECT);
  assert_int_equal(d.mechanism, HS_MECH_AGENT_RATE);
  assert_true(d.agent_rate == 0.0);
  d = decide_env(s, "web", "staging", 1);
  assert_true(d.agent_rate == 0.0);
  d = decide_env(s, NULL, NULL, 1);
  assert_true(d.agent_rate == 0.0);
  /* A rule that matches wins over the agent. */
  d = decide_env(s, "ruled", "prod", 9);
  assert_int_equal(d.mechanism, HS_MECH_RULE);
  assert_true(d.agent_rate == -1.0);

  /* Without a default key, unknown services fall back to the default. */
  assert_int_equal(
      set_rates(s, "{\"rate_by_service\":{\"service:web,env:prod\":0}}"),
      HOTSPAN_OK);
  d = decide_env(s, "other", "prod", 1);
  assert_int_equal(d.mechanism, HS_MECH_DEFAULT);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_AUTO_KEEP);
  assert_int_equal(decide_env(s, "web", "prod", 1).priority,
                   HOTSPAN_PRIORITY_AUTO_REJECT);
  /* An empty table clears the rates. */
  assert_int_equal(set_rates(s, "{\"rate_by_service\":{}}"), HOTSPAN_OK);
  assert_int_equal(decide_env(s, "web", "prod", 1).mechanism, HS_MECH_DEFAULT);
  hs_sampler_free(s);

  /* With a global rate every root is decided by it: agent rates unused. */
  s = make(1.0, NULL, 0);
  assert_int_equal(set_rates(s, "{\"rate_by_service\":{\"service:,env:\":0}}"),
                   HOTSPAN_OK);
  d = decide_env(s, "web", "prod", 1);
  assert_int_equal(d.mechanism, HS_MECH_RULE);
  assert_int_equal(d.priority, HOTSPAN_PRIORITY_USER_KEEP);
  hs_sampler_free(s);
}

static void test_agent_rates_bad(void **state) {
  (void)state;
  hs_sampler *s = make(-1, NULL, 0);
  const char *good = "{\"rate_by_service\":{\"service:,env:\":0}}";
  assert_int_equal(set_rates(s, good), HOTSPAN_OK);
  static const char *const bad[] = {
      "",
      "OK",
      "{",
      "{\"rate_by_service\":{\"service:,env:\":0.5", /* truncated */
      "{\"rate_by_service\":{\"service:,env:\":0.5}",
      "[]",
      "null",
      "{}",
      "{\"rate_by_service\":[]}",
      "{\"rate_by_service\":null}",
      "{\"rate_by_service\":{\"service:a,env:b\":1.5}}",
      "{\"rate_by_service\":{\"service:a,env:b\":-0.1}}",
      "{\"rate_by_service\":{\"service:a,env:b\":1e308}}",
      "{\"rate_by_service\":{\"service:a,env:b\":1e400}}",
      "{\"rate_by_service\":{\"service:a,env:b\":-1e400}}",
      ("{\"rate_by_service\":{\"service:a,env:b\":"
       "123456789012345678901234567890}}"),
      "{\"rate_by_service\":{\"service:a,env:b\":NaN}}",
      "{\"rate_by_service\":{\"service:a,env:b\":\"0.5\"}}",
      "{\"rate_by_service\":{\"service:a,env:b\":true}}",
      "{\"rate_by_service\":{\"service:a,env:b\":{}}}",
      "{\"rate_by_service\":{\"svc:a,env:b\":0.5}}",
      "{\"rate_by_service\":{\"service:a\":0.5}}",
      "{\"rate_by_service\":{\"service:a\\u0000,env:b\":0.5}}",
      "{\"rate_by_service\":{\"service:a,env:b\":0.5,\"service:a,env:b\":1}}",
      "{\"rate_by_service\":{\"service:,env:\":0.5}} trailing",
      "{\"rate_by_service\":{\"service:\xff,env:\":0.5}}", /* bad UTF-8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = set_rates(s, bad[i]);
    if (rc != HOTSPAN_ECONFIG)
      print_error("accepted: %s\n", bad[i]);
    assert_int_equal(rc, HOTSPAN_ECONFIG);
    /* The previous rates stay in force. */
    hs_sampling_decision d = decide_env(s, "x", "y", 1);
    assert_int_equal(d.mechanism, HS_MECH_AGENT_RATE);
    assert_true(d.agent_rate == 0.0);
  }
  /* Every length of a truncated answer is refused, none crashes. */
  const char *full = "{\"rate_by_service\":{\"service:web,env:prod\":0.25,"
                     "\"service:,env:\":1}}";
  for (size_t n = 0; n < strlen(full); n++) {
    char err[256];
    assert_int_equal(hs_sampler_set_agent_rates(s, full, n, err, sizeof err),
                     HOTSPAN_ECONFIG);
  }
  /* Too large, too many keys. */
  size_t big = (1u << 20) + 10;
  char *huge = malloc(big + 1);
  assert_non_null(huge);
  memset(huge, ' ', big);
  memcpy(huge, good, strlen(good));
  huge[big] = '\0';
  assert_int_equal(set_rates(s, huge), HOTSPAN_ECONFIG);
  hs_buf b;
  hs_buf_init(&b, 0);
  hs_buf_puts(&b, "{\"rate_by_service\":{");
  for (int i = 0; i < 10001; i++)
    hs_buf_printf(&b, "%s\"service:s%d,env:\":0.5", i ? "," : "", i);
  hs_buf_puts(&b, "}}");
  assert_int_equal(hs_sampler_set_agent_rates(s, b.data, b.len, NULL, 0),
                   HOTSPAN_ECONFIG);
  hs_buf_free(&b);
  free(huge);
  /* NULL arguments. */
  assert_int_equal(
      hs_sampler_set_agent_rates(NULL, good, strlen(good), NULL, 0),
      HOTSPAN_EINVAL);
  assert_int_equal(hs_sampler_set_agent_rates(s, NULL, 5, NULL, 0),
                   HOTSPAN_EINVAL);
  assert_int_equal(decide_env(s, "x", "y", 1).agent_rate == 0.0, 1);
  /* Unknown members next to rate_by_service are ignored; a service with
   * ":" and "," in env is read by the first ",env:". */
  assert_int_equal(set_rates(s, "{\"other\":[1,2],\"rate_by_service\":"
                                "{\"service:a:b,env:x,y\":1}}"),
                   HOTSPAN_OK);
  assert_true(decide_env(s, "a:b", "x,y", 9).agent_rate == 1.0);
  hs_sampler_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_knuth_known_ids),
      cmocka_unit_test(test_knuth_matches_128bit_reference),
      cmocka_unit_test(test_rate_fraction),
      cmocka_unit_test(test_limiter_burst_and_refill),
      cmocka_unit_test(test_limiter_only_after_a_keep),
      cmocka_unit_test(test_limiter_fractional_and_backwards_time),
      cmocka_unit_test(test_default_decision),
      cmocka_unit_test(test_rules_order_and_global_rate),
      cmocka_unit_test(test_globs),
      cmocka_unit_test(test_missing_values),
      cmocka_unit_test(test_bad_rules),
      cmocka_unit_test(test_rule_limits),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_otel_mapping),
      cmocka_unit_test(test_agent_rates_decide),
      cmocka_unit_test(test_agent_rates_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
