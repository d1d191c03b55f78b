#include "exporter/dd_agent_url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/env.h"
#include "common/log.h"

#define DEFAULT_HOST "localhost"
#define DEFAULT_PORT 8126u

static int fail(char *err, size_t errlen, const char *why) {
  if (err != NULL && errlen > 0)
    snprintf(err, errlen, "%s", why);
  return -1;
}

/* "1".."65535" only: no sign, no spaces, no leading garbage. */
static int parse_port(const char *s, size_t n, unsigned *out) {
  if (n == 0 || n > 5)
    return -1;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535)
    return -1;
  *out = v;
  return 0;
}

int hs_agent_url_parse(const char *url, hs_agent_url *out, char *err,
                       size_t errlen) {
  if (url == NULL || out == NULL)
    return fail(err, errlen, "no URL");
  size_t len = strlen(url);
  if (len >= sizeof out->base)
    return fail(err, errlen, "URL too long");
  memset(out, 0, sizeof *out);

  if (strncasecmp(url, "unix://", 7) == 0) {
    const char *path = url + 7;
    if (path[0] != '/' || path[1] == '\0')
      return fail(err, errlen, "unix:// needs an absolute socket path");
    snprintf(out->base, sizeof out->base, "unix://%s", path);
    out->is_unix = 1;
    return 0;
  }
  const char *scheme;
  const char *rest;
  if (strncasecmp(url, "http://", 7) == 0) {
    scheme = "http://";
    rest = url + 7;
  } else if (strncasecmp(url, "https://", 8) == 0) {
    scheme = "https://";
    rest = url + 8;
  } else {
    return fail(err, errlen, "unknown scheme (http, https or unix)");
  }
  /* authority = up to the first '/', '?' or '#'. */
  size_t alen = strcspn(rest, "/?#");
  const char *path = rest + alen;
  if (*path == '?' || *path == '#')
    return fail(err, errlen, "query or fragment not allowed");
  if (memchr(rest, '@', alen) != NULL)
    return fail(err, errlen, "user info not supported");
  const char *host = rest;
  size_t hlen;
  const char *colon;
  if (alen > 0 && rest[0] == '[') { /* IPv6 literal */
    const char *close = memchr(rest, ']', alen);
    if (close == NULL)
      return fail(err, errlen, "unclosed [ in host");
    hlen = (size_t)(close - rest) + 1;
    colon = (close + 1 < rest + alen) ? close + 1 : NULL;
    if (colon != NULL && *colon != ':')
      return fail(err, errlen, "garbage after ]");
    if (hlen == 2)
      return fail(err, errlen, "empty host");
  } else {
    colon = memchr(rest, ':', alen);
    hlen = colon ? (size_t)(colon - rest) : alen;
  }
  if (hlen == 0)
    return fail(err, errlen, "empty host");
  unsigned port = 0;
  if (colon != NULL) {
    size_t plen = (size_t)(rest + alen - colon - 1);
    if (parse_port(colon + 1, plen, &port) != 0)
      return fail(err, errlen, "port not in 1..65535");
  }
  /* Prefix path without trailing slashes. */
  size_t plen = strlen(path);
  while (plen > 0 && path[plen - 1] == '/')
    plen--;
  if (port != 0)
    snprintf(out->base, sizeof out->base, "%s%.*s:%u%.*s", scheme, (int)hlen,
             host, port, (int)plen, path);
  else
    snprintf(out->base, sizeof out->base, "%s%.*s%.*s", scheme, (int)hlen, host,
             (int)plen, path);
  return 0;
}

void hs_agent_url_resolve(const char *url, const char *url_name,
                          const char *host, const char *port,
                          const char *port_name, hs_agent_url *out) {
  char err[96];
  if (url != NULL && *url != '\0') {
    if (hs_agent_url_parse(url, out, err, sizeof err) == 0)
      return;
    hs_log(HS_LOG_WARN, "ignoring %s=\"%.128s\": %s",
           url_name ? url_name : "url", url, err);
  }
  unsigned p = DEFAULT_PORT;
  if (port != NULL && *port != '\0' &&
      parse_port(port, strlen(port), &p) != 0) {
    hs_log(HS_LOG_WARN, "ignoring %s=\"%.32s\": not a port in 1..65535",
           port_name ? port_name : "port", port);
    p = DEFAULT_PORT;
  }
  if (host == NULL || *host == '\0')
    host = DEFAULT_HOST;
  /* An IPv6 address goes in brackets; a host with characters that would
   * change the URL's meaning is refused. */
  int v6 = strchr(host, ':') != NULL && host[0] != '[';
  if (strcspn(host, "/?#@ \t") != strlen(host) ||
      strlen(host) + 32 > sizeof out->base) {
    hs_log(HS_LOG_WARN, "ignoring agent host \"%.64s\"", host);
    host = DEFAULT_HOST;
    v6 = 0;
  }
  memset(out, 0, sizeof *out);
  snprintf(out->base, sizeof out->base, v6 ? "http://[%s]:%u" : "http://%s:%u",
           host, p);
}

void hs_agent_url_from_env(hs_agent_url *out) {
  static const char *const url_vars[] = {"HOTSPAN_AGENT_URL",
                                         "DD_TRACE_AGENT_URL", NULL};
  static const char *const host_vars[] = {"HOTSPAN_AGENT_HOST", "DD_AGENT_HOST",
                                          NULL};
  static const char *const port_vars[] = {"HOTSPAN_AGENT_PORT",
                                          "DD_TRACE_AGENT_PORT", NULL};
  const char *url_name = NULL, *port_name = NULL;
  const char *url = hs_env_first(url_vars, &url_name);
  const char *host = hs_env_first(host_vars, NULL);
  const char *port = hs_env_first(port_vars, &port_name);
  hs_agent_url_resolve(url, url_name, host, port, port_name, out);
}

int hs_agent_url_endpoint(const hs_agent_url *a, const char *path, char *url,
                          size_t cap, const char **unix_path) {
  int n;
  if (a->is_unix) {
    n = snprintf(url, cap, "%s", a->base);
    *unix_path = path;
  } else {
    n = snprintf(url, cap, "%s%s", a->base, path);
    *unix_path = NULL;
  }
  return n >= 0 && (size_t)n < cap ? 0 : -1;
}
