/* UTF-8 validation (RFC 3629), shared by the JSON reader, the Datadog
 * encoder and the agent's decoders. Pure functions; thread- and
 * async-signal-safe. */
#ifndef HS_COMMON_UTF8_H
#define HS_COMMON_UTF8_H

#include <stddef.h>

/* Length (1..4) of the well-formed UTF-8 sequence at s, with n bytes
 * available, or 0 if none starts there: overlong forms, surrogates, code
 * points past U+10FFFF, truncated sequences and n == 0 are refused. */
size_t hs_utf8_seq(const unsigned char *s, size_t n);

#endif
