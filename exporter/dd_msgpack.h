/* Datadog Agent trace payload encoder (msgpack, /v0.4/traces).
 *
 * A payload is a msgpack array of traces; a trace (one chunk of finished
 * spans of one local trace) is an array of span maps with exactly these
 * keys, in this order: service, name, resource, type, trace_id, span_id,
 * parent_id, start, duration, error, meta, metrics. The mapping of tags,
 * trace-level values, span events and links to meta and metrics is
 * described in docs/export-datadog.md.
 *
 * The encoder appends chunks to one growing buffer; the number of traces
 * is known only at the end, so the payload starts with 5 reserved bytes
 * that hs_dd_encoder_finish fills with an array32 header.
 *
 * Every string is sent as valid UTF-8: invalid bytes become U+FFFD, so a
 * msgpack decoder that checks strings (the agent's, Python's) accepts it.
 *
 * Thread safety: an encoder is used by one thread at a time (the sink's
 * writer thread); different encoders are independent. Not
 * async-signal-safe. */
#ifndef HS_EXPORTER_DD_MSGPACK_H
#define HS_EXPORTER_DD_MSGPACK_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "tracer/trace_sink.h"

/* Value of the "language" meta tag and of the Datadog-Meta-Lang header.
 * Datadog's backend knows a fixed set of languages; native code is "cpp"
 * (what Datadog's own C++ tracer sends). */
#define HS_DD_LANGUAGE "cpp"

typedef struct hs_dd_encoder {
  hs_buf out; /* the payload being built */
  msgpack_packer pk;
  uint32_t ntraces;
  uint32_t nspans;
  const hs_tracer_settings *st; /* not owned; read on every span */
  hs_buf json;                  /* scratch: events / span links JSON */
  hs_buf fix;                   /* scratch: UTF-8 repair */
  /* Span id → span of the chunk being encoded (open addressing, for the
   * top-level computation of large chunks). */
  const hotspan_span **slots;
  size_t nslots;
  uint64_t chunks_dropped; /* chunks that did not fit max_bytes */
  uint64_t spans_dropped;
} hs_dd_encoder;

/* Initializes e. st (tracer settings: service, env, version, global tags,
 * runtime id) must outlive the encoder; max_bytes caps one payload (0 =
 * 64 MiB). Starts an empty payload (hs_dd_encoder_begin). */
void hs_dd_encoder_init(hs_dd_encoder *e, const hs_tracer_settings *st,
                        size_t max_bytes);
/* Frees e's memory (not st). NULL-safe. */
void hs_dd_encoder_free(hs_dd_encoder *e);

/* In a forked child: forgets e's buffers without freeing them (the
 * parent's thread may have been using them at the fork) and starts empty,
 * as after hs_dd_encoder_init with the same settings and cap. */
void hs_dd_encoder_abandon(hs_dd_encoder *e);

/* Starts an empty payload, dropping whatever was added since the last
 * finish. Keeps the buffer's memory when it has any. */
void hs_dd_encoder_begin(hs_dd_encoder *e);

/* Appends one chunk as one trace. Reads the chunk's trace-level values
 * with hs_trace_snapshot (takes the trace's mutex briefly). Returns
 * HOTSPAN_OK, HOTSPAN_EINVAL (NULL or empty chunk), or HOTSPAN_ETOOBIG
 * when the payload would pass max_bytes (or memory ran out): the chunk is
 * then left out entirely (counted in chunks_dropped / spans_dropped) and
 * the payload stays valid. */
int hs_dd_encoder_add(hs_dd_encoder *e, const hs_chunk *c);

/* Bytes of the payload so far (header included). */
static inline size_t hs_dd_encoder_size(const hs_dd_encoder *e) {
  return e->out.len;
}

/* Completes the payload and hands it over: *body (malloc'd; the caller
 * frees it, e.g. by passing it to hs_target_send), *len, and the trace
 * and span counts. Then starts a new empty payload. Returns HOTSPAN_OK,
 * or HOTSPAN_ENOMEM (nothing handed over, the payload is dropped). A
 * payload with no traces is valid (an empty array). */
int hs_dd_encoder_finish(hs_dd_encoder *e, char **body, size_t *len,
                         uint32_t *ntraces, uint32_t *nspans);

/* Encodes one chunk as a complete payload (an array holding one trace)
 * into out, for tests and tools. Returns as hs_dd_encoder_add. */
int hs_dd_encode_chunk(const hs_tracer_settings *st, const hs_chunk *c,
                       hs_buf *out);

#endif
