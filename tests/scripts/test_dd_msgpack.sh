#!/usr/bin/env bash
# The Datadog /v0.4/traces payload of real spans, decoded by a msgpack
# implementation nobody here wrote (python3-msgpack, strict UTF-8): every
# span map has exactly the 12 keys with the agent's types, ids and parents
# are right, trace-level tags sit where Datadog expects them, tag values
# round-trip, and the JSON in "events" and "_dd.span_links" parses.
# Then the same payload goes to the real hotspan-agent, which must give the
# root span's events and link back as events and links (not meta strings).
# Usage: test_dd_msgpack.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
python=/usr/bin/python3
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
"$python" -c 'import msgpack' 2>/dev/null ||
  { echo "SKIP: python3-msgpack not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$build/tests/tools/dd_payload_writer" "$work/payload.msgpack" \
  "$work/expect.json"

"$python" - "$work/payload.msgpack" "$work/expect.json" <<'PY'
import json, re, sys
import msgpack

with open(sys.argv[1], "rb") as f:
    raw = f.read()
with open(sys.argv[2]) as f:
    ex = json.load(f)

# raw=False: every str must be valid UTF-8, as the agent requires.
traces = msgpack.unpackb(raw, raw=False, strict_map_key=True)
assert raw[0] == 0xdd, "payload must start with an array32 header"
assert isinstance(traces, list) and len(traces) == 2, traces

KEYS = ["service", "name", "resource", "type", "trace_id", "span_id",
        "parent_id", "start", "duration", "error", "meta", "metrics"]
for trace in traces:
    assert isinstance(trace, list) and trace
    for s in trace:
        assert list(s.keys()) == KEYS, list(s.keys())
        for k in KEYS[:4]:
            assert isinstance(s[k], str), (k, s[k])
        for k in KEYS[4:10]:
            assert type(s[k]) is int and 0 <= s[k] < 2**64, (k, s[k])
        assert s["start"] > 1_500_000_000 * 10**9  # unix ns
        assert s["duration"] < 60 * 10**9
        assert s["error"] in (0, 1)
        assert all(isinstance(k, str) and isinstance(v, str)
                   for k, v in s["meta"].items()), s["meta"]
        assert all(isinstance(k, str) and type(v) is float
                   for k, v in s["metrics"].items()), s["metrics"]
        # On every span:
        assert s["meta"]["env"] == "test"
        assert s["meta"]["version"] == "1.0"
        assert s["meta"]["team"] == "core"

t1 = next(t for t in traces if any(s["name"] == "http.request" for s in t))
t2 = next(t for t in traces if t is not t1)
by = {s["name"]: s for s in t1}
assert set(by) == set(ex["spans"]) - {"job"}, set(by)
for name, s in by.items():
    e = ex["spans"][name]
    assert s["trace_id"] == ex["trace_id"] == 1234567890123
    assert s["span_id"] == e["span_id"], name
    assert s["parent_id"] == e["parent_id"], name
    assert s["service"] == e["service"], name
    assert s["meta"]["_dd.origin"] == "synthetics", name

root = by["http.request"]
first = t1[0]
m, mt = root["meta"], root["metrics"]
assert root["parent_id"] == 987654321
assert root["resource"] == "GET /caf\u00e9" and root["type"] == "web"
assert m["span.kind"] == "server"
assert m["_dd.p.tid"] == ex["tid"] == "640cfd8d00000000"
assert first["meta"]["_dd.p.tid"] == ex["tid"]
assert first["meta"]["_dd.p.usr.id"] == "u42"
assert m["language"] == "cpp"
assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                    r"[0-9a-f]{12}", m["runtime-id"]), m["runtime-id"]
assert mt["_sampling_priority_v1"] == 2.0
assert mt["_dd.top_level"] == 1.0
assert mt["process_id"] == float(ex["pid"])
assert "_dd.rule_psr" not in mt  # decided upstream
# Tag values round-trip.
assert m["str"] == 'hello "world"'
assert m["unicode"] == "\u65e5\u672c"
assert m["bad.utf8"] == "a\ufffdb"
assert m["yes"] == "true" and m["no"] == "false"
assert mt["int"] == -42.0 and mt["big"] == 2.0**52 and mt["dbl"] == 0.125

events = json.loads(m["events"])
assert [e["name"] for e in events] == ["exception", "retry"]
assert events[0]["time_unix_nano"] == 1700000000123456789
assert type(events[1]["time_unix_nano"]) is int
assert events[0]["attributes"] == {"a.str": "x", "a.int": 7, "a.dbl": 1.5,
                                   "a.bool": True}
assert "attributes" not in events[1]

links = json.loads(m["_dd.span_links"])
assert len(links) == 1
l = links[0]
assert l["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
assert l["span_id"] == "00f067aa0ba902b7"
assert l["tracestate"] == "vendor=value"
assert l["flags"] == 0x80000001
assert l["attributes"] == {"a.str": "x", "a.int": "7", "a.dbl": "1.5",
                           "a.bool": "true"}

child = by["client.call"]
assert child["error"] == 1
assert child["meta"]["error.type"] == "TimeoutError"
assert child["meta"]["error.message"] == "timed out after 2 s"
assert child["meta"]["error.stack"] == "frame 1\nframe 2"
assert child["meta"]["span.kind"] == "client"
assert "_dd.top_level" not in child["metrics"]
assert "language" not in child["meta"]
assert "_sampling_priority_v1" not in child["metrics"]
db = by["db.query"]
assert db["metrics"]["_dd.top_level"] == 1.0  # another service
kinds = {n: by[n]["meta"].get("span.kind") for n in by}
assert kinds == {"http.request": "server", "client.call": "client",
                 "db.query": "client", "queue.send": "producer",
                 "queue.recv": "consumer", "compute": "internal"}, kinds
for n, s in by.items():
    if s is not first and s is not root:
        assert "_dd.p.tid" not in s["meta"] and "_dd.p.usr.id" not in s["meta"]
    assert s["error"] == (1 if n == "client.call" else 0)

# Trace 2: a root of this process with its own 128-bit id.
(job,) = t2
e = ex["spans"]["job"]
assert job["trace_id"] == e["trace_id"] and job["span_id"] == e["span_id"]
assert job["parent_id"] == 0
assert job["meta"]["_dd.p.tid"] == e["tid"] != "0" * 16
assert job["meta"]["_dd.p.dm"] == "-0"
assert "_dd.origin" not in job["meta"]
assert job["metrics"]["_sampling_priority_v1"] == 1.0
print("ok: %d traces, %d spans" % (len(traces), sum(map(len, traces))))
PY

agent=$build/agent/hotspan-agent
if [ ! -x "$agent" ]; then
  echo "agent round trip not run: $agent not built"
  exit 0
fi
PYTHONPATH=$src/tests/scripts "$python" - "$agent" "$work/agent.db" \
  "$work/payload.msgpack" <<'PY'
import json, signal, sys
import msgpack
from agent_client import Client, start_agent, wait_exit

binary, db, payload = sys.argv[1:4]
raw = open(payload, "rb").read()
root = [s for t in msgpack.unpackb(raw, raw=False) for s in t
        if s["name"] == "http.request"][0]
tid = "%016x%016x" % (int(root["meta"]["_dd.p.tid"], 16), root["trace_id"])
proc, port = start_agent(binary, db)
try:
    c = Client(port)
    assert c.post_dd(raw) == 200
    doc = c.get_json("/api/v1/traces/" + tid)
    (s,) = [x for x in doc["spans"] if int(x["span_id"], 16) == root["span_id"]]
    ev, ln = s["events"], s["links"]
    assert [e["name"] for e in ev] == ["exception", "retry"], ev
    assert ev[0]["time_ns"] == 1700000000123456789, ev[0]
    assert ev[0]["attrs"] == {"a.str": "x", "a.int": 7, "a.dbl": 1.5,
                              "a.bool": "true"}, ev[0]
    assert ev[1]["attrs"] == {}, ev[1]
    assert ln == [{"trace_id": "0af7651916cd43dd8448eb211c80319c",
                   "span_id": "00f067aa0ba902b7", "tracestate": "vendor=value",
                   "flags": 1,
                   "attrs": {"a.str": "x", "a.int": "7", "a.dbl": "1.5",
                             "a.bool": "true"}}], ln
    assert "events" not in s["attrs"] and "_dd.span_links" not in s["attrs"]
    print("ok: the agent keeps the root's 2 events and its link")
finally:
    proc.send_signal(signal.SIGTERM)
    rc = wait_exit(proc)
assert rc == 0, rc
PY
