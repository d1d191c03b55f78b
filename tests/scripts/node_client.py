"""Helpers for the tests that run third-party Node tracers (tests/npm/*.js)
against the real hotspan-agent: run a client program with the packages
installed by scripts/npm-deps.sh and read the ids it reports, then read a
stored trace back through the agent's API. Only loopback addresses are
used."""
import json
import os
import subprocess
import time

from agent_client import Client

MARK = "HOTSPAN_IDS "


def run_node(script, npm_dir, env, args=(), timeout=90):
    """Runs `node script args...` with <npm_dir>/node_modules on NODE_PATH and the
    given extra environment; returns (the JSON object the program printed
    after "HOTSPAN_IDS ", the program's stderr). Raises SystemExit with the
    program's output when it fails or prints no ids."""
    full = dict(os.environ)
    full.update(env)
    full["NODE_PATH"] = os.path.join(npm_dir, "node_modules")
    try:
        r = subprocess.run(["node", script, *args], env=full, cwd=npm_dir,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SystemExit("%s did not finish within %d s; stderr: %s"
                         % (script, timeout, (e.stderr or "")[-2000:]))
    lines = [line for line in r.stdout.splitlines() if line.startswith(MARK)]
    if r.returncode != 0 or len(lines) != 1:
        raise SystemExit("%s exited %d with %d id lines\nstdout: %s\n"
                         "stderr: %s" % (script, r.returncode, len(lines),
                                         r.stdout[-2000:], r.stderr[-4000:]))
    return json.loads(lines[0][len(MARK):]), r.stderr


def get_trace(port, trace_id_hex, want_spans, wait_s=15):
    """GET /api/v1/traces/{id} until it holds want_spans spans (the agent
    stores a batch before answering it, but an exporter may send a trace in
    several requests); returns the document, or raises SystemExit with what
    was there."""
    c = Client(port)
    deadline = time.monotonic() + wait_s
    doc = None
    while True:
        status, body = c.request("GET", "/api/v1/traces/" + trace_id_hex)
        if status == 200:
            doc = json.loads(body)
            if len(doc["spans"]) >= want_spans:
                c.close()
                return doc
        elif status != 404:
            raise SystemExit("GET trace %s: %d %s" % (trace_id_hex, status,
                                                      body[:300]))
        if time.monotonic() > deadline:
            c.close()
            raise SystemExit("trace %s not stored with %d spans within %d s:"
                             " %s" % (trace_id_hex, want_spans, wait_s,
                                      json.dumps(doc)[:2000]))
        time.sleep(0.2)


def check(cond, what, *detail):
    """Prints one result line; raises SystemExit when cond is false."""
    if not cond:
        raise SystemExit("FAIL: %s %s" % (what, " ".join(map(str, detail))))
    print("ok: %s" % what)
