/* The shared token of hotspan-agent (--auth-token, HOTSPAN_AGENT_TOKEN):
 * what a usable token looks like, and the request header that carries it,
 * for every hotspan component that talks to the agent (the exporters, the
 * CLI). docs/security.md. Thread-safe; hs_token_header reads the
 * environment (call it at start-up). Not async-signal-safe. */
#ifndef HS_COMMON_TOKEN_H
#define HS_COMMON_TOKEN_H

#include <stddef.h>

#define HS_TOKEN_MAX 256
/* "Authorization: Bearer " + token + NUL */
#define HS_TOKEN_HEADER_MAX (HS_TOKEN_MAX + 32)

/* NULL when tok is usable as a token (1 to HS_TOKEN_MAX visible ASCII
 * characters: nothing that could end a header line), else why not. */
const char *hs_token_invalid(const char *tok);

/* The header line "Authorization: Bearer <token>" for HOTSPAN_AGENT_TOKEN
 * into hdr (cap >= HS_TOKEN_HEADER_MAX): 1 written, 0 when the variable is
 * unset or empty, -1 when it is not a usable token (hdr is empty; the
 * caller reports it: sending nothing is safer than a broken header). */
int hs_token_header(char *hdr, size_t cap);

#endif
