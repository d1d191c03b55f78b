#!/usr/bin/env bash
# Builds hotspan if needed and runs the whole test suite.
#
# Usage: scripts/test.sh [CTEST-ARGS...]
#   e.g. scripts/test.sh -L concurrency      (only the threaded tests)
#        scripts/test.sh -R unit.test_buf    (one test)
#
# Environment:
#   HOTSPAN_SKIP_SETUP=1  do not run scripts/setup.sh first
#   HOTSPAN_BUILD_DIR   build directory (default: build); a relative path is
#                       taken from the top of the source tree
#   HOTSPAN_CMAKE_ARGS  extra arguments for the first configure only, e.g.
#                       "-DHOTSPAN_SANITIZE=address,undefined"
#
# The build directory is configured when it has no CMakeCache.txt yet, then
# always built (incrementally), then tested with
#   ctest --output-on-failure -j2
# (a selection that matches no test is an error, not a silent pass).
# A test that cannot run here (a tool is missing) exits 77 and ctest shows
# it as skipped, with the reason in its output. With CI=true a skip fails
# the run: CI installs every tool, so a skip there means one went missing
# and a red test must not turn green that way.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HOTSPAN_BUILD_DIR:-build}
case "$build" in
  /*) ;;
  *) build="$root/$build" ;;
esac

# Installs missing Debian packages first (a no-op check when all are there),
# so that this one command works on a fresh machine.
if [ "${HOTSPAN_SKIP_SETUP:-0}" != 1 ]; then
  "$root/scripts/setup.sh"
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  # Word splitting of HOTSPAN_CMAKE_ARGS is intended: it holds options.
  # shellcheck disable=SC2086
  cmake -S "$root" -B "$build" ${HOTSPAN_CMAKE_ARGS:-}
fi
cmake --build "$build" -j2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
ctest --test-dir "$build" --output-on-failure -j2 --no-tests=error "$@" |
  tee "$log" || rc=$?
# ctest's summary lists them as "<n> - <name> (Skipped)".
skipped=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' "$log" |
  tr '\n' ' ')
if [ -n "$skipped" ]; then
  echo "skipped (a tool is missing; see each test's output): $skipped"
  if [ "${CI:-}" = true ]; then
    echo "FAIL: CI=true and tests were skipped" >&2
    [ "$rc" -ne 0 ] || rc=1
  fi
fi
exit "$rc"
