#!/usr/bin/env bash
# The file sink's traces.jsonl, read by a JSON parser nobody here wrote
# (Python's json module): every line is one valid JSON object with the
# documented fields and types, hostile strings survive intact (invalid
# UTF-8 as \u00XX escapes of its bytes), and the example's trace continues
# the incoming W3C context.
# Usage: test_file_sink.sh <build dir> <source dir>
set -euo pipefail
build=$1
python=/usr/bin/python3
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$build/tests/tools/file_sink_writer" "$work/hostile"
"$build/examples/hello_trace" "$work/hello" >/dev/null

"$python" - "$work" <<'PY'
import json, sys, re

def load(path):
    spans = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            assert raw.endswith(b"\n"), f"{path}:{n}: line not terminated"
            spans.append(json.loads(raw.decode("ascii", "strict")
                                    if raw.isascii() else raw.decode("utf-8")))
    return spans

def check_common(s):
    assert re.fullmatch(r"[0-9a-f]{32}", s["trace_id"]), s["trace_id"]
    for k in ("span_id", "parent_id"):
        assert re.fullmatch(r"[0-9a-f]{16}", s[k]), (k, s[k])
    for k in ("name", "resource", "service", "kind"):
        assert isinstance(s[k], str), k
    assert s["type"] is None or isinstance(s["type"], str)
    assert isinstance(s["start"], int) and s["start"] > 1_600_000_000 * 10**9
    assert isinstance(s["duration"], int) and s["duration"] >= 0
    assert s["error"] in (0, 1)
    assert isinstance(s["tags"], dict)

work = sys.argv[1]
hostile = load(work + "/hostile/traces.jsonl")
assert len(hostile) == 2, len(hostile)
for s in hostile:
    check_common(s)
root = next(s for s in hostile if s.get("local_root"))
child = next(s for s in hostile if not s.get("local_root"))
assert root["name"] == 'root\n"name"'
assert root["service"] == 'svc "quoted"'
assert root["resource"] == "GET /caf\u00e9/\U0001f525", root["resource"]
assert root["endpoint"] == root["resource"]
assert root["kind"] == "server"
t = root["tags"]
assert t["bad.utf8"] == "a\u00ff\u00feb\u00c3", repr(t["bad.utf8"])
assert t["ctrl"] == "tab\there\x01\x1f end\\", repr(t["ctrl"])
assert t["int.min"] == -9223372036854775808
assert t["pi"] == 3.141592653589793
assert t["nan"] is None
assert t["flag"] is True
assert t["env"] == "test" and t["team"] == "core"
assert root["sampling_priority"] == 1
assert root["trace_tags"]["_dd.p.dm"] == "-0"
assert child["parent_id"] == root["span_id"]
assert child["trace_id"] == root["trace_id"]
assert child["error"] == 1
assert child["tags"]["error.type"] == 'Err"Type'
assert child["tags"]["error.message"] == "line1\nline2"
assert child["tags"]["error.stack"] == "frame \\ 1"
assert "local_root" not in child and "trace_tags" not in child

hello = load(work + "/hello/traces.jsonl")
assert len(hello) == 3, len(hello)
for s in hello:
    check_common(s)
    assert s["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
req = next(s for s in hello if s["name"] == "http.request")
assert req["parent_id"] == "b7ad6b7169203331"  # the incoming parent
assert req["kind"] == "server" and req["type"] == "web"
assert req["tags"]["http.status_code"] == 200
ids = {s["span_id"] for s in hello}
for s in hello:
    if s is not req:
        assert s["parent_id"] == req["span_id"]
call = next(s for s in hello if s["name"] == "http.client")
assert call["error"] == 1 and call["kind"] == "client"
print("file sink: %d + %d spans valid" % (len(hostile), len(hello)))
PY
