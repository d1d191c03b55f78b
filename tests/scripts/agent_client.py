"""Helpers for the hotspan-agent end-to-end tests: start the real binary on
a temporary database, build Datadog msgpack trace batches and minimal pprof
profiles, send them over HTTP and read the store back (API or SQLite).
Only loopback addresses are used."""
import http.client
import json
import os
import re
import sqlite3
import struct
import subprocess
import time

import msgpack


def start_agent(binary, db, *extra):
    """Starts hotspan-agent on 127.0.0.1 port 0; returns (process, port)."""
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--db", db, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError("agent did not start: %r %s" %
                           (line, proc.stderr.read()))
    return proc, int(m.group(1))


def dd_batch(first_trace_id, ntraces, nspans, service="svc", now=None):
    """A /v0.4/traces payload of ntraces traces with nspans spans each;
    returns (bytes, {trace_id: nspans})."""
    now = now or time.time_ns()
    traces, expect = [], {}
    for t in range(ntraces):
        tid = first_trace_id + t
        spans = []
        for s in range(nspans):
            spans.append({
                "service": service, "name": "http.request",
                "resource": "GET /item/%d" % (tid % 7),
                "type": "web", "trace_id": tid,
                "span_id": tid * 100 + s + 1,
                "parent_id": 0 if s == 0 else tid * 100 + 1,
                "start": now + s * 1000, "duration": 1000000 * (s + 1),
                "error": 0, "meta": {"k": "v%d" % s},
                "metrics": {"m": float(s)},
            })
        traces.append(spans)
        expect[tid] = nspans
    return msgpack.packb(traces), expect


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _ld(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _vi(field, v):
    return _varint(field << 3) + _varint(v)


def pprof_cpu(nsamples=3, span_id=0):
    """A minimal pprof profile: sample type cpu/nanoseconds, one function
    per sample; span id label when span_id is given."""
    strings = ["", "cpu", "nanoseconds", "w.c", "span id"]
    msg = _ld(1, _vi(1, 1) + _vi(2, 2))  # sample_type cpu/nanoseconds
    for i in range(nsamples):
        strings.append("work_%d" % i)
        name = len(strings) - 1
        msg += _ld(5, _vi(1, i + 1) + _vi(2, name) + _vi(4, 3))  # function
        msg += _ld(4, _vi(1, i + 1) + _ld(4, _vi(1, i + 1) + _vi(2, 10 + i)))
        sample = _ld(1, _varint(i + 1)) + _ld(2, _varint(1000000 * (i + 1)))
        if span_id:
            sample += _ld(3, _vi(1, 4) + _vi(3, span_id))
        msg += _ld(2, sample)
    for s in strings:
        msg += _ld(6, s.encode())
    msg += _vi(9, time.time_ns()) + _vi(10, 10 ** 9)
    return msg


class Client:
    """One keep-alive HTTP connection to the agent."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout = port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """Returns (status, body bytes); reconnects once on a dropped
        keep-alive connection."""
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body,
                                  headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 1 or method != "GET":
                    raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post_dd(self, payload):
        return self.request("POST", "/v0.4/traces", payload,
                            {"Content-Type": "application/msgpack"})[0]

    def get_json(self, path):
        status, data = self.request("GET", path)
        if status != 200:
            raise RuntimeError("GET %s: %d %s" % (path, status, data[:200]))
        return json.loads(data)


def api_traces(port, limit=10000):
    """{trace_id (int): span_count} of every stored trace (any time)."""
    c = Client(port)
    doc = c.get_json("/api/v1/traces?from=0&to=%d&limit=%d" %
                     (2 ** 62, limit))
    c.close()
    return {int(t["trace_id"], 16): t["span_count"] for t in doc["traces"]}


def db_counts(db):
    """(spans, samples) rows in a stopped agent's database."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    spans = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    samples = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    con.close()
    return spans, samples


def wait_exit(proc, timeout=20):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
