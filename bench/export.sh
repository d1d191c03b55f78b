#!/usr/bin/env bash
# Exporter benchmarks: encode rates on one core (bench_export_dd,
# bench_export_otlp) and end to end (bench_export_e2e: delivered spans/s
# into a local sink server, and the application thread's cost per span
# with an exporter against exporters "none", sharing the CPUs and with the
# application thread on a CPU of its own), run in rounds and summarised in
# tables.
#
#   bench/export.sh [--rounds N] [--seconds S] [--build-dir DIR]
#                   [--no-build] [--keep]
#
# Builds RelWithDebInfo in <source>/build-bench unless --build-dir is
# given, then runs N rounds (default 5) of "bench_export_dd, then
# bench_export_otlp, then bench_export_e2e, then bench_export_e2e --pin
# --rate 500000" (needs 2 CPUs). The tables show the median
# over rounds and, in brackets, the range [min-max]. The application-thread
# cost compares two tracers of the same process in alternating batches;
# "with/none" is the median of the per-round ratios.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$src/build-bench"
rounds=5
seconds=3
do_build=1
keep=0

while [ $# -gt 0 ]; do
  case "$1" in
  --rounds) rounds=$2; shift 2 ;;
  --seconds) seconds=$2; shift 2 ;;
  --build-dir) build=$2; shift 2 ;;
  --no-build) do_build=0; shift ;;
  --keep) keep=1; shift ;;
  -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
  *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

progs=(bench_export_dd bench_export_otlp bench_export_e2e)
if [ "$do_build" = 1 ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHOTSPAN_SANITIZE= -DHOTSPAN_BUILD_TESTS=OFF \
    -DHOTSPAN_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j2 --target "${progs[@]}" >/dev/null
fi
for p in "${progs[@]}"; do
  [ -x "$build/bench/$p" ] || { echo "missing $build/bench/$p" >&2; exit 1; }
done

out=$(mktemp -d)
if [ "$keep" = 1 ]; then
  echo "raw output kept in $out" >&2
else
  trap 'rm -rf "$out"' EXIT
fi

# The environment must not reconfigure the tracers (the e2e bench ignores
# it, but the log level is process-wide).
export HOTSPAN_LOG_LEVEL=warn
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: encode dd" >&2
  "$build/bench/bench_export_dd" --batches 11 >"$out/dd.$r"
  echo "round $r/$rounds: encode otlp" >&2
  "$build/bench/bench_export_otlp" --batches 11 >"$out/otlp.$r"
  echo "round $r/$rounds: e2e" >&2
  "$build/bench/bench_export_e2e" --seconds "$seconds" >"$out/e2e.$r" \
    2>"$out/e2e.$r.err" || { cat "$out/e2e.$r.err" >&2; exit 1; }
  # The application thread alone on a CPU, the library's threads and the
  # sink server on the other, paced at 500 000 spans/s: its cost without
  # sharing a core. Only the appcost lines of this run are used.
  echo "round $r/$rounds: e2e, pinned" >&2
  "$build/bench/bench_export_e2e" --seconds 0.5 --pin --rate 500000 \
    >"$out/pin.$r" 2>"$out/pin.$r.err" || { cat "$out/pin.$r.err" >&2; exit 1; }
done

python3 - "$out" "$rounds" "$seconds" <<'PY'
import os, statistics, sys

out, rounds, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def kv(fields):
    return dict(x.split("=", 1) for x in fields if "=" in x)

enc = {"dd": [], "otlp": [], "otlp_gzip": []}
e2e, cost, info = {}, {}, []
for r in range(1, rounds + 1):
    for line in open(os.path.join(out, f"dd.{r}")):
        f = line.split()
        if f[:2] == ["result", "dd_encode_span"]:
            enc["dd"].append(1e9 / float(kv(f)["median_ns"]))
    for line in open(os.path.join(out, f"otlp.{r}")):
        f = line.split()
        if f[:2] == ["result", "encode"]:
            enc["otlp"].append(1e9 / float(kv(f)["median_ns"]))
        elif f[:2] == ["result", "encode_gzip"]:
            enc["otlp_gzip"].append(1e9 / float(kv(f)["median_ns"]))
    for line in open(os.path.join(out, f"e2e.{r}")):
        f = line.split()
        if not f:
            continue
        d = kv(f[1:])
        if f[0] == "e2e":
            e2e.setdefault(d["exporter"], []).append(d)
        elif f[0] == "appcost":
            cost.setdefault((d["exporter"], d["mode"], "0"), []).append(d)
        elif f[0] == "info" and r == 1 and "program=" in line:
            info.append(line.strip())
    for line in open(os.path.join(out, f"pin.{r}")):
        f = line.split()
        if f and f[0] == "appcost":
            d = kv(f[1:])
            cost.setdefault((d["exporter"], d["mode"], "1"), []).append(d)

def fmt(v, digits=0):
    if not v:
        return "-"
    m = statistics.median(v)
    return f"{m:,.{digits}f} [{min(v):,.{digits}f}-{max(v):,.{digits}f}]"

def col(rows, key):
    return [float(x[key]) for x in rows if float(x[key]) >= 0]

print(f"# {rounds} rounds; median over rounds [min-max]")
for i in info:
    print("#", i)
print()
print("| encode, one core | spans/s | target |")
print("|---|---|---|")
print(f"| Datadog msgpack (bench_export_dd) | {fmt(enc['dd'])} | >= 1,000,000 |")
print(f"| OTLP protobuf (bench_export_otlp) | {fmt(enc['otlp'])} | >= 500,000 |")
print(f"| OTLP protobuf + gzip | {fmt(enc['otlp_gzip'])} | |")
print()
print(f"| end to end, 1 app thread, {seconds} s | delivered spans/s | "
      "produced spans/s | spans dropped | bytes/span | app CPU ns/span | "
      "writer CPU ns/span | transport CPU ns/span |")
print("|---|---|---|---|---|---|---|---|")
for name, rows in e2e.items():
    dropped = [int(x["queue_dropped_spans"]) + int(x["export_dropped_spans"])
               for x in rows]
    print(f"| {name} | {fmt(col(rows, 'spans_per_s'))} | "
          f"{fmt(col(rows, 'produced_per_s'))} | {fmt(dropped)} | "
          f"{fmt(col(rows, 'bytes_per_span'), 1)} | "
          f"{fmt(col(rows, 'app_cpu_ns_per_span'))} | "
          f"{fmt(col(rows, 'writer_cpu_ns_per_span'))} | "
          f"{fmt(col(rows, 'transport_cpu_ns_per_span'))} |")
print()
print("| app thread, ns/span (root + child, 5 tags) | wall: with exporter | "
      "wall: exporters none | wall: difference | with/none | CPU: with | "
      "CPU: none | CPU: difference | waiting for a CPU: difference | "
      "dropped (with) | target (CPU difference) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (name, mode, pinned), rows in sorted(cost.items()):
    ratio = [float(x["with_ns"]) / float(x["none_ns"]) for x in rows]
    label = (f"{name}, paced {float(rows[0]['rate']):,.0f} spans/s"
             if mode == "paced" else f"{name}, full speed")
    if pinned == "1":
        label += ", own CPU"
    print(f"| {label} | {fmt(col(rows, 'with_ns'))} | "
          f"{fmt(col(rows, 'none_ns'))} | "
          f"{fmt([float(x['diff_ns']) for x in rows])} | "
          f"{statistics.median(ratio):.2f}x | "
          f"{fmt(col(rows, 'with_cpu_ns'))} | {fmt(col(rows, 'none_cpu_ns'))} | "
          f"{fmt([float(x['diff_cpu_ns']) for x in rows])} | "
          f"{fmt([float(x['diff_runq_ns']) for x in rows])} | "
          f"{sum(int(x['dropped_with']) for x in rows)} | <= +100 |")
PY
