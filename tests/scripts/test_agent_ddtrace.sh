#!/usr/bin/env bash
# Datadog's own Node tracer (npm dd-trace, version pinned in
# tests/npm/package.json), unchanged, sends to the real hotspan-agent:
# tests/npm/ddtrace_client.js makes a root span and two children by hand
# (tracer.trace and tracer.startSpan), one with a span event and a link to
# another trace's span, flushes, and prints the ids as the
# tracer reports them; the trace read back through /api/v1/traces/{id} must
# have the same 128-bit trace id (low 64 bits in the v0.4 payload, high 64
# in _dd.p.tid), span ids, parent ids, service, names, resources, types,
# error flags, tags, and the event and link as events and links (not meta
# strings). Then dd-trace's profiler (DD_PROFILING_ENABLED,
# pprof-based, native module @datadog/pprof) uploads to /profiling/v1/input
# while a span burns CPU: the uploads must be accepted (the agent logs none
# refused) and the samples stored and tied to that span (code hotspots).
# Usage: test_agent_ddtrace.sh <build dir> <source dir>
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
echo "dd-trace $(node -p "require('$npm_dir/node_modules/dd-trace/package.json').version")," \
  "node $(node --version)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PYTHONPATH=$src/tests/scripts "$python" - "$agent" "$work/agent.db" \
  "$npm_dir" "$src/tests/npm/ddtrace_client.js" <<'PY'
import json, signal, subprocess, sys, time
from agent_client import Client, start_agent, wait_exit
from node_client import check, get_trace, run_node

binary, db, npm_dir, script = sys.argv[1:5]
proc, port = start_agent(binary, db)
base_env = {
    "DD_TRACE_AGENT_URL": "http://127.0.0.1:%d" % port,
    "DD_TRACE_STARTUP_LOGS": "false",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_RUNTIME_METRICS_ENABLED": "false",
    "DD_TRACE_STATS_COMPUTATION_ENABLED": "false",
    "DD_PROFILING_ENABLED": "false",
}
try:
    # --- traces -----------------------------------------------------------
    ids, _ = run_node(script, npm_dir, base_env)
    check(ids["flush"] == "flushed", "dd-trace flushed to the agent",
          ids["flush"])
    sp = ids["spans"]
    tid = sp["root"]["trace_id"]
    check(len(tid) == 32 and all(s["trace_id"] == tid for s in sp.values()),
          "one 128-bit trace id for all spans", tid)
    check(ids["tid_tag"] is not None and tid[:16] == ids["tid_tag"]
          and tid[:16] != "0" * 16,
          "dd-trace made a 128-bit id (high half = _dd.p.tid)", ids["tid_tag"])
    check(int(tid[16:], 16) == int(sp["root"]["trace_id_low_dec"]),
          "low 64 bits as dd-trace sends them")
    doc = get_trace(port, tid, 3)
    tr, spans = doc["trace"], doc["spans"]
    check(tr["trace_id"] == tid, "stored trace id", tr["trace_id"])
    check(tr["span_count"] == 3 and len(spans) == 3, "3 spans stored",
          tr["span_count"])
    check(tr["root_known"] and tr["root_span_id"] == sp["root"]["span_id"],
          "root span known", tr["root_span_id"])
    check(tr["service"] == "npm-ddtrace-client"
          and tr["endpoint"] == "GET /checkout",
          "trace service and endpoint", tr["service"], tr["endpoint"])
    check(tr["error"] is True, "trace has an error (one child failed)")
    by_id = {s["span_id"]: s for s in spans}
    want = {
        "root": ("web.request", "GET /checkout", "web", False),
        "db": ("db.query", "SELECT * FROM carts WHERE id = ?", "sql", False),
        "pay": ("payment.charge", "charge card", "", True),
    }
    for key, (name, resource, typ, err) in want.items():
        c = sp[key]
        s = by_id.get(c["span_id"])
        check(s is not None, "span %s (%s) stored" % (c["span_id"], key))
        check(s["trace_id"] == tid and s["parent_id"] == c["parent_id"],
              "%s: trace id and parent id %s" % (key, c["parent_id"]),
              s["trace_id"], s["parent_id"])
        check(s["service"] == "npm-ddtrace-client" and s["name"] == name
              and s["resource"] == resource and s["type"] == typ,
              "%s: service, name, resource, type" % key,
              s["service"], s["name"], s["resource"], s["type"])
        check(s["error"] is err, "%s: error flag %s" % (key, err))
    check(sp["db"]["parent_id"] == sp["root"]["span_id"]
          and sp["pay"]["parent_id"] == sp["root"]["span_id"]
          and sp["root"]["parent_id"] == "0" * 16,
          "the client's tree: two children of the root")
    check([s["depth"] for s in spans] == [0, 1, 1]
          and spans[0]["span_id"] == sp["root"]["span_id"],
          "tree order: root first, children at depth 1")
    a_root = by_id[sp["root"]["span_id"]]["attrs"]
    a_db = by_id[sp["db"]["span_id"]]["attrs"]
    a_pay = by_id[sp["pay"]["span_id"]]["attrs"]
    check(a_root.get("customer.tier") == "gold"
          and a_root.get("http.method") == "GET"
          and a_root.get("env") == "test" and a_root.get("version") == "1.2.3"
          and a_root.get("_dd.p.tid") == ids["tid_tag"],
          "root tags (meta) stored", json.dumps(a_root)[:300])
    check(a_db.get("db.rows") == 3, "numeric tag (metrics) stored",
          a_db.get("db.rows"))
    s_db = by_id[sp["db"]["span_id"]]
    ev = s_db["events"]
    check(len(ev) == 1 and ev[0]["name"] == "cache.miss"
          and ev[0]["attrs"] == ids["db_events"][0]["attributes"]
          and ev[0]["time_ns"] >= s_db["start_ns"],
          "span event stored as an event", json.dumps(ev),
          json.dumps(ids["db_events"]))
    ln = s_db["links"]
    linked = ids["linked"]
    check(len(ln) == 1 and ln[0]["span_id"] == linked["span_id"]
          and ln[0]["trace_id"] == linked["trace_id"].rjust(32, "0")
          and ln[0]["attrs"] == {"link.kind": "follows"},
          "span link stored as a link", json.dumps(ln), json.dumps(linked))
    check("events" not in a_db and "_dd.span_links" not in a_db,
          "no copy left in the meta attributes", json.dumps(a_db)[:300])
    check(a_pay.get("amount.cents") == 1299
          and a_pay.get("error.message") == "card declined"
          and a_pay.get("error.type") == "Error",
          "error tags stored", json.dumps(a_pay)[:300])
    listed = Client(port).get_json(
        "/api/v1/traces?service=npm-ddtrace-client&from=0&to=%d" % 2 ** 62)
    check(sorted(t["trace_id"] for t in listed["traces"])
          == sorted([tid, linked["trace_id"].rjust(32, "0")]),
          "the trace and the linked span's trace listed by service",
          json.dumps(listed)[:300])

    # --- profiles ---------------------------------------------------------
    probe = subprocess.run(
        ["node", "-e", "require('@datadog/pprof').time"], cwd=npm_dir,
        env={"NODE_PATH": npm_dir + "/node_modules", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        print("PROFILER NOT RUN: @datadog/pprof (dd-trace's native profiler) "
              "does not load here: %s" % probe.stderr.strip()[-500:])
    else:
        env = dict(base_env, DD_PROFILING_ENABLED="true",
                   DD_PROFILING_UPLOAD_PERIOD="1", PROFILE_MS="2500",
                   PROFILE_WAIT_MS="2500")
        pids, perr = run_node(script, npm_dir, env)
        burn = pids["spans"]["burn"]
        get_trace(port, burn["trace_id"], 4)
        c = Client(port)
        deadline = time.monotonic() + 20
        while True:
            hs = c.get_json("/api/v1/spans/%s/hotspots?limit=20"
                            % burn["span_id"])
            if hs["cpu"]["samples"] > 0 and hs["wall"]["samples"] > 0:
                break
            if time.monotonic() > deadline:
                raise SystemExit("FAIL: no profile samples for the cpu.burn "
                                 "span within 20 s: %s\nclient stderr: %s"
                                 % (json.dumps(hs)[:1000], perr[-2000:]))
            time.sleep(0.5)
        check(True, "profile samples stored for span %s: %d cpu, %d wall"
              % (burn["span_id"], hs["cpu"]["samples"],
                 hs["wall"]["samples"]))
        names = [f["name"] for f in hs["cpu"]["functions"]]
        check(names and names[0] == "burn",
              "hottest function of the span is burn()", names[:5])
        # The span lasted 2.5 s: wall samples cover at least 1 s of it. Its
        # CPU share depends on the machine's load, so only the wall total
        # is bounded and the verdict is printed, not asserted.
        check(hs["wall"]["total_ns"] >= 1e9 and hs["cpu"]["total_ns"] > 0,
              "span profile totals: cpu %d ns, wall %d ns, verdict %s"
              % (hs["cpu"]["total_ns"], hs["wall"]["total_ns"],
                 hs["verdict"]))
finally:
    proc.send_signal(signal.SIGTERM)
    rc = wait_exit(proc)
    log = proc.stderr.read()
refused = [l for l in log.splitlines()
           if "rejected request" in l and "/dogstatsd/" not in l]
# dd-trace also posts its own client metrics to /dogstatsd/v2/proxy, which
# the agent does not ingest (404); everything else must have been taken.
check(not refused, "the agent refused no trace or profile request",
      "\n".join(refused[:5]))
check(rc == 0, "agent exited 0 after SIGTERM", rc)
PY
