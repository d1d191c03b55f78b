/* libFuzzer target: arbitrary header sets extracted with "b3,tracecontext" (the
 * b3 extractor first; tracecontext also exercises the tracestate merge).
 * See fuzz_extract.h for the input format and the checked properties. */
#define FUZZ_STYLES "b3,tracecontext"
#include "fuzz_extract.h"
