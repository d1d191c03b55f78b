/* The profiler's settings (hotspan_profiler_config, the environment and
 * their defaults, resolved into hs_prof_settings) and the public calls that
 * go straight to the engine (running, thread registration, stats). Start,
 * stop and the start from the environment are lib/profiler.c's. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/env.h"
#include "common/log.h"
#include "hotspan/profiler.h"
#include "profiler/engine.h"

/* 99 Hz, not 100: a round rate runs in lockstep with periodic work (timer
 * ticks, 10 ms sleeps) and sees it always or never. 19 Hz for wall time:
 * see docs/profiling.md, "Settings", for the overhead budget. */
#define DEFAULT_CPU_HZ 99.0
#define DEFAULT_WALL_HZ 19.0
#define DEFAULT_EXPORT_MS 60000u
#define DEFAULT_WALL_PER_TICK 16u
#define DEFAULT_MAX_THREADS 4096u
#define MIN_HZ 1.0
#define MAX_HZ 1000.0
#define MAX_THREADS_LIMIT 65536u

void hotspan_profiler_config_init(hotspan_profiler_config *cfg) {
  if (cfg == NULL)
    return;
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->cpu_enabled = -1;
  cfg->wall_enabled = -1;
}

int hs_prof_parse_signal(const char *s) {
  if (s == NULL || *s == '\0')
    return -1;
  uint64_t v;
  if (hs_parse_u64(s, &v) == 0)
    return v < _NSIG ? (int)v : -1;
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  static const struct {
    const char *name;
    int num;
  } names[] = {{"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}, {"ALRM", SIGALRM},
               {"USR1", SIGUSR1}, {"USR2", SIGUSR2},     {"URG", SIGURG},
               {"IO", SIGIO},     {"WINCH", SIGWINCH}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(s, names[i].name) == 0)
      return names[i].num;
  if (strncasecmp(s, "RTMIN", 5) == 0) {
    const char *rest = s + 5;
    if (*rest == '\0')
      return SIGRTMIN;
    if (*rest == '+' && hs_parse_u64(rest + 1, &v) == 0 &&
        v <= (uint64_t)(SIGRTMAX - SIGRTMIN))
      return SIGRTMIN + (int)v;
  }
  return -1;
}

int hs_prof_signal_usable(int signo) {
  switch (signo) {
  case SIGKILL:
  case SIGSTOP:
  case SIGSEGV:
  case SIGBUS:
  case SIGILL:
  case SIGFPE:
  case SIGTRAP:
  case SIGABRT:
  case SIGCHLD:
    return 0;
  default:
    return signo > 0 && signo < _NSIG;
  }
}

static int hz_ok(double hz) {
  return hz >= MIN_HZ && hz <= MAX_HZ;
}

static uint64_t hz_to_period(double hz) {
  return (uint64_t)(1e9 / hz + 0.5);
}

/* Environment layer: each value is checked like the code's, and a bad one
 * is logged and ignored. */
static void from_env(hs_prof_settings *out, double *cpu_hz, double *wall_hz,
                     int *cpu_on, int *wall_on) {
  double d;
  uint64_t u;
  int b;
  if (hs_env_double_in("HOTSPAN_PROFILING_CPU_HZ", MIN_HZ, MAX_HZ, &d) == 0)
    *cpu_hz = d;
  if (hs_env_double_in("HOTSPAN_PROFILING_WALL_HZ", MIN_HZ, MAX_HZ, &d) == 0)
    *wall_hz = d;
  if (hs_env_u64_in("HOTSPAN_PROFILING_MAX_DEPTH", 1, UINT64_MAX, &u) == 0)
    out->max_depth =
        u > HS_PROF_MAX_DEPTH_LIMIT ? HS_PROF_MAX_DEPTH_LIMIT : (uint32_t)u;
  static const char *const period_vars[] = {"HOTSPAN_PROFILING_UPLOAD_PERIOD",
                                            "DD_PROFILING_UPLOAD_PERIOD", NULL};
  const char *which = NULL;
  const char *pv = hs_env_first(period_vars, &which);
  if (pv != NULL) {
    if (hs_parse_double(pv, &d) == 0 && d >= 1.0 && d <= 86400.0)
      out->export_period_ns = (uint64_t)(d * 1e9);
    else
      hs_log(HS_LOG_WARN, "ignoring %s=\"%.32s\": not 1..86400 seconds", which,
             pv);
  }
  if (hs_env_bool("HOTSPAN_PROFILING_CPU_ENABLED", &b) == 0)
    *cpu_on = b;
  if (hs_env_bool("HOTSPAN_PROFILING_WALL_ENABLED", &b) == 0)
    *wall_on = b;
  const char *sig = hs_env_get("HOTSPAN_PROFILING_SIGNAL");
  if (sig != NULL) {
    int n = hs_prof_parse_signal(sig);
    if (n > 0 && hs_prof_signal_usable(n))
      out->signo = n;
    else
      hs_log(HS_LOG_WARN, "ignoring HOTSPAN_PROFILING_SIGNAL=\"%.32s\"", sig);
  }
  const char *unw = hs_env_get("HOTSPAN_PROFILING_UNWINDER");
  if (unw != NULL) {
    if (strcasecmp(unw, "auto") == 0)
      out->unwinder = HOTSPAN_UNWINDER_AUTO;
    else if (strcasecmp(unw, "fp") == 0)
      out->unwinder = HOTSPAN_UNWINDER_FP;
    else if (strcasecmp(unw, "libunwind") == 0)
      out->unwinder = HOTSPAN_UNWINDER_LIBUNWIND;
    else
      hs_log(HS_LOG_WARN,
             "ignoring HOTSPAN_PROFILING_UNWINDER=\"%.32s\": "
             "not auto, fp or libunwind",
             unw);
  }
  if (hs_env_u64("HOTSPAN_PROFILING_WALL_THREADS_PER_TICK", &u) == 0) {
    if (u >= 1 && u <= MAX_THREADS_LIMIT)
      out->wall_threads_per_tick = (uint32_t)u;
    else
      hs_log(HS_LOG_WARN,
             "ignoring HOTSPAN_PROFILING_WALL_THREADS_PER_TICK: not 1..65536");
  }
  if (hs_env_u64("HOTSPAN_PROFILING_MAX_THREADS", &u) == 0) {
    if (u >= 1 && u <= MAX_THREADS_LIMIT)
      out->max_threads = (uint32_t)u;
    else
      hs_log(HS_LOG_WARN,
             "ignoring HOTSPAN_PROFILING_MAX_THREADS: not 1..65536");
  }
  const char *dir = hs_env_get("HOTSPAN_OUTPUT_DIR");
  if (dir != NULL) {
    if (strlen(dir) < sizeof out->output_dir)
      snprintf(out->output_dir, sizeof out->output_dir, "%s", dir);
    else
      hs_log(HS_LOG_WARN, "ignoring HOTSPAN_OUTPUT_DIR: too long");
  }
}

int hs_prof_settings_resolve(const hotspan_profiler_config *cfg,
                             hs_prof_settings *out) {
  memset(out, 0, sizeof *out);
  double cpu_hz = DEFAULT_CPU_HZ, wall_hz = DEFAULT_WALL_HZ;
  int cpu_on = 1, wall_on = 1;
  out->max_depth = HS_PROF_DEFAULT_DEPTH;
  out->export_period_ns = (uint64_t)DEFAULT_EXPORT_MS * 1000000u;
  out->signo = SIGPROF;
  out->unwinder = HOTSPAN_UNWINDER_AUTO;
  out->wall_threads_per_tick = DEFAULT_WALL_PER_TICK;
  out->max_threads = DEFAULT_MAX_THREADS;

  if (cfg != NULL && cfg->struct_size < sizeof(uint32_t) + sizeof(double))
    return HOTSPAN_ECONFIG; /* not initialized by config_init */
  if (cfg == NULL || !cfg->ignore_environment)
    from_env(out, &cpu_hz, &wall_hz, &cpu_on, &wall_on);

  if (cfg != NULL) {
    if (cfg->cpu_hz != 0) {
      if (!hz_ok(cfg->cpu_hz))
        return HOTSPAN_ECONFIG;
      cpu_hz = cfg->cpu_hz;
    }
    if (cfg->wall_hz != 0) {
      if (!hz_ok(cfg->wall_hz))
        return HOTSPAN_ECONFIG;
      wall_hz = cfg->wall_hz;
    }
    if (cfg->max_depth != 0)
      out->max_depth = cfg->max_depth > HS_PROF_MAX_DEPTH_LIMIT
                           ? HS_PROF_MAX_DEPTH_LIMIT
                           : cfg->max_depth;
    if (cfg->export_period_ms != 0) {
      if (cfg->export_period_ms < 1000)
        return HOTSPAN_ECONFIG;
      out->export_period_ns = (uint64_t)cfg->export_period_ms * 1000000u;
    }
    if (cfg->cpu_enabled >= 0)
      cpu_on = cfg->cpu_enabled != 0;
    if (cfg->wall_enabled >= 0)
      wall_on = cfg->wall_enabled != 0;
    if (cfg->signal != 0) {
      if (!hs_prof_signal_usable(cfg->signal))
        return HOTSPAN_ECONFIG;
      out->signo = cfg->signal;
    }
    if (cfg->output_dir != NULL) {
      if (strlen(cfg->output_dir) >= sizeof out->output_dir)
        return HOTSPAN_ECONFIG;
      snprintf(out->output_dir, sizeof out->output_dir, "%s", cfg->output_dir);
    }
    if (cfg->unwinder != HOTSPAN_UNWINDER_UNSET) {
      if (cfg->unwinder < HOTSPAN_UNWINDER_AUTO ||
          cfg->unwinder > HOTSPAN_UNWINDER_LIBUNWIND)
        return HOTSPAN_ECONFIG;
      out->unwinder = cfg->unwinder;
    }
    if (cfg->wall_threads_per_tick != 0) {
      if (cfg->wall_threads_per_tick > MAX_THREADS_LIMIT)
        return HOTSPAN_ECONFIG;
      out->wall_threads_per_tick = cfg->wall_threads_per_tick;
    }
    if (cfg->max_threads != 0) {
      if (cfg->max_threads > MAX_THREADS_LIMIT)
        return HOTSPAN_ECONFIG;
      out->max_threads = cfg->max_threads;
    }
  }
  out->cpu_period_ns = cpu_on ? hz_to_period(cpu_hz) : 0;
  out->wall_period_ns = wall_on ? hz_to_period(wall_hz) : 0;
  return HOTSPAN_OK;
}

int hotspan_profiler_running(void) {
  return hs_prof_engine_running();
}

int hotspan_profiler_register_thread(void) {
  return hs_prof_register_self();
}

int hotspan_profiler_unregister_thread(void) {
  return hs_prof_unregister_self();
}

int hotspan_profiler_get_stats(hotspan_profiler_stats *out) {
  if (out == NULL || out->struct_size < sizeof(uint32_t) + sizeof(uint64_t))
    return HOTSPAN_EINVAL;
  hs_prof_engine_stats(out);
  return HOTSPAN_OK;
}
