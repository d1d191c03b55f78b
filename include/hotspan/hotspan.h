/* hotspan — umbrella header: tracer, spans, active context, propagation. */
#ifndef HOTSPAN_HOTSPAN_H
#define HOTSPAN_HOTSPAN_H

#include "hotspan/error.h"
#include "hotspan/profiler.h"
#include "hotspan/propagation.h"
#include "hotspan/tracer.h"
#include "hotspan/version.h"

#endif /* HOTSPAN_HOTSPAN_H */
