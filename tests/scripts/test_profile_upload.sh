#!/usr/bin/env bash
# Takes a Datadog profile upload built by hotspan apart with independent
# parsers: Python's email package for the multipart body, protoc with the
# official pprof profile.proto for each attachment.
# Usage: test_profile_upload.sh <build dir> <source dir>
# Exits 77 (skipped) only when python3, protoc or the official proto is
# missing.
set -euo pipefail

build=${1:?build dir}
proto_dir=/usr/share/gocode/src/github.com/google/pprof/proto
py=/usr/bin/python3

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$py" ] || skip "Debian's /usr/bin/python3 not installed"
command -v protoc >/dev/null || skip "protoc not installed (protobuf-compiler)"
[ -f "$proto_dir/profile.proto" ] ||
  skip "official profile.proto missing (golang-github-google-pprof-dev)"

tool=$build/tests/tools/profile_upload_dump
[ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$tool" "$work" || { echo "FAIL: profile_upload_dump"; exit 1; }

# Parse with the email package; write each attachment out and check the
# parts and event.json.
"$py" - "$work" <<'PY'
import email, email.policy, json, re, sys
work = sys.argv[1]
ctype = open(f"{work}/content-type.txt").read()
body = open(f"{work}/body.bin", "rb").read()
def fail(msg):
    print("FAIL:", msg); sys.exit(1)
if not re.fullmatch(r'multipart/form-data; boundary=[0-9A-Za-z\'()+_,./:=?-]{1,70}', ctype):
    fail(f"content type {ctype!r}")
msg = email.message_from_bytes(
    b"Content-Type: " + ctype.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body,
    policy=email.policy.HTTP)
if not msg.is_multipart() or msg.defects:
    fail(f"not a clean multipart message: {msg.defects}")
parts = list(msg.iter_parts())
names = [p.get_param("name", header="content-disposition") for p in parts]
files = [p.get_filename() for p in parts]
if names != ["event", "cpu.pprof", "wall.pprof"]:
    fail(f"part names {names}")
if files != ["event.json", "cpu.pprof", "wall.pprof"]:
    fail(f"file names {files}")
for p in parts:
    if p.get_content_disposition() != "form-data" or p.defects:
        fail(f"part {p.get_filename()}: {p.get_content_disposition()} {p.defects}")
if parts[0].get_content_type() != "application/json":
    fail("event part is " + parts[0].get_content_type())
ev = json.loads(parts[0].get_payload(decode=True))
want = {"attachments": ["cpu.pprof", "wall.pprof"], "family": "native",
        "version": "4", "endpoint_counts": {"GET /checkout": 7},
        "start": "2025-03-14T09:26:53.000000Z",
        "end": "2025-03-14T09:27:53.000000Z"}
for k, v in want.items():
    if ev.get(k) != v:
        fail(f"event.json {k} = {ev.get(k)!r}, want {v!r}")
tags = dict(t.split(":", 1) for t in ev["tags_profiler"].split(","))
for k, v in {"service": "upload-test", "env": "ci", "version": "1.0",
             "host": "test-host", "language": "native",
             "runtime-id": "0c0ffee0-0000-4000-8000-000000000001"}.items():
    if tags.get(k) != v:
        fail(f"tag {k} = {tags.get(k)!r}, want {v!r}")
if "profiler_version" not in tags:
    fail("no profiler_version tag")
from datetime import datetime
for k in ("start", "end"):
    datetime.fromisoformat(ev[k].replace("Z", "+00:00"))
for p in parts[1:]:
    if p.get_content_type() != "application/octet-stream":
        fail(f"{p.get_filename()} is {p.get_content_type()}")
    open(f"{work}/{p.get_filename()}", "wb").write(p.get_payload(decode=True))
PY

for f in cpu wall; do
  gzip -t "$work/$f.pprof" || { echo "FAIL: $f.pprof is not gzip"; exit 1; }
  gunzip -c "$work/$f.pprof" |
    protoc --decode=perftools.profiles.Profile -I "$proto_dir" profile.proto \
      > "$work/$f.txt" 2> "$work/protoc.err" ||
    { cat "$work/protoc.err"; echo "FAIL: protoc cannot decode $f.pprof"; exit 1; }
  for s in '"span id"' '"local root span id"' '"trace endpoint"' \
           '"GET /checkout"' '"span_id"' '"1234abcd5678ef01"' '"upd_leaf"' \
           "\"$f\""; do
    grep -qF "string_table: $s" "$work/$f.txt" ||
      { echo "FAIL: $s missing from $f.pprof"; exit 1; }
  done
  grep -q 'num: 1311862289879068417' "$work/$f.txt" ||
    { echo "FAIL: numeric span id label missing in $f.pprof"; exit 1; }
done
echo "PASS"
