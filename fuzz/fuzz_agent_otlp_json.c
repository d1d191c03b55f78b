/* libFuzzer target: OTLP/HTTP trace requests (JSON). */
#define FUZZ_DECODE hs_agent_decode_otlp_json
#include "fuzz_agent.h"
