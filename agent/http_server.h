/* The agent's HTTP/1.1 server on libuv.
 *
 * One loop thread serves every connection. Requests are parsed by
 * http_parser (chunked bodies included), handled one at a time per
 * connection (a pipelined request waits until the previous response is
 * written) and dispatched through a route table of method + path to a
 * synchronous handler that fills a response.
 *
 * Limits and their answers: a body larger than max_body → 413 and close
 * (checked against Content-Length before reading, and while reading a
 * chunked body); a malformed request → 400 and close; a request line or
 * headers too large → 431/414 and close; a request the trust checks
 * refuse (cfg.trust) → 400/401/403 and close; an unknown path → 404; a known
 * path with another method → 405 with Allow; more than max_conns open
 * connections → the newest is closed at once; a request not complete
 * within request_timeout_ms → 408 and close; a keep-alive connection idle
 * for idle_timeout_ms → closed. Every rejected request logs one line
 * (rate-limited to 10 a second, with a count of the suppressed ones).
 *
 * Threads: everything runs on the server's loop thread, which is the
 * thread that calls hs_agent_server_run, except the handlers of worker
 * routes (hs_agent_server_route_worker), which run on libuv's thread pool
 * so that a long one (a query) does not hold up the other connections.
 * hs_agent_server_stop may be called from any thread (and from a signal
 * handler); all other functions must not race with a running loop. */
#ifndef HS_AGENT_HTTP_SERVER_H
#define HS_AGENT_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "agent/trust.h"
#include "common/buf.h"

typedef struct hs_agent_server hs_agent_server;

typedef struct hs_agent_server_config {
  const char *host;   /* IPv4 or IPv6 literal; NULL = "127.0.0.1" */
  int port;           /* 0 = any free port (see hs_agent_server_port) */
  size_t max_body;    /* bytes; 0 = 32 MiB */
  unsigned max_conns; /* 0 = 256 */
  unsigned request_timeout_ms; /* first byte to complete request, and a
                                  fresh connection's first byte; 0 = 10 s */
  unsigned idle_timeout_ms;    /* between keep-alive requests; 0 = 60 s */
  int handle_signals; /* nonzero: hs_agent_server_run stops on SIGINT and
                         SIGTERM */
  /* Checks made once a request's headers are in, before its body is read
   * (agent/trust.h); a refused request is answered 400, 401 or 403 and
   * closed. NULL: none. Must outlive the server. */
  const hs_agent_trust *trust;
} hs_agent_server_config;

typedef struct hs_agent_http_header {
  const char *name; /* lower-cased */
  const char *value;
} hs_agent_http_header;

typedef struct hs_agent_http_request {
  const char *method; /* "GET", "PUT", ... */
  const char *path;   /* without the query, not percent-decoded */
  const char *query;  /* raw text after '?', or NULL */
  const hs_agent_http_header *headers;
  size_t nheaders;
  /* The headers the decoders need, or NULL when absent. */
  const char *content_type;
  const char *content_encoding;
  int64_t content_length; /* -1 when absent (e.g. chunked) */
  const uint8_t *body;    /* body_len bytes, followed by a NUL */
  size_t body_len;
  const char *peer; /* "ip:port" of the client */
} hs_agent_http_request;

typedef struct hs_agent_http_response {
  int status;               /* preset to 200 */
  const char *content_type; /* static string; preset "application/json" */
  hs_buf body;              /* empty, owned by the server */
  int close;                /* set to close the connection afterwards */
  /* A short reason for the log line when status >= 400 (static or
   * living until the handler returns); NULL: the body is logged. */
  const char *log_reason;
} hs_agent_http_response;

/* Sets res to status with the body {"error": msg} (JSON-escaped). */
void hs_agent_http_error(hs_agent_http_response *res, int status,
                         const char *msg);

/* Called on the loop thread with a complete request; must fill res and
 * return (no blocking beyond the work itself). Pointers in req are valid
 * only during the call. */
typedef void (*hs_agent_http_handler)(void *arg,
                                      const hs_agent_http_request *req,
                                      hs_agent_http_response *res);

/* Creates a server with its own loop (not yet listening). cfg may be NULL
 * (defaults). Returns NULL with a message in err on failure. */
hs_agent_server *hs_agent_server_new(const hs_agent_server_config *cfg,
                                     char *err, size_t errlen);

/* Adds a route: method ("GET", "POST", ...) and exact path, or a path
 * prefix when path ends in an asterisk ("/api/v1/traces/" + "*"); routes are
 * tried in the order added. Call before hs_agent_server_run. 0 ok, -1 when the
 * table (64 routes) is full. */
int hs_agent_server_route(hs_agent_server *s, const char *method,
                          const char *path, hs_agent_http_handler handler,
                          void *arg);

/* Adds a route like hs_agent_server_route whose handler runs on libuv's
 * thread pool (UV_THREADPOOL_SIZE threads, 4 by default) instead of the
 * loop thread: several may run at once, with each other and with the loop
 * thread's handlers, so handler and arg must be thread-safe. The request
 * is copied for the handler; the connection waits (no timeouts apply)
 * until the handler returns, and a connection closed meanwhile (server
 * shutdown) just drops the answer; hs_agent_server_run and _free return
 * only after every started handler has. Same errors as
 * hs_agent_server_route. */
int hs_agent_server_route_worker(hs_agent_server *s, const char *method,
                                 const char *path,
                                 hs_agent_http_handler handler, void *arg);

/* Binds and listens. 0 ok, -1 with a message in err. */
int hs_agent_server_listen(hs_agent_server *s, char *err, size_t errlen);

/* The server's libuv loop, for the owner's own handles (timers). A handle
 * that must not keep hs_agent_server_run from returning after a stop is
 * uv_unref'ed by its owner and closed before hs_agent_server_free. */
struct uv_loop_s *hs_agent_server_loop(hs_agent_server *s);

/* The port it listens on (useful with port 0), or 0 before listen. */
int hs_agent_server_port(const hs_agent_server *s);

/* Runs the loop until hs_agent_server_stop (or a signal when
 * handle_signals is set); then closes every connection and returns 0. */
int hs_agent_server_run(hs_agent_server *s);

/* Asks the running loop to stop. Thread-safe and async-signal-safe. */
void hs_agent_server_stop(hs_agent_server *s);

/* Frees the server (after run returned, or if it never ran). NULL ok. */
void hs_agent_server_free(hs_agent_server *s);

/* Counters for tests and the agent's own status; read after run returned
 * or from the loop thread. */
typedef struct hs_agent_server_stats {
  uint64_t requests; /* handled by a route */
  uint64_t rejected; /* answered >= 400, or closed by a limit */
  uint64_t conns_refused;
  uint64_t timeouts;
} hs_agent_server_stats;
void hs_agent_server_get_stats(const hs_agent_server *s,
                               hs_agent_server_stats *out);

#endif
