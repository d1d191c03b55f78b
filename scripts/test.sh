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
ctest --test-dir "$build" --output-on-failure -j2 --no-tests=error "$@"
