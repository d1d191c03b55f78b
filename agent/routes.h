/* The agent's ingest endpoints on an hs_agent_server, wired to the
 * decoders and to a store callback supplied by whoever owns the store.
 *
 *   PUT/POST /v0.4/traces       Datadog traces (msgpack)
 *   POST     /profiling/v1/input Datadog profile upload (multipart)
 *   POST     /ingest             Pyroscope (pprof)
 *   POST     /v1/traces          OTLP/HTTP traces (protobuf or JSON)
 *   GET      /info               what this agent accepts (JSON)
 *
 * Request bodies with Content-Encoding gzip (or zstd) are decompressed
 * first, capped at limits.max_inflated (413 past it). Answers: 200 after
 * store_batch accepted the batch; 400 with {"error": "..."} for a payload
 * that does not decode; 413 for one that decodes past a limit; 415 for a
 * wrong Content-Type or an unknown Content-Encoding; 500 when store_batch
 * fails. Handlers run on the server's loop thread. */
#ifndef HS_AGENT_ROUTES_H
#define HS_AGENT_ROUTES_H

#include "agent/http_server.h"
#include "agent/ingest.h"

/* Receives each decoded batch; returns 0 when stored, nonzero with a
 * message in err otherwise. The batch and its strings are valid only
 * during the call (copy what is kept). Called on the loop thread. */
typedef int (*hs_agent_store_fn)(void *arg, const hs_ing_batch *b, char *err,
                                 size_t errlen);

typedef struct hs_agent_routes {
  hs_agent_store_fn store_batch;
  void *store_arg;
  hs_agent_limits limits; /* 0 fields: defaults */
  const char *version;    /* reported by /info; NULL: the project version */
} hs_agent_routes;

/* Adds the endpoints to s. r must stay valid while s runs. 0 ok, -1 when
 * the route table is full. */
int hs_agent_routes_install(hs_agent_server *s, hs_agent_routes *r);

#endif
