#!/usr/bin/env bash
# Runs tests/profiler/valgrind/prof_small.c under valgrind's memcheck: no invalid
# access, no use of uninitialised memory, no definite leak, in the signal
# handler, the rings, the aggregator, thread registration and the profile
# writer. Exits 77 (skipped) when valgrind is not installed.
# Usage: valgrind_profiler.sh <path to prof_small>
set -euo pipefail

prog=${1:?program}
command -v valgrind >/dev/null || {
  echo "SKIP: valgrind not installed"
  exit 77
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOTSPAN_LOG_LEVEL=warn

valgrind --quiet --error-exitcode=99 --leak-check=full \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --suppressions="$(dirname "$0")/valgrind.supp" \
  --track-origins=yes "$prog" "$work/out" || {
  echo "FAIL: valgrind reported errors or the program failed ($?)" >&2
  exit 1
}
ls "$work"/out/hotspan.cpu.*.pb.gz >/dev/null ||
  { echo "FAIL: no CPU profile written" >&2; exit 1; }
echo "PASS"
