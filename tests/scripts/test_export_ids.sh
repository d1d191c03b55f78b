#!/bin/bash
# A 128-bit trace id arrives identical through the Datadog exporter
# (_dd.p.tid + low 64 bits, decoded by python3-msgpack) and the OTLP one
# (16 bytes, decoded by protoc). Args: build dir, source dir.
set -euo pipefail
py=/usr/bin/python3
if ! "$py" -c 'import msgpack' 2>/dev/null || ! command -v protoc >/dev/null; then
  echo "SKIP: needs /usr/bin/python3 with python3-msgpack, and protoc"
  exit 77
fi
exec "$py" "$2/tests/scripts/export_checks.py" "$1" "$2" ids
