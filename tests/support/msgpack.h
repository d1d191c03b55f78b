/* Building msgpack payloads with msgpack-c's packer, as real tracers do. */
#ifndef HS_TESTS_SUPPORT_MSGPACK_H
#define HS_TESTS_SUPPORT_MSGPACK_H

#include <msgpack.h>
#include <stdint.h>

/* Packs a NUL-terminated string. */
void ts_pack_str(msgpack_packer *pk, const char *s);
/* Packs a Datadog span map with just the keys the agent requires
 * (service, trace_id, span_id, parent_id). */
void ts_pack_min_span(msgpack_packer *pk, const char *service, uint64_t trace,
                      uint64_t span, uint64_t parent);

#endif
