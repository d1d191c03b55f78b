"""A program that sets service, env and version only in hotspan_config,
with the profiler started from the environment before main() (so before
its tracer): its traces and its profiles must say the same thing about
who it is.

Run 1, against tests/tools/fake_backend.py: the Datadog trace payload
(decoded by python3-msgpack), the Datadog profile upload (multipart,
event.json), the Pyroscope request (name and labels) and the pprof files
(comments, decoded by protoc with wire/profile.proto) carry service
"checkout", env "prod-eu", version "2.4.1", and the runtime id of the
traces.

Run 2, against the real hotspan-agent: the endpoint profile asked for
with service=checkout has the request's CPU samples.

Args: build dir, source dir."""
import email.parser
import email.policy
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_client  # noqa: E402

BUILD, SRC = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
APP = os.path.join(BUILD, "tests", "tools", "identity_app")
AGENT = os.path.join(BUILD, "agent", "hotspan-agent")
BACKEND = os.path.join(SRC, "tests", "tools", "fake_backend.py")
PROTO = os.path.join(SRC, "wire")
WANT = {"service": "checkout", "env": "prod-eu", "version": "2.4.1"}
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def app_env(url, outdir):
    """The program's environment: nothing about its identity."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOTSPAN_", "DD_", "OTEL_", "PYROSCOPE_"))}
    env.update({
        "HOTSPAN_PROFILING_ENABLED": "1",
        "HOTSPAN_PROFILING_EXPORTERS": "datadog,pyroscope",
        "HOTSPAN_AGENT_URL": url,
        "HOTSPAN_PYROSCOPE_URL": url,
        "HOTSPAN_OUTPUT_DIR": outdir,
        "HOTSPAN_LOG_LEVEL": "warn",
    })
    return env


def run_app(url, outdir):
    p = subprocess.run([APP, url], env=app_env(url, outdir),
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0,
          "identity_app exits 0 (%d: %s)" % (p.returncode, p.stderr[-300:]))


def records(recdir):
    out = []
    for meta in sorted(glob.glob(os.path.join(recdir, "*.json"))):
        with open(meta) as f:
            m = json.load(f)
        with open(os.path.join(recdir, m["body_file"]), "rb") as f:
            m["body"] = f.read()
        m["hdrs"] = {k.lower(): v for k, v in m["headers"]}
        out.append(m)
    return out


def trace_runtime_ids(recs):
    """(runtime ids, root spans) of every /v0.4/traces payload."""
    ids, roots = set(), []
    for r in recs:
        if r["path"] != "/v0.4/traces":
            continue
        for trace in msgpack.unpackb(r["body"], raw=False):
            for span in trace:
                meta = span.get("meta", {})
                if "runtime-id" in meta:
                    ids.add(meta["runtime-id"])
                    roots.append(span)
    return ids, roots


def dd_profile_tags(recs):
    """tags_profiler of every Datadog profile upload, as dicts."""
    out = []
    for r in recs:
        if r["path"] != "/profiling/v1/input":
            continue
        raw = (b"Content-Type: " + r["hdrs"]["content-type"].encode() +
               b"\r\n\r\n" + r["body"])
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            raw)
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == \
                    "event":
                ev = json.loads(part.get_payload(decode=True))
                out.append(dict(t.split(":", 1)
                                for t in ev["tags_profiler"].split(",")))
    return out


def pyroscope_names(recs):
    return [urllib.parse.parse_qs(r["query"])["name"][0]
            for r in recs if r["path"] == "/ingest"]


def file_comments(outdir):
    """The comments of every pprof file, each as a list of strings."""
    out = []
    for path in sorted(glob.glob(os.path.join(outdir, "*.pb.gz"))):
        with open(path, "rb") as f:
            data = gzip.decompress(f.read())
        text = subprocess.run(
            ["protoc", "-I", PROTO, "--decode=perftools.profiles.Profile",
             "profile.proto"], input=data, capture_output=True,
            check=True).stdout.decode("utf-8", "replace")
        strings = [json.loads(m.group(1)) if m.group(1).startswith('"')
                   else m.group(1) for m in
                   re.finditer(r'^string_table: ("(?:[^"\\]|\\.)*")$', text,
                               re.M)]
        idx = [int(m.group(1))
               for m in re.finditer(r"^comment: (\d+)$", text, re.M)]
        out.append([strings[i] if i < len(strings) else "?" for i in idx])
    return out


def run_fake_backend(tmp):
    recdir = os.path.join(tmp, "rec")
    outdir = os.path.join(tmp, "out")
    os.makedirs(recdir)
    be = subprocess.Popen([sys.executable, BACKEND, "--port", "0", "--record",
                           recdir, "--body", '{"rate_by_service":{}}'],
                          stdout=subprocess.PIPE, text=True)
    try:
        line = be.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit("fake backend did not start: %r" % line)
        run_app("http://127.0.0.1:%s" % line.split()[1], outdir)
        time.sleep(0.5)  # the last .json appears after its body
    finally:
        be.kill()
        be.wait()
    recs = records(recdir)

    ids, roots = trace_runtime_ids(recs)
    check(len(ids) == 1, "traces carry one runtime id (%s)" % sorted(ids))
    rid = next(iter(ids), None)
    check(bool(roots) and all(s["service"] == "checkout" for s in roots),
          "trace root spans have service checkout")
    check(bool(roots) and all(s["meta"].get("env") == "prod-eu" and
                              s["meta"].get("version") == "2.4.1"
                              for s in roots),
          "trace root spans have env prod-eu and version 2.4.1")

    tags = dd_profile_tags(recs)
    check(len(tags) >= 1, "Datadog profile uploads received (%d)" % len(tags))
    for t in tags:
        got = {k: t.get(k) for k in WANT}
        check(got == WANT, "Datadog upload tags: %s" % got)
        check(t.get("runtime-id") == rid,
              "Datadog upload runtime-id %s is the traces' %s" %
              (t.get("runtime-id"), rid))

    names = pyroscope_names(recs)
    check(len(names) >= 1, "Pyroscope requests received (%d)" % len(names))
    for n in names:
        m = re.fullmatch(r"([^{]*)\.(cpu|wall)\{(.*)\}", n)
        labels = dict(kv.split("=", 1) for kv in m.group(3).split(",")) \
            if m else {}
        check(m is not None and m.group(1) == "checkout",
              "Pyroscope application name of %r is checkout" % n)
        check(labels.get("env") == "prod-eu" and
              labels.get("version") == "2.4.1",
              "Pyroscope labels of %r carry env and version" % n)

    files = file_comments(outdir)
    check(len(files) >= 1, "profile files written (%d)" % len(files))
    for comments in files:
        want = ["service=checkout", "env=prod-eu", "version=2.4.1",
                "runtime-id=%s" % rid]
        check(all(w in comments for w in want),
              "profile file comments %s hold %s" % (comments, want))


def run_agent(tmp):
    db = os.path.join(tmp, "agent.db")
    proc, port = agent_client.start_agent(AGENT, db)
    try:
        run_app("http://127.0.0.1:%d" % port, os.path.join(tmp, "out2"))
        c = agent_client.Client(port)
        q = "/api/v1/profile?endpoint=%s&from=0&to=%d" % (
            urllib.parse.quote("GET /checkout"), 2 ** 62)
        samples = {}
        for svc in ("", "&service=checkout", "&service=identity_app"):
            deadline = time.time() + 20
            while True:
                status, body = c.request("GET", q + svc)
                # 404: no requests or samples of the endpoint under it.
                check(status in (200, 404), "agent: GET %s answers %d" %
                      (q + svc, status))
                doc = json.loads(body) if status == 200 else {}
                samples[svc] = doc.get("cpu", {}).get("samples", 0)
                if samples[svc] > 0 or svc.endswith("identity_app") or \
                        time.time() > deadline:
                    break
                time.sleep(0.2)
        c.close()
        check(samples[""] > 0, "agent: the endpoint has CPU samples (%d)" %
              samples[""])
        check(samples["&service=checkout"] == samples[""],
              "agent: service=checkout finds all of them (%d of %d)" %
              (samples["&service=checkout"], samples[""]))
        check(samples["&service=identity_app"] == 0,
              "agent: none under the program's name (%d)" %
              samples["&service=identity_app"])
    finally:
        proc.terminate()
        agent_client.wait_exit(proc)


with tempfile.TemporaryDirectory() as tmp:
    run_fake_backend(tmp)
with tempfile.TemporaryDirectory() as tmp:
    run_agent(tmp)
if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
