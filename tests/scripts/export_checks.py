"""End-to-end checks of the trace exporters against a recording backend
(tests/tools/fake_backend.py), with independent decoders: python3-msgpack
for Datadog payloads, protoc with the project's .proto files for OTLP.

  ids   one trace sent to both exporters at once: its 128-bit trace id and
        its span id arrive identical in Datadog (_dd.p.tid + low 64 bits)
        and OTLP (16 bytes).
  fork  1000 forked children export while the parent exports from another
        thread: no child hangs, every child's trace arrives exactly once.
  rates the agent's rate_by_service answer feeds the sampler: after an
        answer of rate 0 for the service, later traces are dropped; with
        rate 1 they are kept.
  preload
        a program that knows nothing of hotspan, run with LD_PRELOAD and
        HOTSPAN_PROFILING_ENABLED=true, uploads its profiles to the agent
        address at exit (Datadog multipart, parsed by Python's email
        package).

usage: export_checks.py BUILD_DIR SOURCE_DIR ids|fork|rates|preload [FORKS]
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
PROTO_DIR = os.path.join(SRC, "wire")


def start_backend(record, body=None):
    args = [sys.executable, os.path.join(SRC, "tests", "tools",
                                         "fake_backend.py"),
            "--port", "0", "--record", record]
    if body is not None:
        args += ["--body", body]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
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
        wrong_pid = [s["meta"]["child.id"] for s in dd_spans(record)
                     if "child.id" in s["meta"] and
                     s["metrics"].get("process_id") !=
                     s["metrics"].get("child.pid")]
        if wrong_pid:
            sys.exit("children whose process_id is not their own pid: %s" %
                     wrong_pid[:20])
        parent = sum(1 for s in dd_spans(record)
                     if s["meta"].get("who") == "parent")
        if parent == 0:
            sys.exit("the parent's traces did not arrive")
        print("ok: %d children each delivered their own trace once; "
              "%d parent spans delivered" % (forks, parent))
    finally:
        backend.kill()
        shutil.rmtree(record, ignore_errors=True)


def check_rates():
    for rate, want_dropped in ((0, True), (1, False)):
        body = json.dumps({"rate_by_service": {
            "service:export-driver,env:test": rate, "service:,env:": 1}})
        record = tempfile.mkdtemp()
        backend, port = start_backend(record, body)
        try:
            drv = subprocess.run(
                [os.path.join(TOOLS, "export_driver"), "--exporters",
                 "datadog", "--agent", "http://127.0.0.1:%d" % port],
                input="tagged first\nflush 10000\nstats\n"
                      "paced 1000 20000\nflush 10000\nstats\nquit\n",
                text=True, capture_output=True, timeout=60,
                env=dict(os.environ, HOTSPAN_LOG_LEVEL="error"))
            lines = [json.loads(x) for x in drv.stdout.splitlines()]
            before, after = [x for x in lines if "spans_dropped" in x]
            dropped = after["spans_dropped"] - before["spans_dropped"]
            print("agent rate %s: %d of 2000 spans dropped by the sampler" %
                  (rate, dropped))
            if want_dropped and dropped != 2000:
                sys.exit("rate 0 from the agent did not drop the traces")
            if not want_dropped and dropped != 0:
                sys.exit("rate 1 from the agent dropped traces")
        finally:
            backend.kill()
            shutil.rmtree(record, ignore_errors=True)
    print("ok: the agent's rates decide later traces")


def check_preload():
    import email
    import email.policy
    lib = os.path.join(BUILD, "libhotspan.so")
    prog = os.path.join(BUILD, "tests", "tools", "prof_burn")
    record = tempfile.mkdtemp()
    backend, port = start_backend(record)
    try:
        env = dict(os.environ, LD_PRELOAD=lib,
                   HOTSPAN_PROFILING_ENABLED="true",
                   DD_TRACE_AGENT_URL="http://127.0.0.1:%d" % port,
                   HOTSPAN_PROFILING_EXPORTERS="datadog,pyroscope",
                   HOTSPAN_PYROSCOPE_URL="http://127.0.0.1:%d" % port,
                   DD_SERVICE="preloaded", DD_ENV="ci",
                   HOTSPAN_LOG_LEVEL="error")
        env.pop("HOTSPAN_OUTPUT_DIR", None)
        subprocess.run([prog, "1500"], env=env, check=True, timeout=60)
        uploads = requests(record, "/profiling/v1/input")
        if not uploads:
            sys.exit("no profile upload arrived")
        m, body = uploads[-1]
        ctype = dict((k.lower(), v) for k, v in m["headers"])["content-type"]
        msg = email.message_from_bytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body,
            policy=email.policy.HTTP)
        parts = {p.get_param("name", header="content-disposition"): p
                 for p in msg.iter_parts()}
        event = json.loads(parts["event"].get_content())
        if "service:preloaded" not in event["tags_profiler"]:
            sys.exit("event.json tags: %s" % event["tags_profiler"])
        if "cpu.pprof" not in event["attachments"]:
            sys.exit("attachments: %s" % event["attachments"])
        print("ok: %d upload(s) from a preloaded program, attachments %s" %
              (len(uploads), event["attachments"]))
        # The same profiles to Pyroscope: one /ingest per type, named
        # <app>.<type>{labels}, raw gzipped pprof.
        import urllib.parse
        names = set()
        for m, body in requests(record, "/ingest"):
            q = urllib.parse.parse_qs(m["query"])
            if q.get("format") != ["pprof"] or body[:2] != b"\x1f\x8b":
                sys.exit("Pyroscope request: %s" % m["query"])
            if int(q["until"][0]) <= int(q["from"][0]):
                sys.exit("Pyroscope time range: %s" % m["query"])
            names.add(q["name"][0])
        if not any(n.startswith("preloaded.cpu{") and "env=ci" in n
                   for n in names):
            sys.exit("Pyroscope names: %s" % sorted(names))
        print("ok: Pyroscope got %s" % sorted(names))
    finally:
        backend.kill()
        shutil.rmtree(record, ignore_errors=True)


if WHAT == "rates":
    check_rates()
elif WHAT == "preload":
    check_preload()
elif WHAT == "ids":
    check_ids()
elif WHAT == "fork":
    check_fork(int(sys.argv[4]) if len(sys.argv) > 4 else 1000)
else:
    sys.exit("unknown check %s" % WHAT)
