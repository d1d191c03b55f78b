/* Profile files: one gzip-compressed pprof file per profile type and
 * period, written atomically (temporary file, then rename) so that a reader
 * never sees half a profile.
 *
 * This is the engine's own writer; it is meant to be replaced by the pprof
 * file writer of the profile builder (profiler/pprof_file.h) once both are
 * in one tree. */
#ifndef HS_PROFILER_OUTPUT_H
#define HS_PROFILER_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

/* Writes data to "<dir>/<type>-<pid>-<seq>.pb.gz", creating dir (one level)
 * if missing. Not async-signal-safe; thread-safe. Returns 0, or -1 (logged
 * once per distinct errno) when the file could not be written; no partial
 * file is left behind. */
int hs_prof_write_file(const char *dir, const char *type, int pid, uint32_t seq,
                       const uint8_t *data, size_t len);

#endif
