/* libFuzzer target: OTLP/HTTP trace requests (protobuf). */
#define FUZZ_DECODE hs_agent_decode_otlp
#include "fuzz_agent.h"
