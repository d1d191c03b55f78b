#!/usr/bin/env bash
# Durability of acknowledged batches: a client sends Datadog msgpack trace
# batches to the real hotspan-agent and records every batch answered 200;
# the agent is killed with SIGKILL in the middle of the ingest, restarted on
# the same database, and every span of every acknowledged batch must be
# there (read back through /api/v1/traces).
# Usage: test_agent_durability.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
python=/usr/bin/python3
agent=$build/agent/hotspan-agent
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
"$python" -c 'import msgpack' 2>/dev/null ||
  { echo "SKIP: python3-msgpack not installed"; exit 77; }
[ -x "$agent" ] || { echo "SKIP: $agent not built"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PYTHONPATH=$src/tests/scripts "$python" - "$agent" "$work/agent.db" <<'PY'
import os, signal, sys, threading, time
from agent_client import Client, api_traces, dd_batch, start_agent, wait_exit

binary, db = sys.argv[1], sys.argv[2]
rounds = 3
acked = {}
for rnd in range(rounds):
    proc, port = start_agent(binary, db)
    stop = threading.Event()
    halfway = threading.Event()
    sent = [0]
    kill_after = 50 + 100 * rnd

    def client():
        c = Client(port, timeout=5)
        batch = 0
        while not stop.is_set() and batch < 600:
            first = (rnd * 1000 + batch) * 10 + 1
            payload, expect = dd_batch(first, 5, 4)
            try:
                status = c.post_dd(payload)
            except OSError:
                return  # the agent died: this batch was never answered
            sent[0] += 1
            if status == 200:
                acked.update(expect)
            else:
                raise SystemExit("batch answered %d" % status)
            batch += 1
            if batch == kill_after:
                halfway.set()
        halfway.set()

    t = threading.Thread(target=client)
    t.start()
    halfway.wait(30)
    os.kill(proc.pid, signal.SIGKILL)  # mid-ingest: the client still sends
    stop.set()
    t.join()
    proc.wait()
    print("round %d: %d batches sent, %d traces acknowledged so far"
          % (rnd, sent[0], len(acked)))
    if sent[0] >= 600:
        raise SystemExit("the client finished before the kill")

proc, port = start_agent(binary, db)
try:
    stored = api_traces(port)
finally:
    proc.send_signal(signal.SIGTERM)
    rc = wait_exit(proc)
lost = [t for t, n in acked.items() if stored.get(t) != n]
print("acknowledged traces: %d, stored traces: %d, missing or short: %d"
      % (len(acked), len(stored), len(lost)))
if lost:
    raise SystemExit("lost acknowledged spans, e.g. trace %d: want %d, "
                     "have %s" % (lost[0], acked[lost[0]],
                                  stored.get(lost[0])))
if rc != 0:
    raise SystemExit("agent exited %d after SIGTERM" % rc)
PY
echo "1 passed, 0 failed"
