/* hotspan — sampling profiler: CPU time and wall time, per thread, with
 * every sample tagged by the span active on the sampled thread.
 *
 * Ownership in one paragraph: the profiler is a process-wide singleton.
 * hotspan_profiler_start() copies everything it needs from the config
 * (strings included); the caller keeps ownership of the config. The profiler
 * owns its two background threads (a wall-clock sampler and an aggregator),
 * one timer and one sample ring per registered thread, and the profile files
 * it writes. hotspan_profiler_stop() writes the last profile and releases
 * all of it.
 *
 * Turning it on without code: with libhotspan loaded (linked, or through
 * LD_PRELOAD), HOTSPAN_PROFILING_ENABLED=true (or DD_PROFILING_ENABLED)
 * starts the profiler before main() and writes the last profile at exit.
 * docs/profiling.md lists every setting and its environment variable.
 *
 * Signals: the profiler installs a handler for one signal (SIGPROF unless
 * configured otherwise) and keeps it installed for the life of the process
 * (a stopped profiler's handler only passes foreign signals on). A handler
 * the program had installed before is called for every signal the profiler
 * did not send. A handler the program installs later replaces ours: the
 * profiler notices within a second, stops sending signals and logs a
 * warning. Threads that block the signal are not sampled. Because the
 * handler stays, a library loaded with dlopen() stays loaded once the
 * profiler started (dlclose() succeeds but does not unmap it).
 *
 * Thread safety: every function here is thread-safe. None is
 * async-signal-safe.
 */
#ifndef HOTSPAN_PROFILER_H
#define HOTSPAN_PROFILER_H

#include <stddef.h>
#include <stdint.h>

#include "hotspan/error.h"
#include "hotspan/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stack unwinders (see docs/profiling.md, "Engine"). */
typedef enum hotspan_profiler_unwinder {
  HOTSPAN_UNWINDER_UNSET = 0,
  HOTSPAN_UNWINDER_AUTO = 1,     /* frame pointers when the walk is sane */
  HOTSPAN_UNWINDER_FP = 2,       /* frame pointers only */
  HOTSPAN_UNWINDER_LIBUNWIND = 3 /* DWARF call frame information */
} hotspan_profiler_unwinder;

/* Profiler configuration. Call hotspan_profiler_config_init() first, then
 * set only what the code wants to force. A field left "unset" (0, NULL, or
 * -1 where stated) is taken from the environment (HOTSPAN_* first, then
 * DD_*), then from the default. Only grows at the end. */
typedef struct hotspan_profiler_config {
  uint32_t struct_size; /* set by hotspan_profiler_config_init */
  /* CPU samples per second of CPU time per thread, 1..1000; 0 = unset
   * (default 99). */
  double cpu_hz;
  /* Wall-clock samples per second per thread, 1..1000; 0 = unset (default
   * 19). */
  double wall_hz;
  /* Deepest stack recorded, in frames; deeper stacks are cut at the root
   * side and flagged. 0 = unset (default 128); values over 512 are capped at
   * 512. */
  uint32_t max_depth;
  /* How often a profile is written, in milliseconds; 0 = unset (default
   * 60000). At least 1000. */
  uint32_t export_period_ms;
  /* 1 on, 0 off, -1 unset (default on for both). */
  int cpu_enabled;
  int wall_enabled;
  /* Signal used for sampling; 0 = unset (default SIGPROF). SIGKILL, SIGSTOP
   * and the synchronous fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
   * SIGTRAP) are refused. */
  int signal;
  /* Directory for profile files; NULL = unset (HOTSPAN_OUTPUT_DIR; without
   * it no files are written). Created if missing (one level). */
  const char *output_dir;
  hotspan_profiler_unwinder unwinder; /* UNSET = env, then AUTO */
  /* Most threads signalled per wall tick; others wait for later ticks and
   * their samples weigh the time elapsed since their previous one. 0 = unset
   * (default 16). */
  uint32_t wall_threads_per_tick;
  /* Most threads profiled at once; 0 = unset (default 4096). Fixed by the
   * first start in a process. */
  uint32_t max_threads;
  /* Nonzero: do not read the environment at all. */
  int ignore_environment;
} hotspan_profiler_config;

/* Fills cfg with "unset" values. Does nothing for NULL. */
HOTSPAN_API void hotspan_profiler_config_init(hotspan_profiler_config *cfg);

/* Starts profiling with cfg (NULL: everything from the environment and the
 * defaults): installs the signal handler, gives every thread of the process
 * a CPU-time timer (threads alive now are found in /proc/self/task; threads
 * created later through pthread_create are registered as they start, others
 * within a second), starts the wall sampler and the aggregator. Logs the
 * effective configuration once (level info).
 * Returns HOTSPAN_OK; HOTSPAN_ESTATE if already running (nothing changes);
 * HOTSPAN_ECONFIG if a value in cfg is out of range (a bad environment value
 * is logged and ignored instead); HOTSPAN_ENOMEM; HOTSPAN_ESYS if a system
 * call failed (signal handler, threads); nothing is left running on error. */
HOTSPAN_API int hotspan_profiler_start(const hotspan_profiler_config *cfg);

/* Stops sampling, folds what the rings still hold, writes the last profile
 * of every enabled type, and releases timers, rings and threads. Returns
 * HOTSPAN_OK (also when not running), or HOTSPAN_EIO if the last profile
 * could not be written (the profiler is stopped anyway). Must not be called
 * from a signal handler. */
HOTSPAN_API int hotspan_profiler_stop(void);

/* Nonzero while the profiler runs. */
HOTSPAN_API int hotspan_profiler_running(void);

/* Registers the calling thread now (gives it a timer and a ring). Threads
 * created through pthread_create are registered automatically, and others
 * are found within a second; call this for a thread that must be sampled
 * from its first instruction on and was created some other way (clone,
 * another threading library). The registration is undone when the thread
 * exits. Returns HOTSPAN_OK (also if already registered), HOTSPAN_ESTATE
 * (profiler not running), HOTSPAN_EFULL (max_threads reached),
 * HOTSPAN_ENOMEM, HOTSPAN_ESYS. */
HOTSPAN_API int hotspan_profiler_register_thread(void);

/* Undoes the calling thread's registration now (its timer is deleted, its
 * pending samples are still folded). Returns HOTSPAN_OK, or HOTSPAN_ESTATE
 * if the thread was not registered. */
HOTSPAN_API int hotspan_profiler_unregister_thread(void);

/* Versioned counters of the current (or last) profiling session; reset by
 * hotspan_profiler_start. Only grows at the end; struct_size tells the
 * caller how much the library filled. */
typedef struct hotspan_profiler_stats {
  uint32_t struct_size;
  uint64_t samples_cpu;  /* CPU samples written to a ring */
  uint64_t samples_wall; /* wall samples written to a ring */
  /* Dropped samples, by reason. */
  uint64_t dropped_ring_full; /* the thread's ring had no room */
  uint64_t dropped_reentrant; /* the handler interrupted itself */
  uint64_t dropped_unwind;    /* no frame at all could be read */
  uint64_t dropped_no_thread; /* signal on a thread without registration */
  uint64_t dropped_aggregate; /* the profile builder refused the sample */
  uint64_t unwind_incomplete; /* the unwinder stopped on an error */
  uint64_t stacks_truncated;  /* deeper than max_depth */
  uint64_t unwind_fp;         /* stacks taken by frame pointers */
  uint64_t unwind_libunwind;  /* stacks taken by libunwind */
  uint64_t timer_overruns;    /* CPU periods folded into later samples */
  uint64_t wall_signals_sent;
  uint64_t wall_signals_missed; /* previous wall signal not handled yet */
  uint64_t foreign_signals;     /* signals passed on to the program */
  uint64_t handler_ns_total;    /* time spent in the handler */
  uint64_t handler_ns_max;
  uint64_t threads_registered; /* registrations in this session */
  uint64_t threads_active;     /* registered right now */
  uint64_t threads_rejected;   /* not registered: max_threads reached */
  uint64_t profiles_written;
  uint64_t profile_errors;    /* profiles not encoded or not written */
  uint64_t handler_displaced; /* 1 if another handler replaced ours */
} hotspan_profiler_stats;

/* Copies the counters into *out (set out->struct_size = sizeof *out
 * first; a smaller size gets a prefix). Returns HOTSPAN_OK or
 * HOTSPAN_EINVAL (out NULL or struct_size too small). */
HOTSPAN_API int hotspan_profiler_get_stats(hotspan_profiler_stats *out);

/* Delivery counters of the profiler's exporter number index (0, 1, ...:
 * "datadog-profiles", then "pyroscope", those that are on) while the
 * profiler runs; items are profiles (one upload can carry CPU and wall).
 * hotspan_exporter_stats is declared in hotspan/tracer.h. Returns
 * HOTSPAN_OK, or HOTSPAN_EINVAL for out NULL / struct_size too small, an
 * index past the last exporter, or a profiler that is not running.
 * Thread-safe. */
struct hotspan_exporter_stats;
HOTSPAN_API int
hotspan_profiler_get_exporter_stats(size_t index,
                                    struct hotspan_exporter_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* HOTSPAN_PROFILER_H */
