/* Strict JSON reader: values, escapes, limits, and every kind of bad input
 * rejected with a message naming the byte offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/json_read.h"

static hs_json_doc *parse_ok(const char *text) {
  hs_json_doc *doc = NULL;
  char err[256] = "";
  int rc = hs_json_parse(text, strlen(text), NULL, &doc, err, sizeof err, NULL);
  if (rc != 0)
    print_error("unexpected parse error for %s: %s\n", text, err);
  assert_int_equal(rc, 0);
  assert_non_null(doc);
  return doc;
}

/* Parses text (len bytes) expecting failure at byte off with a message that
 * contains needle. */
static void parse_fail_n(const char *text, size_t len, size_t off,
                         const char *needle) {
  hs_json_doc *doc = (hs_json_doc *)(uintptr_t)1;
  char err[256] = "";
  size_t err_off = 12345;
  int rc = hs_json_parse(text, len, NULL, &doc, err, sizeof err, &err_off);
  assert_int_equal(rc, -1);
  assert_null(doc);
  if (err_off != off || strstr(err, needle) == NULL)
    print_error("input %.*s: got offset %zu message \"%s\"; want offset %zu "
                "and \"%s\"\n",
                (int)len, text, err_off, err, off, needle);
  assert_int_equal(err_off, off);
  assert_non_null(strstr(err, needle));
  char at[48];
  snprintf(at, sizeof at, "at byte %zu", off);
  assert_non_null(strstr(err, at));
}

static void parse_fail(const char *text, size_t off, const char *needle) {
  parse_fail_n(text, strlen(text), off, needle);
}

static void test_scalars(void **state) {
  (void)state;
  hs_json_doc *d = parse_ok("true");
  assert_int_equal(hs_json_root(d)->type, HS_JSON_BOOL);
  assert_int_equal(hs_json_root(d)->u.boolean, 1);
  hs_json_free(d);

  d = parse_ok(" false ");
  assert_int_equal(hs_json_root(d)->type, HS_JSON_BOOL);
  assert_int_equal(hs_json_root(d)->u.boolean, 0);
  assert_int_equal(hs_json_root(d)->offset, 1);
  hs_json_free(d);

  d = parse_ok("\n\tnull\r\n");
  assert_int_equal(hs_json_root(d)->type, HS_JSON_NULL);
  hs_json_free(d);

  d = parse_ok("\"hi\"");
  assert_int_equal(hs_json_root(d)->type, HS_JSON_STRING);
  assert_int_equal(hs_json_root(d)->u.string.len, 2);
  assert_string_equal(hs_json_root(d)->u.string.ptr, "hi");
  hs_json_free(d);
}

static double num(const char *text) {
  hs_json_doc *d = parse_ok(text);
  const hs_json_value *v = hs_json_root(d);
  assert_int_equal(v->type, HS_JSON_NUMBER);
  double x = v->u.number.value;
  hs_json_free(d);
  return x;
}

static void test_numbers(void **state) {
  (void)state;
  assert_true(num("0") == 0.0);
  assert_true(num("-0") == 0.0);
  assert_true(num("42") == 42.0);
  assert_true(num("-7") == -7.0);
  assert_true(num("0.5") == 0.5);
  assert_true(num("-0.25") == -0.25);
  assert_true(num("1e3") == 1000.0);
  assert_true(num("1E+3") == 1000.0);
  assert_true(num("25e-2") == 0.25);
  assert_true(num("0.1") == 0.1);
  assert_true(num("1.7976931348623157e308") == 1.7976931348623157e308);
  /* Underflow is not an error: the value is just tiny (or zero). */
  assert_true(num("1e-400") == 0.0);
  /* 2^53 + 1 is not a double; the nearest even one is taken. */
  assert_true(num("9007199254740993") == 9007199254740992.0);

  /* Exact integer access. */
  hs_json_doc *d = parse_ok("[18446744073709551615, -9223372036854775808, "
                            "9223372036854775807, 4.0, 4e1, -1, "
                            "18446744073709551616]");
  const hs_json_value *a = hs_json_root(d);
  assert_int_equal(a->u.array.len, 7);
  uint64_t u = 0;
  int64_t i = 0;
  assert_int_equal(hs_json_as_u64(&a->u.array.items[0], &u), 0);
  assert_true(u == UINT64_MAX);
  assert_int_equal(hs_json_as_i64(&a->u.array.items[0], &i), -1);
  assert_int_equal(hs_json_as_i64(&a->u.array.items[1], &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(hs_json_as_u64(&a->u.array.items[1], &u), -1);
  assert_int_equal(hs_json_as_i64(&a->u.array.items[2], &i), 0);
  assert_true(i == INT64_MAX);
  assert_int_equal(hs_json_as_u64(&a->u.array.items[3], &u), -1);
  assert_int_equal(hs_json_as_u64(&a->u.array.items[4], &u), -1);
  assert_int_equal(hs_json_as_i64(&a->u.array.items[5], &i), 0);
  assert_true(i == -1);
  assert_int_equal(hs_json_as_u64(&a->u.array.items[5], &u), -1);
  /* 2^64 does not fit, but is still a valid number. */
  assert_int_equal(hs_json_as_u64(&a->u.array.items[6], &u), -1);
  assert_true(a->u.array.items[6].u.number.value == 18446744073709551616.0);
  assert_int_equal(hs_json_as_u64(a, &u), -1); /* not a number */
  hs_json_free(d);
}

static void test_bad_numbers(void **state) {
  (void)state;
  parse_fail("01", 0, "leading zero");
  parse_fail("-01", 0, "leading zero");
  parse_fail("+1", 0, "unexpected character '+'");
  parse_fail("-", 1, "unexpected end of input");
  parse_fail("-a", 1, "expected a digit");
  parse_fail(".5", 0, "unexpected character '.'");
  parse_fail("1.", 2, "expected a digit after '.'");
  parse_fail("1.e5", 2, "expected a digit after '.'");
  parse_fail("1e", 2, "exponent");
  parse_fail("1e+", 3, "exponent");
  parse_fail("1e400", 0, "out of range");
  parse_fail("-1e400", 0, "out of range");
  parse_fail("NaN", 0, "unexpected character 'N'");
  parse_fail("Infinity", 0, "unexpected character 'I'");
  parse_fail("-Infinity", 1, "expected a digit");
  parse_fail("0x10", 1, "expected end of input");
  parse_fail("1 2", 2, "expected end of input");
}

static void test_containers(void **state) {
  (void)state;
  hs_json_doc *d = parse_ok(
      "{\"a\": [1, 2, {\"b\": null}], \"c\": {}, \"d\": [], \"e\": \"x\"}");
  const hs_json_value *r = hs_json_root(d);
  assert_int_equal(r->type, HS_JSON_OBJECT);
  assert_int_equal(r->u.object.len, 4);
  /* Document order is kept. */
  assert_string_equal(r->u.object.members[0].key, "a");
  assert_int_equal(r->u.object.members[0].key_offset, 1);
  assert_string_equal(r->u.object.members[3].key, "e");
  const hs_json_value *a = hs_json_get(r, "a");
  assert_non_null(a);
  assert_int_equal(a->type, HS_JSON_ARRAY);
  assert_int_equal(a->offset, 6);
  assert_int_equal(a->u.array.len, 3);
  assert_true(a->u.array.items[1].u.number.value == 2.0);
  const hs_json_value *b = hs_json_get(&a->u.array.items[2], "b");
  assert_non_null(b);
  assert_int_equal(b->type, HS_JSON_NULL);
  assert_int_equal(hs_json_get(r, "c")->type, HS_JSON_OBJECT);
  assert_int_equal(hs_json_get(r, "c")->u.object.len, 0);
  assert_int_equal(hs_json_get(r, "d")->u.array.len, 0);
  assert_null(hs_json_get(r, "zz"));
  assert_null(hs_json_get(a, "a")); /* not an object */
  assert_null(hs_json_get(NULL, "a"));
  hs_json_free(d);

  d = parse_ok("[[[]], [[], [1]]]");
  r = hs_json_root(d);
  assert_int_equal(r->u.array.len, 2);
  assert_int_equal(r->u.array.items[1].u.array.items[1].u.array.len, 1);
  hs_json_free(d);
}

static void test_bad_structure(void **state) {
  (void)state;
  parse_fail("", 0, "unexpected end of input");
  parse_fail("   ", 3, "unexpected end of input");
  parse_fail("[1,]", 3, "unexpected character ']'");
  parse_fail("{\"a\":1,}", 7, "expected a string key");
  parse_fail("[1 2]", 3, "expected ',' or ']'");
  parse_fail("{\"a\" 1}", 5, "expected ':'");
  parse_fail("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
  parse_fail("{a:1}", 1, "expected a string key");
  parse_fail("{'a':1}", 1, "expected a string key");
  parse_fail("[1", 2, "unexpected end of input");
  parse_fail("{\"a\":", 5, "unexpected end of input");
  parse_fail("[1] // c", 4, "expected end of input");
  parse_fail("/* c */ 1", 0, "unexpected character '/'");
  parse_fail("[1]]", 3, "expected end of input");
  parse_fail("]", 0, "unexpected character ']'");
  parse_fail("tru", 0, "invalid literal");
  parse_fail("nul", 0, "invalid literal");
  parse_fail("True", 0, "unexpected character 'T'");
  parse_fail("[true false]", 6, "expected ',' or ']'");
  parse_fail("{\"a\":1,\"b\":2,\"a\":3}", 13, "duplicate key \"a\"");
  parse_fail_n("[1,\0]", 5, 3, "unexpected byte 0x00");
  /* Whitespace is only space, tab, CR, LF. */
  parse_fail("\v1", 0, "unexpected byte 0x0b");
}

static void test_duplicates_in_large_object(void **state) {
  (void)state;
  /* Over the pairwise threshold, the sorted check must find the pair. */
  char text[2048];
  size_t n = 0;
  n += (size_t)snprintf(text + n, sizeof text - n, "{");
  for (int i = 0; i < 40; i++)
    n += (size_t)snprintf(text + n, sizeof text - n, "%s\"k%02d\":%d",
                          i ? "," : "", i, i);
  size_t dup_off = n + 1; /* after the ',' */
  n += (size_t)snprintf(text + n, sizeof text - n, ",\"k17\":0}");
  parse_fail(text, dup_off, "duplicate key \"k17\"");
  /* The same object without the duplicate is fine. */
  text[dup_off - 1] = '}';
  text[dup_off] = '\0';
  hs_json_doc *d = parse_ok(text);
  assert_int_equal(hs_json_root(d)->u.object.len, 40);
  assert_true(hs_json_get(hs_json_root(d), "k39")->u.number.value == 39.0);
  hs_json_free(d);
}

static void check_string(const char *json, const char *bytes, size_t len) {
  hs_json_doc *d = parse_ok(json);
  const hs_json_value *v = hs_json_root(d);
  assert_int_equal(v->type, HS_JSON_STRING);
  assert_int_equal(v->u.string.len, len);
  assert_memory_equal(v->u.string.ptr, bytes, len);
  assert_int_equal(v->u.string.ptr[len], '\0');
  hs_json_free(d);
}

static void test_strings(void **state) {
  (void)state;
  check_string("\"\"", "", 0);
  check_string("\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7);
  check_string("\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5);
  check_string("\"\\u0041\\u00e9\"", "A\xc3\xa9", 3);
  check_string("\"\\u20AC\"", "\xe2\x82\xac", 3); /* euro sign */
  check_string("\"\\uFFFF\"", "\xef\xbf\xbf", 3);
  check_string("\"\\u0000x\"", "\0x", 2);                    /* embedded NUL */
  check_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4); /* U+1F600 */
  check_string("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4); /* U+10FFFF */
  /* Raw UTF-8 passes through. */
  check_string("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
               "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
}

static void test_bad_strings(void **state) {
  (void)state;
  parse_fail("\"abc", 0, "unterminated string");
  parse_fail("\"abc\\\"", 0, "unterminated string");
  parse_fail("[\"a\", \"b", 6, "unterminated string");
  parse_fail("\"a\\x\"", 2, "invalid escape '\\x'");
  parse_fail("\"a\\u12\"", 2, "4 hex digits");
  parse_fail("\"a\\u12G4\"", 2, "4 hex digits");
  parse_fail("\"\\ud83d\"", 1, "lone high surrogate");
  parse_fail("\"\\ud83dx\"", 1, "lone high surrogate");
  parse_fail("\"\\ud83d\\u0041\"", 1, "lone high surrogate");
  parse_fail("\"\\ud83d\\ud83d\"", 1, "lone high surrogate");
  parse_fail("\"x\\ude00\"", 2, "lone low surrogate");
  parse_fail("\"a\tb\"", 2, "control character 0x09");
  parse_fail("\"a\nb\"", 2, "control character 0x0a");
  /* Malformed UTF-8: stray continuation, overlong, encoded surrogate,
   * past U+10FFFF, truncated sequence, invalid lead bytes. */
  parse_fail("\"a\x80\"", 2, "invalid UTF-8 byte 0x80");
  parse_fail("\"\xc0\xaf\"", 1, "invalid UTF-8 byte 0xc0");
  parse_fail("\"\xe0\x80\xaf\"", 1, "invalid UTF-8 byte 0xe0");
  parse_fail("\"\xed\xa0\x80\"", 1, "invalid UTF-8 byte 0xed");
  parse_fail("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8 byte 0xf4");
  parse_fail("\"\xf5\x80\x80\x80\"", 1, "invalid UTF-8 byte 0xf5");
  parse_fail("\"ab\xe2\x82\"", 3, "invalid UTF-8 byte 0xe2");
  parse_fail("\"\xff\"", 1, "invalid UTF-8 byte 0xff");
}

static void test_depth_limit(void **state) {
  (void)state;
  hs_json_limits lim = {0, 5};
  char err[256];
  size_t off = 0;
  hs_json_doc *d = NULL;
  /* Exactly 5 levels: accepted. */
  assert_int_equal(
      hs_json_parse("[[[[{}]]]]", 10, &lim, &d, err, sizeof err, &off), 0);
  hs_json_free(d);
  /* 6 levels: rejected at the sixth opening bracket. */
  assert_int_equal(
      hs_json_parse("[[[[{\"a\":[]}]]]]", 16, &lim, &d, err, sizeof err, &off),
      -1);
  assert_null(d);
  assert_int_equal(off, 9);
  assert_non_null(strstr(err, "nesting deeper than 5 levels"));

  /* The default depth limit (64) protects consumers from a million '['. */
  size_t n = 1000000;
  char *deep = malloc(n);
  assert_non_null(deep);
  memset(deep, '[', n);
  lim.max_depth = 0;
  lim.max_bytes = n;
  assert_int_equal(hs_json_parse(deep, n, &lim, &d, err, sizeof err, &off), -1);
  assert_int_equal(off, 64);
  assert_non_null(strstr(err, "nesting deeper than 64 levels"));
  free(deep);
}

static void test_size_limit(void **state) {
  (void)state;
  hs_json_limits lim = {8, 0};
  char err[256];
  size_t off = 0;
  hs_json_doc *d = NULL;
  assert_int_equal(hs_json_parse("[1,2,3]", 7, &lim, &d, err, sizeof err, &off),
                   0);
  hs_json_free(d);
  assert_int_equal(
      hs_json_parse("[1,2,3,4]", 9, &lim, &d, err, sizeof err, &off), -1);
  assert_null(d);
  assert_string_equal(err, "JSON input is 9 bytes; the limit is 8");
  assert_int_equal(off, 8);
  /* Default 1 MiB. */
  size_t n = (1u << 20) + 1;
  char *big = malloc(n);
  assert_non_null(big);
  memset(big, ' ', n);
  big[0] = '1';
  assert_int_equal(hs_json_parse(big, n, NULL, &d, err, sizeof err, &off), -1);
  assert_non_null(strstr(err, "limit is 1048576"));
  /* Just at the limit: fine (a number and whitespace). */
  assert_int_equal(hs_json_parse(big, n - 1, NULL, &d, err, sizeof err, &off),
                   0);
  assert_true(hs_json_root(d)->u.number.value == 1.0);
  hs_json_free(d);
  free(big);
}

static void test_large_document(void **state) {
  (void)state;
  /* Many values and strings: exercises arena growth and the member stack. */
  size_t cap = 1 << 20, n = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  text[n++] = '[';
  for (int i = 0; i < 20000; i++)
    n += (size_t)snprintf(text + n, cap - n, "%s{\"id\":%d,\"s\":\"v%d\"}",
                          i ? "," : "", i, i);
  text[n++] = ']';
  hs_json_doc *d = NULL;
  char err[256];
  assert_int_equal(hs_json_parse(text, n, NULL, &d, err, sizeof err, NULL), 0);
  const hs_json_value *r = hs_json_root(d);
  assert_int_equal(r->u.array.len, 20000);
  for (int i = 0; i < 20000; i += 997) {
    char want[16];
    snprintf(want, sizeof want, "v%d", i);
    assert_string_equal(hs_json_get(&r->u.array.items[i], "s")->u.string.ptr,
                        want);
    int64_t id = -1;
    assert_int_equal(
        hs_json_as_i64(hs_json_get(&r->u.array.items[i], "id"), &id), 0);
    assert_int_equal(id, i);
  }
  hs_json_free(d);
  free(text);
}

/* Every proper prefix of a valid document is invalid and must fail cleanly;
 * every single-byte corruption must not crash or leak (ASan checks). */
static void test_truncations_and_mutations(void **state) {
  (void)state;
  const char *doc =
      "{\"rules\":[{\"service\":\"w\\u00e9b\",\"sample_rate\":0.25e0},"
      "{\"name\":\"\\ud83d\\ude00\",\"x\":[true,false,null,-1.5E-3]}]}";
  size_t len = strlen(doc);
  char err[256];
  hs_json_doc *d = NULL;
  assert_int_equal(hs_json_parse(doc, len, NULL, &d, err, sizeof err, NULL), 0);
  hs_json_free(d);
  for (size_t n = 0; n < len; n++) {
    size_t off = SIZE_MAX;
    d = NULL;
    assert_int_equal(hs_json_parse(doc, n, NULL, &d, err, sizeof err, &off),
                     -1);
    assert_null(d);
    assert_true(off <= n);
  }
  char *copy = malloc(len);
  assert_non_null(copy);
  static const unsigned char subst[] = {0,   '"', '\\', '{', '}',  '[',
                                        ']', ',', ':',  'x', 0x80, 0xff};
  for (size_t i = 0; i < len; i++) {
    for (size_t k = 0; k < sizeof subst; k++) {
      memcpy(copy, doc, len);
      copy[i] = (char)subst[k];
      d = NULL;
      if (hs_json_parse(copy, len, NULL, &d, err, sizeof err, NULL) == 0)
        hs_json_free(d);
      else
        assert_non_null(strstr(err, "at byte"));
    }
  }
  free(copy);
}

static void test_error_buffer_edge_cases(void **state) {
  (void)state;
  hs_json_doc *d = NULL;
  /* No error buffer at all. */
  assert_int_equal(hs_json_parse("[", 1, NULL, &d, NULL, 0, NULL), -1);
  /* A tiny buffer is truncated, still NUL-terminated. */
  char small[8];
  memset(small, 'z', sizeof small);
  assert_int_equal(hs_json_parse("[", 1, NULL, &d, small, sizeof small, NULL),
                   -1);
  assert_int_equal(strlen(small), sizeof small - 1);
  /* NULL text with length 0 is just empty input. */
  char err[128];
  assert_int_equal(hs_json_parse(NULL, 0, NULL, &d, err, sizeof err, NULL), -1);
  assert_non_null(strstr(err, "unexpected end of input"));
  /* NULL out is refused. */
  assert_int_equal(hs_json_parse("1", 1, NULL, NULL, err, sizeof err, NULL),
                   -1);
  hs_json_free(NULL);
  assert_null(hs_json_root(NULL));
  assert_string_equal(hs_json_type_name(HS_JSON_OBJECT), "object");
  assert_string_equal(hs_json_type_name(HS_JSON_BOOL), "boolean");
}

/* Text need not be NUL-terminated: bytes past len are never read. */
static void test_length_bounded(void **state) {
  (void)state;
  const char *text = "[1,2]garbage";
  hs_json_doc *d = NULL;
  char err[128];
  assert_int_equal(hs_json_parse(text, 5, NULL, &d, err, sizeof err, NULL), 0);
  assert_int_equal(hs_json_root(d)->u.array.len, 2);
  hs_json_free(d);
  char *exact = malloc(4); /* "0.5" without a terminator; ASan checks */
  assert_non_null(exact);
  memcpy(exact, "-0.5", 4);
  assert_int_equal(hs_json_parse(exact, 4, NULL, &d, err, sizeof err, NULL), 0);
  assert_true(hs_json_root(d)->u.number.value == -0.5);
  hs_json_free(d);
  memcpy(exact, "\"ab\\", 4);
  assert_int_equal(hs_json_parse(exact, 4, NULL, &d, err, sizeof err, NULL),
                   -1);
  memcpy(exact, "\"\\u1", 4);
  assert_int_equal(hs_json_parse(exact, 4, NULL, &d, err, sizeof err, NULL),
                   -1);
  free(exact);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_bad_numbers),
      cmocka_unit_test(test_containers),
      cmocka_unit_test(test_bad_structure),
      cmocka_unit_test(test_duplicates_in_large_object),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_bad_strings),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_size_limit),
      cmocka_unit_test(test_large_document),
      cmocka_unit_test(test_truncations_and_mutations),
      cmocka_unit_test(test_error_buffer_edge_cases),
      cmocka_unit_test(test_length_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
