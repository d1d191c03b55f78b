/* The profiler's sampling engine: per-thread CPU timers, the wall-clock
 * sampler thread, the signal handler and its sample rings, and the
 * aggregator thread that folds samples into profiles and writes them at
 * every period end.
 *
 * The public API (include/hotspan/profiler.h) resolves configuration and
 * calls into this; tests use it directly, together with the sample hook
 * below, to look at samples before they are folded.
 *
 * All functions are thread-safe and none is async-signal-safe. */
#ifndef HS_PROFILER_ENGINE_H
#define HS_PROFILER_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hotspan/profiler.h"
#include "profiler/profile_sink.h"
#include "profiler/sample.h"

/* Fully resolved settings (no "unset" values). */
typedef struct hs_prof_settings {
  uint64_t cpu_period_ns;    /* 0: no CPU sampling */
  uint64_t wall_period_ns;   /* 0: no wall sampling */
  uint64_t export_period_ns; /* > 0 */
  uint32_t max_depth;        /* 1..HS_PROF_MAX_DEPTH_LIMIT */
  uint32_t wall_threads_per_tick;
  uint32_t max_threads;
  int signo;
  int unwinder;          /* hotspan_profiler_unwinder, never UNSET */
  char output_dir[4096]; /* "" = no files */
} hs_prof_settings;

/* Defaults, then the environment unless ignore_env, then cfg's set fields.
 * Returns HOTSPAN_OK or HOTSPAN_ECONFIG (a field of cfg is out of range;
 * *out is then unspecified). Bad environment values are logged and
 * ignored. */
int hs_prof_settings_resolve(const hotspan_profiler_config *cfg,
                             hs_prof_settings *out);

/* Parses a signal given as a number or a name ("SIGPROF", "PROF",
 * "SIGRTMIN+2", "SIGUSR2"); returns the number, or -1. */
int hs_prof_parse_signal(const char *s);

/* Nonzero if signo may be used for sampling. */
int hs_prof_signal_usable(int signo);

/* Lifecycle: see hotspan_profiler_start / _stop for the contract. */
int hs_prof_engine_start(const hs_prof_settings *s);
int hs_prof_engine_stop(void);
int hs_prof_engine_running(void);

/* Thread registration of the calling thread; see
 * hotspan_profiler_register_thread. */
int hs_prof_register_self(void);
int hs_prof_unregister_self(void);

/* Counters of the current or last session. */
void hs_prof_engine_stats(hotspan_profiler_stats *out);

/* Called by pthread_create's wrapper (profiler/interpose.c) in a new
 * thread before its start routine, when the profiler runs. */
void hs_prof_on_thread_start(void);

/* 1 when pthread_create's wrapper registers new threads as they start; 0
 * when a sanitizer runtime in front of it passes them by and only the
 * aggregator's /proc/self/task scan finds them (profiler/interpose.c).
 * The engine asks at every start: that reference also keeps the wrapper in
 * every static link that has the engine, where a linker that met
 * pthread_create first in a shared sanitizer runtime would leave it out. */
int hs_prof_interpose_active(void);

/* ---- for tests ------------------------------------------------------ */

/* Called on the aggregator thread for every sample taken out of a ring,
 * before it is folded into a profile. thread_name may be "". Set before
 * start or while running; NULL removes it. */
typedef void (*hs_prof_sample_hook)(const hs_sample *s, const char *thread_name,
                                    void *arg);
void hs_prof_set_sample_hook(hs_prof_sample_hook fn, void *arg);

/* Makes the aggregator drain every ring once and waits for it (at most
 * timeout_ms). Returns HOTSPAN_OK, HOTSPAN_ESTATE (not running) or
 * HOTSPAN_EIO (timed out). */
int hs_prof_engine_sync(int timeout_ms);

/* Installs the profile sink (profiler/profile_sink.h); NULL removes it. */
void hs_prof_set_profile_sink(hs_prof_profile_sink fn, void *arg);

/* Number of POSIX timers the engine holds right now (one per registered
 * thread with CPU sampling on). */
uint32_t hs_prof_engine_timer_count(void);

#endif
