#!/usr/bin/python3
"""Before/after comparison of two builds of hotspan on the same machine,
in the same run: every round runs each benchmark on build A and on build B
back to back (the order alternates between rounds), so that both sides see
the same machine load; the table shows the median over rounds for each side
and B/A as the median of the per-round ratios.

  bench/compare.py A-BUILD B-BUILD [--rounds N] [--only LIST]

Both builds are RelWithDebInfo build trees with the benchmarks built
(`cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo
-DHOTSPAN_BUILD_TESTS=OFF && cmake --build build-bench`). Benchmarks (--only
takes a comma list of these names):

  tracer    bench/bench_span: span, enter/leave, W3C and Datadog
            inject + extract (ns per operation)
  export    bench/bench_export_e2e --seconds 2 --rounds 3: delivered
            spans/s per exporter into its local sink, and the application
            thread's CPU per span (paced)
  profiler  bench/prof_workload, 2 busy threads, with
            HOTSPAN_PROFILING_ENABLED=true (output to a temporary
            directory) and without: overhead = CPU with / CPU without - 1
  store     backend/bench_store --spans 100000 --samples 100000: ingest
            time, span hotspots and endpoint profile query medians
  agent     bench/bench_agent_ingest.py: hotspan-agent ingest, spans/s

The instruction counts of the tracer operations (deterministic, so exact
where timings are noisy) come from `bench/run.sh --callgrind --rounds 1
--no-build --build-dir DIR`, once per build."""
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def kv(line):
    return dict(re.findall(r"(\w+)=([-\d.]+)", line))


def run(cmd, env=None, timeout=900):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                 p.stderr[-500:]))
    return p.stdout + p.stderr


def tracer(build):
    out = run([os.path.join(build, "bench", "bench_span"), "--batches", "9",
               "--ops", "50000"])
    res = {}
    for line in out.splitlines():
        m = re.match(r"result (\w+) median_ns=([\d.]+)", line)
        if m and m.group(1) in ("span", "enter_leave", "w3c_roundtrip",
                                "datadog_roundtrip"):
            res["tracer: %s (ns)" % m.group(1)] = float(m.group(2))
    return res


def export(build):
    out = run([os.path.join(build, "bench", "bench_export_e2e"), "--seconds",
               "2", "--rounds", "3"])
    res = {}
    for line in out.splitlines():
        f = kv(line)
        m = re.search(r"exporter=(\w+)", line)
        if line.startswith("e2e ") and m:
            res["export %s: delivered spans/s" % m.group(1)] = float(
                f["spans_per_s"])
        if line.startswith("appcost ") and m and "mode=paced" in line:
            res["export %s: app CPU ns/span (paced)" % m.group(1)] = float(
                f["with_cpu_ns"])
    return res


def child_cpu(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run(cmd, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                 before.ru_stime)


def profiler(build):
    cmd = [os.path.join(build, "bench", "prof_workload"), "--threads", "2",
           "--requests", "2500"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOTSPAN_", "DD_"))}
    with tempfile.TemporaryDirectory() as d:
        on = dict(env, HOTSPAN_PROFILING_ENABLED="true", HOTSPAN_OUTPUT_DIR=d,
                  HOTSPAN_PROFILING_EXPORTERS="none",
                  HOTSPAN_PROFILING_UPLOAD_PERIOD="5")
        with_cpu = child_cpu(cmd, on)
        none_cpu = child_cpu(cmd, env)
    return {"profiler: overhead, 2 threads (%)":
            100.0 * (with_cpu / none_cpu - 1.0)}


def store(build):
    exe = os.path.join(build, "backend", "bench_store")
    if not os.path.exists(exe):  # builds from before backend/ existed
        exe = os.path.join(build, "correlation", "bench_store")
    out = run([exe, "--spans", "100000", "--samples", "100000"])
    res = {}
    for line in out.splitlines():
        m = re.match(r"ingest total: ([\d.]+) s", line)
        if m:
            res["store: ingest 100k spans + 100k samples (s)"] = float(
                m.group(1))
        m = re.match(r"span hotspots .*median ([\d.]+) ms", line)
        if m:
            res["store: span hotspots median (ms)"] = float(m.group(1))
        m = re.match(r"endpoint profile .*median ([\d.]+) ms", line)
        if m:
            res["store: endpoint profile median (ms)"] = float(m.group(1))
    return res


def agent(build):
    out = run(["/usr/bin/python3", os.path.join(HERE, "bench_agent_ingest.py"),
               build, "300000", "1000"])
    m = re.search(r"spans in [\d.]+ s: (\d+) spans/s", out)
    return {"agent: ingest (spans/s)": float(m.group(1))} if m else {}


BENCHES = {"tracer": tracer, "export": export, "profiler": profiler,
           "store": store, "agent": agent}


def main():
    args = sys.argv[1:]
    rounds, only = 3, list(BENCHES)
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i:i + 2]
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1].split(",")
        del args[i:i + 2]
    if len(args) != 2 or any(b not in BENCHES for b in only):
        print(__doc__)
        sys.exit(2)
    builds = [os.path.abspath(a) for a in args]
    vals = {}  # metric -> ([a...], [b...])
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for name in only:
            for side in order:
                print("round %d/%d: %s on %s" % (r + 1, rounds, name,
                                                 "AB"[side]),
                      file=sys.stderr, flush=True)
                for k, v in BENCHES[name](builds[side]).items():
                    vals.setdefault(k, ([], []))[side].append(v)
    print("| benchmark | A (median) | B (median) | B/A (median of rounds) |")
    print("|---|---|---|---|")
    for k, (a, b) in vals.items():
        n = min(len(a), len(b))
        if k.startswith("profiler:"):
            ratio = "%+.2f points" % statistics.median(
                [b[i] - a[i] for i in range(n)])
        else:
            ratio = "%.3f" % statistics.median(
                [b[i] / a[i] for i in range(n) if a[i]])
        print("| %s | %.4g [%.4g-%.4g] | %.4g [%.4g-%.4g] | %s |" %
              (k, statistics.median(a), min(a), max(a), statistics.median(b),
               min(b), max(b), ratio))


if __name__ == "__main__":
    main()
