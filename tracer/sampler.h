/* Trace sampler: rules, global rate, token-bucket rate limiter.
 * Decisions are made once per trace by the tracer core (tracer/trace.c) and
 * never here for traces whose priority was extracted or set by the user. */
#ifndef HS_TRACER_SAMPLER_H
#define HS_TRACER_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_sampler hs_sampler;

typedef struct hs_sampler_config {
  double sample_rate;     /* 0..1; negative = unset */
  const char *rules_json; /* NULL = no rules */
  double rate_limit;      /* traces/s; negative = default 100; 0 = none */
} hs_sampler_config;

/* Decision makers, for _dd.p.dm ("-<mechanism>"). */
enum {
  HS_MECH_DEFAULT = 0,
  HS_MECH_AGENT_RATE = 1,
  HS_MECH_RULE = 3,
  HS_MECH_MANUAL = 4
};

typedef struct hs_sampling_decision {
  int priority;      /* HOTSPAN_PRIORITY_* */
  int mechanism;     /* HS_MECH_* */
  double rule_rate;  /* rate of the matching rule or global rate; <0 none */
  double limit_rate; /* effective limiter rate when consulted; <0 none */
  double agent_rate; /* the agent's rate that decided; <0 none */
} hs_sampling_decision;

/* Builds a sampler. cfg and its strings are only read during the call.
 * Returns HOTSPAN_OK and stores the sampler in *out (free it with
 * hs_sampler_free), or: HOTSPAN_EINVAL (out or cfg NULL), HOTSPAN_ECONFIG
 * (bad JSON, rule or rate: a one-line message naming the rule and byte
 * offset is written to err), HOTSPAN_ENOMEM. On error *out is NULL and
 * nothing is leaked. Rules format and semantics: docs/sampling.md.
 * Thread-safe (no shared state). */
int hs_sampler_new(const hs_sampler_config *cfg, hs_sampler **out, char *err,
                   size_t errlen);
/* NULL is a no-op. Must not run concurrently with other calls on s. */
void hs_sampler_free(hs_sampler *s);

/* Decides for a local root. Strings may be NULL (the span has no such
 * value: only an absent or all-'*' pattern matches it). env is the
 * tracer's environment (NULL or "" when none); only the agent's rates use
 * it. now_mono_ns is the caller's monotonic clock reading, used only by
 * the rate limiter, so the sampler never reads a clock itself. s NULL
 * yields the default decision (AUTO_KEEP, DEFAULT). Thread-safe; lock-free
 * unless a keep has to pass the rate limiter (one mutex) or no rule
 * matched while agent rates are known (a read lock on the rate table).
 * Not async-signal-safe. */
void hs_sampler_decide(hs_sampler *s, const char *service, const char *env,
                       const char *name, const char *resource,
                       uint64_t trace_id_low, uint64_t now_mono_ns,
                       hs_sampling_decision *out);

/* Replaces the agent's sampling rates with those of an agent response
 * (len bytes of JSON, need not be NUL-terminated), e.g.
 * {"rate_by_service":{"service:web,env:prod":0.5,"service:,env:":1}}.
 * Roots that no rule (and no global rate) decides are then kept by the
 * rate of "service:<service>,env:<env>", else of the default key
 * "service:,env:", by trace id like a rule (mechanism AGENT_RATE, priority
 * AUTO_KEEP / AUTO_REJECT, no rate limiter). An object without a usable
 * rate for any key ({"rate_by_service":{}}) clears the table.
 * Returns HOTSPAN_OK; HOTSPAN_EINVAL (s NULL, or json NULL with len > 0);
 * HOTSPAN_ECONFIG for a malformed document (not JSON, no
 * "rate_by_service" object, a key not of the form "service:S,env:E", a
 * rate that is not a number in [0,1], more than 10000 keys or 1 MiB):
 * a one-line message goes to err; HOTSPAN_ENOMEM. On error the previous
 * rates stay in force. Thread-safe (may run concurrently with decisions,
 * e.g. on the transport thread). */
int hs_sampler_set_agent_rates(hs_sampler *s, const char *json, size_t len,
                               char *err, size_t errlen);

/* Effective settings, for the start-up configuration log: appends a JSON
 * value describing rules, rate and limit to buf (common/buf.h), e.g.
 * {"sample_rate":0.5,"rules":[{"service":"web","sample_rate":0.1}],
 * "rate_limit":100} ("sample_rate":null when unset, "rate_limit":0 for no
 * limit); "null" for s NULL. Thread-safe. */
struct hs_buf;
void hs_sampler_describe(const hs_sampler *s, struct hs_buf *buf);

/* Maps OTEL_TRACES_SAMPLER (+ _ARG) to a sample rate: always_on → 1,
 * always_off → 0, traceidratio / parentbased_* likewise with arg (default
 * 1.0 when arg is NULL or empty; otherwise a number in [0,1]). Sampler
 * names are matched without regard to case. Returns 0 and sets *rate, or
 * -1 (leaving *rate alone) if the sampler name or arg is not understood.
 * Thread-safe. */
int hs_sampler_rate_from_otel(const char *sampler, const char *arg,
                              double *rate);

#endif
