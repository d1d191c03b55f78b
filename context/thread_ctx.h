/* Thread context record: what the span active on a thread is, written by
 * the tracer on that thread and read by signal handlers (ours, or an
 * external profiler's) interrupting that same thread.
 *
 * Layout of the published part follows OpenTelemetry's thread-context
 * proposal (OTEP 4947): the exported TLS pointer `otel_thread_ctx_v1` points
 * to a packed record
 *     trace_id u8[16] @0, span_id u8[8] @16, valid u8 @24,
 *     trace_flags u8 @25, attrs_data_size u16 @26, attrs @28
 * of at most 640 bytes. Ids are big-endian bytes, as on the wire. hotspan
 * publishes no attributes yet (attrs_data_size is 0): the attribute key
 * table belongs to the process context, which hotspan does not publish.
 * hotspan's own profiler reads the native-endian copy that follows the
 * published part (hs_thread_ctx), which adds the local root span id and the
 * endpoint id.
 *
 * Update protocol: the writer clears `valid`, updates, sets `valid`, with a
 * compiler fence (atomic_signal_fence) between the steps. Reader and writer
 * are the same thread, so no CPU fence is needed: a signal handler sees
 * either valid == 0 (an update is in progress, or no span is active: treat
 * as "no span") or a complete, consistent record.
 *
 * Lifetime: the record is allocated outside signal context, the first time a
 * thread needs one (hs_thread_ctx_get), and freed at thread exit after the
 * TLS pointer has been cleared, so a handler never sees a dangling pointer.
 * Static TLS used by the library stays at two pointers (initial-exec model),
 * which keeps libhotspan loadable with dlopen().
 */
#ifndef HS_CONTEXT_THREAD_CTX_H
#define HS_CONTEXT_THREAD_CTX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HS_OTEL_CTX_MAX 640
#define HS_OTEL_CTX_HEADER 28

typedef struct __attribute__((packed)) hs_otel_thread_ctx {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t valid;
  uint8_t trace_flags;
  uint16_t attrs_data_size;
  uint8_t attrs_data[HS_OTEL_CTX_MAX - HS_OTEL_CTX_HEADER];
} hs_otel_thread_ctx;

_Static_assert(sizeof(hs_otel_thread_ctx) == HS_OTEL_CTX_MAX,
               "OTEP 4947 record must be 640 bytes");

typedef struct hs_thread_ctx {
  hs_otel_thread_ctx otel; /* first: otel_thread_ctx_v1 points here */
  /* Native-endian copy for hotspan's own profiler; guarded by otel.valid. */
  uint64_t trace_id_high;
  uint64_t trace_id_low;
  uint64_t span_id;
  uint64_t local_root_span_id;
  uint32_t endpoint_id; /* hs_endpoint_intern id; 0 = none */
  uint32_t pad_;
} hs_thread_ctx;

/* The values written into a record. */
typedef struct hs_ctx_value {
  uint64_t trace_id_high;
  uint64_t trace_id_low;
  uint64_t span_id;
  uint64_t local_root_span_id;
  uint32_t endpoint_id;
  uint8_t trace_flags;
} hs_ctx_value;

/* The exported TLS pointer read by external profilers: it points to an
 * hs_otel_thread_ctx (the first member of hs_thread_ctx). Declared void *
 * so that no packed-struct pointer is ever converted. */
extern __thread void *otel_thread_ctx_v1
    __attribute__((tls_model("initial-exec")));

/* The calling thread's record, allocating it on first use (never call from
 * a signal handler). NULL only if memory ran out. */
hs_thread_ctx *hs_thread_ctx_get(void);

/* The calling thread's record or NULL if it has none. Async-signal-safe:
 * one initial-exec TLS load. */
static inline hs_thread_ctx *hs_thread_ctx_peek(void) {
  /* Through void *: the record is allocated 8-byte aligned (gcc warns
   * about a direct cast from the packed type). */
  void *rec = otel_thread_ctx_v1;
  return (hs_thread_ctx *)rec;
}

static inline void hs__be64(uint8_t *dst, uint64_t v) {
  v = __builtin_bswap64(v);
  __builtin_memcpy(dst, &v, sizeof v);
}

/* Publishes v (or "no span" when v is NULL) in rec. Called only by the
 * thread that owns rec. */
static inline void hs_thread_ctx_write(hs_thread_ctx *rec,
                                       const hs_ctx_value *v) {
  rec->otel.valid = 0;
  atomic_signal_fence(memory_order_seq_cst);
  if (v == NULL) {
    rec->span_id = 0;
    rec->local_root_span_id = 0;
    rec->endpoint_id = 0;
    rec->trace_id_high = 0;
    rec->trace_id_low = 0;
    return; /* stays invalid: no active span */
  }
  hs__be64(rec->otel.trace_id, v->trace_id_high);
  hs__be64(rec->otel.trace_id + 8, v->trace_id_low);
  hs__be64(rec->otel.span_id, v->span_id);
  rec->otel.trace_flags = v->trace_flags;
  rec->otel.attrs_data_size = 0;
  rec->trace_id_high = v->trace_id_high;
  rec->trace_id_low = v->trace_id_low;
  rec->span_id = v->span_id;
  rec->local_root_span_id = v->local_root_span_id;
  rec->endpoint_id = v->endpoint_id;
  atomic_signal_fence(memory_order_seq_cst);
  rec->otel.valid = 1;
}

/* Snapshot of the record as a signal handler takes it: returns 1 and fills
 * *out if a span is active, 0 otherwise. Async-signal-safe. Only valid on
 * the thread that owns rec (the handler interrupting it). */
static inline int hs_thread_ctx_read(const hs_thread_ctx *rec,
                                     hs_ctx_value *out) {
  if (rec == NULL || !rec->otel.valid)
    return 0;
  atomic_signal_fence(memory_order_seq_cst);
  out->trace_id_high = rec->trace_id_high;
  out->trace_id_low = rec->trace_id_low;
  out->span_id = rec->span_id;
  out->local_root_span_id = rec->local_root_span_id;
  out->endpoint_id = rec->endpoint_id;
  out->trace_flags = rec->otel.trace_flags;
  return 1;
}

#endif /* HS_CONTEXT_THREAD_CTX_H */
