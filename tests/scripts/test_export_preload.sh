#!/bin/bash
# LD_PRELOAD profiling with DD_TRACE_AGENT_URL set uploads the program's
# profiles to that address at exit, and to Pyroscope when asked.
# Args: build dir, source dir.
set -euo pipefail
py=/usr/bin/python3
if grep -qE '^HOTSPAN_SANITIZE:STRING=.+' "$1/CMakeCache.txt"; then
  echo "SKIP: sanitizer build (the preloaded library needs its runtime)"
  exit 77
fi
if ! "$py" -c 'import msgpack' 2>/dev/null; then
  echo "SKIP: needs /usr/bin/python3 with python3-msgpack"
  exit 77
fi
exec "$py" "$2/tests/scripts/export_checks.py" "$1" "$2" preload
