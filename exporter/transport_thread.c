/* The transport thread: libcurl transfers, retries and backoff, socket
 * tracking, starting and stopping the thread, and fork handling (lock order
 * in transport_int.h). */
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

/* ------------------------------------------------------- socket tracking */

static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a) {
  (void)clientp;
  (void)purpose;
  /* Under hs_tr.fd_lock from socket() to recording it, so that a fork never
   * sees a socket that is not in the set. */
  pthread_mutex_lock(&hs_tr.fd_lock);
  int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd >= 0) {
    if (hs_tr.nfds == hs_tr.capfds) {
      size_t cap = hs_tr.capfds ? 2 * hs_tr.capfds : 16;
      int *n = realloc(hs_tr.fds, cap * sizeof *n);
      if (n != NULL) {
        hs_tr.fds = n;
        hs_tr.capfds = cap;
      }
    }
    if (hs_tr.nfds <
        hs_tr.capfds) /* else untracked: only a child would leak it */
      hs_tr.fds[hs_tr.nfds++] = fd;
  }
  pthread_mutex_unlock(&hs_tr.fd_lock);
  return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

static int close_socket_cb(void *clientp, curl_socket_t fd) {
  (void)clientp;
  pthread_mutex_lock(&hs_tr.fd_lock);
  for (size_t i = 0; i < hs_tr.nfds; i++) {
    if (hs_tr.fds[i] == fd) {
      hs_tr.fds[i] = hs_tr.fds[--hs_tr.nfds];
      break;
    }
  }
  int rc = close(fd);
  pthread_mutex_unlock(&hs_tr.fd_lock);
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
void hs_tr_target_destroy(hs_target *t) {
  for (payload *p = t->head, *n; p != NULL; p = n) {
    n = p->next;
    hs_tr_payload_free(p);
  }
  for (int i = 0; i < MAX_INFLIGHT; i++) {
    hs_tr_payload_free(t->x[i].p);
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
    hs_tr_copy_trunc(t->st.last_error, sizeof t->st.last_error, err);
    if (t->closing || (t->draining && retryable)) {
      hs_tr_count_drop(t, &t->st.dropped_shutdown, p);
    } else if (will_retry) {
      final = 0;
      uint64_t ready =
          hs_now_mono_ns() + retry_delay(t, p->attempts, retry_after, rng);
      if (ready > t->ready_ns)
        t->ready_ns = ready;
      requeue(t, p);
      hs_tr_warn_line(t, err, warn, sizeof warn);
    } else {
      hs_tr_count_drop(
          t, retryable ? &t->st.dropped_attempts : &t->st.dropped_rejected, p);
      hs_tr_warn_line(t, err, warn, sizeof warn);
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
    hs_tr_payload_free(p);
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
      hs_tr_count_drop(t, &t->st.dropped_shutdown, p);
      t->st.bytes_queued -= p->len;
      pthread_mutex_unlock(&t->lock);
      hs_tr_payload_free(p);
    }
    if (x->easy != NULL)
      curl_easy_cleanup(x->easy);
    x->easy = NULL;
  }
  pthread_mutex_lock(&hs_tr.lock);
  for (hs_target **pp = &hs_tr.targets; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  pthread_mutex_unlock(&hs_tr.lock);
  pthread_mutex_lock(&t->lock);
  int orphaned = t->orphaned;
  t->released = 1;
  pthread_cond_broadcast(&t->cond);
  pthread_mutex_unlock(&t->lock);
  if (orphaned)
    hs_tr_target_destroy(t);
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
    pthread_mutex_lock(&hs_tr.lock);
    int stop = hs_tr.stop;
    hs_target *t = hs_tr.targets;
    pthread_mutex_unlock(&hs_tr.lock);
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
  pthread_mutex_lock(&hs_tr.lock);
  hs_tr.multi = NULL;
  pthread_mutex_unlock(&hs_tr.lock);
  curl_multi_cleanup(m);
  return NULL;
}

/* ---------------------------------------------------- thread lifecycle */

/* Starts the thread if none runs. hs_tr.life_lock held, hs_tr.lock not. Returns
 * 0 or -1 (logged). */
int hs_tr_ensure_thread_locked(void) {
  pthread_mutex_lock(&hs_tr.lock);
  int running = hs_tr.running;
  pthread_mutex_unlock(&hs_tr.lock);
  if (running)
    return 0;
  CURLM *m = curl_multi_init();
  if (m == NULL) {
    hs_log(HS_LOG_WARN, "exporter: cannot create the transport (curl)");
    return -1;
  }
  /* A library thread: never takes the program's signals nor the
   * profiler's (common/thread.h). */
  pthread_mutex_lock(&hs_tr.lock);
  hs_tr.stop = 0;
  hs_tr.multi = m;
  int rc = hs_thread_start(&hs_tr.thread, thread_main, m, "hotspan-export");
  if (rc == 0)
    hs_tr.running = 1;
  else
    hs_tr.multi = NULL;
  pthread_mutex_unlock(&hs_tr.lock);
  if (rc != 0) {
    curl_multi_cleanup(m);
    hs_log(HS_LOG_WARN, "exporter: cannot start the transport thread: %s",
           strerror(rc));
    return -1;
  }
  return 0;
}

/* Wakes the thread, starting it if needed (a forked child's first send). */
void hs_tr_kick(void) {
  pthread_mutex_lock(&hs_tr.lock);
  if (hs_tr.running) {
    curl_multi_wakeup(hs_tr.multi);
    pthread_mutex_unlock(&hs_tr.lock);
    return;
  }
  pthread_mutex_unlock(&hs_tr.lock);
  pthread_mutex_lock(&hs_tr.life_lock);
  (void)hs_tr_ensure_thread_locked();
  pthread_mutex_unlock(&hs_tr.life_lock);
}

/* Stops the thread when no target is left. hs_tr.life_lock held. */
void hs_tr_stop_if_idle_locked(void) {
  pthread_mutex_lock(&hs_tr.lock);
  if (hs_tr.targets != NULL || !hs_tr.running) {
    pthread_mutex_unlock(&hs_tr.lock);
    return;
  }
  hs_tr.stop = 1;
  curl_multi_wakeup(hs_tr.multi);
  pthread_mutex_unlock(&hs_tr.lock);
  pthread_join(hs_tr.thread, NULL);
  pthread_mutex_lock(&hs_tr.lock);
  hs_tr.running = 0;
  hs_tr.stop = 0;
  pthread_mutex_unlock(&hs_tr.lock);
}

/* ---------------------------------------------------------------- fork */

static void atfork_prepare(void) {
  pthread_mutex_lock(&hs_tr.life_lock);
  pthread_mutex_lock(&hs_tr.lock);
  for (hs_target *t = hs_tr.targets; t != NULL; t = t->next)
    pthread_mutex_lock(&t->lock);
  pthread_mutex_lock(&hs_tr.fd_lock);
}

static void atfork_parent(void) {
  pthread_mutex_unlock(&hs_tr.fd_lock);
  for (hs_target *t = hs_tr.targets; t != NULL; t = t->next)
    pthread_mutex_unlock(&t->lock);
  pthread_mutex_unlock(&hs_tr.lock);
  pthread_mutex_unlock(&hs_tr.life_lock);
}

/* The child has only the forking thread. The parent's transport thread may
 * have been anywhere inside libcurl, so its multi and easy handles are
 * forgotten (leaked), never called; their sockets are closed. Queued and
 * in-flight payloads are the parent's: freed unsent. */
static void atfork_child(void) {
  for (size_t i = 0; i < hs_tr.nfds; i++)
    close(hs_tr.fds[i]);
  hs_tr.nfds = 0;
  hs_tr.running = 0;
  hs_tr.stop = 0;
  hs_tr.multi = NULL;
  for (hs_target *t = hs_tr.targets; t != NULL; t = t->next) {
    for (payload *p = t->head, *n; p != NULL; p = n) {
      n = p->next;
      hs_tr_payload_free(p);
    }
    t->head = t->tail = NULL;
    for (int i = 0; i < MAX_INFLIGHT; i++) {
      xfer *x = &t->x[i];
      hs_tr_payload_free(x->p); /* out of every list: freed once */
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
    hs_tr_cond_init_mono(&t->cond);
  }
  pthread_mutex_unlock(&hs_tr.fd_lock);
  pthread_mutex_unlock(&hs_tr.lock);
  pthread_mutex_unlock(&hs_tr.life_lock);
}

/* curl_global_init and the fork handlers, once. hs_tr.life_lock held. */
int hs_tr_global_init_locked(void) {
  if (hs_tr.inited)
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
  hs_tr.inited = 1;
  return 0;
}
