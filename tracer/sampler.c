/* Trace sampler. The decision for a new local root, in order:
 *   1. the first rule whose service/name/resource patterns all match;
 *   2. the global sample rate, as a catch-all rule after the explicit ones;
 *   3. the Datadog agent's rate for the root's service and env, or its
 *      default rate, when the agent sent rates (mechanism AGENT_RATE,
 *      AUTO_KEEP / AUTO_REJECT, not rate limited);
 *   4. otherwise keep (AUTO_KEEP, mechanism DEFAULT).
 * A rule (or the global rate) decides by trace id; if it says keep, the
 * rate limiter may still turn the keep into a drop. Rule decisions are
 * user decisions in Datadog's terms: USER_KEEP / USER_REJECT, mechanism
 * RULE (decision maker "-3"), also when the limiter drops.
 *
 * After hs_sampler_new everything but the limiter and the agent's rates is
 * immutable, so the matching and rate paths read shared memory without
 * locks; only a keep that must pass the limiter takes its mutex. The
 * agent's rates are replaced as a whole table (each response of the agent)
 * under a read-write lock, read only for roots no rule decided: decisions
 * are made once per trace, so a read lock there costs little. */
#include "tracer/sampler.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/env.h"
#include "common/json_read.h"
#include "hotspan/error.h"
#include "hotspan/tracer.h"
#include "tracer/glob.h"

/* Caps on the rules document: generous for hand-written configuration,
 * small enough that a broken or hostile value cannot cost much. */
#define RULES_MAX_BYTES ((size_t)64 * 1024)
#define RULES_MAX_COUNT 256
/* array > rule object; anything deeper is a mistake already. */
#define RULES_MAX_DEPTH 4u

#define DEFAULT_RATE_LIMIT 100.0
#define NS_PER_S UINT64_C(1000000000)

/* Knuth's multiplicative hashing factor that Datadog tracers share, so that
 * every service given the same rate keeps the same traces. */
#define KNUTH_FACTOR UINT64_C(1111111111111111111)

typedef struct rule {
  /* Glob patterns, NUL-free; NULL = the field is not constrained. */
  char *service;
  char *name;
  char *resource;
  double rate;
  /* Keep iff (trace_id_low * KNUTH_FACTOR) mod 2^64 < threshold, unless
   * keep_all (rate 1, where the threshold 2^64 does not fit). */
  uint64_t threshold;
  int keep_all;
} rule;

/* Token bucket plus the counters behind the reported effective rate. */
typedef struct limiter {
  pthread_mutex_t mu;
  double per_second; /* refill rate */
  double capacity;   /* max(per_second, 1): a limit below 1/s still lets
                        one trace through every 1/limit seconds */
  double tokens;
  uint64_t last_ns; /* time of the latest refill */
  int started;
  /* Effective rate: allowed/seen over the current 1 s window and the one
   * before it, like Datadog's _dd.limit_psr. */
  uint64_t window_start_ns;
  uint64_t seen_cur, allowed_cur;
  uint64_t seen_prev, allowed_prev;
} limiter;

/* One entry of the agent's rate_by_service: "service:S,env:E" → rate. */
typedef struct agent_rate {
  char *service; /* NUL-free; "" for the default key */
  char *env;
  rule r; /* only rate / threshold / keep_all are used */
} agent_rate;

typedef struct agent_table {
  agent_rate *items;
  size_t n;
} agent_table;

/* Caps on an agent response: far above what an agent sends (one key per
 * service and env it has seen), small enough to bound a broken one. */
#define AGENT_MAX_BYTES ((size_t)1 << 20)
#define AGENT_MAX_KEYS 10000
#define AGENT_MAX_DEPTH 8u

struct hs_sampler {
  rule *rules;
  size_t nrules;
  int has_global;
  rule global;       /* the global sample rate as a catch-all rule */
  double rate_limit; /* effective: 0 = none */
  int has_limiter;
  limiter lim;
  /* The agent's rates: agent is NULL until the first usable response.
   * has_agent lets decisions skip the lock while there is none. */
  pthread_rwlock_t agent_mu;
  agent_table *agent;
  _Atomic int has_agent;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------ rate rule */

static void rule_set_rate(rule *r, double rate) {
  r->rate = rate;
  r->keep_all = rate >= 1.0;
  if (r->keep_all || rate <= 0.0) {
    r->threshold = 0;
    return;
  }
  /* rate * 2^64 is exact (a power-of-two scaling) and below 2^64 for
   * rate < 1. An integer h is < x iff h < ceil(x). */
  double x = rate * 18446744073709551616.0;
  uint64_t t = (uint64_t)x;
  if ((double)t < x)
    t++;
  r->threshold = t;
}

static int rate_keeps(const rule *r, uint64_t trace_id_low) {
  if (r->keep_all)
    return 1;
  return trace_id_low * KNUTH_FACTOR < r->threshold;
}

static int rule_matches(const rule *r, const char *service, const char *name,
                        const char *resource) {
  return hs_glob_field_matches(r->service, service) &&
         hs_glob_field_matches(r->name, name) &&
         hs_glob_field_matches(r->resource, resource);
}

/* -------------------------------------------------------------- limiter */

static int limiter_init(limiter *l, double per_second) {
  memset(l, 0, sizeof *l);
  if (pthread_mutex_init(&l->mu, NULL) != 0)
    return -1;
  l->per_second = per_second;
  l->capacity = per_second < 1.0 ? 1.0 : per_second;
  l->tokens = l->capacity;
  return 0;
}

/* Takes a token if there is one at now_ns. Stores the effective rate
 * (including this call) in *effective. Times earlier than one already seen
 * (threads read the clock, then race for the lock) add no tokens. */
static int limiter_allow(limiter *l, uint64_t now_ns, double *effective) {
  pthread_mutex_lock(&l->mu);
  if (!l->started) {
    l->started = 1;
    l->last_ns = now_ns;
    l->window_start_ns = now_ns;
  } else if (now_ns > l->last_ns) {
    l->tokens += (double)(now_ns - l->last_ns) * l->per_second / 1e9;
    if (l->tokens > l->capacity)
      l->tokens = l->capacity;
    l->last_ns = now_ns;
  }
  if (now_ns > l->window_start_ns && now_ns - l->window_start_ns >= NS_PER_S) {
    uint64_t windows = (now_ns - l->window_start_ns) / NS_PER_S;
    if (windows == 1) {
      l->seen_prev = l->seen_cur;
      l->allowed_prev = l->allowed_cur;
    } else {
      l->seen_prev = l->allowed_prev = 0;
    }
    l->seen_cur = l->allowed_cur = 0;
    l->window_start_ns += windows * NS_PER_S;
  }
  int allowed = l->tokens >= 1.0;
  if (allowed)
    l->tokens -= 1.0;
  l->seen_cur++;
  l->allowed_cur += (uint64_t)allowed;
  *effective = (double)(l->allowed_cur + l->allowed_prev) /
               (double)(l->seen_cur + l->seen_prev);
  pthread_mutex_unlock(&l->mu);
  return allowed;
}

/* ---------------------------------------------------------------- rules */

/* Printable rendering of a JSON key for messages (keys may hold anything). */
static void show_key(const hs_json_member *m, char *out, size_t outlen) {
  size_t k = 0;
  for (size_t i = 0; i < m->key_len && k + 4 < outlen; i++) {
    unsigned char c = (unsigned char)m->key[i];
    out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : (char)'?';
  }
  if (k < m->key_len && k + 3 < outlen) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = '\0';
}

static int parse_pattern(const hs_json_member *m, size_t idx, char **out,
                         char *err, size_t errlen) {
  const hs_json_value *v = &m->value;
  if (v->type != HS_JSON_STRING) {
    set_err(err, errlen,
            "sampling rules: rules[%zu]: \"%s\" must be a string (a glob "
            "pattern), got %s at byte %zu",
            idx, m->key, hs_json_type_name(v->type), v->offset);
    return HOTSPAN_ECONFIG;
  }
  if (strlen(v->u.string.ptr) != v->u.string.len) {
    set_err(err, errlen,
            "sampling rules: rules[%zu]: \"%s\" contains a NUL character "
            "(byte %zu)",
            idx, m->key, v->offset);
    return HOTSPAN_ECONFIG;
  }
  *out = strdup(v->u.string.ptr);
  return *out != NULL ? HOTSPAN_OK : HOTSPAN_ENOMEM;
}

static int parse_rule(const hs_json_value *obj, size_t idx, rule *r, char *err,
                      size_t errlen) {
  if (obj->type != HS_JSON_OBJECT) {
    set_err(err, errlen,
            "sampling rules: rules[%zu] (byte %zu) is %s %s; each rule must "
            "be an object",
            idx, obj->offset, obj->type == HS_JSON_ARRAY ? "an" : "a",
            hs_json_type_name(obj->type));
    return HOTSPAN_ECONFIG;
  }
  int have_rate = 0;
  for (size_t i = 0; i < obj->u.object.len; i++) {
    const hs_json_member *m = &obj->u.object.members[i];
    const hs_json_value *v = &m->value;
    int rc = HOTSPAN_OK;
    if (strcmp(m->key, "service") == 0 && m->key_len == 7) {
      rc = parse_pattern(m, idx, &r->service, err, errlen);
    } else if (strcmp(m->key, "name") == 0 && m->key_len == 4) {
      rc = parse_pattern(m, idx, &r->name, err, errlen);
    } else if (strcmp(m->key, "resource") == 0 && m->key_len == 8) {
      rc = parse_pattern(m, idx, &r->resource, err, errlen);
    } else if (strcmp(m->key, "sample_rate") == 0 && m->key_len == 11) {
      if (v->type != HS_JSON_NUMBER) {
        set_err(err, errlen,
                "sampling rules: rules[%zu]: \"sample_rate\" must be a number "
                "between 0 and 1, got %s at byte %zu",
                idx, hs_json_type_name(v->type), v->offset);
        return HOTSPAN_ECONFIG;
      }
      double rate = v->u.number.value;
      if (!(rate >= 0.0 && rate <= 1.0)) {
        set_err(err, errlen,
                "sampling rules: rules[%zu]: \"sample_rate\" must be between 0 "
                "and 1, got %g at byte %zu",
                idx, rate, v->offset);
        return HOTSPAN_ECONFIG;
      }
      rule_set_rate(r, rate);
      have_rate = 1;
    } else if (strcmp(m->key, "tags") == 0 && m->key_len == 4) {
      set_err(err, errlen,
              "sampling rules: rules[%zu]: \"tags\" (byte %zu) is not "
              "supported: rules are decided when the root span starts, from "
              "its service, name and resource only",
              idx, m->key_offset);
      return HOTSPAN_ECONFIG;
    } else if (strcmp(m->key, "max_per_second") == 0 && m->key_len == 14) {
      set_err(err, errlen,
              "sampling rules: rules[%zu]: \"max_per_second\" (byte %zu) is "
              "not supported in trace sampling rules (Datadog uses it in "
              "span sampling rules); use the global rate limit "
              "(DD_TRACE_RATE_LIMIT)",
              idx, m->key_offset);
      return HOTSPAN_ECONFIG;
    } else {
      char shown[64];
      show_key(m, shown, sizeof shown);
      set_err(err, errlen,
              "sampling rules: rules[%zu]: unknown key \"%s\" at byte %zu "
              "(known: service, name, resource, sample_rate)",
              idx, shown, m->key_offset);
      return HOTSPAN_ECONFIG;
    }
    if (rc != HOTSPAN_OK)
      return rc;
  }
  if (!have_rate) {
    set_err(err, errlen,
            "sampling rules: rules[%zu] (byte %zu) has no \"sample_rate\"; it "
            "is required",
            idx, obj->offset);
    return HOTSPAN_ECONFIG;
  }
  return HOTSPAN_OK;
}

static void rule_free(rule *r) {
  free(r->service);
  free(r->name);
  free(r->resource);
}

static int parse_rules(hs_sampler *s, const char *json, char *err,
                       size_t errlen) {
  size_t len = strnlen(json, RULES_MAX_BYTES + 1);
  if (len > RULES_MAX_BYTES) {
    set_err(err, errlen,
            "sampling rules: the JSON is larger than %zu bytes; that many "
            "rules cannot be meant",
            RULES_MAX_BYTES);
    return HOTSPAN_ECONFIG;
  }
  hs_json_limits lim = {RULES_MAX_BYTES, RULES_MAX_DEPTH};
  hs_json_doc *doc = NULL;
  char jerr[192];
  if (hs_json_parse(json, len, &lim, &doc, jerr, sizeof jerr, NULL) != 0) {
    if (strncmp(jerr, "out of memory", 13) == 0)
      return HOTSPAN_ENOMEM;
    set_err(err, errlen, "sampling rules: %s", jerr);
    return HOTSPAN_ECONFIG;
  }
  const hs_json_value *root = hs_json_root(doc);
  int rc = HOTSPAN_OK;
  if (root->type != HS_JSON_ARRAY) {
    set_err(err, errlen,
            "sampling rules: expected a JSON array of rule objects, got %s "
            "%s",
            root->type == HS_JSON_OBJECT ? "an" : "a",
            hs_json_type_name(root->type));
    rc = HOTSPAN_ECONFIG;
  } else if (root->u.array.len > RULES_MAX_COUNT) {
    set_err(err, errlen,
            "sampling rules: %zu rules given; at most %d are supported",
            root->u.array.len, RULES_MAX_COUNT);
    rc = HOTSPAN_ECONFIG;
  } else if (root->u.array.len > 0) {
    s->rules = calloc(root->u.array.len, sizeof *s->rules);
    if (s->rules == NULL) {
      rc = HOTSPAN_ENOMEM;
    } else {
      for (size_t i = 0; i < root->u.array.len && rc == HOTSPAN_OK; i++) {
        /* Counted before parsing so that hs_sampler_free releases a
         * half-parsed rule's strings too. */
        s->nrules = i + 1;
        rc = parse_rule(&root->u.array.items[i], i, &s->rules[i], err, errlen);
      }
    }
  }
  hs_json_free(doc);
  return rc;
}

/* ---------------------------------------------------------- agent rates */

static void agent_table_free(agent_table *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->n; i++) {
    free(t->items[i].service);
    free(t->items[i].env);
  }
  free(t->items);
  free(t);
}

static char *dup_n(const char *p, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    memcpy(d, p, n);
    d[n] = '\0';
  }
  return d;
}

/* "service:S,env:E" → S and E (each may be empty). The first ",env:"
 * after the prefix splits them: service names cannot hold commas. */
static int parse_agent_key(const hs_json_member *m, agent_rate *a) {
  static const char pre[] = "service:";
  static const char mid[] = ",env:";
  const char *k = m->key;
  size_t n = m->key_len;
  if (memchr(k, '\0', n) != NULL || n < sizeof pre - 1 ||
      memcmp(k, pre, sizeof pre - 1) != 0)
    return HOTSPAN_ECONFIG;
  const char *svc = k + sizeof pre - 1;
  const char *sep = strstr(svc, mid);
  if (sep == NULL)
    return HOTSPAN_ECONFIG;
  a->service = dup_n(svc, (size_t)(sep - svc));
  const char *env = sep + sizeof mid - 1;
  a->env = dup_n(env, (size_t)(k + n - env));
  return (a->service && a->env) ? HOTSPAN_OK : HOTSPAN_ENOMEM;
}

static int parse_agent_rates(const hs_json_value *root, agent_table *t,
                             char *err, size_t errlen) {
  if (root->type != HS_JSON_OBJECT) {
    set_err(err, errlen, "agent rates: expected a JSON object, got %s",
            hs_json_type_name(root->type));
    return HOTSPAN_ECONFIG;
  }
  const hs_json_value *rbs = hs_json_get(root, "rate_by_service");
  if (rbs == NULL || rbs->type != HS_JSON_OBJECT) {
    set_err(err, errlen,
            "agent rates: no \"rate_by_service\" object in the response");
    return HOTSPAN_ECONFIG;
  }
  if (rbs->u.object.len > AGENT_MAX_KEYS) {
    set_err(err, errlen, "agent rates: %zu keys; at most %d are read",
            rbs->u.object.len, AGENT_MAX_KEYS);
    return HOTSPAN_ECONFIG;
  }
  if (rbs->u.object.len == 0)
    return HOTSPAN_OK;
  t->items = calloc(rbs->u.object.len, sizeof *t->items);
  if (t->items == NULL)
    return HOTSPAN_ENOMEM;
  for (size_t i = 0; i < rbs->u.object.len; i++) {
    const hs_json_member *m = &rbs->u.object.members[i];
    agent_rate *a = &t->items[i];
    t->n = i + 1; /* so that agent_table_free releases a half-parsed one */
    int rc = parse_agent_key(m, a);
    if (rc == HOTSPAN_ENOMEM)
      return rc;
    if (rc != HOTSPAN_OK) {
      char shown[64];
      show_key(m, shown, sizeof shown);
      set_err(err, errlen,
              "agent rates: key \"%s\" at byte %zu is not of the form "
              "\"service:S,env:E\"",
              shown, m->key_offset);
      return rc;
    }
    const hs_json_value *v = &m->value;
    if (v->type != HS_JSON_NUMBER ||
        !(v->u.number.value >= 0.0 && v->u.number.value <= 1.0)) {
      set_err(err, errlen,
              "agent rates: the rate at byte %zu must be a number between 0 "
              "and 1",
              v->offset);
      return HOTSPAN_ECONFIG;
    }
    rule_set_rate(&a->r, v->u.number.value);
  }
  return HOTSPAN_OK;
}

int hs_sampler_set_agent_rates(hs_sampler *s, const char *json, size_t len,
                               char *err, size_t errlen) {
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (s == NULL || (json == NULL && len > 0))
    return HOTSPAN_EINVAL;
  if (len > AGENT_MAX_BYTES) {
    set_err(err, errlen, "agent rates: response larger than %zu bytes",
            AGENT_MAX_BYTES);
    return HOTSPAN_ECONFIG;
  }
  hs_json_limits lim = {AGENT_MAX_BYTES, AGENT_MAX_DEPTH};
  hs_json_doc *doc = NULL;
  char jerr[192];
  if (hs_json_parse(json, len, &lim, &doc, jerr, sizeof jerr, NULL) != 0) {
    if (strncmp(jerr, "out of memory", 13) == 0)
      return HOTSPAN_ENOMEM;
    set_err(err, errlen, "agent rates: %s", jerr);
    return HOTSPAN_ECONFIG;
  }
  agent_table *t = calloc(1, sizeof *t);
  int rc = t == NULL ? HOTSPAN_ENOMEM
                     : parse_agent_rates(hs_json_root(doc), t, err, errlen);
  hs_json_free(doc);
  if (rc != HOTSPAN_OK) {
    if (rc == HOTSPAN_ENOMEM)
      set_err(err, errlen, "agent rates: out of memory");
    agent_table_free(t);
    return rc;
  }
  pthread_rwlock_wrlock(&s->agent_mu);
  agent_table *old = s->agent;
  s->agent = t;
  atomic_store_explicit(&s->has_agent, t->n > 0, memory_order_release);
  pthread_rwlock_unlock(&s->agent_mu);
  agent_table_free(old);
  return HOTSPAN_OK;
}

/* --------------------------------------------------------------- public */

int hs_sampler_new(const hs_sampler_config *cfg, hs_sampler **out, char *err,
                   size_t errlen) {
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (out == NULL)
    return HOTSPAN_EINVAL;
  *out = NULL;
  if (cfg == NULL) {
    set_err(err, errlen, "no sampler configuration given");
    return HOTSPAN_EINVAL;
  }
  if (isnan(cfg->sample_rate) || cfg->sample_rate > 1.0) {
    set_err(err, errlen, "sample rate must be between 0 and 1 (got %g)",
            cfg->sample_rate);
    return HOTSPAN_ECONFIG;
  }
  if (isnan(cfg->rate_limit) || isinf(cfg->rate_limit)) {
    set_err(err, errlen,
            "rate limit must be a finite number of traces per second (got "
            "%g)",
            cfg->rate_limit);
    return HOTSPAN_ECONFIG;
  }
  hs_sampler *s = calloc(1, sizeof *s);
  if (s == NULL)
    return HOTSPAN_ENOMEM;
  if (cfg->sample_rate >= 0.0) {
    s->has_global = 1;
    rule_set_rate(&s->global, cfg->sample_rate);
  }
  s->rate_limit = cfg->rate_limit < 0.0 ? DEFAULT_RATE_LIMIT : cfg->rate_limit;
  if (limiter_init(&s->lim, s->rate_limit) != 0) {
    free(s);
    return HOTSPAN_ENOMEM;
  }
  s->has_limiter = s->rate_limit > 0.0;
  /* Writer-preferring: decisions on many threads must not starve the
   * thread installing the agent's answer (glibc prefers readers). */
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra,
                                PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  int rwrc = pthread_rwlock_init(&s->agent_mu, &ra);
  pthread_rwlockattr_destroy(&ra);
  if (rwrc != 0) {
    pthread_mutex_destroy(&s->lim.mu);
    free(s);
    return HOTSPAN_ENOMEM;
  }
  /* "" is "no rules", like an empty environment variable. */
  if (cfg->rules_json != NULL && cfg->rules_json[0] != '\0') {
    int rc = parse_rules(s, cfg->rules_json, err, errlen);
    if (rc != HOTSPAN_OK) {
      if (rc == HOTSPAN_ENOMEM)
        set_err(err, errlen, "out of memory while reading sampling rules");
      hs_sampler_free(s);
      return rc;
    }
  }
  *out = s;
  return HOTSPAN_OK;
}

void hs_sampler_free(hs_sampler *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nrules; i++)
    rule_free(&s->rules[i]);
  free(s->rules);
  pthread_mutex_destroy(&s->lim.mu);
  agent_table_free(s->agent);
  pthread_rwlock_destroy(&s->agent_mu);
  free(s);
}

/* The agent's rate for service/env, else its default. Takes the read
 * lock; sets out (AGENT_RATE) and returns 1 if a rate decided. */
static int agent_decide(hs_sampler *s, const char *service, const char *env,
                        uint64_t trace_id_low, hs_sampling_decision *out) {
  if (!atomic_load_explicit(&s->has_agent, memory_order_acquire))
    return 0;
  if (service == NULL)
    service = "";
  if (env == NULL)
    env = "";
  int decided = 0;
  pthread_rwlock_rdlock(&s->agent_mu);
  const agent_table *t = s->agent;
  const agent_rate *hit = NULL, *def = NULL;
  for (size_t i = 0; t != NULL && i < t->n && hit == NULL; i++) {
    const agent_rate *a = &t->items[i];
    if (strcmp(a->service, service) == 0 && strcmp(a->env, env) == 0)
      hit = a;
    else if (a->service[0] == '\0' && a->env[0] == '\0')
      def = a;
  }
  if (hit == NULL)
    hit = def;
  if (hit != NULL) {
    decided = 1;
    out->mechanism = HS_MECH_AGENT_RATE;
    out->agent_rate = hit->r.rate;
    out->priority = rate_keeps(&hit->r, trace_id_low)
                        ? HOTSPAN_PRIORITY_AUTO_KEEP
                        : HOTSPAN_PRIORITY_AUTO_REJECT;
  }
  pthread_rwlock_unlock(&s->agent_mu);
  return decided;
}

void hs_sampler_decide(hs_sampler *s, const char *service, const char *env,
                       const char *name, const char *resource,
                       uint64_t trace_id_low, uint64_t now_mono_ns,
                       hs_sampling_decision *out) {
  if (out == NULL)
    return;
  out->priority = HOTSPAN_PRIORITY_AUTO_KEEP;
  out->mechanism = HS_MECH_DEFAULT;
  out->rule_rate = -1.0;
  out->limit_rate = -1.0;
  out->agent_rate = -1.0;
  if (s == NULL)
    return;
  const rule *r = NULL;
  for (size_t i = 0; i < s->nrules && r == NULL; i++)
    if (rule_matches(&s->rules[i], service, name, resource))
      r = &s->rules[i];
  if (r == NULL && s->has_global)
    r = &s->global;
  if (r == NULL) {
    (void)agent_decide(s, service, env, trace_id_low, out);
    return;
  }
  out->mechanism = HS_MECH_RULE;
  out->rule_rate = r->rate;
  if (!rate_keeps(r, trace_id_low)) {
    out->priority = HOTSPAN_PRIORITY_USER_REJECT;
    return;
  }
  out->priority = HOTSPAN_PRIORITY_USER_KEEP;
  if (s->has_limiter && !limiter_allow(&s->lim, now_mono_ns, &out->limit_rate))
    out->priority = HOTSPAN_PRIORITY_USER_REJECT;
}

static void describe_field(hs_buf *buf, const char *key, const char *pattern) {
  if (pattern == NULL)
    return;
  hs_json_str(buf, key);
  hs_buf_putc(buf, ':');
  hs_json_str(buf, pattern);
  hs_buf_putc(buf, ',');
}

void hs_sampler_describe(const hs_sampler *s, struct hs_buf *buf) {
  if (buf == NULL)
    return;
  if (s == NULL) {
    hs_buf_puts(buf, "null");
    return;
  }
  hs_buf_puts(buf, "{\"sample_rate\":");
  if (s->has_global)
    hs_json_double(buf, s->global.rate);
  else
    hs_buf_puts(buf, "null");
  hs_buf_puts(buf, ",\"rules\":[");
  for (size_t i = 0; i < s->nrules; i++) {
    const rule *r = &s->rules[i];
    hs_buf_puts(buf, i > 0 ? ",{" : "{");
    describe_field(buf, "service", r->service);
    describe_field(buf, "name", r->name);
    describe_field(buf, "resource", r->resource);
    hs_buf_puts(buf, "\"sample_rate\":");
    hs_json_double(buf, r->rate);
    hs_buf_putc(buf, '}');
  }
  hs_buf_puts(buf, "],\"rate_limit\":");
  hs_json_double(buf, s->rate_limit);
  hs_buf_putc(buf, '}');
}

int hs_sampler_rate_from_otel(const char *sampler, const char *arg,
                              double *rate) {
  if (sampler == NULL || rate == NULL)
    return -1;
  /* The OpenTelemetry environment specification asks for enum values to be
   * read without regard to case. */
  if (strcasecmp(sampler, "always_on") == 0 ||
      strcasecmp(sampler, "parentbased_always_on") == 0) {
    *rate = 1.0;
    return 0;
  }
  if (strcasecmp(sampler, "always_off") == 0 ||
      strcasecmp(sampler, "parentbased_always_off") == 0) {
    *rate = 0.0;
    return 0;
  }
  if (strcasecmp(sampler, "traceidratio") == 0 ||
      strcasecmp(sampler, "parentbased_traceidratio") == 0) {
    double r = 1.0;
    if (arg != NULL && arg[0] != '\0' &&
        (hs_parse_double(arg, &r) != 0 || !(r >= 0.0 && r <= 1.0)))
      return -1;
    *rate = r;
    return 0;
  }
  return -1;
}
