#include "common/buf.h"
#include "common/hex.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS_BUF_DEFAULT_MAX ((size_t)64 << 20)

void hs_buf_init(hs_buf *b, size_t max) {
  memset(b, 0, sizeof *b);
  b->max = max ? max : HS_BUF_DEFAULT_MAX;
}

void hs_buf_free(hs_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void hs_buf_reset(hs_buf *b) {
  b->len = 0;
  b->failed = 0;
}

int hs_buf_reserve(hs_buf *b, size_t n) {
  if (b->failed)
    return -1;
  /* +1 keeps room for hs_buf_cstr's terminator. */
  if (n > b->max || b->len > b->max - n) {
    b->failed = 1;
    return -1;
  }
  size_t need = b->len + n + 1;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    b->failed = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void hs_buf_append_slow(hs_buf *b, const void *p, size_t n) {
  if (n == 0 || hs_buf_reserve(b, n) != 0)
    return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void hs_buf_puts(hs_buf *b, const char *s) {
  hs_buf_append(b, s, strlen(s));
}

void hs_buf_printf(hs_buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n < sizeof tmp) {
    hs_buf_append(b, tmp, (size_t)n);
    return;
  }
  if (hs_buf_reserve(b, (size_t)n) != 0)
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

const char *hs_buf_cstr(hs_buf *b) {
  if (hs_buf_reserve(b, 0) != 0 || b->data == NULL)
    return "";
  b->data[b->len] = '\0';
  return b->data;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    min = 0x80;
    c &= 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    min = 0x800;
    c &= 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    min = 0x10000;
    c &= 0x07;
  } else {
    return 0;
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    c = (c << 6) | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  return len;
}

void hs_json_strn(hs_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  hs_buf_putc(b, '"');
  size_t run = 0; /* bytes copied verbatim in one append */
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t seq =
        (c >= 0x20 && c != '"' && c != '\\') ? utf8_seq(p + i, n - i) : 0;
    if (seq > 0) {
      i += seq;
      run += seq;
      continue;
    }
    hs_buf_append(b, p + i - run, run);
    run = 0;
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    switch (c) {
    case '"':
      hs_buf_append(b, "\\\"", 2);
      break;
    case '\\':
      hs_buf_append(b, "\\\\", 2);
      break;
    case '\n':
      hs_buf_append(b, "\\n", 2);
      break;
    case '\r':
      hs_buf_append(b, "\\r", 2);
      break;
    case '\t':
      hs_buf_append(b, "\\t", 2);
      break;
    default:
      hs_buf_append(b, esc, sizeof esc);
      break;
    }
    i++;
  }
  hs_buf_append(b, p + i - run, run);
  hs_buf_putc(b, '"');
}

void hs_json_str(hs_buf *b, const char *s) {
  if (s == NULL)
    hs_buf_puts(b, "null");
  else
    hs_json_strn(b, s, strlen(s));
}

void hs_json_u64(hs_buf *b, uint64_t v) {
  char tmp[24];
  int i = (int)sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  hs_buf_append(b, tmp + i, sizeof tmp - (size_t)i);
}

void hs_json_i64(hs_buf *b, int64_t v) {
  if (v < 0) {
    hs_buf_putc(b, '-');
    hs_json_u64(b, (uint64_t)0 - (uint64_t)v);
  } else {
    hs_json_u64(b, (uint64_t)v);
  }
}

void hs_json_double(hs_buf *b, double v) {
  if (!isfinite(v)) {
    hs_buf_puts(b, "null");
    return;
  }
  char tmp[32];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  hs_buf_puts(b, tmp);
}

void hs_json_hex64(hs_buf *b, uint64_t v) {
  char tmp[16];
  hs_hex16(tmp, v);
  hs_buf_append(b, tmp, sizeof tmp);
}
