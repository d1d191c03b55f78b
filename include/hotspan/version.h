/* hotspan — library version. */
#ifndef HOTSPAN_VERSION_H
#define HOTSPAN_VERSION_H

#include "hotspan/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HOTSPAN_VERSION_MAJOR 0
#define HOTSPAN_VERSION_MINOR 1
#define HOTSPAN_VERSION_PATCH 0
#define HOTSPAN_VERSION_STRING "0.1.0"

/* The version of the library loaded at run time ("0.1.0"). Static string.
 * Thread-safe, async-signal-safe. */
HOTSPAN_API const char *hotspan_version(void);

#ifdef __cplusplus
}
#endif
#endif /* HOTSPAN_VERSION_H */
