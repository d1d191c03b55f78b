/* Process identity (context/identity.h). */
#include "context/identity.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/fork.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/random.h"
#include "hotspan/error.h"

extern char *program_invocation_short_name;

/* ------------------------------------------------------------ tags */

static void kv_set(hs_identity *st, const char *k, size_t klen, const char *v,
                   size_t vlen) {
  for (size_t i = 0; i < st->ntags; i++) {
    if (strlen(st->tags[i].key) == klen &&
        memcmp(st->tags[i].key, k, klen) == 0) {
      char *nv = strndup(v, vlen);
      if (nv != NULL) {
        free(st->tags[i].value);
        st->tags[i].value = nv;
      }
      return;
    }
  }
  if (st->ntags >= HS_IDENTITY_MAX_TAGS) {
    hs_log(HS_LOG_WARN, "more than %d global tags; ignoring \"%.*s\"",
           HS_IDENTITY_MAX_TAGS, (int)klen, k);
    return;
  }
  hs_kv *n = realloc(st->tags, sizeof *n * (st->ntags + 1));
  if (n == NULL)
    return;
  st->tags = n;
  n[st->ntags].key = strndup(k, klen);
  n[st->ntags].value = strndup(v, vlen);
  if (n[st->ntags].key == NULL || n[st->ntags].value == NULL) {
    free(n[st->ntags].key);
    free(n[st->ntags].value);
    return;
  }
  st->ntags++;
}

static size_t trim(const char **s, size_t n) {
  while (n > 0 && (**s == ' ' || **s == '\t')) {
    (*s)++;
    n--;
  }
  while (n > 0 && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
    n--;
  return n;
}

/* DD_TAGS form: "k1:v1,k2:v2" (commas or spaces between entries). An entry
 * without ':' is skipped with a warning. */
static void parse_dd_tags(hs_identity *st, const char *list,
                          const char *origin) {
  const char *p = list;
  int sep = strchr(list, ',') ? ',' : ' ';
  while (*p != '\0') {
    const char *end = strchr(p, sep);
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *e = p;
    size_t len = trim(&e, n);
    if (len > 0) {
      const char *colon = memchr(e, ':', len);
      if (colon == NULL || colon == e) {
        hs_log(HS_LOG_WARN, "%s: ignoring tag \"%.*s\" (expected key:value)",
               origin, (int)len, e);
      } else {
        const char *k = e, *v = colon + 1;
        size_t klen = trim(&k, (size_t)(colon - e));
        size_t vlen = trim(&v, len - (size_t)(colon - e) - 1);
        kv_set(st, k, klen, v, vlen);
      }
    }
    p += n;
    if (*p == sep)
      p++;
  }
}

/* Percent-decodes n bytes of s into dst (capacity cap); -1 if invalid or
 * too long. */
static int pct_decode(const char *s, size_t n, char *dst, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n || hs_hexval(s[i + 1]) < 0 || hs_hexval(s[i + 2]) < 0)
        return -1;
      c = hs_hexval(s[i + 1]) * 16 + hs_hexval(s[i + 2]);
      i += 2;
    }
    if (o + 1 >= cap)
      return -1;
    dst[o++] = (char)c;
  }
  dst[o] = '\0';
  return (int)o;
}

/* OTEL_RESOURCE_ATTRIBUTES: "k1=v1,k2=v2", values percent-encoded.
 * service.name, service.version and deployment.environment(.name) fill the
 * matching settings when those are still unset; the rest become tags. */
static void parse_otel_resource(hs_identity *st, const char *list,
                                char **service, char **version, char **env) {
  const char *p = list;
  while (*p != '\0') {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *e = p;
    size_t len = trim(&e, n);
    const char *eq = len ? memchr(e, '=', len) : NULL;
    if (len > 0 && (eq == NULL || eq == e)) {
      hs_log(HS_LOG_WARN,
             "OTEL_RESOURCE_ATTRIBUTES: ignoring \"%.*s\" (expected key=value)",
             (int)len, e);
    } else if (len > 0) {
      char key[256], val[1024];
      const char *k = e, *v = eq + 1;
      size_t klen = trim(&k, (size_t)(eq - e));
      size_t vlen = trim(&v, len - (size_t)(eq - e) - 1);
      if (pct_decode(k, klen, key, sizeof key) < 0 ||
          pct_decode(v, vlen, val, sizeof val) < 0) {
        hs_log(HS_LOG_WARN,
               "OTEL_RESOURCE_ATTRIBUTES: ignoring \"%.*s\" (bad encoding "
               "or too long)",
               (int)len, e);
      } else if (strcmp(key, "service.name") == 0) {
        if (*service == NULL)
          *service = strdup(val);
      } else if (strcmp(key, "service.version") == 0) {
        if (*version == NULL)
          *version = strdup(val);
      } else if (strcmp(key, "deployment.environment") == 0 ||
                 strcmp(key, "deployment.environment.name") == 0) {
        if (*env == NULL)
          *env = strdup(val);
      } else {
        kv_set(st, key, strlen(key), val, strlen(val));
      }
    }
    p += n;
    if (*p == ',')
      p++;
  }
}

/* ------------------------------------------------------------ resolve */

static const char *env_or_null(int use_env, const char *const *names) {
  return use_env ? hs_env_first(names, NULL) : NULL;
}

static char *dup_or_null(const char *s) {
  return s != NULL ? strdup(s) : NULL;
}

int hs_identity_resolve(const hs_identity_code *code, int use_env,
                        hs_identity *st) {
  static const hs_identity_code none = {NULL, NULL, NULL, NULL};
  if (code == NULL)
    code = &none;
  memset(st, 0, sizeof *st);
  static const char *const service_vars[] = {"HOTSPAN_SERVICE", "DD_SERVICE",
                                             "OTEL_SERVICE_NAME", NULL};
  static const char *const env_vars[] = {"HOTSPAN_ENV", "DD_ENV", NULL};
  static const char *const version_vars[] = {"HOTSPAN_VERSION", "DD_VERSION",
                                             NULL};
  char *service = dup_or_null(
      code->service ? code->service : env_or_null(use_env, service_vars));
  char *env =
      dup_or_null(code->env ? code->env : env_or_null(use_env, env_vars));
  char *version = dup_or_null(
      code->version ? code->version : env_or_null(use_env, version_vars));

  /* Tags: lowest precedence first, so that later ones overwrite. */
  if (use_env) {
    const char *ra = hs_env_get("OTEL_RESOURCE_ATTRIBUTES");
    if (ra != NULL)
      parse_otel_resource(st, ra, &service, &version, &env);
    const char *dd = hs_env_get("DD_TAGS");
    if (dd != NULL)
      parse_dd_tags(st, dd, "DD_TAGS");
    const char *hs = hs_env_get("HOTSPAN_TAGS");
    if (hs != NULL)
      parse_dd_tags(st, hs, "HOTSPAN_TAGS");
  }
  if (code->tags != NULL)
    parse_dd_tags(st, code->tags, "hotspan_config.tags");

  if (service == NULL)
    service =
        strdup(program_invocation_short_name && program_invocation_short_name[0]
                   ? program_invocation_short_name
                   : "unnamed-c-service");
  st->service = service;
  st->env = env;
  st->version = version;
  if (st->service == NULL) {
    hs_identity_free(st);
    return HOTSPAN_ENOMEM;
  }
  return HOTSPAN_OK;
}

void hs_identity_free(hs_identity *id) {
  if (id == NULL)
    return;
  free(id->service);
  free(id->env);
  free(id->version);
  for (size_t i = 0; i < id->ntags; i++) {
    free(id->tags[i].key);
    free(id->tags[i].value);
  }
  free(id->tags);
  memset(id, 0, sizeof *id);
}

static int hs_identity_copy(const hs_identity *src, hs_identity *dst) {
  memset(dst, 0, sizeof *dst);
  dst->service = dup_or_null(src->service);
  dst->env = dup_or_null(src->env);
  dst->version = dup_or_null(src->version);
  int oom = (src->service && !dst->service) || (src->env && !dst->env) ||
            (src->version && !dst->version);
  if (src->ntags > 0) {
    dst->tags = calloc(src->ntags, sizeof *dst->tags);
    oom |= dst->tags == NULL;
    for (size_t i = 0; dst->tags != NULL && i < src->ntags; i++) {
      dst->tags[i].key = strdup(src->tags[i].key);
      dst->tags[i].value = strdup(src->tags[i].value);
      dst->ntags++;
      oom |= dst->tags[i].key == NULL || dst->tags[i].value == NULL;
    }
  }
  if (oom) {
    hs_identity_free(dst);
    return HOTSPAN_ENOMEM;
  }
  return HOTSPAN_OK;
}

/* ------------------------------------------------------------ process */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hs_identity published; /* under mu; service NULL until published */
static char runtime_id[37];   /* written under mu, see hs_identity_runtime_id */
static _Atomic unsigned runtime_id_gen; /* fork generation + 1 it is for */

/* mu is held across fork() so the child never inherits it locked. */
static void fork_prepare(void) {
  pthread_mutex_lock(&mu);
}
static void fork_parent(void) {
  pthread_mutex_unlock(&mu);
}
static void fork_child(void) {
  pthread_mutex_init(&mu, NULL);
}

static const hs_fork_handler fork_handler = {
    HS_FORK_RANK_IDENTITY, fork_prepare, fork_parent, fork_child};

static void register_fork(void) {
  (void)hs_fork_register(&fork_handler);
}

static void lock(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, register_fork);
  pthread_mutex_lock(&mu);
}

int hs_identity_publish(const hs_identity *id) {
  lock();
  int rc = 0;
  if (published.service == NULL)
    rc = hs_identity_copy(id, &published) == HOTSPAN_OK ? 1 : -1;
  pthread_mutex_unlock(&mu);
  return rc;
}

int hs_identity_current(int use_env, hs_identity *out) {
  lock();
  int have = published.service != NULL;
  int rc = have ? hs_identity_copy(&published, out) : HOTSPAN_OK;
  pthread_mutex_unlock(&mu);
  if (!have)
    rc = hs_identity_resolve(NULL, use_env, out);
  return rc;
}

static void make_runtime_id(char out[37]) {
  uint8_t b[16];
  hs_random_seed(b, sizeof b);
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
  snprintf(
      out, 37,
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
      b[12], b[13], b[14], b[15]);
}

/* Made on first use and again on first use in each forked child (the
 * child is another process: Datadog's rule for forked processes). */
void hs_identity_runtime_id(char out[37]) {
  unsigned want = hs_fork_generation() + 1;
  if (atomic_load_explicit(&runtime_id_gen, memory_order_acquire) != want) {
    lock();
    if (atomic_load_explicit(&runtime_id_gen, memory_order_relaxed) != want) {
      make_runtime_id(runtime_id);
      atomic_store_explicit(&runtime_id_gen, want, memory_order_release);
    }
    pthread_mutex_unlock(&mu);
  }
  memcpy(out, runtime_id, sizeof runtime_id);
}

/* The fork generation in the high half, the pid in the low half; 0 until
 * first asked. */
static _Atomic uint64_t cached_pid;

int64_t hs_process_id(void) {
  uint64_t gen = hs_fork_generation();
  uint64_t v = atomic_load_explicit(&cached_pid, memory_order_relaxed);
  if (__builtin_expect(v == 0 || (v >> 32) != gen, 0)) {
    v = gen << 32 | (uint32_t)getpid();
    atomic_store_explicit(&cached_pid, v, memory_order_relaxed);
  }
  return (int64_t)(uint32_t)v;
}

void hs_identity_host(char *out, size_t cap) {
  if (cap == 0)
    return;
  if (gethostname(out, cap) != 0)
    out[0] = '\0';
  out[cap - 1] = '\0';
}
