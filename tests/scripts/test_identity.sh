#!/bin/bash
# Service, env and version set only in hotspan_config reach the profiles
# (Datadog upload tags, Pyroscope name and labels, pprof files) with the
# traces' runtime id, and the agent finds the profiles under that service.
# Args: build dir, source dir.
set -euo pipefail
py=/usr/bin/python3
if ! "$py" -c 'import msgpack' 2>/dev/null || ! command -v protoc >/dev/null; then
  echo "SKIP: needs /usr/bin/python3 with python3-msgpack, and protoc"
  exit 77
fi
exec "$py" "$2/tests/scripts/identity_check.py" "$1" "$2"
