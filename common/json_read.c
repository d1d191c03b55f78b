#include "common/json_read.h"
#include "common/hex.h"
#include "common/utf8.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEFAULT_MAX_BYTES ((size_t)1 << 20)
#define JSON_DEFAULT_MAX_DEPTH 64u
#define ARENA_BLOCK_MIN ((size_t)4096)
#define ARENA_BLOCK_MAX ((size_t)1 << 20)

/* ------------------------------------------------------------------ arena */

/* Every string and node array of a document lives in a chain of blocks
 * freed together, so a document costs a handful of mallocs instead of one
 * per value and is freed in one call. */
typedef struct arena_block {
  struct arena_block *next;
  size_t cap;
  size_t used;
  max_align_t data[];
} arena_block;

struct hs_json_doc {
  arena_block *blocks;
  hs_json_value root;
};

static void *arena_alloc(hs_json_doc *doc, size_t n) {
  const size_t align = _Alignof(max_align_t);
  if (n > SIZE_MAX / 2)
    return NULL;
  n = n == 0 ? align : (n + align - 1) / align * align;
  arena_block *b = doc->blocks;
  if (b == NULL || b->cap - b->used < n) {
    /* Blocks double up to 1 MiB so that big documents need few mallocs
     * and small ones waste little. */
    size_t cap = ARENA_BLOCK_MIN;
    if (b != NULL && b->cap < ARENA_BLOCK_MAX)
      cap = b->cap * 2;
    else if (b != NULL)
      cap = ARENA_BLOCK_MAX;
    if (cap < n)
      cap = n;
    arena_block *nb = malloc(sizeof(arena_block) + cap);
    if (nb == NULL)
      return NULL;
    nb->cap = cap;
    nb->used = 0;
    nb->next = b;
    doc->blocks = nb;
    b = nb;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  return p;
}

/* ----------------------------------------------------------------- parser */

typedef struct frame {
  int is_object;
  size_t base;   /* first member of this container on the member stack */
  size_t offset; /* of the '{' or '[' */
  /* Object only: the key read for the value being parsed. */
  const char *key;
  size_t key_len;
  size_t key_offset;
} frame;

typedef struct parser {
  const unsigned char *s;
  size_t len;
  size_t pos;
  unsigned max_depth;
  hs_json_doc *doc;
  /* Finished children of every open container, innermost last; a closing
   * bracket moves its container's children into one arena array. */
  hs_json_member *stack;
  size_t sp;
  size_t scap;
  frame *frames;
  size_t depth;
  size_t fcap;
  char *err;
  size_t errlen;
  size_t err_offset;
} parser;

static int fail_at(parser *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(parser *p, size_t off, const char *fmt, ...) {
  p->err_offset = off;
  if (p->err != NULL && p->errlen > 0) {
    int n = snprintf(p->err, p->errlen, "invalid JSON at byte %zu: ", off);
    if (n >= 0 && (size_t)n < p->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return -1;
}

static int fail_oom(parser *p) {
  p->err_offset = p->pos;
  if (p->err != NULL && p->errlen > 0)
    snprintf(p->err, p->errlen,
             "out of memory while parsing JSON (at byte %zu)", p->pos);
  return -1;
}

/* Describes the byte at pos for "unexpected ..." messages. */
static int fail_unexpected(parser *p, const char *expected) {
  if (p->pos >= p->len)
    return fail_at(p, p->pos, "unexpected end of input (%s)", expected);
  unsigned char c = p->s[p->pos];
  if (c >= 0x21 && c < 0x7f)
    return fail_at(p, p->pos, "unexpected character '%c' (%s)", (char)c,
                   expected);
  return fail_at(p, p->pos, "unexpected byte 0x%02x (%s)", c, expected);
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    p->pos++;
  }
}

/* Reads the 4 hex digits at i (the "XXXX" of \uXXXX); -1 if invalid. */
static long hex4(const unsigned char *s, size_t i, size_t end) {
  if (end - i < 4)
    return -1;
  long v = 0;
  for (size_t k = 0; k < 4; k++) {
    int h = hs_hexval(s[i + k]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static size_t put_utf8(char *out, unsigned long cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Parses the string whose opening quote is at p->pos into arena memory. */
static int parse_string(parser *p, const char **out, size_t *out_len) {
  const unsigned char *s = p->s;
  size_t open = p->pos;
  size_t i = open + 1;
  /* Find the closing quote first: the decoded text is never longer than
   * the raw text, so one allocation of the raw length suffices. */
  while (i < p->len && s[i] != '"')
    i += (s[i] == '\\') ? 2 : 1;
  if (i >= p->len)
    return fail_at(p, open, "unterminated string");
  size_t end = i;
  char *dst = arena_alloc(p->doc, end - open);
  if (dst == NULL)
    return fail_oom(p);
  size_t n = 0;
  i = open + 1;
  while (i < end) {
    unsigned char c = s[i];
    if (c == '\\') {
      unsigned char e = s[i + 1];
      const char *simple = NULL;
      switch (e) {
      case '"':
        simple = "\"";
        break;
      case '\\':
        simple = "\\";
        break;
      case '/':
        simple = "/";
        break;
      case 'b':
        simple = "\b";
        break;
      case 'f':
        simple = "\f";
        break;
      case 'n':
        simple = "\n";
        break;
      case 'r':
        simple = "\r";
        break;
      case 't':
        simple = "\t";
        break;
      case 'u':
        break;
      default:
        if (e >= 0x21 && e < 0x7f)
          return fail_at(p, i, "invalid escape '\\%c' in string", (char)e);
        return fail_at(p, i, "invalid escape (byte 0x%02x after '\\')", e);
      }
      if (simple != NULL) {
        dst[n++] = simple[0];
        i += 2;
        continue;
      }
      long cp = hex4(s, i + 2, end);
      if (cp < 0)
        return fail_at(p, i, "\\u must be followed by 4 hex digits");
      if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail_at(p, i,
                       "lone low surrogate \\u%04lX (not after a high "
                       "surrogate)",
                       cp);
      if (cp >= 0xd800 && cp <= 0xdbff) {
        long lo = -1;
        if (end - i >= 12 && s[i + 6] == '\\' && s[i + 7] == 'u')
          lo = hex4(s, i + 8, end);
        if (lo < 0xdc00 || lo > 0xdfff)
          return fail_at(p, i,
                         "lone high surrogate \\u%04lX (must be followed by "
                         "a \\uDC00-\\uDFFF escape)",
                         cp);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i += 6;
      }
      n += put_utf8(dst + n, (unsigned long)cp);
      i += 6;
      continue;
    }
    if (c < 0x20)
      return fail_at(p, i,
                     "raw control character 0x%02x in string (must be "
                     "escaped)",
                     c);
    size_t l = hs_utf8_seq(s + i, end - i);
    if (l == 0)
      return fail_at(p, i, "invalid UTF-8 byte 0x%02x in string", c);
    memcpy(dst + n, s + i, l);
    n += l;
    i += l;
  }
  dst[n] = '\0';
  p->pos = end + 1;
  *out = dst;
  *out_len = n;
  return 0;
}

/* A "C" numeric locale for strtod_l, so that a host program that called
 * setlocale(LC_NUMERIC, "de_DE") does not make "0.5" parse as 0. Created
 * once and kept for the life of the process. */
static _Atomic(locale_t) c_locale;

static locale_t get_c_locale(void) {
  locale_t l = atomic_load_explicit(&c_locale, memory_order_acquire);
  if (l != (locale_t)0)
    return l;
  locale_t mine = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (mine == (locale_t)0)
    return (locale_t)0;
  locale_t expected = (locale_t)0;
  if (!atomic_compare_exchange_strong_explicit(&c_locale, &expected, mine,
                                               memory_order_acq_rel,
                                               memory_order_acquire)) {
    freelocale(mine);
    return expected;
  }
  return mine;
}

static int is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

static int parse_number(parser *p, hs_json_value *v) {
  const unsigned char *s = p->s;
  size_t start = p->pos, i = start;
  int negative = 0, is_integer = 1, mag_overflow = 0;
  uint64_t mag = 0;
  if (s[i] == '-') {
    negative = 1;
    i++;
  }
  if (i >= p->len || !is_digit(s[i])) {
    p->pos = i;
    return fail_unexpected(p, "expected a digit in number");
  }
  if (s[i] == '0') {
    i++;
    if (i < p->len && is_digit(s[i]))
      return fail_at(p, start, "number with a leading zero");
  } else {
    while (i < p->len && is_digit(s[i])) {
      unsigned d = (unsigned)(s[i] - '0');
      if (mag > (UINT64_MAX - d) / 10)
        mag_overflow = 1;
      else
        mag = mag * 10 + d;
      i++;
    }
  }
  if (i < p->len && s[i] == '.') {
    is_integer = 0;
    i++;
    if (i >= p->len || !is_digit(s[i])) {
      p->pos = i;
      return fail_unexpected(p, "expected a digit after '.' in number");
    }
    while (i < p->len && is_digit(s[i]))
      i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    is_integer = 0;
    i++;
    if (i < p->len && (s[i] == '+' || s[i] == '-'))
      i++;
    if (i >= p->len || !is_digit(s[i])) {
      p->pos = i;
      return fail_unexpected(p, "expected a digit in number exponent");
    }
    while (i < p->len && is_digit(s[i]))
      i++;
  }
  size_t tok = i - start;
  double d;
  if (is_integer && !mag_overflow && mag <= ((uint64_t)1 << 53)) {
    /* Exactly representable: no need for strtod. */
    d = (double)mag;
    if (negative)
      d = -d;
  } else {
    locale_t loc = get_c_locale();
    if (loc == (locale_t)0)
      return fail_oom(p);
    char small[64];
    char *buf = tok < sizeof small ? small : malloc(tok + 1);
    if (buf == NULL)
      return fail_oom(p);
    memcpy(buf, s + start, tok);
    buf[tok] = '\0';
    char *endp = NULL;
    d = strtod_l(buf, &endp, loc);
    int bad = endp != buf + tok;
    /* Underflow to zero or a subnormal is accepted; overflow is not. */
    int range = isinf(d);
    if (buf != small)
      free(buf);
    if (bad)
      return fail_at(p, start, "malformed number");
    if (range)
      return fail_at(p, start, "number out of range for a double");
  }
  memset(v, 0, sizeof *v);
  v->type = HS_JSON_NUMBER;
  v->offset = start;
  v->u.number.value = d;
  v->u.number.is_integer = (unsigned char)(is_integer && !mag_overflow);
  v->u.number.negative = (unsigned char)negative;
  v->u.number.mag = mag_overflow ? 0 : mag;
  p->pos = i;
  return 0;
}

static int parse_literal(parser *p, hs_json_value *v) {
  static const struct {
    const char *text;
    hs_json_type type;
    int boolean;
  } lits[] = {{"true", HS_JSON_BOOL, 1},
              {"false", HS_JSON_BOOL, 0},
              {"null", HS_JSON_NULL, 0}};
  for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
    size_t n = strlen(lits[k].text);
    if (p->s[p->pos] != (unsigned char)lits[k].text[0])
      continue;
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lits[k].text, n) != 0)
      return fail_at(p, p->pos, "invalid literal (expected '%s')",
                     lits[k].text);
    memset(v, 0, sizeof *v);
    v->type = lits[k].type;
    v->offset = p->pos;
    v->u.boolean = lits[k].boolean;
    p->pos += n;
    return 0;
  }
  return fail_unexpected(p, "expected a value");
}

static int push_frame(parser *p, int is_object) {
  if (p->depth >= p->max_depth)
    return fail_at(p, p->pos, "nesting deeper than %u levels", p->max_depth);
  if (p->depth == p->fcap) {
    size_t cap = p->fcap ? p->fcap * 2 : 16;
    frame *f = realloc(p->frames, cap * sizeof *f);
    if (f == NULL)
      return fail_oom(p);
    p->frames = f;
    p->fcap = cap;
  }
  frame *f = &p->frames[p->depth++];
  memset(f, 0, sizeof *f);
  f->is_object = is_object;
  f->base = p->sp;
  f->offset = p->pos;
  return 0;
}

static int push_member(parser *p, const frame *f, const hs_json_value *v) {
  if (p->sp == p->scap) {
    size_t cap = p->scap ? p->scap * 2 : 32;
    if (cap > SIZE_MAX / sizeof(hs_json_member))
      return fail_oom(p);
    hs_json_member *m = realloc(p->stack, cap * sizeof *m);
    if (m == NULL)
      return fail_oom(p);
    p->stack = m;
    p->scap = cap;
  }
  hs_json_member *m = &p->stack[p->sp++];
  m->key = f->key;
  m->key_len = f->key_len;
  m->key_offset = f->key_offset;
  m->value = *v;
  return 0;
}

/* Reads `"key" :` inside an object into the top frame. */
static int read_key(parser *p) {
  frame *f = &p->frames[p->depth - 1];
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != '"')
    return fail_unexpected(p, "expected a string key in object");
  f->key_offset = p->pos;
  if (parse_string(p, &f->key, &f->key_len) != 0)
    return -1;
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != ':')
    return fail_unexpected(p, "expected ':' after object key");
  p->pos++;
  return 0;
}

static int key_cmp(const void *a, const void *b) {
  const hs_json_member *x = *(const hs_json_member *const *)a;
  const hs_json_member *y = *(const hs_json_member *const *)b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (c != 0)
    return c;
  return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static int same_key(const hs_json_member *a, const hs_json_member *b) {
  return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

static int fail_duplicate(parser *p, const hs_json_member *a,
                          const hs_json_member *b) {
  const hs_json_member *later = a->key_offset > b->key_offset ? a : b;
  char shown[48];
  size_t k = 0;
  for (size_t i = 0; i < later->key_len && k < sizeof shown - 4; i++) {
    unsigned char c = (unsigned char)later->key[i];
    shown[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : (char)'?';
  }
  if (k < later->key_len)
    shown[k++] = '.', shown[k++] = '.', shown[k++] = '.';
  shown[k] = '\0';
  return fail_at(p, later->key_offset, "duplicate key \"%s\" in object", shown);
}

/* Object keys must be unique. Small objects (the common case) are checked
 * pairwise; larger ones by sorting pointers, so a hostile object with many
 * keys costs n log n, not n^2. */
static int check_duplicates(parser *p, const hs_json_member *m, size_t n) {
  if (n <= 16) {
    for (size_t i = 1; i < n; i++)
      for (size_t j = 0; j < i; j++)
        if (same_key(&m[i], &m[j]))
          return fail_duplicate(p, &m[j], &m[i]);
    return 0;
  }
  const hs_json_member **idx = malloc(n * sizeof *idx);
  if (idx == NULL)
    return fail_oom(p);
  for (size_t i = 0; i < n; i++)
    idx[i] = &m[i];
  qsort(idx, n, sizeof *idx, key_cmp);
  for (size_t i = 1; i < n; i++) {
    if (same_key(idx[i - 1], idx[i])) {
      const hs_json_member *a = idx[i - 1], *b = idx[i];
      free(idx);
      return fail_duplicate(p, a, b);
    }
  }
  free(idx);
  return 0;
}

/* Closes the innermost container (its closing bracket is at p->pos - 1)
 * and stores it as a value in *v. */
static int close_frame(parser *p, hs_json_value *v) {
  frame *f = &p->frames[p->depth - 1];
  size_t n = p->sp - f->base;
  /* The stack is still NULL when only empty containers were seen. */
  hs_json_member *m = n > 0 ? p->stack + f->base : NULL;
  memset(v, 0, sizeof *v);
  v->offset = f->offset;
  if (f->is_object) {
    if (check_duplicates(p, m, n) != 0)
      return -1;
    hs_json_member *dst = NULL;
    if (n > 0) {
      if (n > SIZE_MAX / sizeof *dst ||
          (dst = arena_alloc(p->doc, n * sizeof *dst)) == NULL)
        return fail_oom(p);
      memcpy(dst, m, n * sizeof *dst);
    }
    v->type = HS_JSON_OBJECT;
    v->u.object.members = dst;
    v->u.object.len = n;
  } else {
    hs_json_value *dst = NULL;
    if (n > 0) {
      if (n > SIZE_MAX / sizeof *dst ||
          (dst = arena_alloc(p->doc, n * sizeof *dst)) == NULL)
        return fail_oom(p);
      for (size_t i = 0; i < n; i++)
        dst[i] = m[i].value;
    }
    v->type = HS_JSON_ARRAY;
    v->u.array.items = dst;
    v->u.array.len = n;
  }
  p->sp = f->base;
  p->depth--;
  return 0;
}

/* Iterative: the only recursion-like state is the frame stack, bounded by
 * max_depth, so deep input cannot exhaust the C stack. */
static int parse_document(parser *p, hs_json_value *root) {
  hs_json_value v;
  for (;;) {
    /* State 1: a value is expected at p->pos. */
    skip_ws(p);
    if (p->pos >= p->len)
      return fail_unexpected(p, "expected a value");
    unsigned char c = p->s[p->pos];
    int have = 0;
    if (c == '{' || c == '[') {
      if (push_frame(p, c == '{') != 0)
        return -1;
      p->pos++;
      skip_ws(p);
      if (p->pos < p->len && p->s[p->pos] == (c == '{' ? '}' : ']')) {
        p->pos++;
        if (close_frame(p, &v) != 0)
          return -1;
        have = 1;
      } else if (c == '{') {
        if (read_key(p) != 0)
          return -1;
      }
    } else if (c == '"') {
      memset(&v, 0, sizeof v);
      v.type = HS_JSON_STRING;
      v.offset = p->pos;
      if (parse_string(p, &v.u.string.ptr, &v.u.string.len) != 0)
        return -1;
      have = 1;
    } else if (c == '-' || is_digit(c)) {
      if (parse_number(p, &v) != 0)
        return -1;
      have = 1;
    } else {
      if (parse_literal(p, &v) != 0)
        return -1;
      have = 1;
    }
    /* State 2: v is complete; attach it to its container, then expect a
     * separator or the container's end. */
    while (have) {
      if (p->depth == 0) {
        skip_ws(p);
        if (p->pos != p->len)
          return fail_unexpected(p, "expected end of input after the value");
        *root = v;
        return 0;
      }
      frame *f = &p->frames[p->depth - 1];
      if (push_member(p, f, &v) != 0)
        return -1;
      const char *what = f->is_object ? "expected ',' or '}' in object"
                                      : "expected ',' or ']' in array";
      skip_ws(p);
      if (p->pos >= p->len)
        return fail_unexpected(p, what);
      c = p->s[p->pos];
      if (c == ',') {
        p->pos++;
        if (f->is_object && read_key(p) != 0)
          return -1;
        have = 0; /* back to state 1 for the next element */
      } else if (c == (f->is_object ? '}' : ']')) {
        p->pos++;
        if (close_frame(p, &v) != 0)
          return -1;
      } else {
        return fail_unexpected(p, what);
      }
    }
  }
}

int hs_json_parse(const char *text, size_t len, const hs_json_limits *limits,
                  hs_json_doc **out, char *err, size_t errlen,
                  size_t *err_offset) {
  parser p;
  memset(&p, 0, sizeof p);
  p.s = (const unsigned char *)text;
  p.len = len;
  p.err = err;
  p.errlen = errlen;
  size_t max_bytes = JSON_DEFAULT_MAX_BYTES;
  p.max_depth = JSON_DEFAULT_MAX_DEPTH;
  if (limits != NULL) {
    if (limits->max_bytes != 0)
      max_bytes = limits->max_bytes;
    if (limits->max_depth != 0)
      p.max_depth = limits->max_depth;
  }
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (out != NULL)
    *out = NULL;
  int rc = -1;
  if (out == NULL || (text == NULL && len > 0)) {
    p.err_offset = 0;
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "invalid arguments to the JSON parser");
  } else if (len > max_bytes) {
    p.err_offset = max_bytes;
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "JSON input is %zu bytes; the limit is %zu", len,
               max_bytes);
  } else if ((p.doc = calloc(1, sizeof *p.doc)) == NULL) {
    fail_oom(&p);
  } else {
    rc = parse_document(&p, &p.doc->root);
  }
  free(p.stack);
  free(p.frames);
  if (rc == 0) {
    *out = p.doc;
  } else {
    hs_json_free(p.doc);
    if (err_offset != NULL)
      *err_offset = p.err_offset;
  }
  return rc;
}

const hs_json_value *hs_json_root(const hs_json_doc *doc) {
  return doc != NULL ? &doc->root : NULL;
}

void hs_json_free(hs_json_doc *doc) {
  if (doc == NULL)
    return;
  arena_block *b = doc->blocks;
  while (b != NULL) {
    arena_block *next = b->next;
    free(b);
    b = next;
  }
  free(doc);
}

const hs_json_value *hs_json_get(const hs_json_value *v, const char *key) {
  if (v == NULL || v->type != HS_JSON_OBJECT || key == NULL)
    return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i < v->u.object.len; i++) {
    const hs_json_member *m = &v->u.object.members[i];
    if (m->key_len == n && memcmp(m->key, key, n) == 0)
      return &m->value;
  }
  return NULL;
}

const char *hs_json_type_name(hs_json_type t) {
  switch (t) {
  case HS_JSON_NULL:
    return "null";
  case HS_JSON_BOOL:
    return "boolean";
  case HS_JSON_NUMBER:
    return "number";
  case HS_JSON_STRING:
    return "string";
  case HS_JSON_ARRAY:
    return "array";
  case HS_JSON_OBJECT:
    return "object";
  }
  return "unknown";
}

int hs_json_as_u64(const hs_json_value *v, uint64_t *out) {
  if (v == NULL || v->type != HS_JSON_NUMBER || !v->u.number.is_integer)
    return -1;
  if (v->u.number.negative && v->u.number.mag != 0)
    return -1;
  *out = v->u.number.mag;
  return 0;
}

int hs_json_as_i64(const hs_json_value *v, int64_t *out) {
  if (v == NULL || v->type != HS_JSON_NUMBER || !v->u.number.is_integer)
    return -1;
  uint64_t m = v->u.number.mag;
  if (v->u.number.negative) {
    if (m > (uint64_t)INT64_MAX + 1)
      return -1;
    *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
  } else {
    if (m > (uint64_t)INT64_MAX)
      return -1;
    *out = (int64_t)m;
  }
  return 0;
}
