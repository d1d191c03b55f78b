"""End-to-end checks of the trace exporters against a recording backend
(tests/tools/fake_backend.py), with independent decoders: python3-msgpack
for Datadog payloads, protoc with the project's .proto files for OTLP.

  ids   one trace sent to both exporters at once: its 128-bit trace id and
        its span id arrive identical in Datadog (_dd.p.tid + low 64 bits)
        and OTLP (16 bytes).
  fork  1000 forked children export while the parent exports from another
        thread: no child hangs, every child's trace arrives exactly once.

usage: export_checks.py BUILD_DIR SOURCE_DIR ids|fork [FORKS]
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import msgpack

BUILD, SRC, WHAT = sys.argv[1], sys.argv[2], sys.argv[3]
TOOLS = os.path.join(BUILD, "tests", "tools")
PROTO_DIR = os.path.join(SRC, "exporter", "proto")


def start_backend(record):
    p = subprocess.Popen([sys.executable,
                          os.path.join(SRC, "tests", "tools",
                                       "fake_backend.py"),
                          "--port", "0", "--record", record],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        sys.exit("backend did not start: %r" % line)
    return p, int(line.split()[1])


def requests(record, path):
    out = []
    for meta in sorted(glob.glob(os.path.join(record, "*.json"))):
        with open(meta) as f:
            m = json.load(f)
        if m["path"] != path:
            continue
        with open(os.path.join(record, m["body_file"]), "rb") as f:
            out.append((m, f.read()))
    return out


def dd_spans(record):
    spans = []
    for m, body in requests(record, "/v0.4/traces"):
        for trace in msgpack.unpackb(body, raw=False):
            spans.extend(trace)
    return spans


def otlp_text(body):
    r = subprocess.run(
        ["protoc", "-I", PROTO_DIR,
         "--decode=opentelemetry.proto.collector.trace.v1."
         "ExportTraceServiceRequest", "otlp_trace_service.proto"],
        input=body, capture_output=True, check=True)
    return r.stdout.decode()


def unescape(s):
    """protoc text-format bytes (C escapes, octal) to bytes."""
    return s.encode("latin1").decode("unicode_escape").encode("latin1")


def check_ids():
    record = tempfile.mkdtemp()
    backend, port = start_backend(record)
    try:
        drv = subprocess.run(
            [os.path.join(TOOLS, "export_driver"), "--exporters",
             "datadog,otlp", "--agent", "http://127.0.0.1:%d" % port,
             "--otlp", "http://127.0.0.1:%d/v1/traces" % port],
            input="tagged id-check\nflush 10000\nquit\n", text=True,
            capture_output=True, timeout=60,
            env=dict(os.environ, HOTSPAN_LOG_LEVEL="error"))
        if drv.returncode != 0:
            sys.exit("driver failed: %s" % drv.stderr)
        roots = [s for s in dd_spans(record)
                 if s["meta"].get("driver.id") == "id-check"]
        if len(roots) != 1:
            sys.exit("Datadog: expected 1 tagged root, got %d" % len(roots))
        dd = roots[0]
        dd_trace = (int(dd["meta"]["_dd.p.tid"], 16) << 64) | dd["trace_id"]
        dd_span = dd["span_id"]
        found = None
        for m, body in requests(record, "/v1/traces"):
            text = otlp_text(body)
            for block in text.split("spans {")[1:]:
                if '"id-check"' not in block:
                    continue
                tid = re.search(r'^\s*trace_id: "(.*)"$', block, re.M)
                sid = re.search(r'^\s*span_id: "(.*)"$', block, re.M)
                found = (unescape(tid.group(1)), unescape(sid.group(1)))
        if found is None:
            sys.exit("OTLP: tagged span not found")
        otlp_trace, otlp_span = found
        print("Datadog trace id %032x span %016x" % (dd_trace, dd_span))
        print("OTLP    trace id %s span %s" % (otlp_trace.hex(),
                                               otlp_span.hex()))
        if len(otlp_trace) != 16 or len(otlp_span) != 8:
            sys.exit("OTLP ids have the wrong length")
        if int.from_bytes(otlp_trace, "big") != dd_trace:
            sys.exit("trace ids differ")
        if int.from_bytes(otlp_span, "big") != dd_span:
            sys.exit("span ids differ")
        if dd_trace >> 64 == 0:
            sys.exit("the trace id has no high 64 bits")
        print("ok: the same 128-bit trace id in both protocols")
    finally:
        backend.kill()
        shutil.rmtree(record, ignore_errors=True)


def check_fork(forks):
    record = tempfile.mkdtemp()
    backend, port = start_backend(record)
    try:
        r = subprocess.run(
            [os.path.join(TOOLS, "fork_export"), "--agent",
             "http://127.0.0.1:%d" % port, "--forks", str(forks)],
            capture_output=True, text=True, timeout=900,
            env=dict(os.environ, HOTSPAN_LOG_LEVEL="error"))
        print(r.stdout.strip())
        if r.stderr:
            print(r.stderr.strip()[-2000:])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if res["hung"] or res["failed"] or res["ok"] != forks:
            sys.exit("children failed: %s" % res)
        ids = [s["meta"]["child.id"] for s in dd_spans(record)
               if "child.id" in s["meta"]]
        want = set(str(i) for i in range(forks))
        if set(ids) != want:
            sys.exit("missing child traces: %s" %
                     sorted(want - set(ids), key=int)[:20])
        if len(ids) != forks:
            sys.exit("%d child traces for %d children (duplicates)" %
                     (len(ids), forks))
        parent = sum(1 for s in dd_spans(record)
                     if s["meta"].get("who") == "parent")
        if parent == 0:
            sys.exit("the parent's traces did not arrive")
        print("ok: %d children each delivered their own trace once; "
              "%d parent spans delivered" % (forks, parent))
    finally:
        backend.kill()
        shutil.rmtree(record, ignore_errors=True)


if WHAT == "ids":
    check_ids()
elif WHAT == "fork":
    check_fork(int(sys.argv[4]) if len(sys.argv) > 4 else 1000)
else:
    sys.exit("unknown check %s" % WHAT)
