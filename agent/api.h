/* The agent's JSON query API on an hs_agent_server, answered by the
 * correlation engine (backend/query.h) over the agent's store.
 * docs/agent.md is the reference (parameters, answers, examples).
 *
 *   GET /api/v1/services                    services, endpoints, latency
 *   GET /api/v1/traces                      traces, longest first
 *   GET /api/v1/traces/{trace_id}           one trace with all its spans
 *   GET /api/v1/spans/{span_id}/hotspots    code hotspots of a span
 *   GET /api/v1/profile                     endpoint profile (json, folded,
 *                                           gzipped pprof)
 *   GET /api/v1/diff                        endpoint profile diff (two
 *                                           ranges or two versions)
 *   GET /api/v1/versions                    known versions per service
 *
 * Times are Unix ns; from/to default to the last hour before now. A
 * missing or invalid parameter gives 400 with {"error": "..."} naming it;
 * an unknown trace, span or endpoint 404; a store failure 500. The routes
 * run on the server's worker threads (hs_agent_server_route_worker), one
 * query at a time on the API's own store connection, so a long query does
 * not hold up ingest on the loop thread. */
#ifndef HS_AGENT_API_H
#define HS_AGENT_API_H

#include <stdint.h>

#include "agent/http_server.h"
#include "backend/store.h"

#include <pthread.h>

#define HS_AGENT_API_ROUTES 7

typedef struct hs_agent_api hs_agent_api;

/* One installed route: which handler, for which api. */
typedef struct hs_agent_api_call {
  hs_agent_api *api;
  hs_agent_http_handler fn;
} hs_agent_api_call;

struct hs_agent_api {
  /* Borrowed; used by one query at a time, from the worker threads. The
   * agent gives the API a read-only connection of its own (SQLite's WAL
   * lets it read while the loop thread's connection writes). */
  hs_store *store;
  /* Clock for the default time range; NULL: CLOCK_REALTIME. */
  int64_t (*now_ns)(void);
  /* Set up by hs_agent_api_install. */
  pthread_mutex_t mu;
  hs_agent_api_call calls[HS_AGENT_API_ROUTES];
};

/* Adds the /api/v1 routes to s as worker routes. api must stay valid while
 * s runs; release it with hs_agent_api_fini after s is freed. 0 ok, -1
 * when the route table is full. */
int hs_agent_api_install(hs_agent_server *s, hs_agent_api *api);
void hs_agent_api_fini(hs_agent_api *api);

/* Handlers, exposed for in-process tests: each answers one request
 * (req->path and req->query are used) into res. */
void hs_agent_api_services(void *api, const hs_agent_http_request *req,
                           hs_agent_http_response *res);
void hs_agent_api_traces(void *api, const hs_agent_http_request *req,
                         hs_agent_http_response *res);
void hs_agent_api_trace(void *api, const hs_agent_http_request *req,
                        hs_agent_http_response *res);
void hs_agent_api_spans(void *api, const hs_agent_http_request *req,
                        hs_agent_http_response *res);
void hs_agent_api_profile(void *api, const hs_agent_http_request *req,
                          hs_agent_http_response *res);
void hs_agent_api_diff(void *api, const hs_agent_http_request *req,
                       hs_agent_http_response *res);
void hs_agent_api_versions(void *api, const hs_agent_http_request *req,
                           hs_agent_http_response *res);

/* Value of parameter name in a raw query string, percent-decoded ('+' is
 * a space) into out (outlen bytes with the NUL). 1 found, 0 absent, -1
 * malformed (bad %XX, an encoded NUL, or longer than outlen - 1). */
int hs_agent_query_param(const char *query, const char *name, char *out,
                         size_t outlen);

#endif
