#!/usr/bin/env bash
# The OpenTelemetry JS SDK (npm @opentelemetry/sdk-trace-node with a
# BatchSpanProcessor; versions pinned in tests/npm/package.json), unchanged,
# exports to the real hotspan-agent over OTLP/HTTP, once with the protobuf
# exporter (exporter-trace-otlp-proto) and once with the JSON one
# (exporter-trace-otlp-http). tests/npm/otel_client.js makes a server span
# and a client child span with attributes, the child with status ERROR,
# an exception event, a plain event and a link,
# shuts the provider down (flush) and prints the ids and times as the SDK
# reports them; the trace read back through /api/v1/traces/{id} must have
# the same 128-bit trace id, span ids, parent, times, service.name, kinds,
# error flags, attributes, events (times, names, attributes) and links (ids,
# W3C flags, attributes), and every export must have succeeded.
# Usage: test_agent_otel_js.sh <build dir> <source dir>
# Exits 77 (skipped) when python3/msgpack, node or npm is missing or the
# npm registry cannot be reached; the output says which.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
python=/usr/bin/python3
agent=$build/agent/hotspan-agent
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
"$python" -c 'import msgpack' 2>/dev/null ||
  { echo "SKIP: python3-msgpack not installed"; exit 77; }
[ -x "$agent" ] || { echo "SKIP: $agent not built"; exit 77; }
rc=0
npm_dir=$("$src/scripts/npm-deps.sh" "$build") || rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
for p in sdk-trace-node exporter-trace-otlp-proto exporter-trace-otlp-http; do
  echo "@opentelemetry/$p" \
    "$(node -p "require('$npm_dir/node_modules/@opentelemetry/$p/package.json').version")"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PYTHONPATH=$src/tests/scripts "$python" - "$agent" "$work/agent.db" \
  "$npm_dir" "$src/tests/npm/otel_client.js" <<'PY'
import json, signal, sys
from agent_client import start_agent, wait_exit
from node_client import check, get_trace, run_node

binary, db, npm_dir, script = sys.argv[1:5]
proc, port = start_agent(binary, db)
env = {"OTLP_BASE": "http://127.0.0.1:%d" % port}
try:
    for enc in ("proto", "json"):
        print("--- OTLP/HTTP %s" % enc)
        ids, _ = run_node(script, npm_dir, env, [enc])
        check(ids["encoding"] == enc, "client used the %s exporter" % enc)
        check(ids["exports"] and all(e["code"] == 0 for e in ids["exports"])
              and sum(e["spans"] for e in ids["exports"]) == 2,
              "every export succeeded", ids["exports"])
        sp = ids["spans"]
        tid = sp["parent"]["trace_id"]
        check(len(tid) == 32 and int(tid[:16], 16) != 0
              and sp["child"]["trace_id"] == tid,
              "one 128-bit trace id (high half not zero)", tid)
        check(sp["child"]["parent_id"] == sp["parent"]["span_id"],
              "the SDK made the child a child of the server span")
        doc = get_trace(port, tid, 2)
        tr, spans = doc["trace"], doc["spans"]
        service = "npm-otel-client-" + enc
        check(tr["trace_id"] == tid and tr["span_count"] == 2
              and len(spans) == 2, "trace stored with 2 spans",
              tr["trace_id"], tr["span_count"])
        check(tr["root_known"] and tr["root_span_id"] == sp["parent"]["span_id"]
              and tr["service"] == service
              and tr["endpoint"] == "GET /orders/:id" and tr["error"] is True,
              "trace row: root, service.name, endpoint, error",
              json.dumps(tr))
        by_id = {s["span_id"]: s for s in spans}
        want = {
            # name, kind (OTLP enum: 2 server, 3 client), type, error
            "parent": ("GET /orders/:id", 2, "", False),
            "child": ("SELECT orders", 3, "sql", True),
        }
        for key, (name, kind, typ, err) in want.items():
            c = sp[key]
            s = by_id.get(c["span_id"])
            check(s is not None, "%s span %s stored" % (key, c["span_id"]))
            check(s["trace_id"] == tid and s["parent_id"] == c["parent_id"],
                  "%s: trace id, parent id %s" % (key, c["parent_id"]),
                  s["trace_id"], s["parent_id"])
            check(s["service"] == service and s["name"] == name
                  and s["resource"] == name and s["kind"] == kind
                  and s["type"] == typ,
                  "%s: service.name, name, resource, kind, type" % key,
                  json.dumps(s)[:300])
            check(s["start_ns"] == int(c["start_ns"])
                  and s["duration_ns"] == int(c["duration_ns"]),
                  "%s: start and duration to the nanosecond" % key,
                  s["start_ns"], c["start_ns"], s["duration_ns"],
                  c["duration_ns"])
            check(s["error"] is err, "%s: error flag %s" % (key, err))
        a_p = by_id[sp["parent"]["span_id"]]["attrs"]
        a_c = by_id[sp["child"]["span_id"]]["attrs"]
        # The resource's service.version (2.0.0) is kept on every span:
        # the store reads a trace's version from its root span.
        check(a_p == {"http.request.method": "GET",
                      "http.route": "/orders/:id", "order.id": 4711,
                      "service.version": "2.0.0"},
              "server span attributes", json.dumps(a_p))
        check(a_c == {"db.system": "postgresql", "db.rows": 7,
                      "cache.hit": "false", "load.ratio": 0.25,
                      "db.tables": '["orders","items"]', "span.type": "sql",
                      "service.version": "2.0.0"},
              "client span attributes (int, bool, double, array)",
              json.dumps(a_c))
        # Events and links as the SDK recorded them.
        s_c = by_id[sp["child"]["span_id"]]
        want_ev = sp["child"]["events"]
        got_ev = s_c["events"]
        check(len(want_ev) == 2 and len(got_ev) == 2,
              "the child's 2 events stored", json.dumps(got_ev)[:300])
        for w, g in zip(want_ev, got_ev):
            check(g["name"] == w["name"] and g["time_ns"] == int(w["time_ns"])
                  and g["attrs"] == w["attributes"],
                  "event %s: name, time to the nanosecond, attributes"
                  % w["name"], json.dumps(g), json.dumps(w))
        check(got_ev[1]["name"] == "exception"
              and got_ev[1]["attrs"].get("exception.type") == "QueryTimeout"
              and got_ev[1]["attrs"].get("exception.message")
              == "statement timeout",
              "recordException stored as an exception event",
              json.dumps(got_ev[1])[:300])
        want_ln = sp["child"]["links"]
        got_ln = s_c["links"]
        check(len(want_ln) == 1 and len(got_ln) == 1,
              "the child's link stored", json.dumps(got_ln))
        check(got_ln[0]["trace_id"] == want_ln[0]["trace_id"]
              and got_ln[0]["span_id"] == want_ln[0]["span_id"]
              and got_ln[0]["flags"] & 0xff == want_ln[0]["trace_flags"]
              and got_ln[0]["attrs"] == want_ln[0]["attributes"],
              "link: trace id, span id, W3C flags, attributes",
              json.dumps(got_ln[0]), json.dumps(want_ln[0]))
        check(s_c["dropped_events"] == 0 and s_c["dropped_links"] == 0,
              "nothing dropped by the SDK")
        # The SDK's resource, on every span.
        for s in spans:
            ra = s["resource_attrs"]
            check(ra == {"service.name": service, "service.version": "2.0.0",
                         "deployment.environment": "test"},
                  "resource attributes (service, version, environment)",
                  json.dumps(ra))
finally:
    proc.send_signal(signal.SIGTERM)
    rc = wait_exit(proc)
    log = proc.stderr.read()
refused = [l for l in log.splitlines() if "rejected request" in l]
check(not refused, "the agent refused no request", "\n".join(refused[:5]))
check(rc == 0, "agent exited 0 after SIGTERM", rc)
PY
