#!/usr/bin/env bash
# The main demo: installs what is missing, builds hotspan, starts
# hotspan-agent on a free local port with a temporary database, runs the
# demo service (examples/demo_server.c: a CPU-bound GET /checkout and a
# waiting GET /report, traced and profiled) against it for a few seconds,
# and then asks the agent with the hotspan CLI: the endpoints, the slowest
# traces, and the code hotspots of the slowest request.
#
# Usage: scripts/demo.sh [SECONDS]        (default 8)
#   HOTSPAN_BUILD_DIR    build directory (default: build)
#   HOTSPAN_SKIP_SETUP=1 do not run scripts/setup.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HOTSPAN_BUILD_DIR:-build}
case "$build" in
  /*) ;;
  *) build="$root/$build" ;;
esac
seconds=${1:-8}

if [ "${HOTSPAN_SKIP_SETUP:-0}" != 1 ]; then
  "$root/scripts/setup.sh"
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" >/dev/null
fi
cmake --build "$build" -j2 --target hotspan_cli demo_server >/dev/null
cmake --build "$build" -j2 --target hotspan-agent >/dev/null 2>&1 ||
  cmake --build "$build" -j2 --target hotspan_agent >/dev/null

agent=$(find "$build" -name hotspan-agent -type f -perm -u+x | head -n 1)
hotspan="$build/cli/hotspan"
[ -n "$agent" ] || { echo "demo: hotspan-agent was not built" >&2; exit 1; }

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

# A free port: bind port 0 and read what the kernel chose.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$agent" --listen "127.0.0.1:$port" --db "$work/hotspan.db" \
  >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 50); do
  if "$hotspan" endpoints --agent "$url" >/dev/null 2>&1 ||
     [ $? -eq 1 ]; then
    break
  fi
  kill -0 "$agent_pid" 2>/dev/null || {
    echo "demo: hotspan-agent did not start:" >&2
    cat "$work/agent.log" >&2
    exit 1
  }
  sleep 0.1
done

echo "== demo_server: ${seconds}s of GET /checkout and GET /report -> $url"
DD_TRACE_AGENT_URL="$url" HOTSPAN_LOG_LEVEL=${HOTSPAN_LOG_LEVEL:-warn} \
  "$build/examples/demo_server" --seconds "$seconds" --threads 4
# The last profiles and traces are sent at exit; give the agent a moment.
sleep 1

export HOTSPAN_AGENT_URL="$url"
echo
echo "== hotspan endpoints"
"$hotspan" endpoints
echo
echo "== hotspan traces --slowest 5"
"$hotspan" traces --slowest 5
slowest=$("$hotspan" traces --slowest 1 --endpoint "GET /checkout" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["traces"][0]["root_span_id"])')
echo
echo "== hotspan hotspots $slowest --children   (the slowest GET /checkout)"
"$hotspan" hotspots "$slowest" --children --limit 8
