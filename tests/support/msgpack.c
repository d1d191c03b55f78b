#include "support/msgpack.h"

#include <string.h>

void ts_pack_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str_with_body(pk, s, strlen(s));
}

void ts_pack_min_span(msgpack_packer *pk, const char *service, uint64_t trace,
                      uint64_t span, uint64_t parent) {
  msgpack_pack_map(pk, 4);
  ts_pack_str(pk, "service");
  ts_pack_str(pk, service);
  ts_pack_str(pk, "trace_id");
  msgpack_pack_uint64(pk, trace);
  ts_pack_str(pk, "span_id");
  msgpack_pack_uint64(pk, span);
  ts_pack_str(pk, "parent_id");
  msgpack_pack_uint64(pk, parent);
}
