/* Request trust checks (trust.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/trust.h"

/* Case-insensitive equality of n bytes of a with the whole of b. */
static int name_is(const char *a, size_t n, const char *b) {
  return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Splits "name", "name:port", "[v6]" or "[v6]:port" into the name (without
 * brackets) and the port text (NULL when absent). -1 if malformed. */
static int split_host(const char *h, const char **name, size_t *nlen,
                      const char **port) {
  *port = NULL;
  if (*h == '[') {
    const char *rb = strchr(h, ']');
    if (!rb || rb == h + 1)
      return -1;
    *name = h + 1;
    *nlen = (size_t)(rb - h - 1);
    if (rb[1] == ':')
      *port = rb + 2;
    else if (rb[1])
      return -1;
  } else {
    const char *colon = strchr(h, ':');
    *name = h;
    *nlen = colon ? (size_t)(colon - h) : strlen(h);
    if (colon)
      *port = colon + 1;
    if (!*nlen || strchr(*port ? *port : "", ':'))
      return -1;
  }
  for (size_t i = 0; i < *nlen; i++) {
    unsigned char ch = (unsigned char)(*name)[i];
    if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '@')
      return -1;
  }
  return 0;
}

/* Nonzero when the port text is exactly the decimal port. */
static int port_is(const char *p, int port) {
  if (!*p || strlen(p) > 5)
    return 0;
  int v = 0;
  for (const char *q = p; *q; q++) {
    if (*q < '0' || *q > '9')
      return 0;
    v = v * 10 + (*q - '0');
  }
  return v == port;
}

/* Nonzero when the name (no port) is one the listener answers to. */
static int name_accepted(const hs_agent_trust *t, const char *n, size_t len) {
  if (name_is(n, len, "localhost") || name_is(n, len, "127.0.0.1") ||
      name_is(n, len, "::1"))
    return 1;
  if (t->listen_host && name_is(n, len, t->listen_host))
    return 1;
  for (const char *const *e = t->extra_hosts; e && *e; e++)
    if (name_is(n, len, *e))
      return 1;
  return 0;
}

/* Host value accepted for this listener: an accepted name with no port or
 * the server's own. need_port: the port must be given (an Origin without
 * one means port 80). */
static int host_accepted(const hs_agent_trust *t, int port, const char *h,
                         int need_port) {
  const char *name, *ptext;
  size_t nlen;
  if (split_host(h, &name, &nlen, &ptext))
    return 0;
  if (ptext ? !port_is(ptext, port) : (need_port && port != 80))
    return 0;
  return name_accepted(t, name, nlen);
}

/* Constant-time comparison of the presented token with the configured
 * one (its length is not secret: only its bytes). */
static int token_matches(const char *given, size_t glen, const char *want) {
  size_t wlen = strlen(want);
  unsigned diff = glen != wlen;
  for (size_t i = 0; i < wlen; i++)
    diff |= (unsigned char)want[i] ^ (unsigned char)(i < glen ? given[i] : 0);
  return diff == 0;
}

static int auth_ok(const char *token, const char *authz) {
  if (!authz || strncasecmp(authz, "Bearer ", 7) != 0)
    return 0;
  const char *v = authz + 7;
  while (*v == ' ')
    v++;
  size_t n = strlen(v);
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  return token_matches(v, n, token);
}

int hs_agent_trust_check(const hs_agent_trust *t, int port, const char *host,
                         const char *origin, const char *sec_fetch_site,
                         const char *authorization, const char **why) {
  if (t->check_host) {
    if (!host || !*host) {
      *why = "Host header required";
      return 400;
    }
    if (!host_accepted(t, port, host, 0)) {
      *why = "Host does not name this agent (see --allow-host)";
      return 403;
    }
  }
  if (sec_fetch_site && strcasecmp(sec_fetch_site, "same-origin") != 0 &&
      strcasecmp(sec_fetch_site, "none") != 0) {
    *why = "cross-site browser request refused";
    return 403;
  }
  if (origin) {
    int same;
    if (strncasecmp(origin, "http://", 7) != 0)
      same = 0;
    else if (t->check_host)
      same = host_accepted(t, port, origin + 7, 1);
    else
      same = host && strcasecmp(origin + 7, host) == 0;
    if (!same) {
      *why = "cross-origin request refused";
      return 403;
    }
  }
  if (t->token && *t->token && !auth_ok(t->token, authorization)) {
    *why = "missing or wrong token (Authorization: Bearer)";
    return 401;
  }
  return 0;
}

int hs_agent_is_loopback(const char *host) {
  if (!host)
    return 0;
  if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
    return 1;
  /* 127.0.0.0/8 as a dotted quad */
  if (strncmp(host, "127.", 4) != 0)
    return 0;
  int parts = 2, digits = 0; /* "127." was the first part */
  for (const char *p = host + 4; *p; p++) {
    if (*p == '.') {
      if (!digits)
        return 0;
      parts++;
      digits = 0;
    } else if (*p >= '0' && *p <= '9') {
      if (++digits > 3)
        return 0;
    } else {
      return 0;
    }
  }
  return parts == 4 && digits;
}
