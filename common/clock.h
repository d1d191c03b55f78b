/* Clocks. Both read the vDSO (no system call on common clock sources).
 * Async-signal-safe. */
#ifndef HS_COMMON_CLOCK_H
#define HS_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t hs_clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* Unix time in ns. */
static inline uint64_t hs_now_unix_ns(void) {
  return hs_clock_ns(CLOCK_REALTIME);
}
/* Monotonic time in ns, for durations. */
static inline uint64_t hs_now_mono_ns(void) {
  return hs_clock_ns(CLOCK_MONOTONIC);
}

#endif
