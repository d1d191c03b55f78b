/* HTTP/1.1 server: libuv for the sockets and timers, http_parser for the
 * protocol. See http_server.h for the behaviour and limits.
 *
 * One file on purpose: request parsing, dispatch, the worker jobs and the
 * connection loop all work on one connection state machine (struct conn:
 * its state, timer, pending input and pause/resume of the parser). The
 * parser callbacks arm the request timer, write "100 Continue" to the
 * socket and pause the parser to dispatch; dispatch and the write
 * callbacks resume it. Splitting along any of these lines would put
 * struct conn and most of its functions in a shared header without making
 * either half readable on its own. */
#include <http_parser.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "agent/http_server.h"
#include "common/log.h"

#define MAX_ROUTES 64
#define MAX_HEADERS 64
#define MAX_HEADER_BYTES (16 << 10)
#define MAX_URL (8 << 10)
#define READ_BUF (64 << 10)

typedef struct route {
  char method[12];
  char path[128];
  hs_agent_http_handler handler;
  void *arg;
  int worker; /* runs on libuv's thread pool (hs_agent_server_route_worker) */
} route;

typedef struct conn conn;

struct hs_agent_server {
  uv_loop_t loop;
  uv_tcp_t listener;
  int listening;
  uv_async_t stop_async;
  uv_signal_t sig_int, sig_term;
  int signals_on;
  int closed; /* handles closed (shutdown done) */
  hs_agent_server_config cfg;
  route routes[MAX_ROUTES];
  size_t nroutes;
  conn *conns; /* doubly linked list of open connections */
  unsigned nconns;
  int port;
  char readbuf[READ_BUF]; /* one read at a time on the loop thread */
  /* log rate limit: lines in the current one-second window */
  uint64_t log_window;
  unsigned log_lines;
  unsigned log_suppressed;
  _Atomic uint64_t st_requests, st_rejected, st_refused, st_timeouts;
};

/* ST_WORKING: a worker route's handler runs on the thread pool; the
 * connection reads nothing and has no timer until it is done. */
enum { ST_IDLE, ST_READING, ST_WORKING, ST_RESPONDING, ST_CLOSING };

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  int open_handles;
  hs_agent_server *srv;
  conn *prev, *next;
  http_parser parser;
  int state;
  char peer[64];
  /* current request */
  hs_buf url;
  hs_buf hdr; /* "name\0value\0..." */
  size_t hdr_off[MAX_HEADERS][2];
  size_t nhdr;
  int hdr_in_value;
  hs_buf body;
  int reject_status;
  const char *reject_reason;
  /* bytes read but not parsed yet (after a pipelined request) */
  char *pending;
  size_t pending_len;
  /* response */
  uv_write_t wreq;
  hs_buf out;
  int close_after;
};

static void srv_logf(hs_agent_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* At most 10 lines a second; the next allowed line reports how many were
 * suppressed, so a flood costs a few lines, not one per request. */
static void srv_logf(hs_agent_server *s, const char *fmt, ...) {
  uint64_t sec = uv_now(&s->loop) / 1000;
  if (sec != s->log_window) {
    if (s->log_suppressed)
      hs_log(HS_LOG_WARN, "agent: %u rejected-request log lines suppressed",
             s->log_suppressed);
    s->log_window = sec;
    s->log_lines = 0;
    s->log_suppressed = 0;
  }
  if (s->log_lines >= 10) {
    s->log_suppressed++;
    return;
  }
  s->log_lines++;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  hs_log(HS_LOG_WARN, "agent: %s", line);
}

static const char *reason_phrase(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  default:
    return "Unknown";
  }
}

/* ------------------------------------------------------------ lifecycle */

/* Drops one reference (a handle, or a worker job); the last frees c. */
static void conn_unref(conn *c) {
  if (--c->open_handles > 0)
    return;
  hs_buf_free(&c->url);
  hs_buf_free(&c->hdr);
  hs_buf_free(&c->body);
  hs_buf_free(&c->out);
  free(c->pending);
  free(c);
}

static void conn_free_cb(uv_handle_t *h) {
  conn_unref(h->data);
}

static void conn_close(conn *c) {
  if (c->state == ST_CLOSING)
    return;
  c->state = ST_CLOSING;
  hs_agent_server *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
  uv_close((uv_handle_t *)&c->timer, conn_free_cb);
}

static void reset_request(conn *c) {
  hs_buf_reset(&c->url);
  hs_buf_reset(&c->hdr);
  hs_buf_reset(&c->body);
  c->nhdr = 0;
  c->hdr_in_value = 0;
  c->reject_status = 0;
  c->reject_reason = NULL;
}

static void on_timeout(uv_timer_t *t);

static void arm_timer(conn *c, unsigned ms) {
  uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* ------------------------------------------------------------ responses */

static void feed(conn *c, const char *data, size_t len);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

static void on_written(uv_write_t *w, int status) {
  conn *c = w->data;
  if (c->state == ST_CLOSING)
    return;
  if (status < 0 || c->close_after) {
    conn_close(c);
    return;
  }
  /* Ready for the next request on this connection. */
  reset_request(c);
  c->state = ST_IDLE;
  arm_timer(c, c->srv->cfg.idle_timeout_ms);
  http_parser_pause(&c->parser, 0);
  if (c->pending) {
    char *p = c->pending;
    size_t n = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    feed(c, p, n);
    free(p);
  }
  if (c->state == ST_IDLE || c->state == ST_READING)
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Queues the response; the connection reads nothing more until it is
 * written (one request at a time). */
static void send_response(conn *c, int status, const char *ctype,
                          const char *body, size_t blen, int close,
                          const char *extra_headers) {
  hs_agent_server *s = c->srv;
  hs_buf_reset(&c->out);
  hs_buf_printf(&c->out,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: "
                "%zu\r\nConnection: %s\r\n%s\r\n",
                status, reason_phrase(status), ctype, blen,
                close ? "close" : "keep-alive",
                extra_headers ? extra_headers : "");
  hs_buf_append(&c->out, body, blen);
  if (hs_buf_failed(&c->out)) {
    conn_close(c);
    return;
  }
  c->close_after = close;
  c->state = ST_RESPONDING;
  uv_read_stop((uv_stream_t *)&c->tcp);
  /* A client that does not read its response is closed like a slow one. */
  arm_timer(c, s->cfg.request_timeout_ms);
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
    conn_close(c);
}

static const char *req_method(conn *c) {
  return http_method_str((enum http_method)c->parser.method);
}

/* Answers an error and closes the connection. */
static void reject(conn *c, int status, const char *why) {
  hs_agent_server *s = c->srv;
  atomic_fetch_add_explicit(&s->st_rejected, 1, memory_order_relaxed);
  const char *path = c->url.len ? hs_buf_cstr(&c->url) : "-";
  srv_logf(s, "rejected request from %s: %d %s (%s %.200s)", c->peer, status,
           why, c->url.len ? req_method(c) : "-", path);
  char body[256];
  hs_buf tmp;
  hs_buf_init(&tmp, sizeof(body));
  hs_buf_puts(&tmp, "{\"error\":");
  hs_json_str(&tmp, why);
  hs_buf_puts(&tmp, "}");
  size_t n = tmp.len < sizeof(body) ? tmp.len : 0;
  if (n)
    memcpy(body, tmp.data, n);
  hs_buf_free(&tmp);
  send_response(c, status, "application/json", body, n, 1, NULL);
}

/* ------------------------------------------------------------ parsing */

static conn *pconn(http_parser *p) {
  return p->data;
}

static int cb_message_begin(http_parser *p) {
  conn *c = pconn(p);
  reset_request(c);
  c->state = ST_READING;
  arm_timer(c, c->srv->cfg.request_timeout_ms);
  return 0;
}

static int cb_url(http_parser *p, const char *at, size_t n) {
  conn *c = pconn(p);
  if (c->url.len + n > MAX_URL) {
    c->reject_status = 414;
    c->reject_reason = "request target too long";
    return -1;
  }
  hs_buf_append(&c->url, at, n);
  return 0;
}

static int hdr_room(conn *c, size_t n) {
  if (c->hdr.len + n + 1 > MAX_HEADER_BYTES) {
    c->reject_status = 431;
    c->reject_reason = "request headers too large";
    return -1;
  }
  return 0;
}

static int cb_header_field(http_parser *p, const char *at, size_t n) {
  conn *c = pconn(p);
  if (hdr_room(c, n))
    return -1;
  if (c->nhdr == 0 || c->hdr_in_value) {
    if (c->nhdr == MAX_HEADERS) {
      c->reject_status = 431;
      c->reject_reason = "too many request headers";
      return -1;
    }
    if (c->nhdr)
      hs_buf_putc(&c->hdr, 0); /* end of the previous value */
    c->hdr_off[c->nhdr][0] = c->hdr.len;
    c->hdr_off[c->nhdr][1] = (size_t)-1;
    c->nhdr++;
    c->hdr_in_value = 0;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = at[i];
    hs_buf_putc(&c->hdr, (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch);
  }
  return 0;
}

static int cb_header_value(http_parser *p, const char *at, size_t n) {
  conn *c = pconn(p);
  if (hdr_room(c, n))
    return -1;
  if (!c->hdr_in_value) {
    hs_buf_putc(&c->hdr, 0); /* end of the name */
    c->hdr_off[c->nhdr - 1][1] = c->hdr.len;
    c->hdr_in_value = 1;
  }
  hs_buf_append(&c->hdr, at, n);
  return 0;
}

static const char *find_header(conn *c, const char *name) {
  for (size_t i = 0; i < c->nhdr; i++)
    if (c->hdr_off[i][1] != (size_t)-1 &&
        strcmp(c->hdr.data + c->hdr_off[i][0], name) == 0)
      return c->hdr.data + c->hdr_off[i][1];
  return NULL;
}

static int cb_headers_complete(http_parser *p) {
  conn *c = pconn(p);
  if (c->nhdr && c->hdr_in_value)
    hs_buf_putc(&c->hdr, 0);
  else if (c->nhdr)
    c->nhdr--; /* a name without a value cannot happen; drop it */
  if (hs_buf_failed(&c->hdr) || hs_buf_failed(&c->url)) {
    c->reject_status = 500;
    c->reject_reason = "out of memory";
    return -1;
  }
  if (p->upgrade) {
    c->reject_status = 400;
    c->reject_reason = "protocol upgrade not supported";
    return -1;
  }
  const hs_agent_trust *t = c->srv->cfg.trust;
  if (t) {
    const char *why = NULL;
    int st = hs_agent_trust_check(t, c->srv->port, find_header(c, "host"),
                                  find_header(c, "origin"),
                                  find_header(c, "sec-fetch-site"),
                                  find_header(c, "authorization"), &why);
    if (st) {
      c->reject_status = st;
      c->reject_reason = why;
      return -1;
    }
  }
  if ((p->flags & F_CONTENTLENGTH) &&
      p->content_length > (uint64_t)c->srv->cfg.max_body) {
    c->reject_status = 413;
    c->reject_reason = "request body too large";
    return -1;
  }
  const char *expect = find_header(c, "expect");
  if (expect && strcasecmp(expect, "100-continue") == 0) {
    /* Clients such as curl wait for this before sending a large body. */
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  }
  return 0;
}

static int cb_body(http_parser *p, const char *at, size_t n) {
  conn *c = pconn(p);
  if (c->body.len + n > c->srv->cfg.max_body) {
    c->reject_status = 413;
    c->reject_reason = "request body too large";
    return -1;
  }
  hs_buf_append(&c->body, at, n);
  if (hs_buf_failed(&c->body)) {
    c->reject_status = 500;
    c->reject_reason = "out of memory";
    return -1;
  }
  return 0;
}

static void dispatch(conn *c);

static int cb_message_complete(http_parser *p) {
  conn *c = pconn(p);
  /* Pause: the rest of the input waits until the response is written. */
  http_parser_pause(p, 1);
  dispatch(c);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = cb_message_begin,
    .on_url = cb_url,
    .on_header_field = cb_header_field,
    .on_header_value = cb_header_value,
    .on_headers_complete = cb_headers_complete,
    .on_body = cb_body,
    .on_message_complete = cb_message_complete,
};

/* Exact match, or a prefix match for a pattern ending in '*'. */
static int path_match(const char *pat, const char *path) {
  size_t n = strlen(pat);
  if (n && pat[n - 1] == '*')
    return strncmp(pat, path, n - 1) == 0;
  return strcmp(pat, path) == 0;
}

void hs_agent_http_error(hs_agent_http_response *res, int status,
                         const char *msg) {
  res->status = status;
  res->content_type = "application/json";
  hs_buf_reset(&res->body);
  hs_buf_puts(&res->body, "{\"error\":");
  hs_json_str(&res->body, msg);
  hs_buf_putc(&res->body, '}');
}

static void response_init(hs_agent_http_response *res) {
  memset(res, 0, sizeof(*res));
  res->status = 200;
  res->content_type = "application/json";
  hs_buf_init(&res->body, 0);
}

/* Logs a rejected request and sends what the handler answered; frees
 * res's body. On the loop thread. */
static void finish_response(conn *c, hs_agent_http_response *res,
                            const char *method, const char *path, int keep) {
  hs_agent_server *s = c->srv;
  if (hs_buf_failed(&res->body)) {
    hs_buf_reset(&res->body);
    res->status = 500;
    res->content_type = "application/json";
    hs_buf_puts(&res->body, "{\"error\":\"response too large\"}");
  }
  if (res->status >= 400) {
    atomic_fetch_add_explicit(&s->st_rejected, 1, memory_order_relaxed);
    srv_logf(s, "rejected request from %s: %d %s %.100s: %.200s", c->peer,
             res->status, method, path,
             res->log_reason ? res->log_reason : hs_buf_cstr(&res->body));
  }
  send_response(c, res->status, res->content_type, res->body.data,
                res->body.len, res->close || !keep, NULL);
  hs_buf_free(&res->body);
}

/* ------------------------------------------------------------ workers */

/* A worker route's request, copied out of the connection (whose buffers
 * belong to the loop thread), with the response its handler fills. The
 * job holds a reference on the connection (one of its open_handles), so
 * that a connection closed meanwhile (server shutdown) stays allocated
 * until the job is back; its answer is then dropped. */
typedef struct job {
  uv_work_t work;
  conn *c;
  const route *r;
  int keep;
  hs_agent_http_request req;
  hs_agent_http_header hdrs[MAX_HEADERS];
  char *strings; /* method, path, query, peer, header names and values */
  uint8_t *body;
  hs_agent_http_response res;
} job;

static void job_run(uv_work_t *w) {
  job *j = w->data;
  j->r->handler(j->r->arg, &j->req, &j->res);
}

static void job_done(uv_work_t *w, int status) {
  job *j = w->data;
  conn *c = j->c;
  (void)status; /* UV_ECANCELED cannot happen: jobs are never cancelled */
  if (c->state == ST_WORKING)
    finish_response(c, &j->res, j->req.method, j->req.path, j->keep);
  else
    hs_buf_free(&j->res.body); /* closed meanwhile: nobody to answer */
  free(j->strings);
  free(j->body);
  free(j);
  conn_unref(c);
}

/* Copies s into the job's string area at *pos; returns the copy. */
static const char *job_str(job *j, size_t *pos, const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = j->strings + *pos;
  memcpy(d, s, n);
  *pos += n;
  return d;
}

static void start_job(conn *c, const route *r, const hs_agent_http_request *q,
                      int keep) {
  job *j = calloc(1, sizeof(*j));
  size_t need = 0;
  const char *const fixed[] = {q->method, q->path,         q->query,
                               q->peer,   q->content_type, q->content_encoding};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    need += fixed[i] ? strlen(fixed[i]) + 1 : 0;
  for (size_t i = 0; i < q->nheaders; i++)
    need += strlen(q->headers[i].name) + strlen(q->headers[i].value) + 2;
  if (j)
    j->strings = malloc(need ? need : 1);
  if (j && j->strings)
    j->body = malloc(q->body_len + 1);
  if (!j || !j->strings || !j->body) {
    if (j) {
      free(j->strings);
      free(j);
    }
    reject(c, 503, "out of memory");
    return;
  }
  size_t pos = 0;
  j->c = c;
  j->r = r;
  j->keep = keep;
  j->req = *q;
  j->req.method = job_str(j, &pos, q->method);
  j->req.path = job_str(j, &pos, q->path);
  j->req.query = job_str(j, &pos, q->query);
  j->req.peer = job_str(j, &pos, q->peer);
  j->req.content_type = job_str(j, &pos, q->content_type);
  j->req.content_encoding = job_str(j, &pos, q->content_encoding);
  for (size_t i = 0; i < q->nheaders; i++) {
    j->hdrs[i].name = job_str(j, &pos, q->headers[i].name);
    j->hdrs[i].value = job_str(j, &pos, q->headers[i].value);
  }
  j->req.headers = j->hdrs;
  memcpy(j->body, q->body, q->body_len);
  j->body[q->body_len] = 0;
  j->req.body = j->body;
  response_init(&j->res);
  j->work.data = j;
  c->state = ST_WORKING;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->timer);
  c->open_handles++;
  if (uv_queue_work(&c->srv->loop, &j->work, job_run, job_done) < 0) {
    c->open_handles--;
    c->state = ST_READING;
    hs_buf_free(&j->res.body);
    free(j->strings);
    free(j->body);
    free(j);
    reject(c, 503, "cannot start the request");
  }
}

static void dispatch(conn *c) {
  hs_agent_server *s = c->srv;
  const char *url = hs_buf_cstr(&c->url);
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (hs_buf_failed(&c->url) || hs_buf_failed(&c->body) ||
      http_parser_parse_url(url, c->url.len, 0, &u) ||
      !(u.field_set & (1 << UF_PATH))) {
    reject(c, 400, "malformed request target");
    return;
  }
  char path[MAX_URL + 1], query[MAX_URL + 1];
  memcpy(path, url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  path[u.field_data[UF_PATH].len] = 0;
  int has_query = (u.field_set & (1 << UF_QUERY)) != 0;
  if (has_query) {
    memcpy(query, url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    query[u.field_data[UF_QUERY].len] = 0;
  }
  const char *method = req_method(c);
  const route *r = NULL;
  char allow[256] = "";
  int path_known = 0;
  for (size_t i = 0; i < s->nroutes; i++) {
    if (!path_match(s->routes[i].path, path))
      continue;
    path_known = 1;
    if (strcmp(s->routes[i].method, method) == 0) {
      r = &s->routes[i];
      break;
    }
    size_t al = strlen(allow);
    snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "",
             s->routes[i].method);
  }
  int keep = http_should_keep_alive(&c->parser);
  if (!r) {
    int status = path_known ? 405 : 404;
    atomic_fetch_add_explicit(&s->st_rejected, 1, memory_order_relaxed);
    srv_logf(s, "rejected request from %s: %d %s %.200s", c->peer, status,
             method, path);
    char extra[300] = "";
    if (path_known)
      snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    const char *body = path_known ? "{\"error\":\"method not allowed\"}"
                                  : "{\"error\":\"not found\"}";
    send_response(c, status, "application/json", body, strlen(body), !keep,
                  extra);
    return;
  }
  hs_agent_http_header hdrs[MAX_HEADERS];
  for (size_t i = 0; i < c->nhdr; i++) {
    hdrs[i].name = c->hdr.data + c->hdr_off[i][0];
    hdrs[i].value = c->hdr.data + c->hdr_off[i][1];
  }
  const char *cl = find_header(c, "content-length");
  hs_agent_http_request req = {
      .method = method,
      .path = path,
      .query = has_query ? query : NULL,
      .headers = hdrs,
      .nheaders = c->nhdr,
      .content_type = find_header(c, "content-type"),
      .content_encoding = find_header(c, "content-encoding"),
      .content_length = cl ? (int64_t)c->body.len : -1,
      .body = (const uint8_t *)hs_buf_cstr(&c->body),
      .body_len = c->body.len,
      .peer = c->peer,
  };
  atomic_fetch_add_explicit(&s->st_requests, 1, memory_order_relaxed);
  if (r->worker) {
    start_job(c, r, &req, keep);
    return;
  }
  hs_agent_http_response res;
  response_init(&res);
  r->handler(r->arg, &req, &res);
  finish_response(c, &res, method, path, keep);
}

/* Parses data; after a complete request the parser is paused and the
 * unparsed rest is kept for later. */
static void feed(conn *c, const char *data, size_t len) {
  size_t used = http_parser_execute(&c->parser, &settings, data, len);
  if (c->state == ST_CLOSING)
    return;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e == HPE_PAUSED) {
    /* A pipelined request behind this one: kept until the answer is
     * written (a worker route's answer is not even computed yet). */
    if (used < len && (c->state == ST_WORKING ||
                       (c->state == ST_RESPONDING && !c->close_after))) {
      c->pending = malloc(len - used);
      if (!c->pending) {
        conn_close(c);
        return;
      }
      memcpy(c->pending, data + used, len - used);
      c->pending_len = len - used;
    }
    return;
  }
  if (e != HPE_OK) {
    if (c->reject_status)
      reject(c, c->reject_status, c->reject_reason);
    else if (e == HPE_HEADER_OVERFLOW)
      reject(c, 431, "request headers too large");
    else
      reject(c, 400, http_errno_description(e));
    return;
  }
  if (used != len)
    reject(c, 400, "malformed request");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  conn *c = h->data;
  *buf = uv_buf_init(c->srv->readbuf, READ_BUF);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  conn *c = st->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    /* EOF or error: a request cut short is dropped (nobody to answer). */
    if (c->state == ST_READING) {
      atomic_fetch_add_explicit(&c->srv->st_rejected, 1, memory_order_relaxed);
      srv_logf(c->srv, "connection from %s closed mid-request", c->peer);
    }
    conn_close(c);
    return;
  }
  if (c->state != ST_IDLE && c->state != ST_READING)
    return; /* not reached: reading stops while responding */
  feed(c, buf->base, (size_t)nread);
}

static void on_timeout(uv_timer_t *t) {
  conn *c = t->data;
  hs_agent_server *s = c->srv;
  atomic_fetch_add_explicit(&s->st_timeouts, 1, memory_order_relaxed);
  if (c->state == ST_READING) {
    reject(c, 408, "request not completed in time");
    return;
  }
  if (c->state == ST_RESPONDING)
    srv_logf(s, "closing %s: response not read in time", c->peer);
  conn_close(c);
}

static void on_connection(uv_stream_t *ls, int status) {
  hs_agent_server *s = ls->data;
  if (status < 0)
    return;
  conn *c = calloc(1, sizeof(*c));
  if (!c)
    return;
  c->srv = s;
  uv_tcp_init(&s->loop, &c->tcp);
  uv_timer_init(&s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  hs_buf_init(&c->url, 0);
  hs_buf_init(&c->hdr, 0);
  hs_buf_init(&c->body, s->cfg.max_body + 1);
  hs_buf_init(&c->out, 0);
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c);
    return;
  }
  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  snprintf(c->peer, sizeof(c->peer), "?");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      uv_ip4_name(a, ip, sizeof(ip));
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      uv_ip6_name(a, ip, sizeof(ip));
      port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
  }
  if (s->nconns > s->cfg.max_conns || s->closed) {
    atomic_fetch_add_explicit(&s->st_refused, 1, memory_order_relaxed);
    srv_logf(s, "refusing connection from %s: %u connections open", c->peer,
             s->nconns - 1);
    conn_close(c);
    return;
  }
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->state = ST_IDLE;
  arm_timer(c, s->cfg.request_timeout_ms);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ------------------------------------------------------------ public */

static void close_all(hs_agent_server *s) {
  if (s->closed)
    return;
  s->closed = 1;
  while (s->conns)
    conn_close(s->conns);
  if (s->listening)
    uv_close((uv_handle_t *)&s->listener, NULL);
  if (s->signals_on) {
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
  }
  uv_close((uv_handle_t *)&s->stop_async, NULL);
}

static void on_stop(uv_async_t *a) {
  close_all(a->data);
}

static void on_signal(uv_signal_t *sig, int signum) {
  hs_log(HS_LOG_INFO, "agent: signal %d, shutting down", signum);
  close_all(sig->data);
}

hs_agent_server *hs_agent_server_new(const hs_agent_server_config *cfg,
                                     char *err, size_t errlen) {
  hs_agent_server *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (cfg)
    s->cfg = *cfg;
  if (!s->cfg.host)
    s->cfg.host = "127.0.0.1";
  if (!s->cfg.max_body)
    s->cfg.max_body = (size_t)32 << 20;
  if (!s->cfg.max_conns)
    s->cfg.max_conns = 256;
  if (!s->cfg.request_timeout_ms)
    s->cfg.request_timeout_ms = 10000;
  if (!s->cfg.idle_timeout_ms)
    s->cfg.idle_timeout_ms = 60000;
  int rc = uv_loop_init(&s->loop);
  if (rc) {
    snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
    free(s);
    return NULL;
  }
  uv_async_init(&s->loop, &s->stop_async, on_stop);
  s->stop_async.data = s;
  return s;
}

static int add_route(hs_agent_server *s, const char *method, const char *path,
                     hs_agent_http_handler handler, void *arg, int worker) {
  if (s->nroutes == MAX_ROUTES ||
      strlen(method) >= sizeof(s->routes[0].method) ||
      strlen(path) >= sizeof(s->routes[0].path))
    return -1;
  route *r = &s->routes[s->nroutes++];
  snprintf(r->method, sizeof(r->method), "%s", method);
  snprintf(r->path, sizeof(r->path), "%s", path);
  r->handler = handler;
  r->arg = arg;
  r->worker = worker;
  return 0;
}

int hs_agent_server_route(hs_agent_server *s, const char *method,
                          const char *path, hs_agent_http_handler handler,
                          void *arg) {
  return add_route(s, method, path, handler, arg, 0);
}

int hs_agent_server_route_worker(hs_agent_server *s, const char *method,
                                 const char *path,
                                 hs_agent_http_handler handler, void *arg) {
  return add_route(s, method, path, handler, arg, 1);
}

int hs_agent_server_listen(hs_agent_server *s, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (uv_ip4_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in6 *)&ss) != 0) {
    snprintf(err, errlen,
             "invalid listen address \"%s\" (an IPv4 or IPv6 "
             "literal)",
             s->cfg.host);
    return -1;
  }
  uv_tcp_init(&s->loop, &s->listener);
  s->listener.data = s;
  s->listening = 1;
  int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (!rc)
    rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc) {
    snprintf(err, errlen, "listen on %s:%d: %s", s->cfg.host, s->cfg.port,
             uv_strerror(rc));
    return -1;
  }
  int sl = sizeof(ss);
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl) == 0)
    s->port =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                       : ((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

uv_loop_t *hs_agent_server_loop(hs_agent_server *s) {
  return &s->loop;
}

int hs_agent_server_port(const hs_agent_server *s) {
  return s->port;
}

int hs_agent_server_run(hs_agent_server *s) {
  if (s->cfg.handle_signals && !s->signals_on && !s->closed) {
    uv_signal_init(&s->loop, &s->sig_int);
    uv_signal_init(&s->loop, &s->sig_term);
    s->sig_int.data = s->sig_term.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    s->signals_on = 1;
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return 0;
}

void hs_agent_server_stop(hs_agent_server *s) {
  uv_async_send(&s->stop_async);
}

void hs_agent_server_free(hs_agent_server *s) {
  if (!s)
    return;
  close_all(s);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  free(s);
}

void hs_agent_server_get_stats(const hs_agent_server *s,
                               hs_agent_server_stats *out) {
  hs_agent_server *m = (hs_agent_server *)s;
  out->requests = atomic_load_explicit(&m->st_requests, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&m->st_rejected, memory_order_relaxed);
  out->conns_refused =
      atomic_load_explicit(&m->st_refused, memory_order_relaxed);
  out->timeouts = atomic_load_explicit(&m->st_timeouts, memory_order_relaxed);
}
