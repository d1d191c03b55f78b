/* Exporter transport against tests/tools/fake_backend.py: delivery and
 * stats, keep-alive, retries (5xx, 429 + Retry-After, OTLP policy),
 * rejections, connection refused, black-holing server and shutdown, byte
 * budget, Unix socket, flush, bad input, fork. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/log.h"
#include "exporter/transport.h"
#include "hotspan/error.h"
#include "support/sanitizer.h"

#define PYTHON "/usr/bin/python3"
#define SCRIPT HS_SOURCE_DIR "/tests/tools/fake_backend.py"

/* ThreadSanitizer cannot follow a child of a multi-threaded process that
 * starts threads (it reports the child's new thread as a duplicate of the
 * parent's): under it, fork children check what they inherited and free
 * their targets, without sending (which starts a thread). */

/* Under AddressSanitizer (gcc 12's runtime), a forked child now and then
 * hangs in malloc: the runtime does not hold its allocator's locks across
 * fork(), so a size-class lock another parent thread held at that moment
 * stays locked in the child (seen with a debugger: the child's writer
 * thread waiting in SizeClassAllocator64::GetFromAllocator). That is the
 * sanitizer's, not hotspan's; children send here in the normal build. */

/* ---------------------------------------------------------- the backend */

typedef struct backend {
  pid_t pid;
  int port;
  char unix_path[108];
  char record[256];
} backend;

static int have_python(void) {
  return access(PYTHON, X_OK) == 0 && access(SCRIPT, R_OK) == 0;
}

/* Starts fake_backend.py with the given mode and extra args (NULL-ended).
 * Fails the test when it does not come up. */
static void backend_start(backend *b, const char *mode, ...) {
  memset(b, 0, sizeof *b);
  const char *argv[16];
  int n = 0;
  argv[n++] = PYTHON;
  argv[n++] = SCRIPT;
  argv[n++] = "--port";
  argv[n++] = "0";
  argv[n++] = "--mode";
  argv[n++] = mode;
  va_list ap;
  va_start(ap, mode);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 14)
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed test leaves no server */
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execv(PYTHON, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  char line[64] = {0};
  size_t len = 0;
  struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
  while (len < sizeof line - 1 && strchr(line, '\n') == NULL) {
    if (poll(&pfd, 1, 10000) <= 0)
      break;
    ssize_t r = read(fds[0], line + len, sizeof line - 1 - len);
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  close(fds[0]);
  b->pid = pid;
  if (sscanf(line, "PORT %d", &b->port) != 1) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("fake_backend.py did not start: '%s'", line);
  }
}

static void backend_stop(backend *b) {
  if (b->pid > 0) {
    kill(b->pid, SIGTERM);
    waitpid(b->pid, NULL, 0);
  }
  b->pid = 0;
}

/* One HTTP/1.0-style exchange with the backend's control paths; returns
 * the response body (malloc'd) or NULL. */
static char *ctl(int port, const char *method, const char *path,
                 const char *body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return NULL;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return NULL;
  }
  char req[512];
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   method, path, strlen(body), body);
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return NULL;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 4096 > cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  char *b = strstr(buf, "\r\n\r\n");
  if (b == NULL) {
    free(buf);
    return NULL;
  }
  memmove(buf, b + 4, strlen(b + 4) + 1);
  return buf;
}

static void set_mode(backend *b, const char *mode) {
  char *r = ctl(b->port, "POST", "/__mode", mode);
  assert_non_null(r);
  assert_string_equal(r, "ok");
  free(r);
}

static char *stats_json(backend *b) {
  char *s = ctl(b->port, "GET", "/__stats", "");
  assert_non_null(s);
  return s;
}

/* The integer after the first "key": in json, or -1. */
static long json_int(const char *json, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *p = strstr(json, pat);
  return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

static long backend_count(backend *b, const char *key) {
  char *s = stats_json(b);
  long v = json_int(s, key);
  free(s);
  return v < 0 ? 0 : v;
}

/* Requests seen for a path. */
static long path_count(backend *b, const char *path) {
  return backend_count(b, path);
}

/* Distinct connections that carried requests for path. */
static int connections_for(backend *b, const char *path) {
  char *s = stats_json(b);
  int seen[4096] = {0}, n = 0;
  char pat[128];
  snprintf(pat, sizeof pat, "{\"path\": \"%s\"", path);
  for (const char *p = strstr(s, pat); p != NULL; p = strstr(p + 1, pat)) {
    const char *c = strstr(p, "\"connection\": ");
    if (c == NULL)
      break;
    long id = strtol(c + 14, NULL, 10);
    if (id > 0 && id < 4096 && !seen[id]) {
      seen[id] = 1;
      n++;
    }
  }
  free(s);
  return n;
}

/* Arrival times of the requests for path, in order; returns how many. */
static int arrival_times(backend *b, const char *path, double *out, int max) {
  char *s = stats_json(b);
  char pat[128];
  snprintf(pat, sizeof pat, "{\"path\": \"%s\", \"time\": ", path);
  int n = 0;
  for (const char *p = strstr(s, pat); p != NULL && n < max;
       p = strstr(p + 1, pat))
    out[n++] = strtod(p + strlen(pat), NULL);
  free(s);
  return n;
}

/* Waits (bounded) until the backend saw at least n requests for path. */
static void wait_requests(backend *b, const char *path, long n) {
  for (int i = 0; i < 500 && path_count(b, path) < n; i++)
    usleep(20000);
}

static void url_for(char *buf, size_t n, const backend *b, const char *path) {
  snprintf(buf, n, "http://127.0.0.1:%d%s", b->port, path);
}

/* A TCP port with nothing listening. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd);
  return ntohs(sa.sin_port);
}

/* Reads a whole (small) file as a string; fails the test if missing. */
static void read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    fail_msg("missing %s", path);
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static char *dup_body(const char *s) {
  char *b = strdup(s);
  assert_non_null(b);
  return b;
}

/* ------------------------------------------------------ response capture */

typedef struct responses {
  pthread_mutex_t lock;
  int calls;
  long last_status;
  char last_body[256];
  size_t last_len;
} responses;

static void on_resp(void *arg, long status, const char *body, size_t len) {
  responses *r = arg;
  pthread_mutex_lock(&r->lock);
  r->calls++;
  r->last_status = status;
  r->last_len = len;
  size_t n = len < sizeof r->last_body - 1 ? len : sizeof r->last_body - 1;
  if (body != NULL)
    memcpy(r->last_body, body, n);
  r->last_body[body ? n : 0] = '\0';
  pthread_mutex_unlock(&r->lock);
}

/* A copy taken under the lock (a failed assertion must not leave the lock
 * held: the transport thread would block in on_resp). */
static responses snap(responses *r) {
  pthread_mutex_lock(&r->lock);
  responses c = *r;
  pthread_mutex_unlock(&r->lock);
  return c;
}

static hs_target_config base_cfg(const char *name, const char *url) {
  hs_target_config c;
  memset(&c, 0, sizeof c);
  c.name = name;
  c.url = url;
  c.backoff_base_ms = 20;
  c.backoff_max_ms = 200;
  c.timeout_ms = 5000;
  return c;
}

#define SKIP_WITHOUT_PYTHON()                                                  \
  do {                                                                         \
    if (!have_python()) {                                                      \
      print_message("skipped: " PYTHON " or fake_backend.py missing\n");       \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* ------------------------------------------------------------------ tests */

static void test_ok_stats_and_response(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  char dir[] = "/tmp/hs-transport-rec-XXXXXX";
  assert_non_null(mkdtemp(dir));
  backend b;
  backend_start(&b, "ok", "--body", "{\"rate_by_service\":{}}", "--record", dir,
                NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/v0.4/traces");
  responses r = {.lock = PTHREAD_MUTEX_INITIALIZER};
  const char *fixed[] = {"Content-Type: application/msgpack", NULL};
  hs_target_config c = base_cfg("ok-target", url);
  c.headers = fixed;
  c.on_response = on_resp;
  c.response_arg = &r;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  assert_string_equal(hs_target_name(t), "ok-target");
  const char *extra[] = {"X-Datadog-Trace-Count: 2", NULL};
  assert_int_equal(hs_target_send(t, dup_body("first"), 5, extra, 2),
                   HOTSPAN_OK);
  assert_int_equal(hs_target_send(t, dup_body("second!"), 7, NULL, 3),
                   HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 2);
  assert_int_equal(st.items_sent, 5);
  assert_int_equal(st.bytes_sent, 12);
  assert_int_equal(st.bytes_queued, 0);
  assert_int_equal(st.retries, 0);
  assert_int_equal(st.items_dropped, 0);
  assert_int_equal(st.last_status, 200);
  assert_string_equal(st.last_error, "");
  responses rs = snap(&r);
  assert_int_equal(rs.calls, 2);
  assert_int_equal(rs.last_status, 200);
  assert_string_equal(rs.last_body, "{\"rate_by_service\":{}}");
  hs_target_free(t, 1000);

  /* What the server received (two transfers may run at once, so the
   * arrival order is not fixed): the bodies, fixed and per-request
   * headers, no "Expect: 100-continue". */
  int seen_first = 0, seen_second = 0;
  for (int i = 1; i <= 2; i++) {
    char path[512], meta[4096], body[64];
    snprintf(path, sizeof path, "%s/%06d.json", dir, i);
    read_file(path, meta, sizeof meta);
    snprintf(path, sizeof path, "%s/%06d.body", dir, i);
    read_file(path, body, sizeof body);
    assert_non_null(strstr(meta, "\"path\": \"/v0.4/traces\""));
    assert_non_null(
        strstr(meta, "[\"Content-Type\", \"application/msgpack\"]"));
    assert_null(strstr(meta, "100-continue"));
    int has_extra = strstr(meta, "[\"X-Datadog-Trace-Count\", \"2\"]") != NULL;
    if (strcmp(body, "first") == 0) {
      seen_first++;
      assert_true(has_extra);
    } else {
      assert_string_equal(body, "second!");
      seen_second++;
      assert_false(has_extra); /* per request only */
    }
  }
  assert_int_equal(seen_first, 1);
  assert_int_equal(seen_second, 1);
  backend_stop(&b);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_keepalive(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "ok", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/ka");
  hs_target_config c = base_cfg("keepalive", url);
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  enum { N = 60 };
  for (int i = 0; i < N; i++) {
    char *body = malloc(1000);
    assert_non_null(body);
    memset(body, 'a' + i % 26, 1000);
    assert_int_equal(hs_target_send(t, body, 1000, NULL, 1), HOTSPAN_OK);
    if (i % 10 == 0)
      usleep(5000);
  }
  assert_int_equal(hs_target_flush(t, 15000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, N);
  assert_int_equal(st.bytes_sent, N * 1000);
  assert_int_equal(path_count(&b, "/ka"), N);
  /* At most two transfers in flight: connections are reused. */
  int conns = connections_for(&b, "/ka");
  print_message("keep-alive: %d requests over %d connections\n", N, conns);
  assert_true(conns >= 1 && conns <= 4);
  hs_target_free(t, 1000);
  backend_stop(&b);
}

static void test_retry_5xx_then_ok(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "status:500*2", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/r");
  responses r = {.lock = PTHREAD_MUTEX_INITIALIZER};
  hs_target_config c = base_cfg("retry5xx", url);
  c.on_response = on_resp;
  c.response_arg = &r;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  assert_int_equal(hs_target_send(t, dup_body("payload"), 7, NULL, 4),
                   HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 1);
  assert_int_equal(st.items_sent, 4);
  assert_int_equal(st.retries, 2);
  assert_int_equal(st.items_dropped, 0);
  assert_int_equal(st.last_status, 200);
  assert_int_equal(backend_count(&b, "500"), 2);
  assert_int_equal(backend_count(&b, "200"), 1);
  /* on_response sees the final answer only. */
  responses rs = snap(&r);
  assert_int_equal(rs.calls, 1);
  assert_int_equal(rs.last_status, 200);
  hs_target_free(t, 1000);
  backend_stop(&b);
}

static void test_retry_after(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "status:429:2*1", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/ra");
  hs_target_config c = base_cfg("retry-after", url);
  c.backoff_base_ms = 10;
  c.backoff_max_ms = 5000;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  assert_int_equal(hs_target_send(t, dup_body("x"), 1, NULL, 1), HOTSPAN_OK);
  wait_requests(&b, "/ra", 1);
  /* The backend has the request; wait until the transport has read the
   * 429 (before that a second payload may go out on another connection,
   * which is not what this test is about). */
  hs_target_stats st;
  for (int i = 0; i < 1000; i++) {
    hs_target_get_stats(t, &st);
    if (st.last_status == 429)
      break;
    usleep(10000);
  }
  assert_int_equal(st.last_status, 429);
  /* Sent while the target backs off: it waits for the delay too. */
  assert_int_equal(hs_target_send(t, dup_body("y"), 1, NULL, 1), HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 15000), HOTSPAN_OK);
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 2);
  assert_int_equal(st.retries, 1);
  double tm[8];
  int n = arrival_times(&b, "/ra", tm, 8);
  assert_int_equal(n, 3);
  /* Request 0 got the 429; neither payload was sent again before the
   * Retry-After delay. */
  print_message("retry came %.2f s after the 429\n", tm[1] - tm[0]);
  assert_true(tm[1] - tm[0] >= 1.9);
  hs_target_free(t, 1000);
  backend_stop(&b);
}

static void test_rejected_400(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "status:400", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/bad");
  responses r = {.lock = PTHREAD_MUTEX_INITIALIZER};
  hs_target_config c = base_cfg("rejected", url);
  c.on_response = on_resp;
  c.response_arg = &r;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  assert_int_equal(hs_target_send(t, dup_body("nope"), 4, NULL, 9), HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 0);
  assert_int_equal(st.dropped_rejected, 1);
  assert_int_equal(st.items_dropped, 9);
  assert_int_equal(st.retries, 0);
  assert_int_equal(st.last_status, 400);
  assert_non_null(strstr(st.last_error, "400"));
  assert_int_equal(st.bytes_queued, 0);
  assert_int_equal(path_count(&b, "/bad"), 1);
  responses rs = snap(&r);
  assert_int_equal(rs.calls, 1);
  assert_int_equal(rs.last_status, 400);
  assert_string_equal(rs.last_body, "{\"status\": 400}");
  hs_target_free(t, 1000);
  backend_stop(&b);
}

static void test_otlp_policy(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "status:500*1", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/v1/traces");
  hs_target_config c = base_cfg("otlp", url);
  c.retry_policy = HS_RETRY_OTLP;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  assert_int_equal(hs_target_send(t, dup_body("a"), 1, NULL, 1), HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.dropped_rejected, 1); /* 500: not retried */
  assert_int_equal(st.retries, 0);
  set_mode(&b, "status:503*1");
  assert_int_equal(hs_target_send(t, dup_body("b"), 1, NULL, 1), HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 1); /* 503: retried, delivered */
  assert_int_equal(st.retries, 1);
  assert_int_equal(st.dropped_rejected, 1);
  assert_int_equal(path_count(&b, "/v1/traces"), 3);
  hs_target_free(t, 1000);
  backend_stop(&b);
}

static void test_connection_refused(void **state) {
  (void)state;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/down", dead_port());
  responses r = {.lock = PTHREAD_MUTEX_INITIALIZER};
  hs_target_config c = base_cfg("down", url);
  c.max_attempts = 3;
  c.backoff_base_ms = 10;
  c.backoff_max_ms = 50;
  c.on_response = on_resp;
  c.response_arg = &r;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  assert_int_equal(hs_target_send(t, dup_body("one"), 3, NULL, 2), HOTSPAN_OK);
  assert_int_equal(hs_target_send(t, dup_body("two"), 3, NULL, 5), HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 0);
  assert_int_equal(st.dropped_attempts, 2);
  assert_int_equal(st.retries, 4);
  assert_int_equal(st.items_dropped, 7);
  assert_int_equal(st.bytes_queued, 0);
  assert_int_equal(st.last_status, 0);
  assert_true(st.last_error[0] != '\0');
  responses rs = snap(&r);
  assert_int_equal(rs.calls, 0); /* no HTTP answer, no callback */
  hs_target_free(t, 1000);
}

static void test_blackhole_shutdown(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "blackhole", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/hole");
  hs_target_config c = base_cfg("blackhole", url);
  c.timeout_ms = 300;
  c.connect_timeout_ms = 200;
  c.max_attempts = 2;
  c.byte_budget = 64 * 1024;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  int full = 0;
  for (int i = 0; i < 100; i++) {
    char *body = calloc(1, 4096);
    assert_non_null(body);
    int rc = hs_target_send(t, body, 4096, NULL, 1);
    assert_true(rc == HOTSPAN_OK || rc == HOTSPAN_EFULL);
    full += rc == HOTSPAN_EFULL;
    hs_target_stats st;
    hs_target_get_stats(t, &st);
    assert_true(st.bytes_queued <= 64 * 1024);
  }
  assert_true(full > 0);
  usleep(800000); /* some attempts time out */
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_true(st.bytes_queued <= 64 * 1024);
  assert_true(st.retries > 0);
  assert_int_equal(st.payloads_sent, 0);
  assert_true(strstr(st.last_error, "imeout") != NULL ||
              strstr(st.last_error, "timed out") != NULL);
  assert_int_equal(st.dropped_budget, (uint64_t)full);
  uint64_t t0 = hs_now_mono_ns();
  hs_target_free(t, 300); /* returns although nothing is ever answered */
  print_message("hs_target_free took %.0f ms (timeout 300)\n",
                (double)(hs_now_mono_ns() - t0) / 1e6);
  backend_stop(&b);
}

static void test_budget_and_bad_input(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "blackhole", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/budget");
  hs_target_config c = base_cfg("budget", url);
  c.byte_budget = 10000;
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  for (int i = 0; i < 3; i++)
    assert_int_equal(hs_target_send(t, calloc(1, 3000), 3000, NULL, 2),
                     HOTSPAN_OK);
  assert_int_equal(hs_target_send(t, calloc(1, 3000), 3000, NULL, 2),
                   HOTSPAN_EFULL);
  assert_int_equal(hs_target_send(t, calloc(1, 20000), 20000, NULL, 5),
                   HOTSPAN_EFULL);
  assert_int_equal(hs_target_send(t, calloc(1, 1000), 1000, NULL, 1),
                   HOTSPAN_OK); /* still fits exactly */
  /* Bad input: refused, body freed (ASan checks), nothing counted. */
  const char *bad_hdr[] = {"X-Evil: a\r\nInjected: b", NULL};
  assert_int_equal(hs_target_send(t, calloc(1, 10), 10, bad_hdr, 1),
                   HOTSPAN_EINVAL);
  const char *no_colon[] = {"NoColon", NULL};
  assert_int_equal(hs_target_send(t, calloc(1, 10), 10, no_colon, 1),
                   HOTSPAN_EINVAL);
  assert_int_equal(hs_target_send(t, NULL, 10, NULL, 1), HOTSPAN_EINVAL);
  assert_int_equal(hs_target_send(NULL, calloc(1, 10), 10, NULL, 1),
                   HOTSPAN_EINVAL);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.dropped_budget, 2);
  assert_int_equal(st.items_dropped, 7);
  assert_int_equal(st.bytes_queued, 10000);
  /* Flush cannot finish against a black hole: it times out. */
  assert_int_equal(hs_target_flush(t, 100), HOTSPAN_EIO);
  hs_target_free(t, 100);
  backend_stop(&b);

  /* Bad targets: NULL and a log line. */
  assert_null(hs_target_new(NULL));
  const char *bad_urls[] = {"ftp://127.0.0.1/x", "http://", "unix://rel.sock",
                            "localhost:8126",    "",        "http://[::1/x"};
  for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
    hs_target_config bc = base_cfg("bad", bad_urls[i]);
    assert_null(hs_target_new(&bc));
  }
  hs_target_config nc = base_cfg("bad", NULL);
  assert_null(hs_target_new(&nc));
  hs_target_config hc = base_cfg("bad", "http://127.0.0.1:1/");
  hc.headers = bad_hdr;
  assert_null(hs_target_new(&hc));
  hs_target_config uc = base_cfg("bad", "unix:///tmp/x.sock");
  uc.unix_path = "no-slash";
  assert_null(hs_target_new(&uc));
  hs_target_config pc = base_cfg("bad", "http://127.0.0.1:1/");
  pc.retry_policy = 7;
  assert_null(hs_target_new(&pc));
  hs_target_free(NULL, 0);
}

static void test_unix_socket(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  char sock[108];
  snprintf(sock, sizeof sock, "/tmp/hs-transport-%d.sock", (int)getpid());
  backend b;
  backend_start(&b, "ok", "--unix", sock, NULL);
  char url[160];
  snprintf(url, sizeof url, "unix://%s", sock);
  hs_target_config c = base_cfg("unix", url);
  c.unix_path = "/v0.4/traces";
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  for (int i = 0; i < 3; i++)
    assert_int_equal(hs_target_send(t, dup_body("u"), 1, NULL, 1), HOTSPAN_OK);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 3);
  assert_int_equal(path_count(&b, "/v0.4/traces"), 3);
  hs_target_free(t, 1000);
  backend_stop(&b);
  unlink(sock);
}

static void test_flush(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "slow:300", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/slow");
  hs_target_config c = base_cfg("flush", url);
  hs_target *t = hs_target_new(&c);
  assert_non_null(t);
  assert_int_equal(hs_target_flush(t, 0), HOTSPAN_OK); /* nothing queued */
  for (int i = 0; i < 3; i++)
    assert_int_equal(hs_target_send(t, dup_body("s"), 1, NULL, 1), HOTSPAN_OK);
  /* Three answers of 300 ms each, at most two at a time: not in 50 ms. */
  assert_int_equal(hs_target_flush(t, 50), HOTSPAN_EIO);
  assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(t, &st);
  assert_int_equal(st.payloads_sent, 3);
  assert_int_equal(st.bytes_queued, 0);
  /* A flush waits only for what came before it. */
  set_mode(&b, "blackhole");
  assert_int_equal(hs_target_send(t, dup_body("later"), 5, NULL, 1),
                   HOTSPAN_OK);
  hs_target_free(t, 200);
  backend_stop(&b);
}

/* A target outliving many targets coming and going (thread restarts). */
static void test_thread_restart(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "ok", NULL);
  char url[128];
  url_for(url, sizeof url, &b, "/again");
  for (int i = 0; i < 5; i++) {
    hs_target_config c = base_cfg("again", url);
    hs_target *t = hs_target_new(&c);
    assert_non_null(t);
    assert_int_equal(hs_target_send(t, dup_body("z"), 1, NULL, 1), HOTSPAN_OK);
    assert_int_equal(hs_target_flush(t, 10000), HOTSPAN_OK);
    hs_target_free(t, 1000);
  }
  assert_int_equal(path_count(&b, "/again"), 5);
  backend_stop(&b);
}

enum { FORKS = 200, BATCH = 10 };

static void test_fork(void **state) {
  (void)state;
  SKIP_WITHOUT_PYTHON();
  backend b;
  backend_start(&b, "slow:5", NULL);
  char url[128], purl[128], downurl[128];
  url_for(url, sizeof url, &b, "/fork-child");
  url_for(purl, sizeof purl, &b, "/fork-parent");
  snprintf(downurl, sizeof downurl, "http://127.0.0.1:%d/x", dead_port());
  hs_target_config cc = base_cfg("fork-child", url);
  hs_target_config pc = base_cfg("fork-parent", purl);
  hs_target_config dc = base_cfg("fork-down", downurl);
  dc.max_attempts = 1000; /* keeps backing off during the whole test */
  dc.backoff_base_ms = 5;
  dc.backoff_max_ms = 20;
  hs_target *child_t = hs_target_new(&cc);
  hs_target *parent_t = hs_target_new(&pc);
  hs_target *down_t = hs_target_new(&dc);
  assert_non_null(child_t);
  assert_non_null(parent_t);
  assert_non_null(down_t);
  for (int round = 0; round < FORKS / BATCH; round++) {
    pid_t pids[BATCH];
    for (int i = 0; i < BATCH; i++) {
      /* Payloads in flight, queued and backing off at every fork. */
      assert_int_equal(hs_target_send(parent_t, dup_body("p"), 1, NULL, 1),
                       HOTSPAN_OK);
      assert_int_equal(hs_target_send(down_t, dup_body("d"), 1, NULL, 1),
                       HOTSPAN_OK);
      pids[i] = fork();
      assert_true(pids[i] >= 0);
      if (pids[i] == 0) {
        alarm(60); /* a deadlock kills the child: the test sees SIGALRM */
        hs_target_stats st;
        hs_target_get_stats(parent_t, &st);
        if (st.bytes_queued != 0 || st.payloads_sent != 0)
          _exit(2); /* the parent's payloads are not the child's */
        hs_target_get_stats(down_t, &st);
        if (st.bytes_queued != 0 || st.retries != 0)
          _exit(6);
        if (!UNDER_TSAN && !UNDER_ASAN) {
          if (hs_target_send(child_t, dup_body("c"), 1, NULL, 1) != HOTSPAN_OK)
            _exit(3);
          /* Generous: ten children start their transport at once, on a
           * loaded machine under a sanitizer. */
          if (hs_target_flush(child_t, 30000) != HOTSPAN_OK) {
            hs_target_get_stats(child_t, &st);
            fprintf(stderr,
                    "child %d: flush timed out: queued %llu bytes, sent %llu, "
                    "retries %llu, last status %ld, last error \"%s\"\n",
                    (int)getpid(), (unsigned long long)st.bytes_queued,
                    (unsigned long long)st.payloads_sent,
                    (unsigned long long)st.retries, st.last_status,
                    st.last_error);
            _exit(4);
          }
          hs_target_get_stats(child_t, &st);
          if (st.payloads_sent != 1)
            _exit(5);
        }
        hs_target_free(down_t, 0);
        hs_target_free(parent_t, 100);
        hs_target_free(child_t, 1000);
        _exit(0);
      }
    }
    for (int i = 0; i < BATCH; i++) {
      int status = 0;
      assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child %d: %s %d", i, WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
  }
  assert_int_equal(hs_target_flush(parent_t, 15000), HOTSPAN_OK);
  hs_target_stats st;
  hs_target_get_stats(parent_t, &st);
  assert_int_equal(st.payloads_sent, FORKS);
  /* Every child delivered its own payload; none sent the parent's. */
  assert_int_equal(path_count(&b, "/fork-child"),
                   UNDER_TSAN || UNDER_ASAN ? 0 : FORKS);
  assert_int_equal(path_count(&b, "/fork-parent"), FORKS);
  hs_target_get_stats(down_t, &st);
  assert_true(st.retries > 0);
  hs_target_free(down_t, 0);
  hs_target_free(parent_t, 1000);
  hs_target_free(child_t, 1000);
  backend_stop(&b);
}

int main(void) {
  if (getenv("HOTSPAN_LOG_LEVEL") == NULL)
    hs_log_set_level(HS_LOG_ERROR); /* the failures here are on purpose */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok_stats_and_response),
      cmocka_unit_test(test_keepalive),
      cmocka_unit_test(test_retry_5xx_then_ok),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_rejected_400),
      cmocka_unit_test(test_otlp_policy),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_blackhole_shutdown),
      cmocka_unit_test(test_budget_and_bad_input),
      cmocka_unit_test(test_unix_socket),
      cmocka_unit_test(test_flush),
      cmocka_unit_test(test_thread_restart),
      cmocka_unit_test(test_fork),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
