#!/usr/bin/env bash
# Profiler benchmarks: overhead on a CPU-bound span workload (hotspan and
# gperftools' CPU profiler against no profiler, in the same rounds), the
# cost of one sample by stack depth and unwinder, and resident memory with
# 64 threads. Prints one table per part.
#
#   bench/profiler.sh [--rounds N] [--rounds2 N] [--requests N]
#                     [--cpu-only] [--segments N] [--mem-pairs N]
#                     [--only LIST] [--build-dir DIR] [--no-build] [--keep]
#
# Builds RelWithDebInfo in <source>/build-bench unless --build-dir is given.
#
# overhead  build-bench/bench/prof_workload, 4 x --requests requests
#           (default 10000, about 11 s of CPU) split over the threads:
#           --rounds rounds (default 11) with 4 busy threads, then
#           --rounds2 (default 5) with 2. A round runs the variants back to
#           back, the run without a profiler in the middle: "hotspan, none,
#           gperftools", the next round in reverse order. hotspan:
#           HOTSPAN_PROFILING_ENABLED=true, HOTSPAN_OUTPUT_DIR set, default
#           rates (CPU 99 Hz, wall 19 Hz), upload period 5 s; gperftools:
#           CPUPROFILE set, CPUPROFILE_FREQUENCY=99. --cpu-only adds a
#           fourth variant, hotspan without the wall profile, to the
#           4-thread rounds (after gperftools).
#           Overhead = median over rounds of (CPU with / CPU without) - 1.
# sample    build-bench/bench/prof_depth_{fp,nofp}: handler time per sample
#           at depth 32 and 64, each unwinder, --segments segments
#           (default 6) of about 0.45 s of CPU at 1000 Hz requested.
# memory    prof_workload with 4 busy and 60 idle threads, profiler off and
#           on (upload period 1 s), --mem-pairs pairs (default 3): VmRSS and
#           VmHWM at the end of the work.
# --only overhead,sample,memory runs only those parts.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$src/build-bench"
rounds=11
cpu_only=0
rounds2=5
requests=10000
segments=6
mem_pairs=3
only="overhead,sample,memory"
do_build=1
keep=0

while [ $# -gt 0 ]; do
  case "$1" in
  --rounds) rounds=$2; shift 2 ;;
  --rounds2) rounds2=$2; shift 2 ;;
  --requests) requests=$2; shift 2 ;;
  --cpu-only) cpu_only=1; shift ;;
  --segments) segments=$2; shift 2 ;;
  --mem-pairs) mem_pairs=$2; shift 2 ;;
  --only) only=$2; shift 2 ;;
  --build-dir) build=$2; shift 2 ;;
  --no-build) do_build=0; shift ;;
  --keep) keep=1; shift ;;
  -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
  *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

if [ "$do_build" = 1 ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHOTSPAN_SANITIZE= -DHOTSPAN_BUILD_TESTS=OFF \
    -DHOTSPAN_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j2 --target prof_workload prof_depth_fp \
    prof_depth_nofp >/dev/null
fi
for b in prof_workload prof_depth_fp prof_depth_nofp; do
  [ -x "$build/bench/$b" ] || { echo "missing $build/bench/$b" >&2; exit 1; }
done

out=$(mktemp -d)
if [ "$keep" = 1 ]; then
  echo "raw output kept in $out" >&2
else
  trap 'rm -rf "$out"' EXIT
fi

# No profiler or tracer setting may leak in from the caller's environment.
for v in $(compgen -e); do
  case "$v" in HOTSPAN_* | DD_* | CPUPROFILE* | TCMALLOC_* | LD_PRELOAD) unset "$v" ;; esac
done

python3 - "$build/bench" "$out" "$rounds" "$rounds2" "$requests" \
  "$segments" "$mem_pairs" "$cpu_only" "$only" <<'EOF'
import os, statistics, subprocess, sys

bindir, out = sys.argv[1], sys.argv[2]
rounds, rounds2, requests, segments, mem_pairs, cpu_only = \
    map(int, sys.argv[3:9])
only = sys.argv[9].split(",")
workload = os.path.join(bindir, "prof_workload")

def log(msg):
    print(msg, file=sys.stderr, flush=True)

def parse(text):
    """'<kind> <name> k=v ...' lines -> {(kind, name): {k: v}}."""
    res = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        kv = {}
        for x in f[1:]:
            if "=" in x:
                k, v = x.split("=", 1)
                kv[k] = v
        name = f[1] if "=" not in f[1] else ""
        res[(f[0], name)] = kv
    return res

def run(args, env_extra, tag):
    """Runs a program; returns its parsed output and the whole process's
    CPU seconds (wait4: user + sys, every thread, exit included)."""
    env = dict(os.environ)
    env.update(env_extra)
    with open(os.path.join(out, tag + ".out"), "w") as fo, \
            open(os.path.join(out, tag + ".err"), "w") as fe:
        p = subprocess.Popen(args, stdout=fo, stderr=fe, env=env)
        _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(args)} failed ({status}); see {out}/{tag}.err")
    text = open(os.path.join(out, tag + ".out")).read()
    return parse(text), ru.ru_utime + ru.ru_stime

def med(v):
    return statistics.median(v) if v else float("nan")

def rng(v, fmt):
    return f"{fmt.format(med(v))} [{fmt.format(min(v))}–{fmt.format(max(v))}]"

# ------------------------------------------------------------- overhead
HS_ENV = {"HOTSPAN_PROFILING_ENABLED": "true",
          "HOTSPAN_OUTPUT_DIR": os.path.join(out, "profiles"),
          "HOTSPAN_PROFILING_UPLOAD_PERIOD": "5",
          "HOTSPAN_LOG_LEVEL": "warn"}
HS_CPU_ENV = dict(HS_ENV, HOTSPAN_PROFILING_WALL_ENABLED="false")
GP_ENV = {"CPUPROFILE": os.path.join(out, "gperftools.prof"),
          "CPUPROFILE_FREQUENCY": "99"}
VARIANT_ENV = {"none": {}, "hotspan": HS_ENV, "gperftools": GP_ENV,
               "hotspan-cpu": HS_CPU_ENV}

def overhead(threads, nrounds, variants):
    """variants: the order of odd rounds, reversed in even ones; "none"
    should sit next to the variants that matter most."""
    rows = []
    for r in range(nrounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        res = {}
        for v in order:
            log(f"overhead: {threads} threads, round {r + 1}/{nrounds}: {v}")
            res[v] = run([workload, "--threads", str(threads), "--requests",
                          str(requests * 4 // threads)], VARIANT_ENV[v],
                         f"ov{threads}.{r}.{v}")
        sums = {res[v][0][("check", "")]["checksum"] for v in res}
        if len(sums) != 1:
            sys.exit(f"round {r}: the variants did different work: {sums}")
        rows.append(res)
    return rows

def overhead_table(threads, rows):
    cols = [v for v in ("none", "hotspan", "gperftools", "hotspan-cpu")
            if v in rows[0]]
    prof = [v for v in cols if v != "none"]
    cpu = lambda row, v: float(row[v][0][("result", "workload")]["cpu_s"])
    whole = lambda row, v: row[v][1]
    print(f"\n## Overhead: {threads} busy threads, "
          f"{requests * 4 // threads} requests each, {len(rows)} rounds")
    print("| | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for label, what, get in (
            ("CPU s", "start to end of work", cpu),
            ("CPU s", "whole process, exit included", whole)):
        cells = [rng([get(row, v) for row in rows], "{:.3f}") for v in cols]
        print(f"| {label}, {what} | " + " | ".join(cells) + " |")
        ovs = []
        for v in prof:
            ratios = [get(row, v) / get(row, "none") for row in rows]
            ovs.append(f"**{(med(ratios) - 1) * 100:+.2f} %** "
                       f"[{(min(ratios) - 1) * 100:+.2f}–"
                       f"{(max(ratios) - 1) * 100:+.2f}]")
        print(f"| overhead, {what} | - | " + " | ".join(ovs) + " |")
    wall = [float(row["none"][0][("result", "workload")]["wall_s"])
            for row in rows]
    blank = " |" * (len(cols) - 1)
    print(f"| wall s of the work | {rng(wall, '{:.2f}')} |{blank}")
    hs_cols = [v for v in prof if v.startswith("hotspan")]

    def per_hs(fn):
        cells = []
        for v in prof:
            if v not in hs_cols:
                cells.append("")
                continue
            vals = []
            for row in rows:
                p = row[v][0]
                vals.append(fn(p[("info", "hotspan")], p[("info", "threads")],
                               cpu(row, v)))
            cells.append(vals)
        return cells

    def line(label, cells, fmt, gp=""):
        out_cells = []
        for v, c in zip(prof, cells):
            if v == "gperftools":
                out_cells.append(gp)
            else:
                out_cells.append(fmt(med(c)))
        print(f"| {label} | - | " + " | ".join(out_cells) + " |")

    gp_rate = ""
    if "gperftools" in prof:
        gp_rate = "CPU {:.1f}".format(med(
            [int(row["gperftools"][0][("info", "gperftools")]["samples"]) /
             cpu(row, "gperftools") for row in rows]))
    cells = []
    for v in prof:
        if v == "gperftools":
            cells.append(gp_rate)
            continue
        stc = [(float(row[v][0][("info", "hotspan")]["samples_cpu"]),
                float(row[v][0][("info", "hotspan")]["samples_wall"]),
                cpu(row, v)) for row in rows]
        cells.append(f"CPU {med([a / c for a, _, c in stc]):.1f}, "
                     f"wall {med([w / c for _, w, c in stc]):.1f}")
    print("| samples per CPU second | - | " + " | ".join(cells) + " |")
    line("stacks taken by frame pointers",
         per_hs(lambda st, th, c: float(st["unwind_fp"]) /
                max(float(st["unwind_fp"]) + float(st["unwind_libunwind"]),
                    1)),
         lambda m: f"{m * 100:.0f} % (rest: libunwind)",
         "libunwind (its default)")
    line("handler time per sample, µs (wall clock)",
         per_hs(lambda st, th, c: float(st["handler_ns_total"]) / 1e3 /
                max(float(st["samples_cpu"]) + float(st["samples_wall"]), 1)),
         lambda m: f"{m:.1f}")
    line("handler time / CPU time",
         per_hs(lambda st, th, c: float(st["handler_ns_total"]) / 1e9 / c),
         lambda m: f"{m * 100:.2f} %")
    line("profiler threads' CPU / CPU time",
         per_hs(lambda st, th, c: (float(th.get("hotspan-prof_cpu_s", 0)) +
                                   float(th.get("hotspan-wall_cpu_s", 0))) / c),
         lambda m: f"{m * 100:.2f} %")
    line("profiles written during the work",
         per_hs(lambda st, th, c: float(st["profiles_written"])),
         lambda m: f"{m:.0f}")
    for v in hs_cols:
        dropped = sum(float(row[v][0][("info", "hotspan")]["dropped"])
                      for row in rows)
        if dropped:
            print(f"# WARNING: {v}: {dropped:.0f} samples dropped")

if "overhead" in only:
    # Without gperftools (libgoogle-perftools-dev) at build time the
    # program has no baseline: leave that column out.
    probe, _ = run([workload, "--threads", "1", "--requests", "1"], {},
                   "probe")
    base = ["hotspan", "none"] + \
        (["gperftools"] if ("info", "gperftools") in probe else [])
    if "gperftools" not in base:
        log("prof_workload was built without gperftools: no baseline")
    rows4 = overhead(4, rounds, base + (["hotspan-cpu"] if cpu_only else []))
    rows2 = overhead(2, rounds2, base) if rounds2 > 0 else []

# ------------------------------------------------------------- sample cost
SAMPLE_CONFIGS = [
    ("fp", "fp", "framed"),
    ("fp", "auto", "framed"),
    ("fp", "auto", "bare"),
    ("fp", "libunwind", "framed"),
    ("nofp", "auto", "framed"),
    ("nofp", "libunwind", "framed"),
]

def sample_cost():
    res = []
    for depth in (32, 64):
        for build, unw, leaf in SAMPLE_CONFIGS:
            log(f"sample: depth {depth}, {build} build, {unw}, {leaf} leaf")
            p, _ = run([os.path.join(bindir, "prof_depth_" + build),
                        "--depth", str(depth), "--unwinder", unw, "--leaf",
                        leaf, "--segments", str(segments)],
                       {"HOTSPAN_LOG_LEVEL": "warn"},
                       f"depth.{depth}.{build}.{unw}.{leaf}")
            res.append((depth, build, unw, leaf,
                        p[("result", "sample_cost")]))
    log("sample: kernel signal round trip")
    k, _ = run([os.path.join(bindir, "prof_depth_fp"), "--kernel",
                "--segments", str(max(segments, 5))], {}, "kernel")
    return res, float(k[("result", "signal_roundtrip")]["ns"])

def sample_table(res, kernel_ns):
    print(f"\n## Cost of one sample (median of {segments} segments)")
    print("| depth | build | unwinder | leaf | handler µs/sample | max µs "
          "| recorded depth | taken by | aggregator ms per CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for depth, build, unw, leaf, r in res:
        fp, lu = int(r["unwind_fp"]), int(r["unwind_libunwind"])
        by = "fp" if lu == 0 else "libunwind" if fp == 0 else \
            f"fp {fp * 100 // (fp + lu)} %"
        print(f"| {depth} | {build} | {unw} | {leaf} | "
              f"{float(r['handler_ns']) / 1e3:.2f} | "
              f"{float(r['handler_max_ns']) / 1e3:.0f} | "
              f"{r['recorded_depth']} | {by} | {float(r['agg_ms_per_s']):.2f} |")
    print(f"\nkernel: tgkill to self + empty handler + sigreturn: "
          f"{kernel_ns / 1e3:.2f} µs per signal")
    r0 = res[0][4]
    secs = float(r0["cpu_s"])
    print(f"samples per CPU second at 1000 Hz requested: "
          f"{int(r0['samples']) / secs:.0f} (timer overruns "
          f"{int(r0['timer_overruns']) / secs:.0f}/s)")

if "sample" in only:
    sres, kernel_ns = sample_cost()

# ------------------------------------------------------------- memory
def memory():
    rows = []
    env_on = dict(HS_ENV)
    env_on["HOTSPAN_PROFILING_UPLOAD_PERIOD"] = "1"
    for r in range(mem_pairs):
        order = ["off", "on"] if r % 2 == 0 else ["on", "off"]
        res = {}
        for v in order:
            log(f"memory: pair {r + 1}/{mem_pairs}: profiler {v}")
            p, _ = run([workload, "--threads", "4", "--idle", "60",
                        "--requests", str(requests // 2)],
                       env_on if v == "on" else {}, f"mem.{r}.{v}")
            res[v] = p
        rows.append(res)
    return rows

def memory_table(rows):
    print(f"\n## Resident memory: 4 busy + 60 idle threads, "
          f"{len(rows)} pairs (MiB, median [min–max])")
    print("| | profiler off | profiler on | on − off |")
    print("|---|---|---|---|")
    for key, label in (("vmrss_kb", "VmRSS"), ("vmhwm_kb", "VmHWM"),
                       ("rssanon_kb", "RssAnon"), ("rssfile_kb", "RssFile")):
        get = lambda row, v: float(row[v][("info", "mem")][key]) / 1024
        off = [get(row, "off") for row in rows]
        on = [get(row, "on") for row in rows]
        diff = [b - a for a, b in zip(off, on)]
        print(f"| {label} | {rng(off, '{:.1f}')} | {rng(on, '{:.1f}')} | "
              f"{rng(diff, '{:+.1f}')} |")
    st = [row["on"][("info", "hotspan")] for row in rows]
    print(f"\nthreads registered: "
          f"{med([float(s['threads_registered']) for s in st]):.0f}, "
          f"profiles written: "
          f"{med([float(s['profiles_written']) for s in st]):.0f}")

if "memory" in only:
    mrows = memory()

# ------------------------------------------------------------- tables
print("# profiler benchmarks (bench/profiler.sh)")
if "overhead" in only:
    overhead_table(4, rows4)
    if rows2:
        overhead_table(2, rows2)
if "sample" in only:
    sample_table(sres, kernel_ns)
if "memory" in only:
    memory_table(mrows)
EOF
