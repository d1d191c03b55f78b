/* hotspan_profiler_start / _stop and the start from the environment: the
 * profiler's engine with the exporters as its profile sink (files in the
 * output directory, uploads of the profile exporter). The profiler and the
 * exporters do not know each other; this is where they meet. */
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/log.h"
#include "exporter/pprof_file.h"
#include "exporter/profile_exporter.h"
#include "hotspan/error.h"
#include "hotspan/profiler.h"
#include "hotspan/tracer.h"
#include "profiler/engine.h"

/* Where the profiles of the running profiler go. Set before the engine
 * starts and cleared after it stopped, so the aggregator thread only reads
 * it (the sink's atomic installation orders the two). */
static struct {
  char dir[sizeof(((hs_prof_settings *)0)->output_dir)]; /* "" = no files */
  int upload;
} dest;

static int to_exporters(int type, const uint8_t *data, size_t len,
                        uint64_t start_unix_ns, uint64_t end_unix_ns,
                        void *arg) {
  (void)arg;
  int kept = 0;
  if (dest.dir[0] != '\0')
    kept = hs_pprof_file_keep(dest.dir, type, data, len, start_unix_ns,
                              end_unix_ns);
  if (dest.upload)
    hs_profexp_session_profile(type, data, len, start_unix_ns, end_unix_ns);
  return kept;
}

int hotspan_profiler_start(const hotspan_profiler_config *cfg) {
  hs_prof_settings *s = malloc(sizeof *s);
  if (s == NULL)
    return HOTSPAN_ENOMEM;
  int rc = hs_prof_settings_resolve(cfg, s);
  if (rc == HOTSPAN_OK && hs_prof_engine_running())
    rc = HOTSPAN_ESTATE;
  /* The sink is installed before the engine produces anything. A failed
   * exporter does not keep the profiler off: files and the other exporters
   * still work. */
  int exporter = 0, installed = 0;
  if (rc == HOTSPAN_OK) {
    int use_env = cfg == NULL || !cfg->ignore_environment;
    int erc = hs_profexp_start(use_env, s->cpu_period_ns, s->wall_period_ns);
    if (erc != HOTSPAN_OK)
      hs_log(HS_LOG_WARN, "profile export off: %s", hotspan_strerror(erc));
    exporter = erc == HOTSPAN_OK;
    memcpy(dest.dir, s->output_dir, sizeof dest.dir);
    dest.upload = exporter && hs_profexp_active();
    installed = dest.dir[0] != '\0' || dest.upload;
    if (installed)
      hs_prof_set_profile_sink(to_exporters, NULL);
  }
  if (rc == HOTSPAN_OK)
    rc = hs_prof_engine_start(s);
  if (rc != HOTSPAN_OK && installed)
    hs_prof_set_profile_sink(NULL, NULL);
  if (rc != HOTSPAN_OK && exporter)
    hs_profexp_stop(0);
  free(s);
  return rc;
}

/* Stops the engine (which hands its last profiles to the sink), then lets
 * the profile exporter send them, bounded by its flush timeout. */
static int stop_all(void) {
  int rc = hs_prof_engine_stop();
  hs_prof_set_profile_sink(NULL, NULL);
  hs_profexp_stop(-1);
  return rc;
}

int hotspan_profiler_stop(void) {
  return stop_all();
}

int hotspan_profiler_get_exporter_stats(size_t index,
                                        hotspan_exporter_stats *out) {
  return hs_profexp_target_stats(index, out);
}

/* ------------------------------------------------------------------------
 * Turning it on from the environment. */

static void stop_at_exit(void) {
  (void)stop_all();
}

/* Runs when the library is loaded (before main() when linked or
 * preloaded). exit() from any thread runs the atexit handler; the
 * destructor covers dlclose and programs whose atexit list was cut short.
 * Both stop the profiler once, which writes the last profile. _exit(),
 * quick_exit() and fatal signals end the process without it. */
__attribute__((constructor)) static void autostart(void) {
  static const char *const vars[] = {"HOTSPAN_PROFILING_ENABLED",
                                     "DD_PROFILING_ENABLED", NULL};
  const char *which = NULL;
  const char *v = hs_env_first(vars, &which);
  int on = 0;
  if (v == NULL)
    return;
  if (hs_parse_bool(v, &on) != 0) {
    hs_log(HS_LOG_WARN, "ignoring %s=\"%.32s\": not a boolean", which, v);
    return;
  }
  if (!on)
    return;
  int rc = hotspan_profiler_start(NULL);
  if (rc != HOTSPAN_OK) {
    hs_log(HS_LOG_ERROR, "profiler not started: %s", hotspan_strerror(rc));
    return;
  }
  atexit(stop_at_exit);
}

__attribute__((destructor)) static void autostop(void) {
  (void)stop_all();
}
