#!/bin/bash
# The Datadog Agent's rate_by_service answer decides later traces.
# Args: build dir, source dir.
set -euo pipefail
py=/usr/bin/python3
if ! "$py" -c 'import msgpack' 2>/dev/null; then
  echo "SKIP: needs /usr/bin/python3 with python3-msgpack"
  exit 77
fi
exec "$py" "$2/tests/scripts/export_checks.py" "$1" "$2" rates
