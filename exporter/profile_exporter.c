#include "exporter/profile_exporter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/env.h"
#include "common/log.h"
#include "common/token.h"
#include "context/endpoints.h"
#include "context/identity.h"
#include "exporter/dd_profile.h"
#include "exporter/pyroscope.h"
#include "hotspan/error.h"
#include "hotspan/tracer.h"
#include "hotspan/version.h"
#include "profiler/profile_sink.h"

/* ------------------------------------------------------------ config */

int hs_profexp_parse_exporters(const char *list, unsigned *out) {
  static const hs_name_bits names[] = {{"datadog", HS_PROFEXP_DATADOG},
                                       {"dd", HS_PROFEXP_DATADOG},
                                       {"pyroscope", HS_PROFEXP_PYROSCOPE},
                                       {"file", HS_PROFEXP_FILE},
                                       {NULL, 0}};
  return hs_parse_name_list(list, names, out, NULL, 0) < 0 ? -1 : 0;
}

static void copy_env(char *dst, size_t cap, const char *const *names,
                     const char *def) {
  const char *which = NULL;
  const char *v = hs_env_first(names, &which);
  if (v != NULL && strlen(v) >= cap) {
    hs_log(HS_LOG_WARN, "ignoring %s: longer than %zu bytes", which, cap - 1);
    v = NULL;
  }
  snprintf(dst, cap, "%s", v != NULL ? v : def);
}

static unsigned hz_of(uint64_t period_ns) {
  return period_ns == 0 ? 0 : (unsigned)((1e9 / (double)period_ns) + 0.5);
}

void hs_profexp_config_free(hs_profexp_config *c) {
  if (c == NULL)
    return;
  free(c->service);
  free(c->env);
  free(c->version);
  for (size_t i = 0; i < c->ntags; i++) {
    free((char *)c->tags[i].key);
    free((char *)c->tags[i].value);
  }
  free(c->tags);
  c->service = c->env = c->version = NULL;
  c->tags = NULL;
  c->ntags = 0;
}

static char *dup_or_null(const char *s) {
  return s != NULL ? strdup(s) : NULL;
}

/* Replaces c's identity (service, env, version, tags, runtime id) with a
 * copy of id's. HOTSPAN_OK, or HOTSPAN_ENOMEM with c's identity kept. */
static int set_identity(hs_profexp_config *c, const hs_identity *id) {
  hs_profile_tag *tags = calloc(id->ntags + 1, sizeof *tags);
  char *service = dup_or_null(id->service);
  char *env = dup_or_null(id->env);
  char *version = dup_or_null(id->version);
  size_t n = 0;
  int oom = tags == NULL || (id->service && !service) || (id->env && !env) ||
            (id->version && !version);
  for (size_t i = 0; !oom && i < id->ntags; i++) {
    tags[n].key = strdup(id->tags[i].key);
    tags[n].value = strdup(id->tags[i].value);
    n++;
    oom = tags[n - 1].key == NULL || tags[n - 1].value == NULL;
  }
  hs_profexp_config old = {0};
  old.service = service;
  old.env = env;
  old.version = version;
  old.tags = tags;
  old.ntags = n;
  if (!oom) { /* swap: old then holds what c had */
    old.service = c->service;
    old.env = c->env;
    old.version = c->version;
    old.tags = c->tags;
    old.ntags = c->ntags;
    c->service = service;
    c->env = env;
    c->version = version;
    c->tags = tags;
    c->ntags = n;
    hs_identity_runtime_id(c->runtime_id);
    if (!c->pyroscope_app_set && service != NULL)
      snprintf(c->pyroscope_app, sizeof c->pyroscope_app, "%s", service);
  }
  hs_profexp_config_free(&old);
  return oom ? HOTSPAN_ENOMEM : HOTSPAN_OK;
}

int hs_profexp_config_load(hs_profexp_config *c, int use_env,
                           uint64_t cpu_period_ns, uint64_t wall_period_ns) {
  memset(c, 0, sizeof *c);
  c->cpu_hz = hz_of(cpu_period_ns);
  c->wall_hz = hz_of(wall_period_ns);
  c->flush_timeout_ms = HS_PROFEXP_FLUSH_TIMEOUT_MS;
  snprintf(c->agent.base, sizeof c->agent.base, "http://localhost:8126");
  snprintf(c->pyroscope_url, sizeof c->pyroscope_url, "http://localhost:4040");
  hs_identity_host(c->host, sizeof c->host);

  /* Who the process is: asked again before each upload
   * (hs_profexp_on_profile), since a tracer created later may set the
   * service in code (context/identity.h). */
  c->follow_identity = 1;
  c->use_env = use_env;
  hs_identity id;
  if (hs_identity_current(use_env, &id) != HOTSPAN_OK ||
      set_identity(c, &id) != HOTSPAN_OK) {
    hs_identity_free(&id);
    hs_profexp_config_free(c);
    return HOTSPAN_ENOMEM;
  }
  hs_identity_free(&id);
  if (!use_env)
    return HOTSPAN_OK; /* no network exporter without the environment */

  c->exporters = HS_PROFEXP_DATADOG;
  static const char *const exp_vars[] = {"HOTSPAN_PROFILING_EXPORTERS", NULL};
  const char *list = hs_env_first(exp_vars, NULL);
  if (list != NULL) {
    unsigned m;
    if (hs_profexp_parse_exporters(list, &m) != 0)
      hs_log(HS_LOG_WARN,
             "HOTSPAN_PROFILING_EXPORTERS=\"%.64s\": unknown names ignored "
             "(known: datadog, pyroscope, file, none)",
             list);
    c->exporters = m;
  }
  hs_agent_url_from_env(&c->agent);

  static const char *const host_vars[] = {"HOTSPAN_HOSTNAME", "DD_HOSTNAME",
                                          NULL};
  copy_env(c->host, sizeof c->host, host_vars, c->host);
  static const char *const py_url[] = {"HOTSPAN_PYROSCOPE_URL",
                                       "PYROSCOPE_SERVER_ADDRESS", NULL};
  copy_env(c->pyroscope_url, sizeof c->pyroscope_url, py_url,
           "http://localhost:4040");
  if (strncasecmp(c->pyroscope_url, "http://", 7) != 0 &&
      strncasecmp(c->pyroscope_url, "https://", 8) != 0) {
    hs_log(HS_LOG_WARN, "ignoring Pyroscope URL \"%.64s\": not http(s)://",
           c->pyroscope_url);
    snprintf(c->pyroscope_url, sizeof c->pyroscope_url,
             "http://localhost:4040");
  }
  static const char *const py_app[] = {"HOTSPAN_PYROSCOPE_APP_NAME",
                                       "PYROSCOPE_APPLICATION_NAME", NULL};
  copy_env(c->pyroscope_app, sizeof c->pyroscope_app, py_app, "");
  c->pyroscope_app_set = c->pyroscope_app[0] != '\0';
  if (!c->pyroscope_app_set) /* the service, followed with it */
    snprintf(c->pyroscope_app, sizeof c->pyroscope_app, "%s",
             c->service ? c->service : "hotspan");
  static const char *const py_tenant[] = {"HOTSPAN_PYROSCOPE_TENANT_ID",
                                          "PYROSCOPE_TENANT_ID", NULL};
  copy_env(c->pyroscope_tenant, sizeof c->pyroscope_tenant, py_tenant, "");
  static const char *const py_user[] = {"HOTSPAN_PYROSCOPE_BASIC_AUTH_USER",
                                        "PYROSCOPE_BASIC_AUTH_USER", NULL};
  copy_env(c->pyroscope_user, sizeof c->pyroscope_user, py_user, "");
  static const char *const py_pw[] = {"HOTSPAN_PYROSCOPE_BASIC_AUTH_PASSWORD",
                                      "PYROSCOPE_BASIC_AUTH_PASSWORD", NULL};
  copy_env(c->pyroscope_password, sizeof c->pyroscope_password, py_pw, "");

  uint64_t ms;
  if (hs_env_u64_in("HOTSPAN_PROFILING_FLUSH_TIMEOUT_MS", 0, 60000, &ms) == 0)
    c->flush_timeout_ms = (int)ms;
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ pairing */

struct hs_profexp {
  pthread_mutex_t mu;
  hs_profexp_config c; /* tags and strings owned */
  hs_profexp_send_fn send;
  void *arg;
  /* CPU profile waiting for the wall profile of its period. */
  uint8_t *pend;
  size_t pend_len;
  uint64_t pend_start, pend_end;
  hs_profexp_counts counts;
  /* Scratch for endpoint_counts. */
  hs_dd_endpoint_count *ec;
  size_t nec, cap_ec;
};

static char *xdup(const char *s) {
  return s ? strdup(s) : NULL;
}

hs_profexp *hs_profexp_new(const hs_profexp_config *c, hs_profexp_send_fn fn,
                           void *arg) {
  hs_profexp *x = calloc(1, sizeof *x);
  if (x == NULL)
    return NULL;
  pthread_mutex_init(&x->mu, NULL);
  x->c = *c;
  x->c.service = xdup(c->service);
  x->c.env = xdup(c->env);
  x->c.version = xdup(c->version);
  x->c.tags = NULL;
  x->c.ntags = 0;
  int oom = (c->service && !x->c.service) || (c->env && !x->c.env) ||
            (c->version && !x->c.version);
  if (c->ntags > 0) {
    x->c.tags = calloc(c->ntags, sizeof *x->c.tags);
    oom |= x->c.tags == NULL;
    for (size_t i = 0; x->c.tags && i < c->ntags; i++) {
      x->c.tags[i].key = xdup(c->tags[i].key);
      x->c.tags[i].value = xdup(c->tags[i].value);
      x->c.ntags++;
      oom |= !x->c.tags[i].key || !x->c.tags[i].value;
    }
  }
  x->send = fn;
  x->arg = arg;
  if (oom) {
    hs_profexp_free(x);
    return NULL;
  }
  return x;
}

void hs_profexp_free(hs_profexp *x) {
  if (x == NULL)
    return;
  hs_profexp_config_free(&x->c);
  free(x->pend);
  free(x->ec);
  pthread_mutex_destroy(&x->mu);
  free(x);
}

static void collect_count(const char *name, uint64_t n, void *arg) {
  hs_profexp *x = arg;
  if (x->nec == x->cap_ec) {
    size_t nc = x->cap_ec ? 2 * x->cap_ec : 64;
    hs_dd_endpoint_count *p = realloc(x->ec, nc * sizeof *p);
    if (p == NULL)
      return; /* this endpoint's count is lost; the upload goes anyway */
    x->ec = p;
    x->cap_ec = nc;
  }
  x->ec[x->nec].endpoint = name;
  x->ec[x->nec].count = n;
  x->nec++;
}

/* One Datadog upload with the given attachments. x->mu held. */
static void send_dd(hs_profexp *x, const hs_dd_attachment *att, size_t natt,
                    uint64_t start, uint64_t end) {
  hs_dd_profile_meta m;
  memset(&m, 0, sizeof m);
  m.service = x->c.service;
  m.env = x->c.env;
  m.version = x->c.version;
  m.host = x->c.host;
  m.runtime_id = x->c.runtime_id;
  m.profiler_version = HOTSPAN_VERSION_STRING;
  m.tags = x->c.tags;
  m.ntags = x->c.ntags;
  x->nec = 0;
  (void)hs_endpoint_counts_drain(collect_count, x);
  hs_buf body;
  hs_buf_init(&body, 0);
  char ctype[160], ct_header[200];
  int rc = hs_dd_profile_build(&m, start, end, att, natt, x->ec, x->nec, NULL,
                               &body, ctype, sizeof ctype);
  if (rc != HOTSPAN_OK) {
    hs_log(HS_LOG_WARN, "profile upload not built: %s", hotspan_strerror(rc));
    x->counts.build_errors++;
    hs_buf_free(&body);
    return;
  }
  snprintf(ct_header, sizeof ct_header, "Content-Type: %s", ctype);
  const char *hdrs[] = {ct_header, NULL};
  x->counts.dd_uploads++;
  if (natt == 1)
    x->counts.dd_unpaired++;
  /* The body's buffer goes to the sender as is. */
  char *data = body.data;
  size_t len = body.len;
  body.data = NULL;
  if (x->send(x->arg, HS_PROFEXP_DATADOG, data, len, hdrs, NULL,
              (uint32_t)natt) != HOTSPAN_OK)
    x->counts.send_errors++;
}

static void send_pyro(hs_profexp *x, int type, const uint8_t *data, size_t len,
                      uint64_t start, uint64_t end) {
  int cpu = type == HS_PROFILE_CPU;
  /* Series labels: env and version when set, then the user's tags. */
  size_t n = 0;
  hs_profile_tag *tags = calloc(x->c.ntags + 2, sizeof *tags);
  if (tags == NULL) {
    x->counts.build_errors++;
    return;
  }
  if (x->c.env)
    tags[n++] = (hs_profile_tag){"env", x->c.env};
  if (x->c.version)
    tags[n++] = (hs_profile_tag){"version", x->c.version};
  for (size_t i = 0; i < x->c.ntags; i++)
    tags[n++] = x->c.tags[i];
  hs_buf url;
  hs_buf_init(&url, 64 * 1024);
  hs_pyroscope_url(&url, x->c.pyroscope_url, x->c.pyroscope_app,
                   cpu ? "cpu" : "wall", tags, n, start, end,
                   cpu ? x->c.cpu_hz : x->c.wall_hz);
  free(tags);
  char *body = malloc(len ? len : 1);
  if (hs_buf_failed(&url) || body == NULL) {
    x->counts.build_errors++;
    free(body);
    hs_buf_free(&url);
    return;
  }
  memcpy(body, data, len);
  const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
  x->counts.pyro_requests++;
  if (x->send(x->arg, HS_PROFEXP_PYROSCOPE, body, len, hdrs, hs_buf_cstr(&url),
              1) != HOTSPAN_OK)
    x->counts.send_errors++;
  hs_buf_free(&url);
}

static void send_pending_alone(hs_profexp *x) {
  if (x->pend == NULL)
    return;
  hs_dd_attachment a = {"cpu.pprof", x->pend, x->pend_len};
  send_dd(x, &a, 1, x->pend_start, x->pend_end);
  free(x->pend);
  x->pend = NULL;
}

void hs_profexp_on_profile(hs_profexp *x, int type, const uint8_t *data,
                           size_t len, uint64_t start_ns, uint64_t end_ns) {
  if (x == NULL || data == NULL ||
      (type != HS_PROFILE_CPU && type != HS_PROFILE_WALL))
    return;
  pthread_mutex_lock(&x->mu);
  if (x->c.follow_identity) {
    hs_identity id;
    if (hs_identity_current(x->c.use_env, &id) == HOTSPAN_OK)
      (void)set_identity(&x->c, &id); /* out of memory: the last one */
    hs_identity_free(&id);
  }
  if (x->c.exporters & HS_PROFEXP_PYROSCOPE)
    send_pyro(x, type, data, len, start_ns, end_ns);
  if (x->c.exporters & HS_PROFEXP_DATADOG) {
    if (type == HS_PROFILE_CPU) {
      send_pending_alone(x); /* its wall profile never came */
      if (x->c.wall_hz == 0) {
        hs_dd_attachment a = {"cpu.pprof", data, len};
        send_dd(x, &a, 1, start_ns, end_ns);
      } else {
        x->pend = malloc(len ? len : 1);
        if (x->pend == NULL) {
          x->counts.build_errors++;
        } else {
          memcpy(x->pend, data, len);
          x->pend_len = len;
          x->pend_start = start_ns;
          x->pend_end = end_ns;
        }
      }
    } else if (x->pend != NULL && x->pend_start == start_ns) {
      hs_dd_attachment a[2] = {{"cpu.pprof", x->pend, x->pend_len},
                               {"wall.pprof", data, len}};
      uint64_t end = x->pend_end > end_ns ? x->pend_end : end_ns;
      send_dd(x, a, 2, start_ns, end);
      free(x->pend);
      x->pend = NULL;
    } else {
      send_pending_alone(x);
      hs_dd_attachment a = {"wall.pprof", data, len};
      send_dd(x, &a, 1, start_ns, end_ns);
    }
  }
  pthread_mutex_unlock(&x->mu);
}

void hs_profexp_flush(hs_profexp *x) {
  if (x == NULL)
    return;
  pthread_mutex_lock(&x->mu);
  send_pending_alone(x);
  pthread_mutex_unlock(&x->mu);
}

void hs_profexp_get_counts(hs_profexp *x, hs_profexp_counts *out) {
  memset(out, 0, sizeof *out);
  if (x == NULL)
    return;
  pthread_mutex_lock(&x->mu);
  *out = x->counts;
  pthread_mutex_unlock(&x->mu);
}

/* ------------------------------------------------------------ process */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static hs_profexp *g_x;
static hs_target *g_dd, *g_py;
static int g_flush_ms = HS_PROFEXP_FLUSH_TIMEOUT_MS;
static unsigned g_exporters;
static hs_profexp_counts g_last_counts; /* of the last stopped session */

static int send_target(void *arg, unsigned dest, char *body, size_t len,
                       const char *const *headers, const char *url,
                       uint32_t items) {
  (void)arg;
  if (dest == HS_PROFEXP_DATADOG && g_dd != NULL)
    return hs_target_send(g_dd, body, len, headers, items);
  if (dest == HS_PROFEXP_PYROSCOPE && g_py != NULL) {
    /* /ingest carries the profile's name and time range in the query:
     * the target's URL is <server>/ingest, each request adds its query. */
    const char *q = url != NULL ? strchr(url, '?') : NULL;
    return hs_target_send_query(g_py, body, len, headers, items,
                                q != NULL ? q + 1 : NULL);
  }
  free(body);
  return HOTSPAN_ESTATE;
}

void hs_profexp_session_profile(int type, const uint8_t *data, size_t len,
                                uint64_t start_unix_ns, uint64_t end_unix_ns) {
  pthread_mutex_lock(&g_mu);
  hs_profexp_on_profile(g_x, type, data, len, start_unix_ns, end_unix_ns);
  pthread_mutex_unlock(&g_mu);
}

int hs_profexp_active(void) {
  pthread_mutex_lock(&g_mu);
  int on = g_x != NULL;
  pthread_mutex_unlock(&g_mu);
  return on;
}

int hs_profexp_start(int use_env, uint64_t cpu_period_ns,
                     uint64_t wall_period_ns) {
  pthread_mutex_lock(&g_mu);
  if (g_x != NULL) {
    pthread_mutex_unlock(&g_mu);
    return HOTSPAN_ESTATE;
  }
  hs_profexp_config c;
  int rc = hs_profexp_config_load(&c, use_env, cpu_period_ns, wall_period_ns);
  if (rc != HOTSPAN_OK) {
    pthread_mutex_unlock(&g_mu);
    return rc;
  }
  g_flush_ms = c.flush_timeout_ms;
  if (c.exporters & HS_PROFEXP_DATADOG) {
    char url[HS_AGENT_URL_MAX + 64];
    const char *upath = NULL;
    char auth[HS_TOKEN_HEADER_MAX];
    if (hs_token_header(auth, sizeof auth) < 0)
      hs_log(HS_LOG_WARN, "profiles: HOTSPAN_AGENT_TOKEN ignored: %s",
             hs_token_invalid(getenv("HOTSPAN_AGENT_TOKEN")));
    const char *const dd_headers[] = {
        "DD-EVP-ORIGIN: hotspan",
        "DD-EVP-ORIGIN-VERSION: " HOTSPAN_VERSION_STRING, auth[0] ? auth : NULL,
        NULL};
    if (hs_agent_url_endpoint(&c.agent, HS_DD_PROFILE_PATH, url, sizeof url,
                              &upath) == 0) {
      hs_target_config tc;
      memset(&tc, 0, sizeof tc);
      tc.name = "datadog-profiles";
      tc.url = url;
      tc.unix_path = upath;
      tc.headers = dd_headers;
      tc.retry_policy = HS_RETRY_429_5XX;
      g_dd = hs_target_new(&tc);
    }
    if (g_dd == NULL) {
      hs_log(HS_LOG_WARN, "profiles: no Datadog target for %s", c.agent.base);
      c.exporters &= ~(unsigned)HS_PROFEXP_DATADOG;
    }
  }
  if (c.exporters & HS_PROFEXP_PYROSCOPE) {
    char auth[800], tenant[300];
    const char *hdrs[3] = {NULL, NULL, NULL};
    size_t nh = 0;
    if (c.pyroscope_user[0] != '\0' &&
        hs_basic_auth_header(c.pyroscope_user, c.pyroscope_password, auth,
                             sizeof auth) == 0)
      hdrs[nh++] = auth;
    if (c.pyroscope_tenant[0] != '\0') {
      snprintf(tenant, sizeof tenant, "X-Scope-OrgID: %s", c.pyroscope_tenant);
      hdrs[nh++] = tenant;
    }
    char url[1100];
    snprintf(url, sizeof url, "%s/ingest", c.pyroscope_url);
    hs_target_config tc;
    memset(&tc, 0, sizeof tc);
    tc.name = "pyroscope";
    tc.url = url;
    tc.headers = hdrs;
    tc.retry_policy = HS_RETRY_429_5XX;
    g_py = hs_target_new(&tc);
    if (g_py == NULL) {
      hs_log(HS_LOG_WARN, "profiles: no Pyroscope target for %s",
             c.pyroscope_url);
      c.exporters &= ~(unsigned)HS_PROFEXP_PYROSCOPE;
    }
  }
  g_exporters = c.exporters;
  if (c.exporters & (HS_PROFEXP_DATADOG | HS_PROFEXP_PYROSCOPE)) {
    g_x = hs_profexp_new(&c, send_target, NULL);
    if (g_x == NULL) {
      hs_target_free(g_dd, 0);
      hs_target_free(g_py, 0);
      g_dd = g_py = NULL;
      hs_profexp_config_free(&c);
      pthread_mutex_unlock(&g_mu);
      return HOTSPAN_ENOMEM;
    }
    /* Requests counted before profiling started are not this session's. */
    (void)hs_endpoint_counts_drain(NULL, NULL);
    hs_log(HS_LOG_INFO, "profiles: exporting to%s%s%s",
           (c.exporters & HS_PROFEXP_DATADOG) ? " datadog " : "",
           (c.exporters & HS_PROFEXP_DATADOG) ? c.agent.base : "",
           (c.exporters & HS_PROFEXP_PYROSCOPE) ? " pyroscope" : "");
  }
  hs_profexp_config_free(&c);
  pthread_mutex_unlock(&g_mu);
  return HOTSPAN_OK;
}

void hs_profexp_stop(int timeout_ms) {
  pthread_mutex_lock(&g_mu);
  if (timeout_ms < 0)
    timeout_ms = g_flush_ms;
  if (g_x != NULL) {
    hs_profexp_flush(g_x);
    hs_profexp_get_counts(g_x, &g_last_counts);
  }
  /* One deadline for both targets: a dead backend costs timeout_ms once. */
  uint64_t deadline = hs_now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  hs_target *ts[2] = {g_dd, g_py};
  for (int i = 0; i < 2; i++) {
    if (ts[i] == NULL)
      continue;
    uint64_t now = hs_now_mono_ns();
    int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000u);
    (void)hs_target_drain(ts[i], left); /* one last try, no backoff */
    hs_target_free(ts[i], 0);
  }
  g_dd = g_py = NULL;
  hs_profexp_free(g_x);
  g_x = NULL;
  pthread_mutex_unlock(&g_mu);
}

int hs_profexp_target_stats(size_t index, hotspan_exporter_stats *out) {
  if (out == NULL || out->struct_size < sizeof(uint32_t))
    return HOTSPAN_EINVAL;
  pthread_mutex_lock(&g_mu);
  hs_target *list[2] = {g_dd, g_py};
  hs_target *t = NULL;
  size_t i = 0;
  for (size_t k = 0; k < 2; k++)
    if (list[k] != NULL && i++ == index)
      t = list[k];
  hotspan_exporter_stats full;
  memset(&full, 0, sizeof full);
  if (t != NULL)
    hs_target_public_stats(t, &full);
  pthread_mutex_unlock(&g_mu);
  if (t == NULL)
    return HOTSPAN_EINVAL;
  full.struct_size = sizeof full;
  size_t n = out->struct_size < sizeof full ? out->struct_size : sizeof full;
  memcpy(out, &full, n);
  out->struct_size = (uint32_t)n;
  return HOTSPAN_OK;
}
