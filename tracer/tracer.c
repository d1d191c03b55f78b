/* Tracer lifecycle: configuration, sinks, writer thread, stats, and the
 * process-wide list of tracers that fork handling walks. The sinks are
 * chosen and built by the wiring code (lib/tracer_new.c). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "tracer/build.h"
#include "tracer/internal.h"

/* ------------------------------------------------------------ tracer list */

static pthread_mutex_t tracers_mu = PTHREAD_MUTEX_INITIALIZER;
static hotspan_tracer *tracers;

void hs_writer_after_fork_child(hotspan_tracer *t);
void hs_trace_reclaim_orphans(hotspan_tracer *t);
void hs_trace_close_all(hotspan_tracer *t);

/* Fork: every tracer's queue and orphan locks are held across fork() so
 * that the child does not inherit a lock owned by a thread it lacks. */
static void tracers_prepare(void) {
  pthread_mutex_lock(&tracers_mu);
  for (hotspan_tracer *t = tracers; t != NULL; t = t->next_tracer) {
    pthread_mutex_lock(&t->writer.mu);
    pthread_mutex_lock(&t->orphans_mu);
    for (unsigned i = 0; i < HS_LIVE_SHARDS; i++)
      pthread_mutex_lock(&t->live[i].mu);
  }
}

static void tracers_parent(void) {
  for (hotspan_tracer *t = tracers; t != NULL; t = t->next_tracer) {
    for (unsigned i = HS_LIVE_SHARDS; i-- > 0;)
      pthread_mutex_unlock(&t->live[i].mu);
    pthread_mutex_unlock(&t->orphans_mu);
    pthread_mutex_unlock(&t->writer.mu);
  }
  pthread_mutex_unlock(&tracers_mu);
}

static void tracers_child(void) {
  for (hotspan_tracer *t = tracers; t != NULL; t = t->next_tracer) {
    /* The child is another process, with a runtime id of its own. */
    hs_identity_runtime_id(t->settings.runtime_id);
    pthread_mutex_init(&t->orphans_mu, NULL);
    for (unsigned i = 0; i < HS_LIVE_SHARDS; i++)
      pthread_mutex_init(&t->live[i].mu, NULL);
    hs_writer_after_fork_child(t); /* re-initialises writer.mu */
    for (hs_trace_sink *s = t->sinks; s != NULL; s = s->next)
      if (s->after_fork_child != NULL)
        s->after_fork_child(s);
  }
  pthread_mutex_init(&tracers_mu, NULL);
}

static const hs_fork_handler tracers_fork = {
    HS_FORK_RANK_TRACERS, tracers_prepare, tracers_parent, tracers_child};

/* At exit, tracers the program never freed get one flush, so that the
 * last traces of a short program are delivered; bounded by
 * HS_EXIT_FLUSH_MS in total, so a dead backend does not hold the exit. */
#define HS_EXIT_FLUSH_MS 2000

static int flush_tracer(hotspan_tracer *t, int timeout_ms, int final);

static void flush_at_exit(void) {
  uint64_t start = hs_now_mono_ns();
  pthread_mutex_lock(&tracers_mu);
  for (hotspan_tracer *t = tracers; t != NULL; t = t->next_tracer) {
    uint64_t spent_ms = (hs_now_mono_ns() - start) / 1000000u;
    if (spent_ms >= HS_EXIT_FLUSH_MS)
      break;
    (void)flush_tracer(t, HS_EXIT_FLUSH_MS - (int)spent_ms, 1);
  }
  pthread_mutex_unlock(&tracers_mu);
}

static void register_exit_flush(void) {
  (void)atexit(flush_at_exit);
}

/* ------------------------------------------------------------ sinks */

int hs_tracer_add_sink(hotspan_tracer *t, hs_trace_sink *sink) {
  if (t == NULL || sink == NULL)
    return HOTSPAN_EINVAL;
  sink->next = NULL;
  hs_trace_sink **pp = &t->sinks;
  while (*pp != NULL)
    pp = &(*pp)->next;
  *pp = sink;
  return HOTSPAN_OK;
}

static void discard_write(hs_trace_sink *self, const hs_chunk *c) {
  (void)self;
  (void)c;
}
static void discard_destroy(hs_trace_sink *self) {
  free(self);
}

hs_trace_sink *hs_sink_discard_new(void) {
  hs_trace_sink *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->name = "discard";
  s->write = discard_write;
  s->destroy = discard_destroy;
  return s;
}

/* ------------------------------------------------------------ lifecycle */

void hotspan_config_init(hotspan_config *cfg) {
  if (cfg == NULL)
    return;
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->sample_rate = -1;
  cfg->rate_limit = -1;
}

static int set_agent_rates(void *arg, const char *json, size_t len, char *err,
                           size_t errlen) {
  hotspan_tracer *t = arg;
  return hs_sampler_set_agent_rates(t->sampler, json, len, err, errlen);
}

int hs_tracer_create(const hotspan_config *cfg, hotspan_tracer **out) {
  if (out == NULL)
    return HOTSPAN_EINVAL;
  *out = NULL;
  /* A program built against an older, shorter hotspan_config passes a
   * smaller struct_size: read that prefix over the defaults. Anything
   * else (0, garbage, larger than this library knows) is refused. */
  hotspan_config sized;
  if (cfg != NULL && cfg->struct_size != sizeof *cfg) {
    if (cfg->struct_size <= offsetof(hotspan_config, service) ||
        cfg->struct_size > sizeof *cfg) {
      hs_log(HS_LOG_ERROR,
             "hotspan_config not initialised with "
             "hotspan_config_init (struct_size %u)",
             cfg->struct_size);
      return HOTSPAN_EINVAL;
    }
    hotspan_config_init(&sized);
    memcpy(&sized, cfg, cfg->struct_size);
    sized.struct_size = sizeof sized;
    cfg = &sized;
  }
  (void)hs_fork_register(&tracers_fork);
  hotspan_tracer *t = calloc(1, sizeof *t);
  if (t == NULL)
    return HOTSPAN_ENOMEM;
  char err[256] = "";
  int rc = hs_settings_load(cfg, &t->settings, err, sizeof err);
  if (rc != HOTSPAN_OK) {
    hs_log(HS_LOG_ERROR, "invalid configuration: %s", err);
    hs_settings_free(&t->settings);
    free(t);
    return rc;
  }
  hs_sampler_config sc = {t->settings.sample_rate, t->settings.sampling_rules,
                          t->settings.rate_limit};
  rc = hs_sampler_new(&sc, &t->sampler, err, sizeof err);
  if (rc == HOTSPAN_ECONFIG && !t->settings.rules_from_code) {
    /* Bad rules from the environment: logged and ignored, like every
     * other bad environment value. */
    hs_log(HS_LOG_WARN, "ignoring sampling rules from the environment: %s",
           err);
    free(t->settings.sampling_rules);
    t->settings.sampling_rules = NULL;
    sc.rules_json = NULL;
    rc = hs_sampler_new(&sc, &t->sampler, err, sizeof err);
  }
  if (rc != HOTSPAN_OK) {
    hs_log(HS_LOG_ERROR, "invalid sampling configuration: %s", err);
    hs_settings_free(&t->settings);
    free(t);
    return rc;
  }
  pthread_mutex_init(&t->orphans_mu, NULL);
  for (unsigned i = 0; i < HS_LIVE_SHARDS; i++)
    pthread_mutex_init(&t->live[i].mu, NULL);
  t->host.settings = &t->settings;
  t->host.set_agent_rates = set_agent_rates;
  t->host.arg = t;
  *out = t;
  return HOTSPAN_OK;
}

const hs_trace_sink_host *hs_tracer_sink_host(hotspan_tracer *t) {
  return &t->host;
}

void hs_tracer_discard(hotspan_tracer *t) {
  if (t == NULL)
    return;
  /* No span exists (never launched, or every span reclaimed by
   * hotspan_tracer_free): the sinks, sampler and locks go as they came. */
  for (hs_trace_sink *s = t->sinks, *n; s != NULL; s = n) {
    n = s->next;
    s->destroy(s);
  }
  hs_sampler_free(t->sampler);
  hs_settings_free(&t->settings);
  pthread_mutex_destroy(&t->orphans_mu);
  for (unsigned i = 0; i < HS_LIVE_SHARDS; i++)
    pthread_mutex_destroy(&t->live[i].mu);
  free(t);
}

int hs_tracer_launch(hotspan_tracer *t) {
  int rc = hs_writer_start(t);
  if (rc != HOTSPAN_OK)
    return rc;

  hs_buf b;
  hs_buf_init(&b, 1 << 16);
  hs_settings_describe(&t->settings, t->sampler, t->sinks, &b);
  hs_log_raw(HS_LOG_INFO, hs_buf_cstr(&b));
  hs_buf_free(&b);

  static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
  pthread_once(&exit_once, register_exit_flush);
  pthread_mutex_lock(&tracers_mu);
  t->next_tracer = tracers;
  tracers = t;
  pthread_mutex_unlock(&tracers_mu);
  /* The first tracer says who the process is (context/identity.h): its
   * profiles then carry the service, env and version set here. */
  hs_identity id = {t->settings.service, t->settings.env, t->settings.version,
                    t->settings.tags, t->settings.ntags};
  (void)hs_identity_publish(&id);
  return HOTSPAN_OK;
}

/* Waits for every sink to deliver what it handed on, sharing timeout_ms. */
static int sync_sinks(hotspan_tracer *t, uint64_t start_mono, int timeout_ms,
                      int final) {
  int rc = HOTSPAN_OK;
  for (hs_trace_sink *s = t->sinks; s != NULL; s = s->next) {
    if (s->sync == NULL)
      continue;
    uint64_t spent_ms = (hs_now_mono_ns() - start_mono) / 1000000u;
    int left =
        spent_ms >= (uint64_t)timeout_ms ? 0 : timeout_ms - (int)spent_ms;
    if (s->sync(s, left, final) != HOTSPAN_OK)
      rc = HOTSPAN_EIO;
  }
  return rc;
}

static int flush_tracer(hotspan_tracer *t, int timeout_ms, int final) {
  if (timeout_ms <= 0)
    timeout_ms = 5000;
  uint64_t start = hs_now_mono_ns();
  int rc = hs_writer_flush(t, timeout_ms);
  if (sync_sinks(t, start, timeout_ms, final) != HOTSPAN_OK)
    rc = HOTSPAN_EIO;
  return rc;
}

int hotspan_tracer_flush(hotspan_tracer *t, int timeout_ms) {
  if (t == NULL)
    return HOTSPAN_EINVAL;
  return flush_tracer(t, timeout_ms, 0);
}

void hotspan_tracer_free(hotspan_tracer *t) {
  if (t == NULL)
    return;
  pthread_mutex_lock(&tracers_mu);
  for (hotspan_tracer **pp = &tracers; *pp != NULL; pp = &(*pp)->next_tracer) {
    if (*pp == t) {
      *pp = t->next_tracer;
      break;
    }
  }
  pthread_mutex_unlock(&tracers_mu);

  uint64_t start = hs_now_mono_ns();
  hs_trace_close_all(t);
  int budget = t->settings.shutdown_timeout_ms;
  hs_writer_stop(t, budget > 0 ? budget : 1);
  hs_trace_reclaim_orphans(t);
  /* The writer's last pass forced every sink to hand its data on; give
   * delivery what is left of the shutdown budget, so that a dead backend
   * never holds the program's exit longer than that. */
  (void)sync_sinks(t, start, budget, 1);
  hs_tracer_discard(t); /* now as empty as a tracer never launched */
}

int hotspan_tracer_get_stats(hotspan_tracer *t, hotspan_tracer_stats *out) {
  if (t == NULL || out == NULL || out->struct_size < sizeof(uint32_t))
    return HOTSPAN_EINVAL;
  hotspan_tracer_stats s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
#define HS_LOAD(f)                                                             \
  s.f = atomic_load_explicit(&t->counters.f, memory_order_relaxed)
  HS_LOAD(spans_created);
  HS_LOAD(spans_finished);
  HS_LOAD(spans_dropped);
  HS_LOAD(spans_unfinished);
  HS_LOAD(traces_kept);
  HS_LOAD(traces_dropped);
  HS_LOAD(traces_rate_limited);
  HS_LOAD(chunks_partial);
  HS_LOAD(chunks_queue_dropped);
  HS_LOAD(extract_errors);
#undef HS_LOAD
  /* Copy what both sides know; an older caller gets a prefix. */
  size_t n = out->struct_size < sizeof s ? out->struct_size : sizeof s;
  memcpy(out, &s, n);
  out->struct_size = (uint32_t)n;
  return HOTSPAN_OK;
}

int hotspan_tracer_get_exporter_stats(hotspan_tracer *t, size_t index,
                                      hotspan_exporter_stats *out) {
  if (t == NULL || out == NULL || out->struct_size < sizeof(uint32_t))
    return HOTSPAN_EINVAL;
  size_t i = 0;
  for (hs_trace_sink *s = t->sinks; s != NULL; s = s->next) {
    if (s->stats == NULL || i++ != index)
      continue;
    hotspan_exporter_stats full;
    memset(&full, 0, sizeof full);
    s->stats(s, &full);
    full.struct_size = sizeof full;
    size_t n = out->struct_size < sizeof full ? out->struct_size : sizeof full;
    memcpy(out, &full, n);
    out->struct_size = (uint32_t)n;
    return HOTSPAN_OK;
  }
  return HOTSPAN_EINVAL;
}
