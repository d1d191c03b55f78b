/* Profiler configuration: defaults, environment (HOTSPAN_* over DD_*),
 * code over environment, bad environment values ignored, bad code values
 * refused, caps; signal names; the stats and start/stop API contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "hotspan/profiler.h"
#include "profiler/engine.h"
#include "support/env.h"

static void test_defaults(void **state) {
  (void)state;
  hs_prof_settings s;
  assert_int_equal(hs_prof_settings_resolve(NULL, &s), HOTSPAN_OK);
  assert_int_equal(s.cpu_period_ns, 10101010);  /* 99 Hz */
  assert_int_equal(s.wall_period_ns, 52631579); /* 19 Hz */
  assert_int_equal(s.max_depth, 128);
  assert_int_equal(s.export_period_ns, 60000000000ull);
  assert_int_equal(s.signo, SIGPROF);
  assert_int_equal(s.unwinder, HOTSPAN_UNWINDER_AUTO);
  assert_int_equal(s.wall_threads_per_tick, 16);
  assert_int_equal(s.max_threads, 4096);
  assert_string_equal(s.output_dir, "");
}

static void test_environment(void **state) {
  (void)state;
  setenv("HOTSPAN_PROFILING_CPU_HZ", "250", 1);
  setenv("HOTSPAN_PROFILING_WALL_HZ", "10", 1);
  setenv("HOTSPAN_PROFILING_MAX_DEPTH", "64", 1);
  setenv("DD_PROFILING_UPLOAD_PERIOD", "30", 1);
  setenv("HOTSPAN_PROFILING_SIGNAL", "SIGRTMIN+3", 1);
  setenv("HOTSPAN_PROFILING_UNWINDER", "libunwind", 1);
  setenv("HOTSPAN_OUTPUT_DIR", "/tmp/x", 1);
  setenv("HOTSPAN_PROFILING_WALL_ENABLED", "no", 1);
  hs_prof_settings s;
  assert_int_equal(hs_prof_settings_resolve(NULL, &s), HOTSPAN_OK);
  assert_int_equal(s.cpu_period_ns, 4000000);
  assert_int_equal(s.wall_period_ns, 0);
  assert_int_equal(s.max_depth, 64);
  assert_int_equal(s.export_period_ns, 30000000000ull);
  assert_int_equal(s.signo, SIGRTMIN + 3);
  assert_int_equal(s.unwinder, HOTSPAN_UNWINDER_LIBUNWIND);
  assert_string_equal(s.output_dir, "/tmp/x");
  /* HOTSPAN_ wins over DD_. */
  setenv("HOTSPAN_PROFILING_UPLOAD_PERIOD", "5", 1);
  assert_int_equal(hs_prof_settings_resolve(NULL, &s), HOTSPAN_OK);
  assert_int_equal(s.export_period_ns, 5000000000ull);
  /* Depth is capped, not refused. */
  setenv("HOTSPAN_PROFILING_MAX_DEPTH", "100000", 1);
  assert_int_equal(hs_prof_settings_resolve(NULL, &s), HOTSPAN_OK);
  assert_int_equal(s.max_depth, HS_PROF_MAX_DEPTH_LIMIT);
}

static void test_bad_environment_is_ignored(void **state) {
  (void)state;
  setenv("HOTSPAN_PROFILING_CPU_HZ", "fast", 1);
  setenv("HOTSPAN_PROFILING_WALL_HZ", "100000", 1);
  setenv("HOTSPAN_PROFILING_MAX_DEPTH", "-3", 1);
  setenv("HOTSPAN_PROFILING_UPLOAD_PERIOD", "0.001", 1);
  setenv("HOTSPAN_PROFILING_SIGNAL", "SIGSEGV", 1);
  setenv("HOTSPAN_PROFILING_UNWINDER", "magic", 1);
  setenv("HOTSPAN_PROFILING_CPU_ENABLED", "maybe", 1);
  setenv("HOTSPAN_PROFILING_MAX_THREADS", "0", 1);
  hs_prof_settings s;
  assert_int_equal(hs_prof_settings_resolve(NULL, &s), HOTSPAN_OK);
  assert_int_equal(s.cpu_period_ns, 10101010);
  assert_int_equal(s.wall_period_ns, 52631579);
  assert_int_equal(s.max_depth, 128);
  assert_int_equal(s.export_period_ns, 60000000000ull);
  assert_int_equal(s.signo, SIGPROF);
  assert_int_equal(s.unwinder, HOTSPAN_UNWINDER_AUTO);
  assert_int_equal(s.max_threads, 4096);
}

static void test_code_over_environment(void **state) {
  (void)state;
  setenv("HOTSPAN_PROFILING_CPU_HZ", "250", 1);
  setenv("HOTSPAN_OUTPUT_DIR", "/tmp/env", 1);
  hotspan_profiler_config c;
  hotspan_profiler_config_init(&c);
  c.cpu_hz = 49;
  c.output_dir = "/tmp/code";
  c.max_depth = 1000; /* capped */
  c.cpu_enabled = 0;
  hs_prof_settings s;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_OK);
  assert_int_equal(s.cpu_period_ns, 0);
  assert_string_equal(s.output_dir, "/tmp/code");
  assert_int_equal(s.max_depth, 512);
  c.cpu_enabled = 1;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_OK);
  assert_int_equal(s.cpu_period_ns, 20408163);
  /* ignore_environment: the environment's directory is not used. */
  hotspan_profiler_config_init(&c);
  c.ignore_environment = 1;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_OK);
  assert_string_equal(s.output_dir, "");
  assert_int_equal(s.cpu_period_ns, 10101010);
}

static void test_bad_code_values_are_refused(void **state) {
  (void)state;
  hs_prof_settings s;
  hotspan_profiler_config c;
  hotspan_profiler_config_init(&c);
  c.cpu_hz = 5000;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  hotspan_profiler_config_init(&c);
  c.wall_hz = -1;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  hotspan_profiler_config_init(&c);
  c.signal = SIGSEGV;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  hotspan_profiler_config_init(&c);
  c.signal = SIGKILL;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  hotspan_profiler_config_init(&c);
  c.export_period_ms = 10;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  hotspan_profiler_config_init(&c);
  c.unwinder = (hotspan_profiler_unwinder)9;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  hotspan_profiler_config_init(&c);
  c.max_threads = 10000000;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  hotspan_profiler_config_init(&c);
  char longdir[5000];
  memset(longdir, 'a', sizeof longdir - 1);
  longdir[sizeof longdir - 1] = '\0';
  c.output_dir = longdir;
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  /* A config that was never initialized. */
  memset(&c, 0, sizeof c);
  assert_int_equal(hs_prof_settings_resolve(&c, &s), HOTSPAN_ECONFIG);
  /* The public start refuses them too and leaves nothing running. */
  hotspan_profiler_config_init(&c);
  c.cpu_hz = 0.5;
  assert_int_equal(hotspan_profiler_start(&c), HOTSPAN_ECONFIG);
  assert_false(hotspan_profiler_running());
}

static void test_signal_names(void **state) {
  (void)state;
  assert_int_equal(hs_prof_parse_signal("SIGPROF"), SIGPROF);
  assert_int_equal(hs_prof_parse_signal("prof"), SIGPROF);
  assert_int_equal(hs_prof_parse_signal("27"), 27);
  assert_int_equal(hs_prof_parse_signal("SIGUSR2"), SIGUSR2);
  assert_int_equal(hs_prof_parse_signal("SIGRTMIN"), SIGRTMIN);
  assert_int_equal(hs_prof_parse_signal("RTMIN+2"), SIGRTMIN + 2);
  assert_int_equal(hs_prof_parse_signal("RTMIN+200"), -1);
  assert_int_equal(hs_prof_parse_signal("999"), -1);
  assert_int_equal(hs_prof_parse_signal("-1"), -1);
  assert_int_equal(hs_prof_parse_signal(""), -1);
  assert_int_equal(hs_prof_parse_signal(NULL), -1);
  assert_int_equal(hs_prof_parse_signal("SIGNOPE"), -1);
}

static void test_stats_api(void **state) {
  (void)state;
  assert_int_equal(hotspan_profiler_get_stats(NULL), HOTSPAN_EINVAL);
  hotspan_profiler_stats st;
  memset(&st, 0xff, sizeof st);
  st.struct_size = 2;
  assert_int_equal(hotspan_profiler_get_stats(&st), HOTSPAN_EINVAL);
  /* An older, shorter struct gets its prefix and nothing beyond. */
  memset(&st, 0xab, sizeof st);
  st.struct_size = offsetof(hotspan_profiler_stats, samples_wall);
  assert_int_equal(hotspan_profiler_get_stats(&st), HOTSPAN_OK);
  assert_int_equal(st.struct_size,
                   offsetof(hotspan_profiler_stats, samples_wall));
  uint8_t *tail =
      (uint8_t *)&st + offsetof(hotspan_profiler_stats, samples_wall);
  for (size_t i = 0;
       i < sizeof st - offsetof(hotspan_profiler_stats, samples_wall); i++)
    assert_int_equal(tail[i], 0xab);
  st.struct_size = sizeof st;
  assert_int_equal(hotspan_profiler_get_stats(&st), HOTSPAN_OK);
  assert_int_equal(st.struct_size, sizeof st);
}

static void test_start_stop_contract(void **state) {
  (void)state;
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK); /* not running */
  assert_int_equal(hotspan_profiler_unregister_thread(), HOTSPAN_ESTATE);
  hotspan_profiler_config c;
  hotspan_profiler_config_init(&c);
  c.ignore_environment = 1;
  assert_int_equal(hotspan_profiler_start(&c), HOTSPAN_OK);
  assert_int_equal(hotspan_profiler_start(&c), HOTSPAN_ESTATE);
  assert_int_equal(hotspan_profiler_register_thread(), HOTSPAN_OK);
  assert_int_equal(hotspan_profiler_unregister_thread(), HOTSPAN_OK);
  assert_int_equal(hotspan_profiler_unregister_thread(), HOTSPAN_ESTATE);
  assert_int_equal(hotspan_profiler_register_thread(), HOTSPAN_OK);
  assert_int_equal(hotspan_profiler_stop(), HOTSPAN_OK);
  assert_false(hotspan_profiler_running());
  hotspan_profiler_config_init(NULL); /* no crash */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_defaults, ts_clear_env_fixture),
      cmocka_unit_test_setup(test_environment, ts_clear_env_fixture),
      cmocka_unit_test_setup(test_bad_environment_is_ignored,
                             ts_clear_env_fixture),
      cmocka_unit_test_setup(test_code_over_environment, ts_clear_env_fixture),
      cmocka_unit_test_setup(test_bad_code_values_are_refused,
                             ts_clear_env_fixture),
      cmocka_unit_test(test_signal_names),
      cmocka_unit_test(test_stats_api),
      cmocka_unit_test_setup(test_start_stop_contract, ts_clear_env_fixture),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
