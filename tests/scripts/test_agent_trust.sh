#!/usr/bin/env bash
# Loopback trust against the real hotspan-agent (docs/security.md):
#   - a request naming another host (DNS rebinding) or coming from another
#     web page (Origin, Sec-Fetch-Site) is refused 403 before its body is
#     read, on ingest and API routes alike, and nothing of it is stored;
#   - /ingest refuses text/plain (415); no answer carries a CORS allowance;
#   - --allow-host adds a name;
#   - with a token (--auth-token or HOTSPAN_AGENT_TOKEN) every request
#     needs "Authorization: Bearer <token>" (401 otherwise); hotspan's
#     exporters and the CLI send it from HOTSPAN_AGENT_TOKEN; a token that
#     could break a header line is refused at start (exit 2);
#   - listening beyond loopback without a token prints a warning.
# Mutations tried: without the trust check in the server (every 403 and
# 401 row fails, the rebinding trace is stored); without the token header
# in the trace exporter (the demo's traces are missing).
# Usage: test_agent_trust.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
python=/usr/bin/python3
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
"$python" -c 'import msgpack' 2>/dev/null ||
  { echo "SKIP: python3-msgpack not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PYTHONPATH=$src/tests/scripts "$python" - "$build" "$work" <<'PY'
import os, re, subprocess, sys, time
from agent_client import Client, api_traces, dd_batch, pprof_cpu, \
    start_agent, wait_exit

build, work = sys.argv[1:3]
agent = os.path.join(build, "agent", "hotspan-agent")
cli = os.path.join(build, "cli", "hotspan")
demo = os.path.join(build, "examples", "demo_server")
failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (": " + detail if detail else ""),
          flush=True)
    if not ok:
        failures.append(what)


MSGPACK = {"Content-Type": "application/msgpack"}


def post_traces(c, tid, headers):
    body, _ = dd_batch(tid, 1, 1, service="trust")
    h = dict(MSGPACK)
    h.update(headers)
    return c.request("POST", "/v0.4/traces", body, h)


def multipart(event, profile):
    b = "XyZ"
    parts = [("event", "event.json", event), ("cpu.pprof", "cpu.pprof", profile)]
    out = b""
    for name, fn, data in parts:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                "filename=\"%s\"\r\n\r\n" % (b, name, fn)).encode() + data + b"\r\n"
    return out + ("--%s--\r\n" % b).encode(), "multipart/form-data; boundary=" + b


# ---------------------------------------------------------------- loopback
proc, port = start_agent(agent, os.path.join(work, "a.db"),
                         "--allow-host", "devbox")
try:
    c = Client(port)
    own = "127.0.0.1:%d" % port
    st, _ = post_traces(c, 1001, {})
    check("plain client (Host %s) stores a trace" % own, st == 200, str(st))
    for tid, what, hdrs in [
            (2001, "rebinding Host evil.example", {"Host": "evil.example:%d" % port}),
            (2002, "Host 127.0.0.1.evil.example",
             {"Host": "127.0.0.1.evil.example:%d" % port}),
            (2003, "Host with another port", {"Host": "localhost:1"}),
            (2004, "Origin of another page", {"Origin": "http://evil.example"}),
            (2005, "Origin null", {"Origin": "null"}),
            (2006, "Sec-Fetch-Site cross-site", {"Sec-Fetch-Site": "cross-site"})]:
        st, body = post_traces(c, tid, hdrs)
        check("traces from %s: 403" % what, st == 403, "%d %s" % (st, body[:100]))
    # A browser-simple multipart post from another page, and text/plain.
    mp, ct = multipart(b'{"attachments":["cpu.pprof"]}', pprof_cpu(2))
    st, _ = c.request("POST", "/profiling/v1/input", mp,
                      {"Content-Type": ct, "Origin": "http://evil.example"})
    check("cross-origin multipart profile: 403", st == 403, str(st))
    q = "/ingest?name=trust.cpu&format=pprof&from=%d&until=%d" % (
        time.time() - 10, time.time())
    st, _ = c.request("POST", q, pprof_cpu(2),
                      {"Content-Type": "text/plain", "Origin": "http://evil.example"})
    check("cross-origin text/plain /ingest: 403", st == 403, str(st))
    st, body = c.request("POST", q, pprof_cpu(2), {"Content-Type": "text/plain"})
    check("text/plain /ingest: 415", st == 415, "%d %s" % (st, body[:100]))
    st, _ = c.request("POST", q, pprof_cpu(2),
                      {"Content-Type": "application/octet-stream"})
    check("octet-stream /ingest: 200", st == 200, str(st))
    # Reads: a rebinding page cannot read the API.
    st, _ = c.request("GET", "/api/v1/services",
                      headers={"Host": "evil.example:%d" % port})
    check("API read with a foreign Host: 403", st == 403, str(st))
    st, _ = c.request("GET", "/api/v1/services",
                      headers={"Origin": "http://evil.example"})
    check("API read from another page: 403", st == 403, str(st))
    st, _ = c.request("GET", "/api/v1/services",
                      headers={"Host": "devbox:%d" % port})
    check("--allow-host devbox: 200", st == 200, str(st))
    st, _ = c.request("GET", "/api/v1/services",
                      headers={"Origin": "http://localhost:%d" % port})
    check("same-origin read (Origin http://localhost:port): 200", st == 200,
          str(st))
    # No CORS allowance, preflight or not.
    import http.client
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h.request("OPTIONS", "/v0.4/traces", headers={
        "Origin": "http://evil.example",
        "Access-Control-Request-Method": "POST"})
    r = h.getresponse()
    r.read()
    check("preflight answered without Access-Control-Allow-Origin",
          r.status >= 400 and r.getheader("Access-Control-Allow-Origin") is None,
          str(r.status))
    h.close()
    stored = set(api_traces(port))
    check("only the legitimate trace is stored", stored == {1001},
          str(sorted(stored)))
finally:
    proc.terminate()
    wait_exit(proc)

# ---------------------------------------------------------------- token
env = dict(os.environ, HOTSPAN_AGENT_TOKEN="s3cret-tok")
p = subprocess.Popen([agent, "--listen", "127.0.0.1:0", "--db",
                      os.path.join(work, "t.db")], env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
m = re.search(r":(\d+),", p.stdout.readline())
tport = int(m.group(1))
try:
    c = Client(tport)
    st, _ = post_traces(c, 3001, {})
    check("token agent: no Authorization: 401", st == 401, str(st))
    st, _ = post_traces(c, 3002, {"Authorization": "Bearer wrong"})
    check("token agent: wrong token: 401", st == 401, str(st))
    st, _ = post_traces(c, 3003, {"Authorization": "Bearer s3cret-tok"})
    check("token agent: right token: 200", st == 200, str(st))
    url = "http://127.0.0.1:%d" % tport
    r = subprocess.run([cli, "endpoints", "--agent", url], env=env,
                       capture_output=True, text=True, timeout=60)
    check("CLI with HOTSPAN_AGENT_TOKEN reads the agent", r.returncode == 0,
          r.stderr[-200:])
    noenv = {k: v for k, v in env.items() if k != "HOTSPAN_AGENT_TOKEN"}
    r = subprocess.run([cli, "endpoints", "--agent", url], env=noenv,
                       capture_output=True, text=True, timeout=60)
    check("CLI without the token fails, saying why",
          r.returncode != 0 and "token" in r.stderr, r.stderr[-200:])
    if os.access(demo, os.X_OK):
        for svc, e in [("trust-demo", env), ("trust-demo-notoken", noenv)]:
            e = dict(e, HOTSPAN_AGENT_URL=url, HOTSPAN_LOG_LEVEL="warn")
            r = subprocess.run([demo, "--seconds", "1", "--threads", "1",
                                "--service", svc], env=e, capture_output=True,
                               text=True, timeout=120)
            check("demo_server (%s) exits 0" % svc, r.returncode == 0,
                  r.stderr[-200:])
        st, body = Client(tport).request(
            "GET", "/api/v1/services",
            headers={"Authorization": "Bearer s3cret-tok"})
        text = body.decode()
        check("the exporter sent the token: the demo's traces are stored",
              '"trust-demo"' in text, text[:300])
        check("without the token the demo's traces were refused",
              '"trust-demo-notoken"' not in text, text[:300])
    else:
        check("demo_server built", False, demo)
finally:
    p.terminate()
    wait_exit(p)

# ---------------------------------------------------------------- start-up
for bad in ["two words", "line\r\nX-Injected: 1"]:
    r = subprocess.run([agent, "--listen", "127.0.0.1:0", "--db",
                        os.path.join(work, "b.db")],
                       env=dict(os.environ, HOTSPAN_AGENT_TOKEN=bad),
                       capture_output=True, text=True, timeout=30)
    check("bad HOTSPAN_AGENT_TOKEN %r: exit 2 with a message" % bad,
          r.returncode == 2 and "HOTSPAN_AGENT_TOKEN" in r.stderr,
          "%d %s" % (r.returncode, r.stderr[-200:]))
clean = {k: v for k, v in os.environ.items() if k != "HOTSPAN_AGENT_TOKEN"}
p = subprocess.Popen([agent, "--listen", "0.0.0.0:0", "--db",
                      os.path.join(work, "w.db")], env=clean,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
line = p.stdout.readline()
p.terminate()
err = p.communicate(timeout=30)[1]
check("0.0.0.0 without a token: a warning", "WARNING" in err and
      "beyond loopback" in err, err[-300:])

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
PY
