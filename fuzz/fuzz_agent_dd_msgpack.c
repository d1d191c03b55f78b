/* libFuzzer target: Datadog v0.4 trace payloads (msgpack). */
#define FUZZ_DECODE hs_agent_decode_dd_msgpack
#include "fuzz_agent.h"
