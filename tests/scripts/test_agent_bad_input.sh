#!/usr/bin/env bash
# Bad input end-to-end against the real hotspan-agent: truncated and
# garbage msgpack, OTLP protobuf and JSON, multipart and pprof bodies,
# wrong content types, an over-limit body (413), a slow client that never
# finishes its request (closed by the agent), bad API parameters (400). The
# agent must answer each with an error, stay up, and keep the data stored
# before.
# Usage: test_agent_bad_input.sh <build dir> <source dir>
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
import os, random, signal, socket, sys, time
from agent_client import (Client, api_traces, dd_batch, pprof_cpu,
                          start_agent, wait_exit)

binary, db = sys.argv[1], sys.argv[2]
proc, port = start_agent(binary, db)
c = Client(port)
failures = []


def check(what, status, want):
    ok = status in want if isinstance(want, tuple) else status == want
    if not ok:
        failures.append("%s: got %s, want %s" % (what, status, want))


good, expect = dd_batch(1, 4, 3)
check("good batch", c.post_dd(good), 200)
# Recent times: the default retention (7 days) would delete older ones.
now = time.time_ns()
otlp_json = ('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":'
             '"000000000000000000000000000000ff","spanId":"00000000000000ff",'
             '"name":"x","startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}'
             % (now, now + 1000)).encode()
check("good otlp json", c.request("POST", "/v1/traces", otlp_json,
      {"Content-Type": "application/json"})[0], 200)
expect[255] = 1

rnd = random.Random(7)
mp = {"Content-Type": "application/msgpack"}
pb = {"Content-Type": "application/x-protobuf"}
js = {"Content-Type": "application/json"}
for cut in (1, 7, len(good) // 2, len(good) - 1):
    check("truncated msgpack %d" % cut,
          c.request("POST", "/v0.4/traces", good[:cut], mp)[0], 400)
for i in range(20):
    junk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300)))
    check("garbage msgpack", c.request("POST", "/v0.4/traces", junk, mp)[0],
          (400, 413))
    check("garbage protobuf", c.request("POST", "/v1/traces", junk, pb)[0],
          (200, 400, 413))
    check("garbage json", c.request("POST", "/v1/traces", junk, js)[0], 400)
    check("garbage pprof", c.request("POST", "/ingest?name=a.cpu&format=pprof",
                                     junk)[0], (400, 413))
for cut in (1, len(otlp_json) // 2, len(otlp_json) - 1):
    check("truncated otlp json", c.request("POST", "/v1/traces",
                                           otlp_json[:cut], js)[0], 400)
prof = pprof_cpu(3)
check("truncated pprof", c.request("POST", "/ingest?name=a.cpu&format=pprof",
                                   prof[:len(prof) // 2])[0], 400)
mpart = {"Content-Type": "multipart/form-data; boundary=XX"}
check("truncated multipart",
      c.request("POST", "/profiling/v1/input",
                b"--XX\r\nContent-Disposition: form-data; name=\"event\"\r\n"
                b"\r\n{\"attachments\":[", mpart)[0], 400)
check("multipart without boundary",
      c.request("POST", "/profiling/v1/input", b"x",
                {"Content-Type": "multipart/form-data"})[0], (400, 415))
check("wrong content type (traces)",
      c.request("POST", "/v0.4/traces", good, js)[0], 415)
check("wrong content type (otlp)",
      c.request("POST", "/v1/traces", otlp_json,
                {"Content-Type": "text/plain"})[0], 415)
check("unknown encoding", c.request("POST", "/v0.4/traces", good,
      {"Content-Type": "application/msgpack",
       "Content-Encoding": "br"})[0], 415)
check("bad gzip", c.request("POST", "/v0.4/traces", b"\x1f\x8bxxxx",
      {"Content-Type": "application/msgpack",
       "Content-Encoding": "gzip"})[0], 400)
check("api bad param", c.request("GET", "/api/v1/traces?limit=x")[0], 400)
check("api unknown trace", c.request("GET", "/api/v1/traces/12345")[0], 404)
check("api bad id", c.request("GET", "/api/v1/traces/xyz")[0], 400)
check("unknown path", c.request("GET", "/nope")[0], 404)
check("wrong method", c.request("GET", "/v1/traces")[0], 405)
c.close()

# Over the body limit (32 MiB): refused from Content-Length with 413.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"POST /v0.4/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Content-Type: application/msgpack\r\n"
          b"Content-Length: 100000000\r\n\r\n")
head = s.recv(200)
check("over-limit body", int(head.split()[1]) if head else None, 413)
s.close()

# A slow client that never finishes its request: the agent closes it
# (after its request timeout) and answers others meanwhile.
slow = socket.create_connection(("127.0.0.1", port), timeout=30)
slow.sendall(b"POST /v0.4/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"Content-Type: application/msgpack\r\nContent-Length: 1000\r\n"
             b"\r\nabc")
c2 = Client(port)
check("answer while a client stalls", c2.request("GET", "/info")[0], 200)
c2.close()
t0 = time.monotonic()
data = b""
try:
    while True:
        chunk = slow.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    failures.append("slow client not closed within 30 s")
slow.close()
print("slow client closed after %.1f s: %r" % (time.monotonic() - t0,
                                                data[:40]))

# Still up, earlier data intact.
stored = api_traces(port)
for tid, n in expect.items():
    if stored.get(tid) != n:
        failures.append("trace %d: want %d spans, have %s"
                        % (tid, n, stored.get(tid)))
if proc.poll() is not None:
    failures.append("agent exited with %s" % proc.returncode)
proc.send_signal(signal.SIGTERM)
rc = wait_exit(proc)
if rc != 0:
    failures.append("agent exit %d after SIGTERM" % rc)
if failures:
    print("\n".join(failures))
    raise SystemExit(1)
print("bad input: all answered as expected; %d traces intact" % len(expect))
PY
echo "1 passed, 0 failed"
