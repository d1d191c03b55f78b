#!/bin/bash
# Trace exporters against a backend that is down, failing, rate limiting,
# black-holing and slow: the application keeps its speed, memory stays
# under the budget, losses are counted, sending resumes, exit is prompt.
# See tests/scripts/export_backends.py. Args: build dir, source dir.
set -euo pipefail
build=$1
src=$2
py=/usr/bin/python3
if [ ! -x "$py" ]; then
  echo "SKIP: $py not found"
  exit 77
fi
exec "$py" "$src/tests/scripts/export_backends.py" "$build" "$src"
