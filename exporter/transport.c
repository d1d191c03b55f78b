/* Transport: see transport.h for the contract.
 *
 * Threads and locks. One background thread (the "transport thread") owns
 * the curl multi handle and every easy handle; it is the only thread that
 * calls into libcurl on them (other threads only call curl_multi_wakeup).
 * Three kinds of mutex, always taken in this order:
 *   life_lock  serializes starting/stopping the thread and freeing targets;
 *   g_lock     the list of targets, the thread's state, the multi pointer;
 *   t->lock    one target's queue, in-flight slots and counters;
 *   fd_lock    the set of sockets libcurl opened (see the fork notes).
 * No transport lock is held while the thread is inside libcurl, except
 * fd_lock in the socket callbacks (taken around socket()/close() only), so
 * the fork handlers, which take every lock, wait at most for a short
 * critical section.
 *
 * A payload is in exactly one place: the target's FIFO queue (sorted by
 * sequence number), one of the target's in-flight slots, or being finished
 * by the thread (taken out of the slot under the lock, freed after). */
#include "exporter/transport.h"

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

#define MAX_INFLIGHT 2                /* per target */
#define RESPONSE_MAX (64 * 1024)      /* response body kept for on_response */
#define WARN_EVERY_NS 60000000000ull  /* one warning line per minute */
#define RELEASE_WAIT_NS 1000000000ull /* free: wait for the thread */
#define POLL_MAX_MS 1000

#define DEF_BUDGET ((size_t)8 << 20)
#define DEF_CONNECT_MS 2000
#define DEF_TIMEOUT_MS 10000
#define DEF_ATTEMPTS 5
#define DEF_BASE_MS 250
#define DEF_MAX_MS 30000

typedef struct payload {
  struct payload *next;
  char *body;
  size_t len;
  struct curl_slist *hdrs; /* fixed + per-request headers, or NULL: the
                              target's list */
  uint32_t items;
  int attempts; /* started so far */
  uint64_t seq;
  char *url; /* this request's URL (target URL + query), or NULL */
} payload;

/* One in-flight slot. p is read and written under the target's lock; the
 * rest belongs to the transport thread. */
typedef struct xfer {
  payload *p; /* NULL: idle */
  CURL *easy;
  struct hs_target *t;
  char *resp;
  size_t resp_len, resp_cap;
  char errbuf[CURL_ERROR_SIZE];
} xfer;

struct hs_target {
  struct hs_target *next; /* g_targets; written only by the thread, or
                             under life_lock when no thread runs */
  pthread_mutex_t lock;
  pthread_cond_t cond; /* CLOCK_MONOTONIC: progress, release */

  /* Immutable after hs_target_new. */
  char *name;
  char *url;       /* as configured, for logs */
  char *req_url;   /* what curl gets */
  char *sock_path; /* unix socket, or NULL */
  struct curl_slist *hdrs;
  size_t budget;
  long connect_ms, timeout_ms;
  int max_attempts;
  uint64_t base_ns, max_ns;
  int policy;
  hs_target_response_fn on_response;
  void *response_arg;

  /* Under lock. */
  payload *head, *tail;
  uint64_t next_seq;
  uint64_t ready_ns; /* backing off: no attempt before this */
  int ninflight;
  xfer x[MAX_INFLIGHT];
  hs_target_stats st;
  int closing;  /* hs_target_free is removing it */
  int draining; /* shutting down: no backoff, no retry (hs_target_drain) */
  int released; /* the thread let go of it */
  int orphaned; /* nobody waits for the release: the thread frees it */
  int failing;  /* a failure warning was logged, recovery not yet */
  uint64_t last_warn_ns;
  uint64_t dropped_since_warn;
};

static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;

static int g_inited;         /* curl_global_init + atfork done; life_lock */
static hs_target *g_targets; /* g_lock for the head */
static int g_running;        /* a thread runs; g_lock */
static int g_stop;           /* asks the thread to exit; g_lock */
static CURLM *g_multi;       /* the running thread's multi; g_lock */
static pthread_t g_thread;   /* life_lock */

/* Sockets libcurl opened through us (fd_lock): a forked child closes them,
 * so a pre-forking server's workers do not each keep the parent's
 * connections open. */
static int *g_fds;
static size_t g_nfds, g_capfds;

/* ------------------------------------------------------------------ misc */

static uint64_t deadline_after_ms(int ms) {
  return hs_now_mono_ns() + (uint64_t)(ms < 0 ? 0 : ms) * 1000000u;
}

static void ts_from_mono(struct timespec *ts, uint64_t ns) {
  ts->tv_sec = (time_t)(ns / 1000000000u);
  ts->tv_nsec = (long)(ns % 1000000000u);
}

static void cond_init_mono(pthread_cond_t *c) {
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
static void copy_trunc(char *dst, size_t n, const char *src) {
  size_t len = strlen(src);
  if (len >= n)
    len = n - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

static void payload_free(payload *p) {
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
static void count_drop(hs_target *t, uint64_t *counter, const payload *p) {
  (*counter)++;
  t->st.items_dropped += p->items;
  t->dropped_since_warn++;
}

/* Formats the rate-limited warning line into buf (empty when it is not
 * time for one) and marks the target failing. t->lock held; the caller
 * logs after unlocking. */
static void warn_line(hs_target *t, const char *what, char *buf, size_t n) {
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

/* ------------------------------------------------------- socket tracking */

static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a) {
  (void)clientp;
  (void)purpose;
  /* Under fd_lock from socket() to recording it, so that a fork never
   * sees a socket that is not in the set. */
  pthread_mutex_lock(&fd_lock);
  int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd >= 0) {
    if (g_nfds == g_capfds) {
      size_t cap = g_capfds ? 2 * g_capfds : 16;
      int *n = realloc(g_fds, cap * sizeof *n);
      if (n != NULL) {
        g_fds = n;
        g_capfds = cap;
      }
    }
    if (g_nfds < g_capfds) /* else untracked: only a child would leak it */
      g_fds[g_nfds++] = fd;
  }
  pthread_mutex_unlock(&fd_lock);
  return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

static int close_socket_cb(void *clientp, curl_socket_t fd) {
  (void)clientp;
  pthread_mutex_lock(&fd_lock);
  for (size_t i = 0; i < g_nfds; i++) {
    if (g_fds[i] == fd) {
      g_fds[i] = g_fds[--g_nfds];
      break;
    }
  }
  int rc = close(fd);
  pthread_mutex_unlock(&fd_lock);
  return rc;
}

/* -------------------------------------------------------- thread: sends */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg) {
  xfer *x = arg;
  size_t n = size * nmemb;
  size_t room = RESPONSE_MAX - x->resp_len;
  size_t take = n < room ? n : room; /* the rest is read and discarded */
  if (take > 0) {
    if (x->resp_len + take + 1 > x->resp_cap) {
      size_t cap = x->resp_len + take + 1;
      if (cap < 1024)
        cap = 1024;
      char *b = realloc(x->resp, cap);
      if (b == NULL)
        return n; /* keep what we have; the send itself is unaffected */
      x->resp = b;
      x->resp_cap = cap;
    }
    memcpy(x->resp + x->resp_len, data, take);
    x->resp_len += take;
    x->resp[x->resp_len] = '\0';
  }
  return n;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static int status_retryable(int policy, long status) {
  if (status == 429)
    return 1;
  if (policy == HS_RETRY_OTLP)
    return status == 502 || status == 503 || status == 504;
  return status >= 500 && status <= 599;
}

/* Backoff before the next attempt of a payload that failed its attempts-th
 * attempt: Retry-After when the server gave one, else base*2^(attempts-1)
 * with full jitter; both capped at max. */
static uint64_t retry_delay(const hs_target *t, int attempts,
                            curl_off_t retry_after_s, uint64_t *rng) {
  if (retry_after_s > 0) {
    uint64_t ra = (uint64_t)retry_after_s;
    if (ra > t->max_ns / 1000000000u)
      return t->max_ns;
    return ra * 1000000000u;
  }
  uint64_t d = t->base_ns;
  for (int i = 1; i < attempts && d < t->max_ns; i++)
    d *= 2;
  if (d > t->max_ns)
    d = t->max_ns;
  return d == 0 ? 0 : rng_next(rng) % (d + 1);
}

/* Puts p back into the queue in sequence order. t->lock held. */
static void requeue(hs_target *t, payload *p) {
  payload **pp = &t->head;
  while (*pp != NULL && (*pp)->seq < p->seq)
    pp = &(*pp)->next;
  p->next = *pp;
  *pp = p;
  if (p->next == NULL)
    t->tail = p;
}

/* Prepares x's easy handle for its payload and hands it to the multi.
 * Returns 0 or a curl error (the attempt then failed). */
static CURLcode start_xfer(CURLM *m, hs_target *t, xfer *x, payload *p) {
  if (x->easy == NULL) {
    CURL *e = curl_easy_init();
    if (e == NULL)
      return CURLE_OUT_OF_MEMORY;
    x->easy = e;
    x->t = t;
    CURLcode rc = CURLE_OK;
#define SET(o, v)                                                              \
  if (rc == CURLE_OK)                                                          \
  rc = curl_easy_setopt(e, o, v)
    SET(CURLOPT_URL, t->req_url);
    if (t->sock_path != NULL)
      SET(CURLOPT_UNIX_SOCKET_PATH, t->sock_path);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_CONNECTTIMEOUT_MS, t->connect_ms);
    SET(CURLOPT_TIMEOUT_MS, t->timeout_ms);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
#undef SET
    if (rc != CURLE_OK)
      return rc;
  }
  x->resp_len = 0;
  x->errbuf[0] = '\0';
  curl_easy_setopt(x->easy, CURLOPT_URL, p->url != NULL ? p->url : t->req_url);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->len);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, p->body ? p->body : "");
  curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER,
                   p->hdrs != NULL ? p->hdrs : t->hdrs);
  if (curl_multi_add_handle(m, x->easy) != CURLM_OK)
    return CURLE_OUT_OF_MEMORY;
  return CURLE_OK;
}

/* Frees a target (its lock held by nobody, no thread refers to it). */
static void target_destroy(hs_target *t) {
  for (payload *p = t->head, *n; p != NULL; p = n) {
    n = p->next;
    payload_free(p);
  }
  for (int i = 0; i < MAX_INFLIGHT; i++) {
    payload_free(t->x[i].p);
    if (t->x[i].easy != NULL)
      curl_easy_cleanup(t->x[i].easy);
    free(t->x[i].resp);
  }
  curl_slist_free_all(t->hdrs);
  pthread_mutex_destroy(&t->lock);
  pthread_cond_destroy(&t->cond);
  free(t->name);
  free(t->url);
  free(t->req_url);
  free(t->sock_path);
  free(t);
}

/* The end of an attempt: x's transfer finished with res (the multi still
 * holds the handle unless started is 0). Decides sent / retry / drop. */
static void finish_xfer(CURLM *m, hs_target *t, xfer *x, CURLcode res,
                        int in_multi, uint64_t *rng) {
  long status = 0;
  curl_off_t retry_after = 0;
  if (in_multi) {
    if (res == CURLE_OK) {
      curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_after);
    }
    curl_multi_remove_handle(m, x->easy);
  }
  char warn[768], info[512], err[CURL_ERROR_SIZE + 64];
  warn[0] = info[0] = '\0';
  if (res != CURLE_OK)
    snprintf(err, sizeof err, "%s%s%s", curl_easy_strerror(res),
             x->errbuf[0] ? ": " : "", x->errbuf);
  else
    snprintf(err, sizeof err, "HTTP status %ld", status);

  int answered = res == CURLE_OK;
  int ok = answered && status >= 200 && status <= 299;
  int retryable = !answered || status_retryable(t->policy, status);
  /* x->p and attempts are only changed by this thread; draining is set by
   * hs_target_drain under t->lock. If a drain starts after this read, the
   * locked section below drops the payload instead of retrying it. */
  pthread_mutex_lock(&t->lock);
  int draining = t->draining;
  pthread_mutex_unlock(&t->lock);
  int will_retry =
      !ok && retryable && x->p->attempts < t->max_attempts && !draining;
  /* The answer is handed over before the payload counts as done, so that a
   * flush that returned has seen every callback. */
  if (answered && !will_retry && t->on_response != NULL)
    t->on_response(t->response_arg, status, x->resp_len ? x->resp : NULL,
                   x->resp_len);

  int final = 1;
  pthread_mutex_lock(&t->lock);
  payload *p = x->p;
  x->p = NULL;
  t->ninflight--;
  if (answered)
    t->st.last_status = status;
  if (ok) {
    t->st.payloads_sent++;
    t->st.items_sent += p->items;
    t->st.bytes_sent += p->len;
    if (t->failing) {
      t->failing = 0;
      snprintf(info, sizeof info,
               "exporter: %s: sending to %s works again (%llu payloads "
               "dropped since the last message)",
               t->name, t->url, (unsigned long long)t->dropped_since_warn);
      t->dropped_since_warn = 0;
    }
  } else {
    copy_trunc(t->st.last_error, sizeof t->st.last_error, err);
    if (t->closing || (t->draining && retryable)) {
      count_drop(t, &t->st.dropped_shutdown, p);
    } else if (will_retry) {
      final = 0;
      uint64_t ready =
          hs_now_mono_ns() + retry_delay(t, p->attempts, retry_after, rng);
      if (ready > t->ready_ns)
        t->ready_ns = ready;
      requeue(t, p);
      warn_line(t, err, warn, sizeof warn);
    } else {
      count_drop(
          t, retryable ? &t->st.dropped_attempts : &t->st.dropped_rejected, p);
      warn_line(t, err, warn, sizeof warn);
    }
  }
  if (final)
    t->st.bytes_queued -= p->len;
  pthread_cond_broadcast(&t->cond);
  pthread_mutex_unlock(&t->lock);

  if (warn[0])
    hs_log(HS_LOG_WARN, "%s", warn);
  if (info[0])
    hs_log(HS_LOG_INFO, "%s", info);
  if (final)
    payload_free(p);
}

/* Aborts t's transfers, cleans its easy handles, unlinks it and tells its
 * freer (or frees it when orphaned). Transport thread. */
static void release_target(CURLM *m, hs_target *t) {
  for (int i = 0; i < MAX_INFLIGHT; i++) {
    xfer *x = &t->x[i];
    pthread_mutex_lock(&t->lock);
    payload *p = x->p;
    pthread_mutex_unlock(&t->lock);
    if (p != NULL) {
      curl_multi_remove_handle(m, x->easy);
      pthread_mutex_lock(&t->lock);
      x->p = NULL;
      t->ninflight--;
      count_drop(t, &t->st.dropped_shutdown, p);
      t->st.bytes_queued -= p->len;
      pthread_mutex_unlock(&t->lock);
      payload_free(p);
    }
    if (x->easy != NULL)
      curl_easy_cleanup(x->easy);
    x->easy = NULL;
  }
  pthread_mutex_lock(&g_lock);
  for (hs_target **pp = &g_targets; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  pthread_mutex_unlock(&g_lock);
  pthread_mutex_lock(&t->lock);
  int orphaned = t->orphaned;
  t->released = 1;
  pthread_cond_broadcast(&t->cond);
  pthread_mutex_unlock(&t->lock);
  if (orphaned)
    target_destroy(t);
}

/* Starts what t may start now; lowers *wait_ms to t's backoff end.
 * Transport thread. */
static void service_target(CURLM *m, hs_target *t, uint64_t now, int *wait_ms,
                           uint64_t *rng) {
  for (;;) {
    pthread_mutex_lock(&t->lock);
    xfer *x = NULL;
    for (int i = 0; i < MAX_INFLIGHT && x == NULL; i++)
      if (t->x[i].p == NULL)
        x = &t->x[i];
    if (x == NULL || t->head == NULL || t->closing) {
      pthread_mutex_unlock(&t->lock);
      return;
    }
    if (t->ready_ns > now) {
      uint64_t ms = (t->ready_ns - now) / 1000000u + 1;
      if (ms < (uint64_t)*wait_ms)
        *wait_ms = (int)ms;
      pthread_mutex_unlock(&t->lock);
      return;
    }
    payload *p = t->head;
    t->head = p->next;
    if (t->head == NULL)
      t->tail = NULL;
    p->next = NULL;
    p->attempts++;
    if (p->attempts > 1)
      t->st.retries++;
    x->p = p;
    t->ninflight++;
    pthread_mutex_unlock(&t->lock);
    CURLcode rc = start_xfer(m, t, x, p);
    if (rc != CURLE_OK)
      finish_xfer(m, t, x, rc, 0, rng);
  }
}

static void *thread_main(void *arg) {
  CURLM *m = arg;
  uint64_t rng = hs_random_seed64();
  int wait_ms = 0;
  for (;;) {
    pthread_mutex_lock(&g_lock);
    int stop = g_stop;
    hs_target *t = g_targets;
    pthread_mutex_unlock(&g_lock);
    if (stop)
      break;
    uint64_t now = hs_now_mono_ns();
    wait_ms = POLL_MAX_MS;
    /* Only this thread unlinks targets, so the chain from the snapshot
     * stays valid; targets added meanwhile are seen next round. */
    while (t != NULL) {
      hs_target *next = t->next;
      pthread_mutex_lock(&t->lock);
      int closing = t->closing && !t->released;
      pthread_mutex_unlock(&t->lock);
      if (closing)
        release_target(m, t);
      else
        service_target(m, t, now, &wait_ms, &rng);
      t = next;
    }
    int running = 0;
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      char *priv = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      xfer *x = (xfer *)(void *)priv;
      CURLcode res = msg->data.result;
      if (x != NULL)
        finish_xfer(m, x->t, x, res, 1, &rng);
      wait_ms = 0; /* a slot freed up: look at the queues again */
    }
    if (wait_ms > 0)
      curl_multi_poll(m, NULL, 0, wait_ms, NULL);
  }
  pthread_mutex_lock(&g_lock);
  g_multi = NULL;
  pthread_mutex_unlock(&g_lock);
  curl_multi_cleanup(m);
  return NULL;
}

/* ---------------------------------------------------- thread lifecycle */

/* Starts the thread if none runs. life_lock held, g_lock not. Returns 0 or
 * -1 (logged). */
static int ensure_thread_locked(void) {
  pthread_mutex_lock(&g_lock);
  int running = g_running;
  pthread_mutex_unlock(&g_lock);
  if (running)
    return 0;
  CURLM *m = curl_multi_init();
  if (m == NULL) {
    hs_log(HS_LOG_WARN, "exporter: cannot create the transport (curl)");
    return -1;
  }
  /* A library thread: never takes the program's signals nor the
   * profiler's (common/thread.h). */
  pthread_mutex_lock(&g_lock);
  g_stop = 0;
  g_multi = m;
  int rc = hs_thread_start(&g_thread, thread_main, m, "hotspan-export");
  if (rc == 0)
    g_running = 1;
  else
    g_multi = NULL;
  pthread_mutex_unlock(&g_lock);
  if (rc != 0) {
    curl_multi_cleanup(m);
    hs_log(HS_LOG_WARN, "exporter: cannot start the transport thread: %s",
           strerror(rc));
    return -1;
  }
  return 0;
}

/* Wakes the thread, starting it if needed (a forked child's first send). */
static void kick(void) {
  pthread_mutex_lock(&g_lock);
  if (g_running) {
    curl_multi_wakeup(g_multi);
    pthread_mutex_unlock(&g_lock);
    return;
  }
  pthread_mutex_unlock(&g_lock);
  pthread_mutex_lock(&life_lock);
  (void)ensure_thread_locked();
  pthread_mutex_unlock(&life_lock);
}

/* Stops the thread when no target is left. life_lock held. */
static void stop_if_idle_locked(void) {
  pthread_mutex_lock(&g_lock);
  if (g_targets != NULL || !g_running) {
    pthread_mutex_unlock(&g_lock);
    return;
  }
  g_stop = 1;
  curl_multi_wakeup(g_multi);
  pthread_mutex_unlock(&g_lock);
  pthread_join(g_thread, NULL);
  pthread_mutex_lock(&g_lock);
  g_running = 0;
  g_stop = 0;
  pthread_mutex_unlock(&g_lock);
}

/* ---------------------------------------------------------------- fork */

static void atfork_prepare(void) {
  pthread_mutex_lock(&life_lock);
  pthread_mutex_lock(&g_lock);
  for (hs_target *t = g_targets; t != NULL; t = t->next)
    pthread_mutex_lock(&t->lock);
  pthread_mutex_lock(&fd_lock);
}

static void atfork_parent(void) {
  pthread_mutex_unlock(&fd_lock);
  for (hs_target *t = g_targets; t != NULL; t = t->next)
    pthread_mutex_unlock(&t->lock);
  pthread_mutex_unlock(&g_lock);
  pthread_mutex_unlock(&life_lock);
}

/* The child has only the forking thread. The parent's transport thread may
 * have been anywhere inside libcurl, so its multi and easy handles are
 * forgotten (leaked), never called; their sockets are closed. Queued and
 * in-flight payloads are the parent's: freed unsent. */
static void atfork_child(void) {
  for (size_t i = 0; i < g_nfds; i++)
    close(g_fds[i]);
  g_nfds = 0;
  g_running = 0;
  g_stop = 0;
  g_multi = NULL;
  for (hs_target *t = g_targets; t != NULL; t = t->next) {
    for (payload *p = t->head, *n; p != NULL; p = n) {
      n = p->next;
      payload_free(p);
    }
    t->head = t->tail = NULL;
    for (int i = 0; i < MAX_INFLIGHT; i++) {
      xfer *x = &t->x[i];
      payload_free(x->p); /* out of every list: freed once */
      x->p = NULL;
      x->easy = NULL;
      /* The thread may have been reallocating it: leak, never free. */
      x->resp = NULL;
      x->resp_len = x->resp_cap = 0;
    }
    t->ninflight = 0;
    t->ready_ns = 0;
    t->draining = 0;
    memset(&t->st, 0, sizeof t->st);
    t->failing = 0;
    t->last_warn_ns = 0;
    t->dropped_since_warn = 0;
    if (t->closing && !t->released)
      t->orphaned = 1; /* its freer stayed in the parent */
    pthread_mutex_unlock(&t->lock);
    cond_init_mono(&t->cond);
  }
  pthread_mutex_unlock(&fd_lock);
  pthread_mutex_unlock(&g_lock);
  pthread_mutex_unlock(&life_lock);
}

/* curl_global_init and the fork handlers, once. life_lock held. */
static int global_init_locked(void) {
  if (g_inited)
    return 0;
  CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    hs_log(HS_LOG_ERROR, "exporter: curl initialization failed: %s",
           curl_easy_strerror(rc));
    return -1;
  }
  static const hs_fork_handler fork_handler = {
      HS_FORK_RANK_TRANSPORT, atfork_prepare, atfork_parent, atfork_child};
  if (hs_fork_register(&fork_handler) != 0) {
    hs_log(HS_LOG_ERROR, "exporter: cannot install fork handlers");
    return -1;
  }
  g_inited = 1;
  return 0;
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
  cond_init_mono(&t->cond);
  const char *why = "out of memory";
  t->name = strdup(name);
  t->url = strdup(cfg->url);
  if (t->name == NULL || t->url == NULL || parse_url(t, cfg, &why) != 0 ||
      slist_add_all(&t->hdrs, cfg->headers) != 0) {
    hs_log(HS_LOG_ERROR, "exporter: %s: target %s refused: %s", name, cfg->url,
           why);
    target_destroy(t);
    return NULL;
  }
  /* curl sends "Expect: 100-continue" before large bodies and waits up to
   * a second for an answer some servers never give; an empty "Expect:"
   * turns that off. */
  const char *no_expect[] = {"Expect:", NULL};
  if (slist_add_all(&t->hdrs, no_expect) != 0) {
    hs_log(HS_LOG_ERROR, "exporter: %s: out of memory", name);
    target_destroy(t);
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

  pthread_mutex_lock(&life_lock);
  if (global_init_locked() != 0) {
    pthread_mutex_unlock(&life_lock);
    target_destroy(t);
    return NULL;
  }
  pthread_mutex_lock(&g_lock);
  t->next = g_targets;
  g_targets = t;
  pthread_mutex_unlock(&g_lock);
  (void)ensure_thread_locked(); /* else the first send tries again */
  pthread_mutex_unlock(&life_lock);
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
    count_drop(t, &t->st.dropped_shutdown, p);
    pthread_mutex_unlock(&t->lock);
    payload_free(p);
    return HOTSPAN_ESTATE;
  }
  if (len > t->budget || t->st.bytes_queued > t->budget - len) {
    count_drop(t, &t->st.dropped_budget, p);
    char warn[512];
    warn_line(t, "byte budget full", warn, sizeof warn);
    pthread_mutex_unlock(&t->lock);
    if (warn[0])
      hs_log(HS_LOG_WARN, "%s", warn);
    payload_free(p);
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
  kick();
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
  kick();
  return hs_target_flush(t, timeout_ms);
}

void hs_target_free(hs_target *t, int timeout_ms) {
  if (t == NULL)
    return;
  (void)hs_target_flush(t, timeout_ms);
  pthread_mutex_lock(&life_lock);
  pthread_mutex_lock(&t->lock);
  t->closing = 1;
  for (payload *p = t->head, *n; p != NULL; p = n) {
    n = p->next;
    count_drop(t, &t->st.dropped_shutdown, p);
    t->st.bytes_queued -= p->len;
    payload_free(p);
  }
  t->head = t->tail = NULL;
  pthread_mutex_unlock(&t->lock);

  int keep = 0;
  pthread_mutex_lock(&g_lock);
  int running = g_running;
  if (running) {
    curl_multi_wakeup(g_multi);
  } else {
    for (hs_target **pp = &g_targets; *pp != NULL; pp = &(*pp)->next) {
      if (*pp == t) {
        *pp = t->next;
        break;
      }
    }
  }
  pthread_mutex_unlock(&g_lock);
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
    target_destroy(t);
  stop_if_idle_locked();
  pthread_mutex_unlock(&life_lock);
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
