#!/usr/bin/env bash
# The main demo: installs what is missing, builds hotspan, and runs the
# hello_trace example, which traces one request (continuing an incoming W3C
# context, two child spans, one failing downstream call) and prints the
# propagation headers it sends and the trace it wrote, as a tree.
#
# Usage: scripts/demo.sh [OUTPUT-DIR]
#   HOTSPAN_BUILD_DIR  build directory (default: build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HOTSPAN_BUILD_DIR:-build}
case "$build" in
  /*) ;;
  *) build="$root/$build" ;;
esac

"$root/scripts/setup.sh"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" >/dev/null
fi
cmake --build "$build" -j2 --target hello_trace >/dev/null
HOTSPAN_LOG_LEVEL=${HOTSPAN_LOG_LEVEL:-warn} "$build/examples/hello_trace" "$@"
