/* What a profile sink (an exporter) sees of the profiler: finished
 * profiles of one period, encoded as gzip-compressed pprof
 * (perftools.profiles.Profile, wire/profile.proto), with their type and
 * time range. Exporters include this header, never profiler/engine.h or
 * profiler/engine_int.h; the wiring code (lib/profiler.c) installs the
 * sink. */
#ifndef HS_PROFILER_PROFILE_SINK_H
#define HS_PROFILER_PROFILE_SINK_H

#include <stddef.h>
#include <stdint.h>

/* Which sample values a profile carries. A CPU profile has the value types
 * samples/count + cpu/nanoseconds; a wall profile samples/count +
 * wall/nanoseconds (see docs/profiling.md for why they are separate). */
enum hs_profile_type { HS_PROFILE_CPU = 1, HS_PROFILE_WALL = 2 };

/* Called after a profile was encoded (data, len: gzip-compressed pprof),
 * on the aggregator thread or in hotspan_profiler_stop. type is an enum
 * hs_profile_type. data is valid during the call only. Returns the number
 * of profile files it wrote (counted in profiles_written, 0 when it only
 * handed the profile on), or -1 when the profile is lost (counted in
 * profile_errors). */
typedef int (*hs_prof_profile_sink)(int type, const uint8_t *data, size_t len,
                                    uint64_t start_unix_ns,
                                    uint64_t end_unix_ns, void *arg);

#endif
