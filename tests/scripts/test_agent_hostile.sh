#!/usr/bin/env bash
# Hostile input against the real hotspan-agent and the hotspan CLI, the
# regression cases of docs/security.md:
#   - a stack of 150 000 frames is stored cut to the frame cap, ending in
#     the "[truncated stack]" frame; hotspots and profile queries answer
#     (agent and `hotspan --db`), also after a restart;
#   - sample values outside 0..2^50 are refused (400), 2^50 is accepted.
# Mutations tried: without the cut at ingest and at read, the profile
# query crashed the agent (stack overflow in the flame graph); without the
# value check, the 2^62 sample was stored (200).
# Usage: test_agent_hostile.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
python=/usr/bin/python3
agent=$build/agent/hotspan-agent
cli=$build/cli/hotspan
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
"$python" -c 'import msgpack' 2>/dev/null ||
  { echo "SKIP: python3-msgpack not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PYTHONPATH=$src/tests/scripts "$python" - "$agent" "$cli" "$work/agent.db" <<'PY'
import json, subprocess, sys, time
import msgpack
from agent_client import Client, start_agent, wait_exit
from hostile_payloads import flame_depth, pprof_stack

agent, cli, db = sys.argv[1:4]
# The flame graph nests two JSON levels per frame: past Python's default.
sys.setrecursionlimit(20000)
MAX_FRAMES, MARK = 1024, "[truncated stack]"
failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (": " + detail if detail else ""))
    if not ok:
        failures.append(what)


def ingest(c, body, name="deep.cpu"):
    return c.request("POST", "/ingest?name=%s&format=pprof&from=%d&until=%d" %
                     (name, time.time() - 10, time.time()), body)


def check_queries(port, when):
    c = Client(port)
    st, body = c.request("GET", "/api/v1/spans/%d/hotspots?type=cpu" % 0x77)
    check("%s: hotspots of the deep span answer 200" % when, st == 200,
          "%d %s" % (st, body[:200]))
    if st == 200:
        depth, _ = flame_depth(json.loads(body)["cpu"]["flame"])
        check("%s: hotspots flame graph cut to %d frames" % (when, MAX_FRAMES),
              depth == MAX_FRAMES, "depth %d" % depth)
    st, body = c.request("GET", "/api/v1/profile?endpoint=GET%%20/deep"
                         "&from=0&to=%d&type=cpu" % 2 ** 62)
    check("%s: endpoint profile answers 200" % when, st == 200,
          "%d %s" % (st, body[:200]))
    if st == 200:
        doc = json.loads(body)
        depth, names = flame_depth(doc["cpu"]["flame"])
        check("%s: flame graph cut to %d frames" % (when, MAX_FRAMES),
              depth == MAX_FRAMES, "depth %d" % depth)
        check("%s: outermost frame is the marker" % when,
              names and names[0] == MARK, names[0] if names else "")
        check("%s: leaf is the sampled function" % when,
              names and names[-1] == "f0", names[-1] if names else "")
    c.close()


proc, port = start_agent(agent, db)
c = Client(port)
now = time.time_ns()
span = {"service": "deep", "name": "http.request", "resource": "GET /deep",
        "type": "web", "trace_id": 0x77, "span_id": 0x77, "parent_id": 0,
        "start": now - 10 ** 9, "duration": 10 ** 9, "error": 0,
        "meta": {}, "metrics": {}}
check("the span is stored", c.post_dd(msgpack.packb([[span]])) == 200)
st, body = ingest(c, pprof_stack(150000, span_id=0x77, endpoint="GET /deep"))
check("150 000-frame stack accepted", st == 200, "%d %s" % (st, body[:200]))
check_queries(port, "running")

# Values: 2^50 is the largest accepted; above, and negative, refused.
st, _ = ingest(c, pprof_stack(3, value=2 ** 50), "ok.cpu")
check("value 2^50 accepted", st == 200, str(st))
for v, what in ((2 ** 62, "2^62"), (2 ** 64 - 1, "-1 (as uint64)")):
    st, body = ingest(c, pprof_stack(3, value=v), "big.cpu")
    check("value %s refused with 400" % what,
          st == 400 and b"out of range" in body, "%d %s" % (st, body[:200]))
st, body = c.request("GET", "/api/v1/services?from=0&to=%d" % 2 ** 62)
check("services answer after the refusals", st == 200 and b"big" not in body,
      "%d %s" % (st, body[:300]))
c.close()
proc.terminate()
wait_exit(proc)

# The same queries after a restart, and through the CLI on the file.
proc, port = start_agent(agent, db)
check_queries(port, "restarted")
proc.terminate()
wait_exit(proc)
for args in (["hotspots", "0x77"],
             ["profile", "--endpoint", "GET /deep", "--since", "1h"]):
    r = subprocess.run([cli] + args + ["--db", db], capture_output=True,
                       text=True, timeout=120)
    check("hotspan --db %s exits 0" % args[0], r.returncode == 0,
          "exit %d: %s" % (r.returncode, r.stderr[-300:]))
    check("hotspan --db %s shows the marker" % args[0],
          args[0] == "hotspots" or MARK in r.stdout, r.stdout[-300:])

if failures:
    print("FAILED: %d check(s)" % len(failures))
    sys.exit(1)
print("PASS")
PY
