/* libFuzzer target: arbitrary header sets extracted with "b3multi,tracecontext"
 * (the b3multi extractor first; tracecontext also exercises the tracestate
 * merge). See fuzz_extract.h for the input format and the checked properties.
 */
#define FUZZ_STYLES "b3multi,tracecontext"
#include "fuzz_extract.h"
