/* libFuzzer target: Pyroscope ingest. The input is "<query>\n<body>"; a
 * body starting with "--B" is sent as multipart (boundary "B"). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/decode.h"

static int decode(const uint8_t *data, size_t len, const hs_agent_limits *lim,
                  hs_agent_decoded *d, char *err, size_t errlen) {
  const uint8_t *nl = memchr(data, '\n', len);
  size_t qlen = nl ? (size_t)(nl - data) : len;
  char *q = malloc(qlen + 1);
  if (!q)
    return HS_AGENT_ENOMEM;
  memcpy(q, data, qlen);
  q[qlen] = 0;
  const uint8_t *body = nl ? nl + 1 : data + len;
  size_t blen = nl ? len - qlen - 1 : 0;
  const char *ct = blen >= 3 && memcmp(body, "--B", 3) == 0
                       ? "multipart/form-data; boundary=B"
                       : "application/octet-stream";
  int rc = hs_agent_decode_pyroscope(q, ct, body, blen, lim, d, err, errlen);
  free(q);
  return rc;
}
#define FUZZ_DECODE decode
#include "fuzz_agent.h"
