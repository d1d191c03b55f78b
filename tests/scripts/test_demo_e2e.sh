#!/usr/bin/env bash
# End to end: hotspan-agent on a temporary database, demo_server sending
# traces and profiles to it for a few seconds, then the hotspan CLI asks
# the agent. The slowest GET /checkout request's hotspots (with its child
# span "pricing") have compute_price_rules on top of CPU; the endpoint's
# CPU profile has it on top too; GET /report's wall profile contains
# wait_for_ledger. The CLI's --db mode on the same file agrees with the
# agent. Skips (77) when hotspan-agent or python3 is missing.
#
# The CPU/wall ratio of the slowest checkout is compared with the truth:
# the demo measures each checkout's own thread CPU time
# (CLOCK_THREAD_CPUTIME_ID) and wall time and sends them as the root
# span's tags demo.cpu_ns and demo.wall_ns. The verdict must be the one
# the documented rule (docs/cli.md, hotspots: cpu-bound at 0.5 and above,
# waiting at 0.1 and below, mixed between) gives for the true ratio.
#
# Tolerance: the profiled ratio is CPU samples over wall samples. A count
# of N samples is off by about sqrt(N), a relative error of 1/sqrt(N), so
# the ratio's relative error is sqrt(1/Ncpu + 1/Nwall); the test allows
# three times that. Ncpu is the span's true CPU time times the CPU sample
# rate, which is min(cpu_hz, CONFIG_HZ): the kernel checks CPU timers on
# its scheduler tick (docs/profiling.md, "CPU samples"); CONFIG_HZ is read
# from the kernel's config, else taken as 100, the lowest value kernels
# use. Nwall is the true wall time times wall_hz. The demo runs with both
# rates at their maximum, 1000 Hz, and --work 16 (checkouts of about 0.3
# to 1.3 s of CPU): a checkout of 0.5 s of CPU at 250 Hz has 125 samples,
# a tolerance of about 27 %. With a tolerance over 40 % the run fails as
# "too few samples to judge": a profile missing half its CPU samples
# (ratio halved) must not pass.
# Mutation checked: the profiler's signal handler dropping every second
# CPU sample; the profiled ratio came out at half the truth (0.29 for
# 0.61) and the test failed.
# Usage: test_demo_e2e.sh <build dir> <source dir>
set -euo pipefail
build=$1
python=/usr/bin/python3
[ -x "$python" ] || { echo "SKIP: $python not installed"; exit 77; }
agent=$(find "$build" -name hotspan-agent -type f -perm -u+x | head -n 1)
[ -n "$agent" ] || { echo "SKIP: hotspan-agent is not built"; exit 77; }
hotspan="$build/cli/hotspan"
demo="$build/examples/demo_server"
if [ ! -x "$hotspan" ] || [ ! -x "$demo" ]; then echo "SKIP: hotspan or demo_server not built"; exit 77; fi

work=$(mktemp -d)
agent_pid=""
cleanup() {
  if [ -n "$agent_pid" ]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$agent" --listen "127.0.0.1:$port" --db "$work/e2e.db" >"$work/agent.log" 2>&1 &
agent_pid=$!
ready=0
for _ in $(seq 100); do
  rc=0
  "$hotspan" endpoints --agent "$url" >/dev/null 2>&1 || rc=$?
  if [ "$rc" -ne 3 ]; then ready=1; break; fi
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "FAIL: hotspan-agent did not answer"; cat "$work/agent.log"; exit 1
fi

cpu_hz=1000
wall_hz=1000
DD_TRACE_AGENT_URL="$url" HOTSPAN_LOG_LEVEL=warn \
  HOTSPAN_PROFILING_CPU_HZ=$cpu_hz HOTSPAN_PROFILING_WALL_HZ=$wall_hz \
  "$demo" --seconds 5 --threads 2 --work 16
export HOTSPAN_AGENT_URL="$url"

# Profiles arrive every 2 s and at exit; wait until the store has them.
ok=0
for _ in $(seq 50); do
  if "$hotspan" profile --endpoint "GET /checkout" --json >"$work/profile.json" 2>/dev/null; then
    ok=1; break
  fi
  sleep 0.2
done
[ "$ok" = 1 ] || { echo "FAIL: no GET /checkout profile at the agent"; cat "$work/agent.log"; exit 1; }

"$hotspan" traces --endpoint "GET /checkout" --slowest 1 --json >"$work/traces.json"
span=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["traces"][0]["root_span_id"])' "$work/traces.json")
trace=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["traces"][0]["trace_id"])' "$work/traces.json")
"$hotspan" trace "$trace" --json >"$work/trace.json"
# The kernel's tick rate, when its config says (see the top).
config_hz=$( { zcat /proc/config.gz 2>/dev/null ||
  cat "/boot/config-$(uname -r)" 2>/dev/null || true; } |
  sed -n 's/^CONFIG_HZ=\([0-9][0-9]*\)$/\1/p')
"$hotspan" hotspots "$span" --children --json >"$work/hotspots.json"
"$hotspan" profile --endpoint "GET /report" --wall --json >"$work/report.json"
"$hotspan" hotspots "$span" --children --db "$work/e2e.db" --json >"$work/hotspots_db.json"
# The text rendering works on real data too.
"$hotspan" hotspots "$span" --children >"$work/hotspots.txt"
grep -q "^verdict: " "$work/hotspots.txt" || { echo "FAIL: no verdict line"; cat "$work/hotspots.txt"; exit 1; }

"$python" - "$work" "$span" "$cpu_hz" "$wall_hz" "${config_hz:-100}" <<'PY'
import json, math, sys
w, span = sys.argv[1], sys.argv[2]
cpu_hz, wall_hz, config_hz = (int(a) for a in sys.argv[3:6])
load = lambda n: json.load(open(f"{w}/{n}"))

hot = load("hotspots.json")
assert hot["resource"] == "GET /checkout", hot["resource"]
funcs = hot["cpu"]["functions"]
assert funcs, "no CPU samples for the slowest /checkout span"
assert funcs[0]["name"] == "compute_price_rules", [f["name"] for f in funcs[:5]]

# The ratio against the truth the demo measured (see the top).
root = next(s for s in load("trace.json")["spans"] if s["span_id"] == span)
cpu_ns, wall_ns = root["attrs"]["demo.cpu_ns"], root["attrs"]["demo.wall_ns"]
truth = cpu_ns / wall_ns
n_cpu = cpu_ns / 1e9 * min(cpu_hz, config_hz)
n_wall = wall_ns / 1e9 * wall_hz
tol = 3 * math.sqrt(1 / n_cpu + 1 / n_wall)
ratio = hot["cpu_wall_ratio"]
print("slowest /checkout: true cpu/wall %.3f (%.0f ms / %.0f ms), profiled %.3f,"
      " verdict %s; about %.0f CPU and %.0f wall samples, tolerance %.1f %%"
      % (truth, cpu_ns / 1e6, wall_ns / 1e6, ratio, hot["verdict"], n_cpu,
         n_wall, 100 * tol))
assert tol <= 0.4, "too few samples to judge: tolerance %.0f %%" % (100 * tol)
assert abs(ratio - truth) <= tol * truth, \
    "profiled cpu/wall %.3f is more than %.1f %% from the truth %.3f" % (
        ratio, 100 * tol, truth)
rule = lambda r: "cpu-bound" if r >= 0.5 else "waiting" if r <= 0.1 else "mixed"
assert hot["verdict"] == rule(ratio), (hot["verdict"], ratio)
# The verdict of the true ratio; when the tolerance band around it crosses
# a threshold, the verdict of the other side is as right.
band = {rule(truth * (1 - tol)), rule(truth), rule(truth * (1 + tol))}
assert hot["verdict"] in band, (hot["verdict"], truth, band)
if len(band) == 1:
    print("verdict %s is the true ratio's" % hot["verdict"])
else:
    print("true ratio within the tolerance of a threshold: %s accepted"
          % " or ".join(sorted(band)))

prof = load("profile.json")
top = prof["cpu"]["functions"]
assert top and top[0]["name"] == "compute_price_rules", [f["name"] for f in top[:5]]
assert prof["requests"] > 0

rep = load("report.json")
names = [f["name"] for f in rep["wall"]["functions"]]
assert "wait_for_ledger" in names, names[:20]
wl = next(f for f in rep["wall"]["functions"] if f["name"] == "wait_for_ledger")
assert wl["total_pct"] > 50, wl

# Both backends give the same answer for the same data.
db = load("hotspots_db.json")
assert db["cpu"]["functions"][0]["name"] == "compute_price_rules"
assert db["cpu"]["total_ns"] == hot["cpu"]["total_ns"], (db["cpu"]["total_ns"], hot["cpu"]["total_ns"])
print("ok: compute_price_rules tops /checkout (span and endpoint), wait_for_ledger in /report wall")
PY
