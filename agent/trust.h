/* Whom the agent answers: the checks every request passes before its body
 * is read (docs/security.md has the threat model).
 *
 * A loopback listener is reachable by every program on the machine and,
 * through the browser, by every web page its user opens. Browsers mark
 * their requests (Origin, Sec-Fetch-Site) and cannot hide the name they
 * connected to (Host); other clients send neither marker. So:
 *
 *   - Host (when check_host is set, the default on a loopback address)
 *     must be localhost, 127.0.0.1, [::1], the listen address itself or
 *     one of extra_hosts, with no port or the server's own port: a page
 *     whose name was re-bound to 127.0.0.1 (DNS rebinding) names itself
 *     and is refused, so it can neither write nor read.
 *   - Origin, when present, must be http://<an accepted Host>; without the
 *     Host check, http://<this request's Host>. Sec-Fetch-Site, when
 *     present, must be same-origin or none. Any other web page is refused,
 *     whatever the content type or method.
 *   - token, when set, must come as "Authorization: Bearer <token>" on
 *     every request (401 otherwise): the protection for listeners beyond
 *     loopback, where Host cannot be checked.
 *
 * Pure functions of their arguments; thread-safe. */
#ifndef HS_AGENT_TRUST_H
#define HS_AGENT_TRUST_H

#include <stddef.h>

typedef struct hs_agent_trust {
  int check_host;                 /* nonzero: Host is checked (loopback) */
  const char *listen_host;        /* the listen address as configured */
  const char *const *extra_hosts; /* more accepted names; NULL-terminated */
  const char *token;              /* NULL or "": no token required */
} hs_agent_trust;

/* The request's headers (NULL when absent) against t, for a server on
 * port. Returns 0 when the request may go on, else the status to answer
 * (400 for a missing or malformed Host on a checked listener, 401, 403)
 * with a static reason in *why. */
int hs_agent_trust_check(const hs_agent_trust *t, int port, const char *host,
                         const char *origin, const char *sec_fetch_site,
                         const char *authorization, const char **why);

/* Nonzero when host (an IP literal or "localhost") is a loopback address:
 * 127.0.0.0/8, ::1 or localhost. */
int hs_agent_is_loopback(const char *host);

#endif
