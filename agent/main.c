/* hotspan-agent: receives traces and profiles over HTTP (Datadog, OTLP,
 * Pyroscope), stores them in SQLite and answers the /api/v1 queries.
 *
 *   hotspan-agent [--listen HOST:PORT] [--db PATH] [--retention DUR]
 *                 [--max-db-size SIZE] [--db-cache SIZE]
 *
 * One loop thread receives and stores everything: a batch is acknowledged
 * (200) only after its transaction committed, so an acknowledged batch
 * survives a crash of the agent (SQLite WAL, synchronous=NORMAL: it may
 * be lost only if the machine itself loses power). /api/v1 queries run on
 * libuv's worker threads over a read-only connection of their own. Retention
 * runs every minute. SIGINT and SIGTERM stop it cleanly (exit 0). docs/agent.md
 * describes it all. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "agent/api.h"
#include "agent/http_server.h"
#include "agent/routes.h"
#include "backend/store.h"
#include "common/log.h"
#include "common/token.h"

#ifndef HS_AGENT_VERSION
#define HS_AGENT_VERSION "0.1.0"
#endif

#define RETAIN_EVERY_MS 60000
#define DEFAULT_RETENTION_NS (INT64_C(7) * 86400 * 1000000000)

typedef struct agent {
  hs_store *store;
  int64_t max_age_ns, max_bytes;
  uv_timer_t retain_timer;
  uint64_t batches, spans, samples;
} agent;

static void usage(FILE *f) {
  fprintf(f,
          "usage: hotspan-agent [options]\n"
          "  --listen HOST:PORT   address to listen on (default "
          "127.0.0.1:8126;\n"
          "                       port 0 picks a free port)\n"
          "  --db PATH            SQLite database (default "
          "$HOTSPAN_AGENT_DB or\n"
          "                       ./hotspan-agent.db)\n"
          "  --retention DUR      delete data older than DUR: 30m, 12h, 7d "
          "(default 7d;\n"
          "                       0 keeps everything)\n"
          "  --max-db-size SIZE   shrink the database below SIZE: 500M, 2G "
          "(default: no limit)\n"
          "  --db-cache SIZE      SQLite page cache of each of the two "
          "connections\n"
          "                       (ingest, queries): 16M to 16G "
          "(default 64M)\n"
          "  --allow-host NAME    also accept requests whose Host header is "
          "NAME\n"
          "                       (repeatable; a loopback listener accepts "
          "only\n"
          "                       localhost, 127.0.0.1, [::1] and its own "
          "address)\n"
          "  --auth-token TOKEN   require \"Authorization: Bearer TOKEN\" on "
          "every\n"
          "                       request (default $HOTSPAN_AGENT_TOKEN; "
          "none)\n"
          "  --help               this text\n"
          "  --version            the version\n");
}

/* Prints "hotspan-agent: <what> '<value>'<why>" and the --help hint;
 * returns the exit code for bad usage. */
static int bad_flag(const char *what, const char *value, const char *why) {
  fprintf(stderr, "hotspan-agent: %s '%s'%s\n(see hotspan-agent --help)\n",
          what, value, why);
  return 2;
}

/* "30s", "30m", "12h", "7d" (or a plain number of seconds) into ns; -1 if
 * malformed or out of range. */
static int64_t parse_duration(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno || *s == '-' || *s == '+')
    return -1;
  int64_t mul = 1000000000;
  if (*end == 's')
    end++;
  else if (*end == 'm')
    mul *= 60, end++;
  else if (*end == 'h')
    mul *= 3600, end++;
  else if (*end == 'd')
    mul *= 86400, end++;
  if (*end || v > (unsigned long long)(INT64_MAX / mul))
    return -1;
  return (int64_t)v * mul;
}

/* "500M", "2G", "64K", "1000000" (bytes) into bytes; -1 if malformed. */
static int64_t parse_size(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno || *s == '-' || *s == '+')
    return -1;
  int64_t mul = 1;
  switch (*end) {
  case 'K':
  case 'k':
    mul = 1 << 10, end++;
    break;
  case 'M':
  case 'm':
    mul = 1 << 20, end++;
    break;
  case 'G':
  case 'g':
    mul = 1 << 30, end++;
    break;
  }
  if (*end == 'B' || *end == 'b')
    end++;
  if (*end || v > (unsigned long long)(INT64_MAX / mul))
    return -1;
  return (int64_t)v * mul;
}

/* "HOST:PORT" or "[V6]:PORT" into host (static buffer) and port. */
static int parse_listen(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon;
  const char *h = s;
  size_t hl;
  if (*s == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':')
      return -1;
    h = s + 1;
    hl = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon)
      return -1;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= hostlen)
    return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (end == colon + 1 || *end || errno || p < 0 || p > 65535)
    return -1;
  *port = (int)p;
  return 0;
}

static int store_batch(void *arg, const hs_ing_batch *b, char *err,
                       size_t errlen) {
  agent *a = arg;
  if (hs_store_ingest(a->store, b, err, errlen) != HS_STORE_OK)
    return -1;
  a->batches++;
  a->spans += b->nspans;
  a->samples += b->nsamples;
  return 0;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One retention pass: bounded steps until the limits hold, at most a few
 * seconds' worth so that ingest is not held up for long (the next tick
 * goes on). */
static void on_retain(uv_timer_t *t) {
  agent *a = t->data;
  if (!a->max_age_ns && !a->max_bytes)
    return;
  hs_store_retention r = {wall_ns(), a->max_age_ns, a->max_bytes, 0};
  hs_store_retain_stats total = {0};
  for (int step = 0; step < 50; step++) {
    hs_store_retain_stats st;
    char err[256] = "";
    if (hs_store_retain(a->store, &r, &st, err, sizeof(err)) != HS_STORE_OK) {
      hs_log(HS_LOG_WARN, "agent: retention failed: %s", err);
      return;
    }
    if (step == 0)
      total.bytes_before = st.bytes_before;
    total.bytes_after = st.bytes_after;
    total.traces_deleted += st.traces_deleted;
    total.spans_deleted += st.spans_deleted;
    total.samples_deleted += st.samples_deleted;
    if (!st.more)
      break;
  }
  if (total.traces_deleted || total.samples_deleted)
    hs_log(HS_LOG_INFO,
           "agent: retention deleted %" PRId64 " traces (%" PRId64
           " spans) and %" PRId64 " samples; database %" PRId64 " -> %" PRId64
           " bytes",
           total.traces_deleted, total.spans_deleted, total.samples_deleted,
           total.bytes_before, total.bytes_after);
}

/* The command line's settings other than the retention limits (those go
 * into the agent). */
#define MAX_ALLOW_HOSTS 16

typedef struct agent_opts {
  const char *listen, *db;
  int cache_mib; /* 0: the store's default */
  const char *token;
  const char *allow_hosts[MAX_ALLOW_HOSTS + 1]; /* NULL-terminated */
  int nallow;
} agent_opts;

/* Applies one known option with its value. -1 when fine, else the exit
 * code for bad usage. */
static int set_option(agent *a, agent_opts *o, const char *name,
                      const char *val) {
  if (strcmp(name, "--listen") == 0) {
    o->listen = val;
  } else if (strcmp(name, "--db") == 0) {
    if (!*val)
      return bad_flag("--db", val, ": needs a path");
    o->db = val;
  } else if (strcmp(name, "--retention") == 0) {
    if ((a->max_age_ns = parse_duration(val)) < 0)
      return bad_flag("--retention", val,
                      ": want a duration like 30m, 12h or 7d");
  } else if (strcmp(name, "--allow-host") == 0) {
    if (!*val || strcspn(val, " \t/@:[]") != strlen(val))
      return bad_flag("--allow-host", val, ": want a host name, like my-box");
    if (o->nallow == MAX_ALLOW_HOSTS)
      return bad_flag("--allow-host", val, ": at most 16 names");
    o->allow_hosts[o->nallow++] = val;
  } else if (strcmp(name, "--auth-token") == 0) {
    const char *bad = hs_token_invalid(val);
    if (bad) {
      fprintf(stderr, "hotspan-agent: --auth-token %s\n", bad);
      return 2;
    }
    o->token = val;
  } else if (strcmp(name, "--db-cache") == 0) {
    int64_t c = parse_size(val);
    if (c < (INT64_C(16) << 20) || c > (INT64_C(16) << 30))
      return bad_flag("--db-cache", val,
                      ": want a size from 16M to 16G, like 64M or 1G");
    o->cache_mib = (int)(c >> 20);
  } else {
    if ((a->max_bytes = parse_size(val)) < 0)
      return bad_flag("--max-db-size", val, ": want a size like 500M or 2G");
  }
  return -1;
}

/* Reads the command line ("--name value" or "--name=value") into a and o.
 * -1 to go on, else the exit code (0 after --help or --version). */
static int parse_args(int argc, char **argv, agent *a, agent_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(arg, "--version") == 0) {
      printf("hotspan-agent %s\n", HS_AGENT_VERSION);
      return 0;
    }
    const char *name = arg, *val = NULL;
    const char *eq = strchr(arg, '=');
    char flag[32];
    if (eq && (size_t)(eq - arg) < sizeof(flag)) {
      memcpy(flag, arg, (size_t)(eq - arg));
      flag[eq - arg] = 0;
      name = flag;
      val = eq + 1;
    }
    int known =
        strcmp(name, "--listen") == 0 || strcmp(name, "--db") == 0 ||
        strcmp(name, "--retention") == 0 ||
        strcmp(name, "--max-db-size") == 0 || strcmp(name, "--db-cache") == 0 ||
        strcmp(name, "--allow-host") == 0 || strcmp(name, "--auth-token") == 0;
    if (!known)
      return bad_flag("unknown option", arg, "");
    if (!val) {
      if (i + 1 >= argc)
        return bad_flag("option", name, " needs a value");
      val = argv[++i];
    }
    int rc = set_option(a, o, name, val);
    if (rc >= 0)
      return rc;
  }
  return -1;
}

/* Opens the ingest store into a->store and the queries' read-only one
 * into *query. 0, or -1 with the message printed (nothing left open). */
static int open_stores(agent *a, const agent_opts *o, hs_store **query) {
  char err[512] = "";
  hs_store_sqlite_opts so;
  memset(&so, 0, sizeof so);
  so.cache_mib = o->cache_mib;
  a->store = hs_store_open_sqlite(o->db, &so, err, sizeof(err));
  if (!a->store) {
    fprintf(stderr, "hotspan-agent: cannot open database: %s\n", err);
    return -1;
  }
  /* Queries get a read-only connection of their own, used from the
   * server's worker threads, so that they never wait for an ingest
   * transaction on the loop thread, nor it for them (WAL). */
  so.read_only = 1;
  *query = hs_store_open_sqlite(o->db, &so, err, sizeof(err));
  if (!*query) {
    fprintf(stderr, "hotspan-agent: cannot open database: %s\n", err);
    hs_store_close(a->store);
    return -1;
  }
  return 0;
}

/* The server on host:port with the ingest routes (storing through a) and
 * the query API (api, over query_store), listening. NULL with the message
 * printed; api is finished then. */
static hs_agent_server *start_server(agent *a, const char *host, int port,
                                     const char *listen,
                                     const hs_agent_trust *trust,
                                     hs_agent_api *api, hs_store *query_store,
                                     hs_agent_routes *routes) {
  char err[512] = "";
  hs_agent_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.host = host;
  cfg.port = port;
  cfg.handle_signals = 1;
  cfg.trust = trust;
  hs_agent_server *srv = hs_agent_server_new(&cfg, err, sizeof(err));
  if (!srv) {
    fprintf(stderr, "hotspan-agent: %s\n", err);
    return NULL;
  }
  memset(routes, 0, sizeof *routes);
  routes->store_batch = store_batch;
  routes->store_arg = a;
  memset(api, 0, sizeof *api);
  api->store = query_store;
  int failed =
      hs_agent_routes_install(srv, routes) || hs_agent_api_install(srv, api);
  if (failed)
    fprintf(stderr, "hotspan-agent: route table full\n");
  else if (hs_agent_server_listen(srv, err, sizeof(err))) {
    fprintf(stderr, "hotspan-agent: cannot listen on %s: %s\n", listen, err);
    failed = 1;
  }
  if (failed) {
    hs_agent_server_free(srv);
    hs_agent_api_fini(api);
    return NULL;
  }
  return srv;
}

/* The one start line, on stdout: scripts read the bound port from it. */
static void announce(hs_agent_server *srv, const char *host, const char *db) {
  int bound = hs_agent_server_port(srv);
  int v6 = strchr(host, ':') != NULL;
  char addr[300];
  snprintf(addr, sizeof(addr), "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
           bound);
  printf("hotspan-agent %s: listening on %s, database %s\n", HS_AGENT_VERSION,
         addr, db);
  fflush(stdout);
}

int main(int argc, char **argv) {
  agent_opts o;
  memset(&o, 0, sizeof o);
  o.listen = "127.0.0.1:8126";
  o.db = getenv("HOTSPAN_AGENT_DB");
  if (!o.db || !*o.db)
    o.db = "./hotspan-agent.db";
  agent a;
  memset(&a, 0, sizeof a);
  a.max_age_ns = DEFAULT_RETENTION_NS;
  int rc = parse_args(argc, argv, &a, &o);
  if (rc >= 0)
    return rc;
  char host[256];
  int port;
  if (parse_listen(o.listen, host, sizeof(host), &port))
    return bad_flag("--listen", o.listen,
                    ": want HOST:PORT, e.g. 127.0.0.1:8126");

  if (!o.token) {
    const char *env = getenv("HOTSPAN_AGENT_TOKEN");
    if (env && *env) {
      const char *bad = hs_token_invalid(env);
      if (bad) {
        fprintf(stderr, "hotspan-agent: HOTSPAN_AGENT_TOKEN %s\n", bad);
        return 2;
      }
      o.token = env;
    }
  }
  hs_agent_trust trust = {hs_agent_is_loopback(host), host, o.allow_hosts,
                          o.token};
  if (!trust.check_host && !o.token)
    fprintf(stderr,
            "hotspan-agent: WARNING: listening on %s, beyond loopback, "
            "without a token: anyone who can reach it can write and read "
            "traces and profiles (set --auth-token or HOTSPAN_AGENT_TOKEN)\n",
            o.listen);

  hs_store *query_store;
  if (open_stores(&a, &o, &query_store) < 0)
    return 1;
  hs_agent_routes routes;
  hs_agent_api api;
  hs_agent_server *srv = start_server(&a, host, port, o.listen, &trust, &api,
                                      query_store, &routes);
  if (!srv) {
    hs_store_close(query_store);
    hs_store_close(a.store);
    return 1;
  }
  uv_loop_t *loop = hs_agent_server_loop(srv);
  uv_timer_init(loop, &a.retain_timer);
  a.retain_timer.data = &a;
  uv_timer_start(&a.retain_timer, on_retain, 1000, RETAIN_EVERY_MS);
  /* The timer must not keep the loop alive once the server stopped. */
  uv_unref((uv_handle_t *)&a.retain_timer);
  announce(srv, host, o.db);

  hs_agent_server_run(srv);
  uv_timer_stop(&a.retain_timer);
  uv_close((uv_handle_t *)&a.retain_timer, NULL);
  hs_agent_server_free(srv); /* runs the loop once more: the timer closes */
  hs_agent_api_fini(&api);
  hs_store_close(query_store);
  hs_store_close(a.store);
  fprintf(stderr,
          "hotspan-agent: stopped after %" PRIu64 " batches (%" PRIu64
          " spans, %" PRIu64 " samples)\n",
          a.batches, a.spans, a.samples);
  return 0;
}
