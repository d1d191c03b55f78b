/* libFuzzer target: Datadog profile uploads (multipart/form-data with the
 * boundary "B"; the body is the fuzz input). */
#include <stddef.h>
#include <stdint.h>

#include "agent/decode.h"

static int decode(const uint8_t *data, size_t len, const hs_agent_limits *lim,
                  hs_agent_decoded *d, char *err, size_t errlen) {
  return hs_agent_decode_dd_profile("multipart/form-data; boundary=B", data,
                                    len, lim, d, err, errlen);
}
#define FUZZ_DECODE decode
#include "fuzz_agent.h"
