/* libFuzzer target: arbitrary header sets extracted with "datadog,tracecontext"
 * (the datadog extractor first; tracecontext also exercises the tracestate
 * merge). See fuzz_extract.h for the input format and the checked properties.
 */
#define FUZZ_STYLES "datadog,tracecontext"
#include "fuzz_extract.h"
