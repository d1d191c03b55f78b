/* Where the Datadog Agent listens: one resolver for every exporter that
 * talks to it (traces, profiles), so that they all agree.
 *
 * Precedence (first set wins): HOTSPAN_AGENT_URL, DD_TRACE_AGENT_URL; else
 * host HOTSPAN_AGENT_HOST, DD_AGENT_HOST (default localhost) and port
 * HOTSPAN_AGENT_PORT, DD_TRACE_AGENT_PORT (default 8126). A URL is
 * http://host[:port][/prefix], https://host[:port][/prefix] or
 * unix:///absolute/path.sock. A bad URL or port is logged and ignored: the
 * next source is used instead, down to http://localhost:8126.
 *
 * Thread safety: hs_agent_url_parse and hs_agent_url_resolve are pure
 * (they only read their arguments) and thread-safe; hs_agent_url_from_env
 * reads the environment (call it at start-up, like every env lookup). None
 * is async-signal-safe. */
#ifndef HS_EXPORTER_DD_AGENT_URL_H
#define HS_EXPORTER_DD_AGENT_URL_H

#include <stddef.h>

#define HS_AGENT_URL_MAX 1024

typedef struct hs_agent_url {
  /* "http://host:port[/prefix]" without a trailing slash (also for https),
   * or "unix:///path.sock" for a Unix socket. */
  char base[HS_AGENT_URL_MAX];
  int is_unix; /* 1: base is unix://<path>; requests carry the path apart */
} hs_agent_url;

/* Parses one agent URL (as in DD_TRACE_AGENT_URL) into *out. Returns 0, or
 * -1 with a short reason in err (errlen bytes, may be NULL) for: an unknown
 * scheme, an empty host, a port that is not 1..65535, a unix:// path that
 * is not absolute, or a URL longer than HS_AGENT_URL_MAX. */
int hs_agent_url_parse(const char *url, hs_agent_url *out, char *err,
                       size_t errlen);

/* The resolution above from explicit values (NULL = unset): url, then
 * host + port. Never fails: bad values are logged (naming url_name or
 * port_name) and skipped, ending at the default. */
void hs_agent_url_resolve(const char *url, const char *url_name,
                          const char *host, const char *port,
                          const char *port_name, hs_agent_url *out);

/* hs_agent_url_resolve with the environment variables above. */
void hs_agent_url_from_env(hs_agent_url *out);

/* Target URL for one endpoint of the agent: for http(s), base + path into
 * url and *unix_path = NULL; for a Unix socket, base into url and
 * *unix_path = path (the transport sends path over the socket). Returns 0,
 * or -1 if url (cap bytes) is too small. */
int hs_agent_url_endpoint(const hs_agent_url *a, const char *path, char *url,
                          size_t cap, const char **unix_path);

#endif
