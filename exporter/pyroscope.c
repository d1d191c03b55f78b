#include "exporter/pyroscope.h"

#include <stdio.h>
#include <string.h>

void hs_pct_encode(hs_buf *b, const char *s) {
  static const char hx[] = "0123456789ABCDEF";
  for (; s != NULL && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      hs_buf_putc(b, (char)c);
    } else {
      char e[3] = {'%', hx[c >> 4], hx[c & 15]};
      hs_buf_append(b, e, 3);
    }
  }
}

static int name_special(unsigned char c) {
  return c == '{' || c == '}' || c == ',' || c == '=' || c <= 0x20 || c == 0x7f;
}

static void put_clean(hs_buf *b, const char *s) {
  for (; *s; s++)
    hs_buf_putc(b, name_special((unsigned char)*s) ? '_' : *s);
}

static void put_key(hs_buf *b, const char *k) {
  if (*k >= '0' && *k <= '9')
    hs_buf_putc(b, '_');
  for (; *k; k++) {
    char c = *k;
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '.';
    hs_buf_putc(b, ok ? c : '_');
  }
}

void hs_pyroscope_name(hs_buf *b, const char *app, const char *type_suffix,
                       const hs_profile_tag *tags, size_t ntags) {
  put_clean(b, app != NULL && *app != '\0' ? app : "hotspan");
  hs_buf_putc(b, '.');
  put_clean(b, type_suffix != NULL ? type_suffix : "cpu");
  int open = 0;
  for (size_t i = 0; i < ntags && tags != NULL; i++) {
    const char *k = tags[i].key, *v = tags[i].value;
    if (k == NULL || v == NULL || *k == '\0' || *v == '\0')
      continue;
    hs_buf_putc(b, open ? ',' : '{');
    open = 1;
    put_key(b, k);
    hs_buf_putc(b, '=');
    put_clean(b, v);
  }
  if (open)
    hs_buf_putc(b, '}');
}

int hs_pyroscope_url(hs_buf *b, const char *server, const char *app,
                     const char *type_suffix, const hs_profile_tag *tags,
                     size_t ntags, uint64_t start_ns, uint64_t end_ns,
                     unsigned sample_rate) {
  if (server == NULL || *server == '\0' || type_suffix == NULL)
    return -1;
  size_t sl = strlen(server);
  while (sl > 0 && server[sl - 1] == '/')
    sl--;
  hs_buf_append(b, server, sl);
  hs_buf_puts(b, "/ingest?name=");
  hs_buf name;
  hs_buf_init(&name, 0);
  hs_pyroscope_name(&name, app, type_suffix, tags, ntags);
  hs_pct_encode(b, hs_buf_cstr(&name));
  if (hs_buf_failed(&name))
    b->failed = 1;
  hs_buf_free(&name);
  uint64_t from = start_ns / 1000000000u;
  uint64_t until = (end_ns + 999999999u) / 1000000000u;
  if (until <= from)
    until = from + 1;
  hs_buf_printf(b, "&from=%llu&until=%llu&format=pprof&spyName=%s",
                (unsigned long long)from, (unsigned long long)until,
                HS_PYROSCOPE_SPY_NAME);
  if (sample_rate > 0)
    hs_buf_printf(b, "&sampleRate=%u", sample_rate);
  return 0;
}

int hs_basic_auth_header(const char *user, const char *password, char *out,
                         size_t cap) {
  static const char tb[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char prefix[] = "Authorization: Basic ";
  size_t ul = user ? strlen(user) : 0, pl = password ? strlen(password) : 0;
  size_t n = ul + 1 + pl;
  size_t need = sizeof prefix - 1 + 4 * ((n + 2) / 3) + 1;
  if (need > cap)
    return -1;
  memcpy(out, prefix, sizeof prefix - 1);
  char *o = out + sizeof prefix - 1;
  /* Reads byte i of "user:password" without building it. */
#define AT(i)                                                                  \
  ((i) < ul    ? (unsigned char)user[i]                                        \
   : (i) == ul ? ':'                                                           \
               : (unsigned char)password[(i)-ul - 1])
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)AT(i) << 16;
    if (i + 1 < n)
      v |= (uint32_t)AT(i + 1) << 8;
    if (i + 2 < n)
      v |= (uint32_t)AT(i + 2);
    *o++ = tb[(v >> 18) & 63];
    *o++ = tb[(v >> 12) & 63];
    *o++ = i + 1 < n ? tb[(v >> 6) & 63] : '=';
    *o++ = i + 2 < n ? tb[v & 63] : '=';
  }
#undef AT
  *o = '\0';
  return 0;
}
