/* Transport internals shared by transport.c (targets and the API) and
 * transport_thread.c (the HTTP thread, sockets, fork). See transport.h for
 * the contract.
 *
 * Threads and locks. One background thread (the "transport thread") owns
 * the curl multi handle and every easy handle; it is the only thread that
 * calls into libcurl on them (other threads only call curl_multi_wakeup).
 * Three kinds of mutex, always taken in this order:
 *   life_lock  serializes starting/stopping the thread and freeing targets;
 *   lock       the list of targets, the thread's state, the multi pointer;
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
#ifndef HS_EXPORTER_TRANSPORT_INT_H
#define HS_EXPORTER_TRANSPORT_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "exporter/transport.h"

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

/* Process-wide state of the transport. */
typedef struct hs_transport_state {
  pthread_mutex_t life_lock;
  pthread_mutex_t lock; /* "g_lock" in the lock order */
  pthread_mutex_t fd_lock;
  int inited;         /* curl_global_init + fork handlers done; life_lock */
  hs_target *targets; /* lock for the head */
  int running;        /* a thread runs; lock */
  int stop;           /* asks the thread to exit; lock */
  CURLM *multi;       /* the running thread's multi; lock */
  pthread_t thread;   /* life_lock */
  /* Sockets libcurl opened through us (fd_lock): a forked child closes
   * them, so a pre-forking server's workers do not each keep the parent's
   * connections open. */
  int *fds;
  size_t nfds, capfds;
} hs_transport_state;

extern hs_transport_state hs_tr;

void hs_tr_cond_init_mono(pthread_cond_t *c);
void hs_tr_copy_trunc(char *dst, size_t n, const char *src);
void hs_tr_payload_free(payload *p);
void hs_tr_count_drop(hs_target *t, uint64_t *counter, const payload *p);
void hs_tr_warn_line(hs_target *t, const char *what, char *buf, size_t n);
void hs_tr_target_destroy(hs_target *t);
int hs_tr_ensure_thread_locked(void);
void hs_tr_kick(void);
void hs_tr_stop_if_idle_locked(void);
int hs_tr_global_init_locked(void);

#endif
