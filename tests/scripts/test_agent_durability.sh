#!/usr/bin/env bash
# Durability of acknowledged batches: a client sends Datadog msgpack trace
# batches to the real hotspan-agent and records every batch answered 200;
# the agent is killed with SIGKILL in the middle of the ingest, restarted on
# the same database, and every span of every acknowledged batch must be
# there (read back through /api/v1/traces). Each round must have at least
# its kill point's number of batches acknowledged, and the client fails
# the test on any answer other than 200 and on a connection error before
# the kill.
# Mutations checked: the agent answering 500 to every ingest (the client
# reports the answer), and the store committing every second batch without
# its spans (acknowledged traces missing after the restart).
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
import os, signal, sys, threading
from agent_client import Client, api_traces, dd_batch, start_agent, wait_exit

binary, db = sys.argv[1], sys.argv[2]
rounds = 3
acked = {}
for rnd in range(rounds):
    proc, port = start_agent(binary, db)
    halfway = threading.Event()
    killed = threading.Event()
    errors = []
    sent = [0]
    acked_batches = [0]
    kill_after = 50 + 100 * rnd

    def client():
        c = Client(port, timeout=5)
        batch = 0
        while batch < 600:
            first = (rnd * 1000 + batch) * 10 + 1
            payload, expect = dd_batch(first, 5, 4)
            try:
                status = c.post_dd(payload)
            except OSError as e:
                # Only the kill may end the connection: this batch was
                # never answered.
                if not killed.is_set():
                    errors.append("batch %d: %r before the kill" % (batch, e))
                break
            sent[0] += 1
            if status != 200:
                errors.append("batch %d answered %d" % (batch, status))
                break
            acked.update(expect)
            acked_batches[0] += 1
            batch += 1
            if batch == kill_after:
                halfway.set()
        halfway.set()

    def run_client():
        try:
            client()
        except BaseException as e:  # a thread's exception would go unseen
            errors.append("client: %r" % e)
            halfway.set()

    t = threading.Thread(target=run_client)
    t.start()
    if not halfway.wait(60):
        errors.append("%d batches not acknowledged within 60 s" % kill_after)
    killed.set()
    os.kill(proc.pid, signal.SIGKILL)  # mid-ingest: the client still sends
    t.join()
    proc.wait()
    print("round %d: %d batches sent, %d acknowledged, %d traces acknowledged "
          "so far" % (rnd, sent[0], acked_batches[0], len(acked)))
    if errors:
        raise SystemExit("round %d: %s" % (rnd, "; ".join(errors)))
    if sent[0] >= 600:
        raise SystemExit("the client finished before the kill")
    # The kill came after kill_after acknowledged batches at the earliest.
    if acked_batches[0] < kill_after:
        raise SystemExit("round %d: only %d batches acknowledged, want at "
                         "least %d" % (rnd, acked_batches[0], kill_after))

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
