/* Trace sampler under concurrency: four threads decide at once, through the
 * rate limiter and through the lock-free rule path. The limiter must never
 * hand out more than its capacity plus what it refilled, and must not lose
 * tokens either. Run under TSan by the "concurrency" label. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hotspan/error.h"
#include "hotspan/tracer.h"
#include "tracer/sampler.h"

#define THREADS 4
#define CALLS 10000
#define STEP_NS UINT64_C(100000) /* each thread's clock advances 100 us */
#define T0 (UINT64_C(5000) * UINT64_C(1000000000))
#define LIMIT 1000.0

typedef struct worker {
  hs_sampler *s;
  pthread_barrier_t *start;
  int index;
  long kept, limited, dropped_by_rule, bad;
} worker;

static void *run(void *arg) {
  worker *w = arg;
  pthread_barrier_wait(w->start);
  for (int i = 0; i < CALLS; i++) {
    uint64_t now = T0 + (uint64_t)i * STEP_NS;
    uint64_t id = (uint64_t)w->index * CALLS + (uint64_t)i + 1;
    hs_sampling_decision d;
    /* Lock-free path: a rule with rate 0 never reaches the limiter. */
    hs_sampler_decide(w->s, "noisy", NULL, "op", "res", id, now, &d);
    if (d.priority == HOTSPAN_PRIORITY_USER_REJECT && d.limit_rate < 0 &&
        d.rule_rate == 0.0)
      w->dropped_by_rule++;
    else
      w->bad++;
    /* Limited path: the global rate 1 keeps, the limiter decides. */
    hs_sampler_decide(w->s, "web", NULL, "http.request", "GET /", id, now, &d);
    if (d.mechanism != HS_MECH_RULE || d.rule_rate != 1.0 ||
        !(d.limit_rate > 0.0 && d.limit_rate <= 1.0))
      w->bad++;
    else if (d.priority == HOTSPAN_PRIORITY_USER_KEEP)
      w->kept++;
    else if (d.priority == HOTSPAN_PRIORITY_USER_REJECT)
      w->limited++;
    else
      w->bad++;
  }
  return NULL;
}

static void test_limiter_under_threads(void **state) {
  (void)state;
  hs_sampler_config cfg = {1.0, "[{\"service\":\"noisy\",\"sample_rate\":0}]",
                           LIMIT};
  hs_sampler *s = NULL;
  char err[256];
  assert_int_equal(hs_sampler_new(&cfg, &s, err, sizeof err), HOTSPAN_OK);

  pthread_barrier_t start;
  assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
  pthread_t tids[THREADS];
  worker w[THREADS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < THREADS; i++) {
    w[i].s = s;
    w[i].start = &start;
    w[i].index = i;
    assert_int_equal(pthread_create(&tids[i], NULL, run, &w[i]), 0);
  }
  long kept = 0, limited = 0, dropped = 0, bad = 0;
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(tids[i], NULL), 0);
    kept += w[i].kept;
    limited += w[i].limited;
    dropped += w[i].dropped_by_rule;
    bad += w[i].bad;
  }
  pthread_barrier_destroy(&start);
  hs_sampler_free(s);

  assert_int_equal(bad, 0);
  assert_int_equal(dropped, (long)THREADS * CALLS);
  assert_int_equal(kept + limited, (long)THREADS * CALLS);
  /* Every thread starts at T0 and ends at T0 + (CALLS-1) * STEP: the bucket
   * starts full (LIMIT tokens) and refills LIMIT/s over that span. */
  double span_s = (double)((CALLS - 1) * STEP_NS) / 1e9;
  double budget = LIMIT + LIMIT * span_s; /* 1999.9 */
  print_message("kept %ld of %ld (budget %.1f)\n", kept, kept + limited,
                budget);
  assert_true((double)kept <= budget);
  /* Demand (40000/s) always exceeds supply, so no token is wasted: all but
   * the fraction left at the end (and rounding) are handed out. */
  assert_true((double)kept >= budget - 2.0);
}

/* Agent rates replaced while three threads decide through them: every
 * decision must come from one whole table (rate 0 or 1 for "web", the
 * default 1 for others), never a torn or freed one. */
#define RATE_SWAPS 2000
#define AGENT_DECIDERS 3

typedef struct agent_worker {
  hs_sampler *s;
  _Atomic int *stop;
  _Atomic int *started;
  long decisions, bad;
} agent_worker;

static void *agent_decider(void *arg) {
  agent_worker *w = arg;
  uint64_t id = 1;
  while (!atomic_load(w->stop)) {
    hs_sampling_decision d;
    hs_sampler_decide(w->s, "web", "prod", "op", "res", id++, T0, &d);
    int ok =
        d.mechanism == HS_MECH_AGENT_RATE &&
        ((d.agent_rate == 1.0 && d.priority == HOTSPAN_PRIORITY_AUTO_KEEP) ||
         (d.agent_rate == 0.0 && d.priority == HOTSPAN_PRIORITY_AUTO_REJECT));
    hs_sampler_decide(w->s, "other", "prod", "op", "res", id++, T0, &d);
    ok = ok && d.mechanism == HS_MECH_AGENT_RATE && d.agent_rate == 1.0;
    w->bad += !ok;
    if (w->decisions == 0)
      atomic_fetch_add(w->started, 1);
    w->decisions += 2;
  }
  return NULL;
}

static void test_agent_rates_under_threads(void **state) {
  (void)state;
  hs_sampler_config cfg = {-1.0, NULL, 0};
  hs_sampler *s = NULL;
  char err[256];
  assert_int_equal(hs_sampler_new(&cfg, &s, err, sizeof err), HOTSPAN_OK);
  static const char *const tables[2] = {
      "{\"rate_by_service\":{\"service:web,env:prod\":1,"
      "\"service:,env:\":1}}",
      "{\"rate_by_service\":{\"service:,env:\":1,"
      "\"service:web,env:prod\":0}}"};
  assert_int_equal(hs_sampler_set_agent_rates(s, tables[0], strlen(tables[0]),
                                              err, sizeof err),
                   HOTSPAN_OK);
  _Atomic int stop = 0, started = 0;
  agent_worker w[AGENT_DECIDERS];
  pthread_t tids[AGENT_DECIDERS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < AGENT_DECIDERS; i++) {
    w[i].s = s;
    w[i].stop = &stop;
    w[i].started = &started;
    assert_int_equal(pthread_create(&tids[i], NULL, agent_decider, &w[i]), 0);
  }
  /* Swap only while every decider is deciding. */
  while (atomic_load(&started) < AGENT_DECIDERS)
    sched_yield();
  for (int i = 0; i < RATE_SWAPS; i++) {
    const char *t = tables[i & 1];
    assert_int_equal(
        hs_sampler_set_agent_rates(s, t, strlen(t), err, sizeof err),
        HOTSPAN_OK);
    /* A malformed answer in between changes nothing. */
    assert_int_equal(hs_sampler_set_agent_rates(s, "{", 1, err, sizeof err),
                     HOTSPAN_ECONFIG);
  }
  atomic_store(&stop, 1);
  long decisions = 0, bad = 0;
  for (int i = 0; i < AGENT_DECIDERS; i++) {
    assert_int_equal(pthread_join(tids[i], NULL), 0);
    decisions += w[i].decisions;
    bad += w[i].bad;
  }
  hs_sampler_free(s);
  print_message("%ld decisions during %d swaps\n", decisions, RATE_SWAPS);
  assert_int_equal(bad, 0);
  assert_true(decisions > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_limiter_under_threads),
      cmocka_unit_test(test_agent_rates_under_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
