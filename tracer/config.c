/* Effective tracer settings: code > HOTSPAN_* > DD_* / OTEL_* > defaults.
 * Every variable read here is listed in docs/configuration.md. A bad value
 * in the environment is logged and ignored (the program keeps running with
 * the default); a bad value passed in code is an error (HOTSPAN_ECONFIG),
 * because the programmer can fix it. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/env.h"
#include "common/hex.h"
#include "common/log.h"
#include "hotspan/version.h"
#include "tracer/internal.h"

#define HS_DEFAULT_PARTIAL_FLUSH 1000
#define HS_DEFAULT_SHUTDOWN_MS 5000

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

/* ------------------------------------------------------------ helpers */

static const char *env_list(int use_env, const char *const *names) {
  return use_env ? hs_env_first(names, NULL) : NULL;
}

static int load_styles(int use_env, const char *code_value,
                       const char *const *env_names, hs_prop_styles *out,
                       char *err, size_t errlen) {
  const char *which = "code";
  const char *v = code_value;
  if (v == NULL && use_env)
    v = hs_env_first(env_names, &which);
  if (v == NULL)
    v = "datadog,tracecontext";
  hs_prop_styles st;
  if (hs_prop_parse_styles(v, &st) != 0) {
    if (code_value != NULL) {
      snprintf(err, errlen, "unknown propagation style in \"%.64s\"", v);
      return HOTSPAN_ECONFIG;
    }
    hs_log(HS_LOG_WARN, "%s=\"%.64s\": unknown style names ignored", which, v);
  }
  *out = st;
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ exporters */

int hs_parse_exporters(const char *list, unsigned *out, char *bad,
                       size_t badlen) {
  static const hs_name_bits names[] = {{"datadog", HS_EXPORT_DATADOG},
                                       {"dd", HS_EXPORT_DATADOG},
                                       {"otlp", HS_EXPORT_OTLP},
                                       {NULL, 0}};
  unsigned mask;
  int n = hs_parse_name_list(list, names, &mask, bad, badlen);
  if (n == 0)
    snprintf(bad, badlen, "(empty)");
  if (n <= 0)
    return -1;
  *out = mask;
  return 0;
}

/* Which exporters run, per the precedence documented at
 * hotspan_config.exporters. */
static int load_exporters(const hotspan_config *cfg, int use_env,
                          hs_tracer_settings *st, char *err, size_t errlen) {
  char bad[80];
  st->agent_url = dup_or_null(cfg->agent_url);
  st->otlp_endpoint = dup_or_null(cfg->otlp_endpoint);
  if ((cfg->agent_url != NULL && st->agent_url == NULL) ||
      (cfg->otlp_endpoint != NULL && st->otlp_endpoint == NULL))
    return HOTSPAN_ENOMEM;
  if (cfg->exporters != NULL) {
    if (hs_parse_exporters(cfg->exporters, &st->exporters, bad, sizeof bad) !=
        0) {
      snprintf(err, errlen, "unknown exporter \"%s\" in \"%.64s\"", bad,
               cfg->exporters);
      return HOTSPAN_ECONFIG;
    }
    return HOTSPAN_OK;
  }
  if (use_env) {
    static const char *const vars[] = {"HOTSPAN_TRACES_EXPORTER",
                                       "OTEL_TRACES_EXPORTER", NULL};
    const char *which = NULL;
    const char *v = hs_env_first(vars, &which);
    if (v != NULL) {
      if (hs_parse_exporters(v, &st->exporters, bad, sizeof bad) == 0)
        return HOTSPAN_OK;
      hs_log(HS_LOG_WARN,
             "%s=\"%.64s\": unknown exporter \"%s\"; using the default", which,
             v, bad);
    }
  }
  int otlp = cfg->otlp_endpoint != NULL ||
             (use_env && (hs_env_get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ||
                          hs_env_get("OTEL_EXPORTER_OTLP_ENDPOINT")));
  int dd =
      cfg->agent_url != NULL ||
      (use_env &&
       (hs_env_get("HOTSPAN_AGENT_URL") || hs_env_get("HOTSPAN_AGENT_HOST") ||
        hs_env_get("HOTSPAN_AGENT_PORT") || hs_env_get("DD_TRACE_AGENT_URL") ||
        hs_env_get("DD_AGENT_HOST") || hs_env_get("DD_TRACE_AGENT_PORT")));
  st->exporters =
      (otlp ? HS_EXPORT_OTLP : 0u) | (dd || !otlp ? HS_EXPORT_DATADOG : 0u);
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ load */

/* Sampling: rate, rules and limit. NaN is not "unset": it is a
 * programming error. */
static int load_sampling(const hotspan_config *cfg, int use_env,
                         hs_tracer_settings *st, char *err, size_t errlen) {
  if (isnan(cfg->sample_rate) || isnan(cfg->rate_limit)) {
    snprintf(err, errlen, "sample_rate and rate_limit must not be NaN");
    return HOTSPAN_ECONFIG;
  }
  st->sample_rate = -1;
  if (cfg->sample_rate >= 0) {
    if (!(cfg->sample_rate <= 1)) {
      snprintf(err, errlen, "sample_rate %g outside 0..1", cfg->sample_rate);
      return HOTSPAN_ECONFIG;
    }
    st->sample_rate = cfg->sample_rate;
  } else if (use_env) {
    double r;
    const char *names[] = {"HOTSPAN_TRACE_SAMPLE_RATE", "DD_TRACE_SAMPLE_RATE",
                           NULL};
    int found = 0;
    for (const char *const *n = names; *n != NULL && !found; n++) {
      int rc = hs_env_double(*n, &r);
      if (rc == 0 && (r < 0 || r > 1))
        hs_log(HS_LOG_WARN, "ignoring %s=%g: outside 0..1", *n, r);
      else if (rc == 0) {
        st->sample_rate = r;
        found = 1;
      }
    }
    const char *otel = hs_env_get("OTEL_TRACES_SAMPLER");
    if (!found && otel != NULL) {
      if (hs_sampler_rate_from_otel(otel, hs_env_get("OTEL_TRACES_SAMPLER_ARG"),
                                    &r) == 0)
        st->sample_rate = r;
      else
        hs_log(HS_LOG_WARN, "ignoring OTEL_TRACES_SAMPLER=\"%.64s\"", otel);
    }
  }
  static const char *const rules_vars[] = {"HOTSPAN_TRACE_SAMPLING_RULES",
                                           "DD_TRACE_SAMPLING_RULES", NULL};
  st->rules_from_code = cfg->sampling_rules != NULL;
  st->sampling_rules =
      dup_or_null(cfg->sampling_rules ? cfg->sampling_rules
                                      : env_list(use_env, rules_vars));
  st->rate_limit = -1;
  if (cfg->rate_limit >= 0) {
    st->rate_limit = cfg->rate_limit;
  } else if (use_env) {
    double r;
    const char *names[] = {"HOTSPAN_TRACE_RATE_LIMIT", "DD_TRACE_RATE_LIMIT",
                           NULL};
    for (const char *const *n = names; *n != NULL; n++) {
      int rc = hs_env_double(*n, &r);
      if (rc == 0 && r < 0)
        hs_log(HS_LOG_WARN, "ignoring %s=%g: negative", *n, r);
      else if (rc == 0) {
        st->rate_limit = r;
        break;
      }
    }
  }

  return HOTSPAN_OK;
}

/* Output directory and partial flushing. */
static void load_output(const hotspan_config *cfg, int use_env,
                        hs_tracer_settings *st) {
  static const char *const out_vars[] = {"HOTSPAN_OUTPUT_DIR", NULL};
  st->output_dir = dup_or_null(cfg->output_dir ? cfg->output_dir
                                               : env_list(use_env, out_vars));
  st->partial_flush_min_spans = HS_DEFAULT_PARTIAL_FLUSH;
  if (cfg->partial_flush_min_spans > 0) {
    st->partial_flush_min_spans = cfg->partial_flush_min_spans;
  } else if (use_env) {
    uint64_t v;
    const char *names[] = {"HOTSPAN_TRACE_PARTIAL_FLUSH_MIN_SPANS",
                           "DD_TRACE_PARTIAL_FLUSH_MIN_SPANS", NULL};
    for (const char *const *n = names; *n != NULL; n++) {
      int r = hs_env_u64(*n, &v);
      if (r == 0 && (v == 0 || v > 1000000))
        hs_log(HS_LOG_WARN, "ignoring %s=%llu: outside 1..1000000", *n,
               (unsigned long long)v);
      else if (r == 0) {
        st->partial_flush_min_spans = (uint32_t)v;
        break;
      }
    }
  }
}

int hs_settings_load(const hotspan_config *cfg, hs_tracer_settings *st,
                     char *err, size_t errlen) {
  memset(st, 0, sizeof *st);
  hotspan_config defaults;
  if (cfg == NULL) {
    hotspan_config_init(&defaults);
    cfg = &defaults;
  }
  int use_env = !cfg->ignore_environment;
  if (cfg->log_level < 0 || cfg->log_level > 4) {
    snprintf(err, errlen, "log_level %d out of range 0..4", cfg->log_level);
    return HOTSPAN_ECONFIG;
  }
  st->log_level = cfg->log_level;
  if (cfg->log_level > 0)
    hs_log_set_level(cfg->log_level);

  hs_identity_code code = {cfg->service, cfg->env, cfg->version, cfg->tags};
  hs_identity id;
  if (hs_identity_resolve(&code, use_env, &id) != HOTSPAN_OK)
    return HOTSPAN_ENOMEM;
  st->service = id.service;
  st->env = id.env;
  st->version = id.version;
  st->tags = id.tags;
  st->ntags = id.ntags;

  int rc = load_sampling(cfg, use_env, st, err, errlen);
  if (rc != HOTSPAN_OK)
    return rc;

  /* Propagation. */
  static const char *const extract_vars[] = {
      "HOTSPAN_PROPAGATION_STYLE_EXTRACT",
      "HOTSPAN_PROPAGATION_STYLE",
      "DD_TRACE_PROPAGATION_STYLE_EXTRACT",
      "DD_TRACE_PROPAGATION_STYLE",
      "OTEL_PROPAGATORS",
      NULL};
  static const char *const inject_vars[] = {"HOTSPAN_PROPAGATION_STYLE_INJECT",
                                            "HOTSPAN_PROPAGATION_STYLE",
                                            "DD_TRACE_PROPAGATION_STYLE_INJECT",
                                            "DD_TRACE_PROPAGATION_STYLE",
                                            "OTEL_PROPAGATORS",
                                            NULL};
  rc = load_styles(use_env, cfg->propagation_style_extract, extract_vars,
                   &st->extract, err, errlen);
  if (rc == HOTSPAN_OK)
    rc = load_styles(use_env, cfg->propagation_style_inject, inject_vars,
                     &st->inject, err, errlen);
  if (rc != HOTSPAN_OK)
    return rc;

  st->use_env = use_env;
  rc = load_exporters(cfg, use_env, st, err, errlen);
  if (rc != HOTSPAN_OK)
    return rc;
  st->shutdown_timeout_ms = HS_DEFAULT_SHUTDOWN_MS;
  if (use_env) {
    uint64_t v;
    if (hs_env_u64_in("HOTSPAN_EXPORTER_MAX_BYTES", 4096, 1ull << 34, &v) == 0)
      st->export_max_bytes = v;
    if (hs_env_u64_in("HOTSPAN_EXPORTER_TIMEOUT_MS", 100, 600000, &v) == 0)
      st->export_timeout_ms = (int)v;
    if (hs_env_u64_in("HOTSPAN_EXPORTER_SHUTDOWN_TIMEOUT_MS", 0, 600000, &v) ==
        0)
      st->shutdown_timeout_ms = (int)v;
  }

  load_output(cfg, use_env, st);
  hs_identity_runtime_id(st->runtime_id);
  return HOTSPAN_OK;
}

void hs_settings_free(hs_tracer_settings *st) {
  free(st->service);
  free(st->env);
  free(st->version);
  for (size_t i = 0; i < st->ntags; i++) {
    free(st->tags[i].key);
    free(st->tags[i].value);
  }
  free(st->tags);
  free(st->sampling_rules);
  free(st->output_dir);
  free(st->agent_url);
  free(st->otlp_endpoint);
  memset(st, 0, sizeof *st);
}

void hs_settings_describe(const hs_tracer_settings *st, const hs_sampler *smp,
                          const hs_trace_sink *sinks, hs_buf *b) {
  char styles[128];
  hs_buf_puts(b, "{\"event\":\"hotspan.config\",\"tracer_version\":");
  hs_json_str(b, HOTSPAN_VERSION_STRING);
  hs_buf_puts(b, ",\"service\":");
  hs_json_str(b, st->service);
  hs_buf_puts(b, ",\"env\":");
  hs_json_str(b, st->env);
  hs_buf_puts(b, ",\"version\":");
  hs_json_str(b, st->version);
  hs_buf_puts(b, ",\"runtime_id\":");
  hs_json_str(b, st->runtime_id);
  hs_buf_puts(b, ",\"tags\":{");
  for (size_t i = 0; i < st->ntags; i++) {
    if (i)
      hs_buf_putc(b, ',');
    hs_json_str(b, st->tags[i].key);
    hs_buf_putc(b, ':');
    hs_json_str(b, st->tags[i].value);
  }
  hs_buf_puts(b, "},\"sampling\":");
  if (smp != NULL)
    hs_sampler_describe(smp, b);
  else
    hs_buf_puts(b, "null");
  hs_prop_format_styles(&st->extract, styles, sizeof styles);
  hs_buf_puts(b, ",\"propagation_extract\":");
  hs_json_str(b, styles);
  hs_prop_format_styles(&st->inject, styles, sizeof styles);
  hs_buf_puts(b, ",\"propagation_inject\":");
  hs_json_str(b, styles);
  hs_buf_puts(b, ",\"exporters\":[");
  if (st->exporters & HS_EXPORT_DATADOG)
    hs_buf_puts(b, (st->exporters & HS_EXPORT_OTLP) ? "\"datadog\","
                                                    : "\"datadog\"");
  if (st->exporters & HS_EXPORT_OTLP)
    hs_buf_puts(b, "\"otlp\"");
  hs_buf_puts(b, "],\"output_dir\":");
  hs_json_str(b, st->output_dir);
  hs_buf_puts(b, ",\"partial_flush_min_spans\":");
  hs_json_u64(b, st->partial_flush_min_spans);
  hs_buf_puts(b, ",\"sinks\":[");
  for (const hs_trace_sink *s = sinks; s != NULL; s = s->next) {
    if (s != sinks)
      hs_buf_putc(b, ',');
    hs_json_str(b, s->name);
  }
  hs_buf_puts(b, "]}");
}
