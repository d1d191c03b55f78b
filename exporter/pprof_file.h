/* Profile files: writes an encoded profile (gzip-compressed pprof, as
 * hs_profile_encode makes it) into a directory, for HOTSPAN_OUTPUT_DIR.
 *
 * File name: <dir>/<prefix>.<cpu|wall>.<start>.pb.gz where <start> is the
 * period's start in UTC, "YYYYMMDDTHHMMSSZ" (e.g.
 * hotspan.cpu.20250314T092653Z.pb.gz), so one file results per period and
 * profile type and a directory listing sorts by time. Should that name
 * already exist (two periods starting within one second, or a restarted
 * process with the same prefix), "-1", "-2", ... is appended to <start>;
 * an existing file is never overwritten. The file's modification time is
 * the period's end.
 *
 * The file appears atomically: it is written under a hidden temporary name
 * in the same directory, flushed to disk, then linked to its final name,
 * so a reader never sees a partial profile.
 *
 * hs_pprof_file_keep is the file half of the profile sink that lib/
 * installs when an output directory is set. */
#ifndef HS_EXPORTER_PPROF_FILE_H
#define HS_EXPORTER_PPROF_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Writes data as a profile file of type (enum hs_profile_type) for the
 * period [start_unix_ns, end_unix_ns]. prefix: file name prefix without
 * '/' ("hotspan" when NULL or empty). If path_out is not NULL, *path_out
 * receives the file's path (malloc'ed, the caller frees it) on success and
 * NULL on error. Thread-safe (no shared state); blocking file I/O, never
 * call from a signal handler or a latency-sensitive thread. Returns
 * HOTSPAN_OK, HOTSPAN_EINVAL (bad arguments), HOTSPAN_EIO (the file could
 * not be written; nothing is left behind), HOTSPAN_ENOMEM. */
int hs_pprof_write_file(const char *dir, const char *prefix, int type,
                        uint64_t start_unix_ns, uint64_t end_unix_ns,
                        const hs_buf *data, char **path_out);

/* One profile handed to the profile sink, as a file in dir: creates dir
 * when it is missing (a tmp cleaner may have removed it since the start;
 * one mkdir per period costs nothing), then writes the file with the
 * default prefix. Returns 1 (one file written) or -1 (the profile is lost,
 * logged), as hs_prof_profile_sink counts them. */
int hs_pprof_file_keep(const char *dir, int type, const uint8_t *data,
                       size_t len, uint64_t start_unix_ns,
                       uint64_t end_unix_ns);

#endif
