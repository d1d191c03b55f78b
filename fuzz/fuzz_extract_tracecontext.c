/* libFuzzer target: arbitrary header sets extracted with "tracecontext,datadog"
 * (the tracecontext extractor first; tracecontext also exercises the tracestate
 * merge). See fuzz_extract.h for the input format and the checked properties.
 */
#define FUZZ_STYLES "tracecontext,datadog"
#include "fuzz_extract.h"
