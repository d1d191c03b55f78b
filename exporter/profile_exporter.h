/* Profile exporter: takes the profiles the profiler engine encodes at the
 * end of every period (CPU and wall, one after the other, through the
 * profile sink of profiler/profile_sink.h, which lib/profiler.c installs) and
 * ships them:
 *   - to the Datadog Agent: one upload per period with both profiles
 *     (exporter/dd_profile.h), target "datadog-profiles";
 *   - to Grafana Pyroscope: one request per profile (exporter/pyroscope.h),
 *     target "pyroscope".
 * Files are not this module's: the engine writes them when an output
 * directory is set.
 *
 * Configuration comes from the environment (docs/export-profiles.md):
 * HOTSPAN_PROFILING_EXPORTERS (default "datadog"), the agent URL
 * (exporter/dd_agent_url.h), HOTSPAN_PYROSCOPE_* / PYROSCOPE_*, service, env,
 * version and tags as the tracer reads them.
 *
 * Thread safety: every function is thread-safe; none is
 * async-signal-safe. */
#ifndef HS_EXPORTER_PROFILE_EXPORTER_H
#define HS_EXPORTER_PROFILE_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "exporter/dd_agent_url.h"
#include "exporter/profile_tags.h"
#include "exporter/transport.h"

enum {
  HS_PROFEXP_DATADOG = 1u << 0,
  HS_PROFEXP_PYROSCOPE = 1u << 1,
  HS_PROFEXP_FILE = 1u << 2 /* accepted; files depend on the output dir */
};

/* Default time the last uploads may take at stop / exit. */
#define HS_PROFEXP_FLUSH_TIMEOUT_MS 2000

typedef struct hs_profexp_config {
  unsigned exporters; /* HS_PROFEXP_* bits */
  hs_agent_url agent;
  char pyroscope_url[1024];
  char pyroscope_app[256];
  char pyroscope_tenant[256]; /* X-Scope-OrgID, "" = none */
  char pyroscope_user[256];   /* basic auth, "" = none */
  char pyroscope_password[256];
  int flush_timeout_ms;
  /* Identity (owned, NULL when unset except service). With
   * follow_identity, replaced by the process identity
   * (context/identity.h) before each upload; use_env is then how to
   * resolve it while no tracer published one. */
  int follow_identity;
  int use_env;
  int pyroscope_app_set; /* pyroscope_app given; else the service */
  char *service;
  char *env;
  char *version;
  char host[256];
  char runtime_id[40];
  hs_profile_tag *tags; /* owned keys and values */
  size_t ntags;
  /* From the profiler's settings. */
  unsigned cpu_hz;  /* 0: CPU profiling off */
  unsigned wall_hz; /* 0: wall profiling off */
} hs_profexp_config;

/* Parses an exporter list ("datadog,pyroscope", also "dd", "file",
 * "none"; commas or spaces; case-insensitive) into *out. Returns 0, or -1
 * if a name is unknown (the known ones are still set in *out). "none"
 * alone gives 0. */
int hs_profexp_parse_exporters(const char *list, unsigned *out);

/* Fills c from the environment (use_env = 0: defaults only, which means
 * no network exporter at all: a program that ignores the environment
 * configures exporters in code). cpu_period_ns / wall_period_ns are the
 * profiler's (0 = off). Returns HOTSPAN_OK or HOTSPAN_ENOMEM. Free with
 * hs_profexp_config_free (NULL-safe, idempotent). */
int hs_profexp_config_load(hs_profexp_config *c, int use_env,
                           uint64_t cpu_period_ns, uint64_t wall_period_ns);
void hs_profexp_config_free(hs_profexp_config *c);

/* ---- the pairing and request building, without the network --------- */

typedef struct hs_profexp hs_profexp;

/* Where built requests go: dest is HS_PROFEXP_DATADOG or
 * HS_PROFEXP_PYROSCOPE; body ownership passes (free() it); headers are
 * per-request ("Name: value", NULL-terminated, valid during the call).
 * Production sends through hs_target_send. */
typedef int (*hs_profexp_send_fn)(void *arg, unsigned dest, char *body,
                                  size_t len, const char *const *headers,
                                  const char *url, uint32_t items);

/* New exporter over c (copied: c may be freed after). NULL if out of
 * memory. */
hs_profexp *hs_profexp_new(const hs_profexp_config *c, hs_profexp_send_fn fn,
                           void *arg);

/* One encoded profile (type HS_PROFILE_CPU or HS_PROFILE_WALL). For
 * Datadog a CPU profile waits for the wall profile of the same period
 * (same start) so that both go in one upload; it goes alone when wall
 * profiling is off, when the next CPU profile comes first, when a wall
 * profile of another period comes, or at hs_profexp_flush. Pyroscope gets
 * every profile at once. Copies data. */
void hs_profexp_on_profile(hs_profexp *x, int type, const uint8_t *data,
                           size_t len, uint64_t start_ns, uint64_t end_ns);

/* Sends what waits for its pair. */
void hs_profexp_flush(hs_profexp *x);

/* Counters of requests built and dropped here (before the transport). */
typedef struct hs_profexp_counts {
  uint64_t dd_uploads;    /* Datadog uploads handed to the sender */
  uint64_t dd_unpaired;   /* of those, with one profile only */
  uint64_t pyro_requests; /* Pyroscope requests handed to the sender */
  uint64_t build_errors;  /* requests not built (memory, size) */
  uint64_t send_errors;   /* sender refused (budget full...) */
} hs_profexp_counts;
void hs_profexp_get_counts(hs_profexp *x, hs_profexp_counts *out);

void hs_profexp_free(hs_profexp *x); /* NULL-safe; drops what waits */

/* ---- the process-wide exporter the profiler uses -------------------- */

/* Loads the configuration and creates the transport targets of a session.
 * Called by hotspan_profiler_start before the engine starts. Returns
 * HOTSPAN_OK (also when no exporter is configured: hs_profexp_active then
 * says 0), HOTSPAN_ESTATE if already started, HOTSPAN_ENOMEM. A target
 * that cannot be created is logged and left out. */
int hs_profexp_start(int use_env, uint64_t cpu_period_ns,
                     uint64_t wall_period_ns);

/* 1 while a session with at least one network exporter runs. */
int hs_profexp_active(void);

/* One profile handed to the profile sink, for the session: paired with its
 * other type and uploaded. Does nothing without a session. */
void hs_profexp_session_profile(int type, const uint8_t *data, size_t len,
                                uint64_t start_unix_ns, uint64_t end_unix_ns);

/* After the engine stopped (its last profiles delivered) and the sink was
 * removed: sends what waits and frees the targets, waiting at most
 * timeout_ms (< 0: the configured flush timeout) for the last uploads in
 * total. Safe when not started. */
void hs_profexp_stop(int timeout_ms);

/* Counters of the session's index-th target (Datadog first, then
 * Pyroscope, those present only) in the public form; see
 * hotspan_profiler_get_exporter_stats. */
struct hotspan_exporter_stats;
int hs_profexp_target_stats(size_t index, struct hotspan_exporter_stats *out);

#endif
