/* hotspan — status codes shared by every public function.
 *
 * Convention: functions that can fail return an int that is HOTSPAN_OK (0)
 * on success and one of the negative HOTSPAN_E* codes below on failure.
 * Codes are never renumbered; new ones are only appended.
 */
#ifndef HOTSPAN_ERROR_H
#define HOTSPAN_ERROR_H

#include "hotspan/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, message). One table generates the enum and the strings. */
#define HOTSPAN_ERRNO_MAP(XX)                                                  \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOMEM, -2, "out of memory")                                              \
  XX(ENOCTX, -3, "no trace context found in the carrier")                      \
  XX(EMALFORMED, -4, "malformed trace context")                                \
  XX(ECONFIG, -5, "invalid configuration value")                               \
  XX(ESTATE, -6, "operation not valid in the current state")                   \
  XX(EIO, -7, "input/output error")                                            \
  XX(EFULL, -8, "buffer or queue full")                                        \
  XX(ETOOBIG, -9, "value too large")                                           \
  XX(ENOTSUP, -10, "not supported")                                            \
  XX(ESYS, -11, "system call failed")

typedef enum hotspan_status {
  HOTSPAN_OK = 0,
#define HOTSPAN_XX_(name, value, msg) HOTSPAN_##name = (value),
  HOTSPAN_ERRNO_MAP(HOTSPAN_XX_)
#undef HOTSPAN_XX_
} hotspan_status;

/* Human-readable message for a status code: "success" for HOTSPAN_OK,
 * "unknown error" for values not in the table. Returns a static string.
 * Thread-safe, async-signal-safe. */
HOTSPAN_API const char *hotspan_strerror(int status);

/* Symbolic name of a status code ("HOTSPAN_EINVAL"), "HOTSPAN_OK" for 0,
 * "HOTSPAN_UNKNOWN" otherwise. Static string. Thread-safe, async-signal-safe.
 */
HOTSPAN_API const char *hotspan_err_name(int status);

#ifdef __cplusplus
}
#endif
#endif /* HOTSPAN_ERROR_H */
