/* Agent token helpers (token.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/token.h"

const char *hs_token_invalid(const char *tok) {
  size_t n = tok ? strlen(tok) : 0;
  if (n == 0)
    return "is empty";
  if (n > HS_TOKEN_MAX)
    return "is longer than 256 characters";
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
      return "may hold only visible ASCII characters";
  return NULL;
}

int hs_token_header(char *hdr, size_t cap) {
  if (cap)
    hdr[0] = '\0';
  const char *tok = getenv("HOTSPAN_AGENT_TOKEN");
  if (tok == NULL || *tok == '\0')
    return 0;
  if (hs_token_invalid(tok) != NULL || cap < HS_TOKEN_HEADER_MAX)
    return -1;
  snprintf(hdr, cap, "Authorization: Bearer %s", tok);
  return 1;
}
