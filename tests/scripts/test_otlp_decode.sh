#!/usr/bin/env bash
# Decodes an OTLP ExportTraceServiceRequest written by hotspan's encoder
# with protoc (an independent decoder) and the project's .proto files, and
# checks ids, kinds, status, events, links, flags and resource attributes.
# Usage: test_otlp_decode.sh <build dir> <source dir>
# Exits 77 (skipped) when protoc is missing.
set -euo pipefail

build=${1:?build dir}
src=${2:?source dir}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
command -v protoc >/dev/null || skip "protoc not installed (protobuf-compiler)"

tool=$build/tests/tools/otlp_dump
[ -x "$tool" ] || fail "$tool not built"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$tool" "$work/req.pb" > "$work/ids.txt" || fail "otlp_dump failed"
protoc --decode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest \
  -I "$src/wire" otlp_trace_service.proto \
  < "$work/req.pb" > "$work/decoded.txt" 2> "$work/protoc.err" ||
  { cat "$work/protoc.err"; fail "protoc cannot decode the request"; }
[ -s "$work/decoded.txt" ] || fail "protoc decoded nothing"
# protoc warns on unknown fields instead of failing: none are expected.
[ ! -s "$work/protoc.err" ] || { cat "$work/protoc.err"; fail "protoc warned"; }

id() { sed -n "s/^$1 //p" "$work/ids.txt"; }
has() { grep -qF -- "$1" "$work/decoded.txt" || fail "missing: $1"; }
count() { grep -cF -- "$1" "$work/decoded.txt" || true; }

trace_id=$(id trace_id)
[ "$(count "trace_id: \"$trace_id\"")" = 5 ] ||
  fail "the 5 spans do not all carry trace_id \"$trace_id\""
has "span_id: \"$(id root_span_id)\""
has "parent_span_id: \"$(id remote_parent_id)\""
[ "$(count "parent_span_id: \"$(id root_span_id)\"")" = 4 ] ||
  fail "the 4 children do not name the root as parent"
has "span_id: \"$(id db_span_id)\""
has "trace_id: \"$(id link_trace_id)\""
has "span_id: \"$(id link_span_id)\""

for k in SERVER INTERNAL CLIENT PRODUCER CONSUMER; do
  has "kind: SPAN_KIND_$k"
done
has 'code: STATUS_CODE_ERROR'
has 'message: "disk on fire"'
[ "$(count 'status {')" = 1 ] || fail "only the error span has a status"
# Root: sampled + HAS_IS_REMOTE + IS_REMOTE; children: sampled + HAS_IS_REMOTE.
# The root's link, extracted from W3C headers: sampled + remote, 0x301 too.
awk '/links \{/ { in_link = 1 } in_link && /flags:/ { print; in_link = 0 }' \
  "$work/decoded.txt" > "$work/link_flags.txt"
[ "$(tr -d ' ' < "$work/link_flags.txt")" = "flags:769" ] ||
  fail "the link's flags are not 0x301: $(cat "$work/link_flags.txt")"
[ "$(count 'flags: 769')" = 2 ] || fail "root flags are not 0x301"
[ "$(count 'flags: 257')" = 4 ] || fail "children flags are not 0x101"
# Each span's trace_state is the tracestate it would propagate: the dd
# member with the priority and its own id as p:, then the other vendor's
# member extracted from the incoming request.
grep -oE 'trace_state: "dd=s:1;p:[0-9a-f]{16},rojo=00f067aa0ba902b7"' \
  "$work/decoded.txt" > "$work/ts.txt" || true
[ "$(wc -l < "$work/ts.txt")" = 5 ] ||
  fail "the 5 spans do not all carry the dd member and rojo in trace_state"
[ "$(sort -u "$work/ts.txt" | wc -l)" = 5 ] ||
  fail "the spans' trace_state do not each carry their own p: id"

# Tags with native types, resource and type as attributes.
has 'int_value: 500'
has 'double_value: 0.5'
has 'bool_value: true'
has 'key: "resource.name"'
has 'string_value: "GET /cart"'
has 'key: "span.type"'

# Event and link with their attributes.
has 'time_unix_nano: 1700000000123456789'
has 'name: "retry"'
has 'key: "retry.count"'
has 'string_value: "timeout"'
has 'trace_state: "congo=t61rcWkgMzE"'
has 'key: "link.kind"'

# Resources: the tracer's service and the child's other service.
[ "$(count 'resource_spans {')" = 2 ] || fail "expected 2 ResourceSpans"
has 'string_value: "shop"'
has 'string_value: "shop-db"'
for k in service.version deployment.environment deployment.environment.name \
         telemetry.sdk.name telemetry.sdk.language telemetry.sdk.version \
         process.pid process.executable.name process.executable.path \
         process.command_line host.name; do
  [ "$(count "key: \"$k\"")" = 2 ] || fail "resource attribute $k not in both"
done
has 'string_value: "staging"'
has 'name: "hotspan"'
echo "PASS"
