#!/usr/bin/env bash
# 50 concurrent clients against the real hotspan-agent for a while (30 s by
# default; HOTSPAN_AGENT_SOAK_SECS changes it), mixing Datadog msgpack
# trace batches and Pyroscope pprof uploads, each on its own keep-alive
# connection, while 10 of them also ask /api/v1 queries (answered on the
# agent's worker threads): every request is answered 200, the agent stops cleanly on
# SIGTERM, and the database holds exactly the spans and samples that were
# acknowledged (counted with Python's sqlite3 module).
# Usage: test_agent_concurrency.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
python=/usr/bin/python3
agent=$build/agent/hotspan-agent
secs=${HOTSPAN_AGENT_SOAK_SECS:-30}
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
"$python" -c 'import msgpack' 2>/dev/null ||
  { echo "SKIP: python3-msgpack not installed"; exit 77; }
[ -x "$agent" ] || { echo "SKIP: $agent not built"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PYTHONPATH=$src/tests/scripts "$python" - "$agent" "$work/agent.db" "$secs" <<'PY'
import json, signal, sys, threading, time
from agent_client import (Client, db_counts, dd_batch, pprof_cpu, start_agent,
                          wait_exit)

binary, db, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
nclients = 50
proc, port = start_agent(binary, db)
lock = threading.Lock()
totals = {"spans": 0, "samples": 0, "requests": 0, "queries": 0}
errors = []
deadline = time.monotonic() + secs


def client(idx):
    c = Client(port, timeout=60)
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            if idx % 5 == 4 and n % 2 == 0:
                # Queries run on the agent's worker threads, beside ingest.
                path = ("/api/v1/services" if n % 4 == 0 else
                        "/api/v1/traces?service=svc%d&limit=5" % idx)
                status, body = c.request("GET", path)
                if status != 200:
                    errors.append("client %d: %s: status %d" %
                                  (idx, path, status))
                    return
                json.loads(body)
                with lock:
                    totals["queries"] += 1
                continue
            if n % 3 == 0:
                now = int(time.time())
                status, body = c.request(
                    "POST", "/ingest?name=svc%d.cpu&from=%d&until=%d"
                    "&format=pprof" % (idx, now - 10, now), pprof_cpu(3))
                add = ("samples", 3)
            else:
                payload, expect = dd_batch(idx * 10 ** 7 + n * 10 + 1, 3, 3,
                                           service="svc%d" % idx)
                status = c.post_dd(payload)
                add = ("spans", sum(expect.values()))
            if status != 200:
                errors.append("client %d: status %d" % (idx, status))
                return
            with lock:
                totals[add[0]] += add[1]
                totals["requests"] += 1
    except Exception as e:  # noqa: BLE001 - any failure is a test failure
        errors.append("client %d: %r" % (idx, e))
    finally:
        c.close()


threads = [threading.Thread(target=client, args=(i,)) for i in range(nclients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
proc.send_signal(signal.SIGTERM)
rc = wait_exit(proc)
spans, samples = db_counts(db)
print("%d clients, %.0f s: %d requests, %d spans and %d samples "
      "acknowledged, %d queries answered; stored %d spans, %d samples; "
      "agent exit %d"
      % (nclients, secs, totals["requests"], totals["spans"],
         totals["samples"], totals["queries"], spans, samples, rc))
if errors:
    raise SystemExit("errors: %s" % errors[:5])
if rc != 0:
    raise SystemExit("agent exited %d after SIGTERM" % rc)
if totals["queries"] == 0:
    raise SystemExit("no query was answered")
if spans != totals["spans"] or samples != totals["samples"]:
    raise SystemExit("stored counts differ from acknowledged ones")
PY
echo "1 passed, 0 failed"
