/* Transport targets: creation, queues, sends, flush and free, stats (the
 * thread side is transport_thread.c; lock order in transport_int.h). */
#include "exporter/transport_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fork.h"
#include "common/log.h"
#include "common/random.h"
#include "common/thread.h"
#include "hotspan/error.h"

hs_transport_state hs_tr = {.life_lock = PTHREAD_MUTEX_INITIALIZER,
                            .lock = PTHREAD_MUTEX_INITIALIZER,
                            .fd_lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------------ misc */

static uint64_t deadline_after_ms(int ms) {
  return hs_now_mono_ns() + (uint64_t)(ms < 0 ? 0 : ms) * 1000000u;
}

static void ts_from_mono(struct timespec *ts, uint64_t ns) {
  ts->tv_sec = (time_t)(ns / 1000000000u);
  ts->tv_nsec = (long)(ns % 1000000000u);
}

void hs_tr_cond_init_mono(pthread_cond_t *c) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(c, &ca);
  pthread_condattr_destroy(&ca);
}

/* A header line must be "Name: value" (or "Name:" to remove one of curl's)
 * on one line: CR/LF would let a value inject headers. */
static int header_ok(const char *h) {
  if (h == NULL || h[0] == ':' || strchr(h, ':') == NULL)
    return 0;
  return strpbrk(h, "\r\n") == NULL;
}

static int headers_ok(const char *const *h) {
  for (; h != NULL && *h != NULL; h++)
    if (!header_ok(*h))
      return 0;
  return 1;
}

/* Appends each header of h to *list. Returns 0, or -1 on ENOMEM (then the
 * list is freed and *list NULL). */
static int slist_add_all(struct curl_slist **list, const char *const *h) {
  for (; h != NULL && *h != NULL; h++) {
    struct curl_slist *n = curl_slist_append(*list, *h);
    if (n == NULL) {
      curl_slist_free_all(*list);
      *list = NULL;
      return -1;
    }
    *list = n;
  }
  return 0;
}

/* Copy of the target's list plus extra. NULL on ENOMEM. */
static struct curl_slist *slist_merge(const struct curl_slist *base,
                                      const char *const *extra) {
  struct curl_slist *l = NULL;
  for (; base != NULL; base = base->next) {
    struct curl_slist *n = curl_slist_append(l, base->data);
    if (n == NULL) {
      curl_slist_free_all(l);
      return NULL;
    }
    l = n;
  }
  if (slist_add_all(&l, extra) != 0)
    return NULL;
  return l;
}

/* strlcpy: a message cut to fit. */
void hs_tr_copy_trunc(char *dst, size_t n, const char *src) {
  size_t len = strlen(src);
  if (len >= n)
    len = n - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

void hs_tr_payload_free(payload *p) {
  if (p == NULL)
    return;
  free(p->body);
  curl_slist_free_all(p->hdrs);
  free(p->url);
  free(p);
}

/* Oldest sequence number still queued or in flight, UINT64_MAX if none.
 * t->lock held. */
static uint64_t oldest_seq(const hs_target *t) {
  uint64_t m = t->head != NULL ? t->head->seq : UINT64_MAX;
  for (int i = 0; i < MAX_INFLIGHT; i++)
    if (t->x[i].p != NULL && t->x[i].p->seq < m)
      m = t->x[i].p->seq;
  return m;
}

/* Counts a dropped payload. t->lock held. */
void hs_tr_count_drop(hs_target *t, uint64_t *counter, const payload *p) {
  (*counter)++;
  t->st.items_dropped += p->items;
  t->dropped_since_warn++;
}

/* Formats the rate-limited warning line into buf (empty when it is not
 * time for one) and marks the target failing. t->lock held; the caller
 * logs after unlocking. */
void hs_tr_warn_line(hs_target *t, const char *what, char *buf, size_t n) {
  uint64_t now = hs_now_mono_ns();
  buf[0] = '\0';
  /* One line a minute at most, whether the backend stays down or flaps
   * between failing and working: recoveries do not re-arm it. */
  if (t->last_warn_ns != 0 && now - t->last_warn_ns < WARN_EVERY_NS)
    return;
  t->failing = 1; /* a warning was logged: log the recovery too */
  snprintf(buf, n,
           "exporter: %s: sending to %s failed: %s (%llu payloads dropped "
           "since the last message)",
           t->name, t->url, what, (unsigned long long)t->dropped_since_warn);
  t->last_warn_ns = now;
  t->dropped_since_warn = 0;
}

/* ------------------------------------------------------------------ API */

static int starts_with_ci(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Fills t->req_url / t->sock_path from cfg. Returns 0, or -1 with why set
 * to a static message. */
static int parse_url(hs_target *t, const hs_target_config *cfg,
                     const char **why) {
  const char *url = cfg->url;
  if (starts_with_ci(url, "unix://")) {
    const char *sock = url + strlen("unix://");
    const char *path = cfg->unix_path ? cfg->unix_path : "/";
    if (sock[0] != '/') {
      *why = "a unix:// URL needs an absolute socket path";
      return -1;
    }
    if (path[0] != '/' || strpbrk(path, " \r\n\t") != NULL) {
      *why = "unix_path must start with '/' and contain no spaces";
      return -1;
    }
    size_t n = strlen("http://localhost") + strlen(path) + 1;
    t->req_url = malloc(n);
    t->sock_path = strdup(sock);
    if (t->req_url == NULL || t->sock_path == NULL) {
      *why = "out of memory";
      return -1;
    }
    snprintf(t->req_url, n, "http://localhost%s", path);
    return 0;
  }
  int https = starts_with_ci(url, "https://");
  if (!https && !starts_with_ci(url, "http://")) {
    *why = "unsupported scheme (use http://, https:// or unix://)";
    return -1;
  }
  if (https &&
      !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_SSL)) {
    *why = "https is not supported by this libcurl";
    return -1;
  }
  CURLU *u = curl_url();
  if (u == NULL) {
    *why = "out of memory";
    return -1;
  }
  char *host = NULL;
  int ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
           curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
           host != NULL && host[0] != '\0';
  curl_free(host);
  curl_url_cleanup(u);
  if (!ok) {
    *why = "malformed URL";
    return -1;
  }
  t->req_url = strdup(url);
  if (t->req_url == NULL) {
    *why = "out of memory";
    return -1;
  }
  return 0;
}

hs_target *hs_target_new(const hs_target_config *cfg) {
  if (cfg == NULL || cfg->url == NULL) {
    hs_log(HS_LOG_ERROR, "exporter: target without a URL");
    return NULL;
  }
  const char *name = cfg->name ? cfg->name : "exporter";
  if (!headers_ok(cfg->headers)) {
    hs_log(HS_LOG_ERROR,
           "exporter: %s: a header is not a single \"Name: value\" line", name);
    return NULL;
  }
  if (cfg->byte_budget > SIZE_MAX / 2 || cfg->connect_timeout_ms < 0 ||
      cfg->timeout_ms < 0 || cfg->max_attempts < 0 ||
      cfg->backoff_base_ms < 0 || cfg->backoff_max_ms < 0 ||
      (cfg->retry_policy != HS_RETRY_429_5XX &&
       cfg->retry_policy != HS_RETRY_OTLP)) {
    hs_log(HS_LOG_ERROR, "exporter: %s: invalid target settings", name);
    return NULL;
  }
  hs_target *t = calloc(1, sizeof *t);
  if (t == NULL) {
    hs_log(HS_LOG_ERROR, "exporter: %s: out of memory", name);
    return NULL;
  }
  pthread_mutex_init(&t->lock, NULL);
  hs_tr_cond_init_mono(&t->cond);
  const char *why = "out of memory";
  t->name = strdup(name);
  t->url = strdup(cfg->url);
  if (t->name == NULL || t->url == NULL || parse_url(t, cfg, &why) != 0 ||
      slist_add_all(&t->hdrs, cfg->headers) != 0) {
    hs_log(HS_LOG_ERROR, "exporter: %s: target %s refused: %s", name, cfg->url,
           why);
    hs_tr_target_destroy(t);
    return NULL;
  }
  /* curl sends "Expect: 100-continue" before large bodies and waits up to
   * a second for an answer some servers never give; an empty "Expect:"
   * turns that off. */
  const char *no_expect[] = {"Expect:", NULL};
  if (slist_add_all(&t->hdrs, no_expect) != 0) {
    hs_log(HS_LOG_ERROR, "exporter: %s: out of memory", name);
    hs_tr_target_destroy(t);
    return NULL;
  }
  t->budget = cfg->byte_budget ? cfg->byte_budget : DEF_BUDGET;
  t->connect_ms =
      cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEF_CONNECT_MS;
  t->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEF_TIMEOUT_MS;
  t->max_attempts = cfg->max_attempts ? cfg->max_attempts : DEF_ATTEMPTS;
  t->base_ns =
      (uint64_t)(cfg->backoff_base_ms ? cfg->backoff_base_ms : DEF_BASE_MS) *
      1000000u;
  t->max_ns =
      (uint64_t)(cfg->backoff_max_ms ? cfg->backoff_max_ms : DEF_MAX_MS) *
      1000000u;
  t->policy = cfg->retry_policy;
  t->on_response = cfg->on_response;
  t->response_arg = cfg->response_arg;

  pthread_mutex_lock(&hs_tr.life_lock);
  if (hs_tr_global_init_locked() != 0) {
    pthread_mutex_unlock(&hs_tr.life_lock);
    hs_tr_target_destroy(t);
    return NULL;
  }
  pthread_mutex_lock(&hs_tr.lock);
  t->next = hs_tr.targets;
  hs_tr.targets = t;
  pthread_mutex_unlock(&hs_tr.lock);
  (void)hs_tr_ensure_thread_locked(); /* else the first send tries again */
  pthread_mutex_unlock(&hs_tr.life_lock);
  return t;
}

/* A query string is appended as is: it must already be percent-encoded,
 * and holds no space, control byte or '#'. */
static int query_ok(const char *q) {
  if (q == NULL)
    return 1;
  for (const unsigned char *c = (const unsigned char *)q; *c != '\0'; c++)
    if (*c <= 0x20 || *c >= 0x7f || *c == '#')
      return 0;
  return 1;
}

int hs_target_send(hs_target *t, char *body, size_t len,
                   const char *const *headers, uint32_t items) {
  return hs_target_send_query(t, body, len, headers, items, NULL);
}

int hs_target_send_query(hs_target *t, char *body, size_t len,
                         const char *const *headers, uint32_t items,
                         const char *query) {
  if (t == NULL || (body == NULL && len > 0) || !headers_ok(headers) ||
      !query_ok(query)) {
    free(body);
    return HOTSPAN_EINVAL;
  }
  payload *p = calloc(1, sizeof *p);
  if (p != NULL && query != NULL && query[0] != '\0') {
    size_t n = strlen(t->req_url) + strlen(query) + 2;
    p->url = malloc(n);
    if (p->url == NULL) {
      free(p);
      p = NULL;
    } else {
      snprintf(p->url, n, "%s%s%s", t->req_url,
               strchr(t->req_url, '?') != NULL ? "&" : "?", query);
    }
  }
  struct curl_slist *hdrs = NULL;
  if (p != NULL && headers != NULL && headers[0] != NULL) {
    hdrs = slist_merge(t->hdrs, headers);
    if (hdrs == NULL) {
      free(p->url);
      free(p);
      p = NULL;
    }
  }
  pthread_mutex_lock(&t->lock);
  if (p == NULL) {
    t->st.dropped_nomem++;
    t->st.items_dropped += items;
    t->dropped_since_warn++;
    pthread_mutex_unlock(&t->lock);
    free(body);
    return HOTSPAN_ENOMEM;
  }
  p->body = body;
  p->len = len;
  p->hdrs = hdrs;
  p->items = items;
  if (t->closing) {
    hs_tr_count_drop(t, &t->st.dropped_shutdown, p);
    pthread_mutex_unlock(&t->lock);
    hs_tr_payload_free(p);
    return HOTSPAN_ESTATE;
  }
  if (len > t->budget || t->st.bytes_queued > t->budget - len) {
    hs_tr_count_drop(t, &t->st.dropped_budget, p);
    char warn[512];
    hs_tr_warn_line(t, "byte budget full", warn, sizeof warn);
    pthread_mutex_unlock(&t->lock);
    if (warn[0])
      hs_log(HS_LOG_WARN, "%s", warn);
    hs_tr_payload_free(p);
    return HOTSPAN_EFULL;
  }
  p->seq = t->next_seq++;
  if (t->tail != NULL)
    t->tail->next = p;
  else
    t->head = p;
  t->tail = p;
  t->st.bytes_queued += len;
  pthread_mutex_unlock(&t->lock);
  hs_tr_kick();
  return HOTSPAN_OK;
}

/* Waits until nothing older than seq is outstanding or deadline passes.
 * t->lock held. Returns 1 when done. */
static int wait_done_locked(hs_target *t, uint64_t seq, uint64_t deadline) {
  struct timespec ts;
  ts_from_mono(&ts, deadline);
  while (oldest_seq(t) < seq) {
    if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) == ETIMEDOUT)
      return oldest_seq(t) >= seq;
  }
  return 1;
}

int hs_target_flush(hs_target *t, int timeout_ms) {
  if (t == NULL)
    return HOTSPAN_EINVAL;
  pthread_mutex_lock(&t->lock);
  int done = wait_done_locked(t, t->next_seq, deadline_after_ms(timeout_ms));
  pthread_mutex_unlock(&t->lock);
  return done ? HOTSPAN_OK : HOTSPAN_EIO;
}

int hs_target_drain(hs_target *t, int timeout_ms) {
  if (t == NULL)
    return HOTSPAN_EINVAL;
  pthread_mutex_lock(&t->lock);
  t->draining = 1;
  t->ready_ns = 0;
  pthread_mutex_unlock(&t->lock);
  hs_tr_kick();
  return hs_target_flush(t, timeout_ms);
}

void hs_target_free(hs_target *t, int timeout_ms) {
  if (t == NULL)
    return;
  (void)hs_target_flush(t, timeout_ms);
  pthread_mutex_lock(&hs_tr.life_lock);
  pthread_mutex_lock(&t->lock);
  t->closing = 1;
  for (payload *p = t->head, *n; p != NULL; p = n) {
    n = p->next;
    hs_tr_count_drop(t, &t->st.dropped_shutdown, p);
    t->st.bytes_queued -= p->len;
    hs_tr_payload_free(p);
  }
  t->head = t->tail = NULL;
  pthread_mutex_unlock(&t->lock);

  int keep = 0;
  pthread_mutex_lock(&hs_tr.lock);
  int running = hs_tr.running;
  if (running) {
    curl_multi_wakeup(hs_tr.multi);
  } else {
    for (hs_target **pp = &hs_tr.targets; *pp != NULL; pp = &(*pp)->next) {
      if (*pp == t) {
        *pp = t->next;
        break;
      }
    }
  }
  pthread_mutex_unlock(&hs_tr.lock);
  if (running) {
    /* The thread aborts the in-flight transfers at its next round; it
     * never blocks for long, the bound is a safety net. */
    pthread_mutex_lock(&t->lock);
    struct timespec ts;
    ts_from_mono(&ts, hs_now_mono_ns() + RELEASE_WAIT_NS);
    while (!t->released)
      if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) == ETIMEDOUT)
        break;
    if (!t->released) {
      t->orphaned = 1;
      keep = 1;
    }
    pthread_mutex_unlock(&t->lock);
    if (keep)
      hs_log(HS_LOG_WARN,
             "exporter: %s: the transport thread did not let go of the "
             "target in time; it will be freed later",
             t->name);
  }
  if (!keep)
    hs_tr_target_destroy(t);
  hs_tr_stop_if_idle_locked();
  pthread_mutex_unlock(&hs_tr.life_lock);
}

void hs_target_get_stats(hs_target *t, hs_target_stats *out) {
  if (out == NULL)
    return;
  if (t == NULL) {
    memset(out, 0, sizeof *out);
    return;
  }
  pthread_mutex_lock(&t->lock);
  *out = t->st;
  pthread_mutex_unlock(&t->lock);
}

const char *hs_target_url(const hs_target *t) {
  return t != NULL ? t->url : "";
}

size_t hs_target_budget(const hs_target *t) {
  return t != NULL ? t->budget : 0;
}

const char *hs_target_name(const hs_target *t) {
  return t != NULL ? t->name : "";
}
