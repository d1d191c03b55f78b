/* A small program that profiles itself through the public API, for the
 * valgrind run (tests/profiler/valgrind/valgrind_profiler.sh): two threads burn
 * CPU, one sleeps, a batch of short-lived threads comes and goes, then the
 * profile is written to argv[1]. Exits 0 when the profiler took samples and
 * stopped cleanly. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hotspan/hotspan.h>

static volatile double sink;

static unsigned long long cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (unsigned long long)t.tv_sec * 1000000000u +
         (unsigned long long)t.tv_nsec;
}

static void *burner(void *arg) {
  (void)arg;
  unsigned long long until = cpu_ns() + 150000000ull;
  double x = 0;
  while (cpu_ns() < until)
    for (int i = 0; i < 10000; i++)
      x += i * 0.5;
  sink = x;
  return NULL;
}

static void *sleeper(void *arg) {
  (void)arg;
  struct timespec ts = {0, 300000000};
  while (nanosleep(&ts, &ts) != 0)
    ;
  return NULL;
}

static void *brief(void *arg) {
  return arg;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
    return 2;
  }
  hotspan_profiler_config cfg;
  hotspan_profiler_config_init(&cfg);
  cfg.ignore_environment = 1;
  cfg.cpu_hz = 199;
  cfg.wall_hz = 97;
  cfg.output_dir = argv[1];
  if (hotspan_profiler_start(&cfg) != HOTSPAN_OK)
    return 1;
  pthread_t t[3];
  pthread_create(&t[0], NULL, burner, NULL);
  pthread_create(&t[1], NULL, burner, NULL);
  pthread_create(&t[2], NULL, sleeper, NULL);
  for (int i = 0; i < 20; i++) {
    pthread_t b;
    if (pthread_create(&b, NULL, brief, NULL) == 0)
      pthread_join(b, NULL);
  }
  for (int i = 0; i < 3; i++)
    pthread_join(t[i], NULL);
  hotspan_profiler_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  hotspan_profiler_get_stats(&st);
  int rc = hotspan_profiler_stop();
  printf("cpu %llu wall %llu threads %llu written %llu\n",
         (unsigned long long)st.samples_cpu,
         (unsigned long long)st.samples_wall,
         (unsigned long long)st.threads_registered,
         (unsigned long long)st.profiles_written);
  return rc == HOTSPAN_OK && st.samples_cpu > 0 && st.samples_wall > 0 &&
                 st.threads_registered >= 24
             ? 0
             : 1;
}
