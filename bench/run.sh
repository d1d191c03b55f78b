#!/usr/bin/env bash
# Tracer benchmarks: hotspan (bench_span) against Datadog's C++ tracer
# (bench_dd), interleaved round by round, summarised in one table.
#
#   bench/run.sh [--rounds N] [--batches N] [--ops N] [--build-dir DIR]
#                [--no-build] [--callgrind] [--keep]
#
# Builds RelWithDebInfo (the library's default build type) in
# <source>/build-bench unless --build-dir is given, then runs N rounds
# (default 5) of "bench_span, then bench_dd". Every program interleaves its
# own variants batch by batch and prints per-variant medians; the table shows
# the median over rounds of those medians, [min-max] over rounds, and dd/hotspan
# as the median of per-round ratios (each round's two runs are neighbours in
# time, so a ratio sees the same machine load twice).
#
# --callgrind adds instructions per operation under valgrind's callgrind:
# the whole process is counted at two operation counts and the difference
# divided by the difference in ops, which cancels set-up and warm-up.
# Deterministic, so a useful second measure on a noisy machine.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$src/build-bench"
rounds=5
batches=21
ops=100000
do_build=1
callgrind=0
keep=0

while [ $# -gt 0 ]; do
  case "$1" in
  --rounds) rounds=$2; shift 2 ;;
  --batches) batches=$2; shift 2 ;;
  --ops) ops=$2; shift 2 ;;
  --build-dir) build=$2; shift 2 ;;
  --no-build) do_build=0; shift ;;
  --callgrind) callgrind=1; shift ;;
  --keep) keep=1; shift ;;
  -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
  *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

if [ "$do_build" = 1 ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHOTSPAN_SANITIZE= -DHOTSPAN_BUILD_TESTS=OFF \
    -DHOTSPAN_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j2 --target bench_span bench_dd >/dev/null
fi
hs="$build/bench/bench_span"
dd="$build/bench/bench_dd"
for b in "$hs" "$dd"; do
  [ -x "$b" ] || { echo "missing $b (build failed?)" >&2; exit 1; }
done

out=$(mktemp -d)
if [ "$keep" = 1 ]; then
  echo "raw output kept in $out" >&2
else
  trap 'rm -rf "$out"' EXIT
fi

# The environment must not reconfigure either tracer behind the bench's back
# (hotspan's tracers ignore it; dd-opentracing reads DD_*).
for v in $(compgen -e); do
  case "$v" in DD_*) unset "$v" ;; esac
done

args=(--batches "$batches" --ops "$ops")
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: hotspan" >&2
  "$hs" "${args[@]}" >"$out/hotspan.$r"
  echo "round $r/$rounds: dd" >&2
  "$dd" "${args[@]}" >"$out/dd.$r"
done

if [ "$callgrind" = 1 ]; then
  command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 1; }
  # ir <label> <binary> <variant> <ops factor>: instructions per op.
  ir() {
    local label=$1 bin=$2 variant=$3 factor=$4 n totals=()
    for n in 5000 15000; do
      valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
        "$bin" --only "$variant" --batches 1 --ops "$n" --warmup 2000 \
        >/dev/null 2>"$out/cg.err" || {
        cat "$out/cg.err" >&2
        exit 1
      }
      totals+=("$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' \
        "$out/cg.out" | head -1)")
    done
    echo "callgrind $label $variant ir_per_op=$(((totals[1] - totals[0]) / (10000 * factor)))" \
      >>"$out/callgrind"
  }
  echo "callgrind ..." >&2
  ir hotspan "$hs" span 1
  ir hotspan "$hs" enter_leave 10
  ir hotspan "$hs" w3c_roundtrip 1
  ir hotspan "$hs" datadog_roundtrip 1
  ir dd "$dd" span 1
  ir dd "$dd" datadog_roundtrip 1
fi

python3 - "$out" "$rounds" "$batches" "$ops" <<'EOF'
import glob, os, statistics, sys

out, rounds, batches, ops = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def parse(path):
    res, cnt, info = {}, {}, []
    for line in open(path):
        f = line.split()
        if not f:
            continue
        kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
        if f[0] == "result":
            res[f[1]] = float(kv["median_ns"])
        elif f[0] == "count":
            cnt[f[1]] = float(kv["per_op"])
        elif f[0] == "info":
            info.append(line.strip())
    return res, cnt, info

runs = {p: [parse(os.path.join(out, f"{p}.{r}")) for r in range(1, rounds + 1)]
        for p in ("hotspan", "dd")}

def series(prog, name):
    return [r[0][name] for r in runs[prog] if name in r[0]]

def fmt(v):
    if not v:
        return "-"
    m = statistics.median(v)
    digits = 1 if m >= 10 else 2
    return f"{m:.{digits}f} [{min(v):.{digits}f}-{max(v):.{digits}f}]"

def ratio(name_dd, name_hs):
    rs = [d[0][name_dd] / h[0][name_hs]
          for h, d in zip(runs["hotspan"], runs["dd"])
          if name_hs in h[0] and name_dd in d[0] and h[0][name_hs] > 0]
    return f"{statistics.median(rs):.1f}x" if rs else "-"

def count(prog, name):
    v = [r[1][name] for r in runs[prog] if name in r[1]]
    if not v:
        return "n/a"
    m = max(v)
    return "0" if m == 0 else (f"{m:.2g}" if m < 0.1 else f"{m:.2f}")

cg = {}
cgpath = os.path.join(out, "callgrind")
if os.path.exists(cgpath):
    for line in open(cgpath):
        f = line.split()
        cg[(f[1], f[2])] = f[3].split("=")[1]

rows = [
    ("child span: start, 2 tags, finish", "span", "span",
     "hotspan <= 150 ns; dd/hotspan >= 3x"),
    ("enter + leave", "enter_leave", None, "<= 10 ns"),
    ("  baseline: 2 calls + TLS swap", "call_pair", None, ""),
    ("W3C inject + extract", "w3c_roundtrip", None, "<= 300 ns"),
    ("  W3C inject", "w3c_inject", None, ""),
    ("  W3C extract", "w3c_extract", None, ""),
    ("Datadog inject + extract", "datadog_roundtrip", "datadog_roundtrip",
     "<= 300 ns"),
    ("  Datadog inject", "datadog_inject", "datadog_inject", ""),
    ("  Datadog extract", "datadog_extract", "datadog_extract", ""),
]
print(f"# {rounds} rounds x {batches} batches x {ops} ops "
      "(enter/leave: 10x ops); ns/op: median over rounds [min-max];")
print("# mallocs: allocation calls per operation in the measured batches, "
      "max over rounds")
for i in runs["hotspan"][0][2] + runs["dd"][0][2]:
    if not i.startswith("info stats"):
        print("#", i)
# A trace dropped on the way to the sink would mean the bench measured a
# different path: say so.
for r, (res, cnt, info) in enumerate(runs["hotspan"], 1):
    for i in info:
        if i.startswith("info stats"):
            kv = dict(x.split("=", 1) for x in i.split()[2:])
            lost = int(kv.get("chunks_queue_dropped", 0)) + \
                int(kv.get("traces_dropped", 0))
            if lost:
                print(f"# WARNING round {r}: {lost} traces or chunks dropped "
                      f"before the sink ({i})")
hdr = ("operation", "hotspan ns/op", "dd ns/op", "dd/hotspan", "target")
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join("---" for _ in hdr) + "|")
for label, hs_name, dd_name, target in rows:
    hs = series("hotspan", hs_name)
    if not hs:
        continue
    d = series("dd", dd_name) if dd_name else []
    print(f"| {label} | {fmt(hs)} | {fmt(d) if dd_name else '-'} | "
          f"{ratio(dd_name, hs_name) if dd_name else '-'} | {target} |")
mrows = [
    ("mallocs per child span (start, 2 tags, finish)", "mallocs_child_span",
     True, "0"),
    ("mallocs per trace (root start + finish, hand-off)", "mallocs_trace",
     True, ""),
    ("mallocs per enter + leave", "mallocs_enter_leave", False, "0"),
    ("mallocs per W3C inject + extract", "mallocs_w3c_roundtrip", False, ""),
    ("mallocs per Datadog inject + extract", "mallocs_datadog_roundtrip",
     True, ""),
]
for label, name, has_dd, target in mrows:
    print(f"| {label} | {count('hotspan', name)} | "
          f"{count('dd', name) if has_dd else '-'} | - | {target} |")
if cg:
    print()
    print("| callgrind instructions/op | hotspan | dd | dd/hotspan |")
    print("|---|---|---|---|")
    for v in ("span", "enter_leave", "w3c_roundtrip", "datadog_roundtrip"):
        h, d = cg.get(("hotspan", v)), cg.get(("dd", v))
        if h is None:
            continue
        r = f"{int(d) / int(h):.1f}x" if d and int(h) > 0 else "-"
        print(f"| {v} | {h} | {d or '-'} | {r} |")
EOF
