/* libFuzzer target: pprof profiles, plain or gzip/zstd compressed. */
#define FUZZ_DECODE hs_agent_decode_pprof
#include "fuzz_agent.h"
