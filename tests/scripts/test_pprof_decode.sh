#!/usr/bin/env bash
# Decodes the profiles hotspan writes with independent tools: protoc with
# the official pprof profile.proto, and go tool pprof (top, label filters).
# Usage: test_pprof_decode.sh <build dir> <source dir>
# Exits 77 (skipped) only when protoc, go, readelf or the official proto is
# missing.
set -euo pipefail

build=${1:?build dir}
proto_dir=/usr/share/gocode/src/github.com/google/pprof/proto

skip() { echo "SKIP: $*"; exit 77; }
command -v protoc >/dev/null || skip "protoc not installed (protobuf-compiler)"
command -v go >/dev/null || skip "go not installed (golang-go)"
command -v readelf >/dev/null || skip "readelf not installed (binutils)"
[ -f "$proto_dir/profile.proto" ] ||
  skip "official profile.proto missing (golang-github-google-pprof-dev)"

tool=$build/tests/tools/pprof_dump
[ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# go needs a writable cache and home; it never goes to the network for
# 'go tool pprof' on local files, and GOPROXY=off makes sure of it.
export HOME=$work/home GOCACHE=$work/gocache GOPROXY=off GOFLAGS=
mkdir -p "$HOME"

fail() { echo "FAIL: $*"; exit 1; }

"$tool" "$work" > "$work/paths"
cpu=$(sed -n 1p "$work/paths")
wall=$(sed -n 2p "$work/paths")
[ "$cpu" = "$work/pprof_dump.cpu.20250314T092653Z.pb.gz" ] ||
  fail "unexpected cpu file name: $cpu"
[ "$wall" = "$work/pprof_dump.wall.20250314T092653Z.pb.gz" ] ||
  fail "unexpected wall file name: $wall"
for leftover in "$work"/.*.tmp "$work"/*.tmp; do
  if [ -e "$leftover" ]; then fail "temporary file left behind: $leftover"; fi
done

# --- protoc with the official schema -------------------------------------
for f in "$cpu" "$wall"; do
  gzip -t "$f" || fail "$f is not gzip"
  gunzip -c "$f" > "$work/raw.pb"
  protoc --decode=perftools.profiles.Profile -I "$proto_dir" profile.proto \
    < "$work/raw.pb" > "$work/decoded.txt" 2> "$work/protoc.err" ||
    { cat "$work/protoc.err"; fail "protoc cannot decode $f"; }
  [ -s "$work/decoded.txt" ] || fail "protoc decoded nothing from $f"
  first=$(grep -m1 '^string_table:' "$work/decoded.txt")
  [ "$first" = 'string_table: ""' ] || fail "string_table[0] is $first"
  for s in '"samples"' '"count"' '"nanoseconds"' '"pd_hot_leaf"' \
           '"pd_cold_leaf"' '"pd_outer"' '"span id"' '"local root span id"' \
           '"trace endpoint"' '"thread id"' '"thread name"' '"span_id"' \
           '"trace_id"' '"1234abcd5678ef01"' \
           '"00000000669e1a2b8899aabbccddeeff"' '"GET /checkout"' \
           '"worker-1"'; do
    grep -qF "string_table: $s" "$work/decoded.txt" ||
      fail "string $s missing from $f"
  done
  grep -q '^  has_functions: true' "$work/decoded.txt" ||
    fail "no mapping with functions in $f"
  grep -q 'num: 1311862289879068417' "$work/decoded.txt" ||
    fail "numeric span id label missing in $f"
  grep -q '^time_nanos: 1741944413000000000' "$work/decoded.txt" ||
    fail "time_nanos wrong in $f"
  grep -q '^duration_nanos: 1000000000' "$work/decoded.txt" ||
    fail "duration_nanos wrong in $f"
  grep -q '^period: 10000000' "$work/decoded.txt" || fail "period wrong in $f"
done
grep -qF 'string_table: "wall"' "$work/decoded.txt" ||
  fail "wall profile without the wall sample type"

# The build id of the main mapping is the program's own.
want=$(readelf -n "$tool" | sed -n 's/.*Build ID: *//p' | head -1)
[ -n "$want" ] || fail "$tool has no build id note"
gunzip -c "$cpu" | protoc --decode=perftools.profiles.Profile \
  -I "$proto_dir" profile.proto > "$work/cpu.txt"
grep -qF "string_table: \"$want\"" "$work/cpu.txt" ||
  fail "build id $want of $tool not in the profile"

# --- go tool pprof --------------------------------------------------------
pprof() { go tool pprof -symbolize=none "$@" 2> "$work/pprof.err" ||
            { cat "$work/pprof.err"; fail "go tool pprof $*"; }; }

# Rows of -top: flat flat% sum% cum cum% name. The first row is the top.
top_rows() { awk '/flat%/ {on=1; next} on && NF >= 6 {print}'; }

pprof -top "$cpu" > "$work/top.txt"
grep -q '^Type: cpu' "$work/top.txt" || fail "cpu profile type not cpu"
top_rows < "$work/top.txt" > "$work/rows.txt"
read -r flat flatp _ < "$work/rows.txt"
topname=$(head -1 "$work/rows.txt" | awk '{print $NF}')
[ "$topname" = pd_hot_leaf ] || { cat "$work/top.txt"; fail "top is $topname"; }
[ "$flatp" = "90.00%" ] || fail "pd_hot_leaf flat is $flatp ($flat)"
for fn in pd_cold_leaf pd_outer main; do
  awk '{print $NF}' "$work/rows.txt" | grep -x "$fn" >/dev/null || fail "$fn not in -top"
done

pprof -top "$wall" > "$work/wtop.txt"
grep -q '^Type: wall' "$work/wtop.txt" || fail "wall profile type not wall"
[ "$(top_rows < "$work/wtop.txt" | head -1 | awk '{print $NF}')" = pd_hot_leaf ] ||
  fail "wall top is not pd_hot_leaf"

# Label filters: the span's samples are exactly the 90 in pd_hot_leaf.
pprof -tagfocus 'span_id=^1234abcd5678ef01$' -top "$cpu" > "$work/span.txt"
grep -q 'accounting for 900ms, 90.00% of 1000ms total' "$work/span.txt" ||
  { cat "$work/span.txt"; fail "span_id filter did not keep 900ms"; }
top_rows < "$work/span.txt" | awk '{print $NF}' > "$work/span_fns.txt"
grep -qx pd_hot_leaf "$work/span_fns.txt" || fail "span filter lost pd_hot_leaf"
grep -qx pd_cold_leaf "$work/span_fns.txt" && fail "span filter kept pd_cold_leaf"

pprof -tagfocus 'span_id=^ffffffffffffffff$' -top "$cpu" > "$work/none.txt"
grep -q 'accounting for 0, 0% of' "$work/none.txt" ||
  { cat "$work/none.txt"; fail "a foreign span_id matched samples"; }

pprof -tagfocus 'trace endpoint=^GET /checkout$' -top "$cpu" > "$work/ep.txt"
grep -q 'accounting for 900ms, 90.00%' "$work/ep.txt" ||
  fail "trace endpoint filter did not keep 900ms"

# Samples without a span carry no span labels: ignoring every span keeps
# exactly the 100ms of pd_cold_leaf.
pprof -tagignore 'span_id=.' -top "$cpu" > "$work/nospan.txt"
grep -q 'accounting for 100ms, 10.00%' "$work/nospan.txt" ||
  { cat "$work/nospan.txt"; fail "samples without span carry span labels"; }

pprof -tags "$cpu" > "$work/tags.txt"
for k in 'span id' 'local root span id' 'trace endpoint' 'thread id' \
         'thread name' 'span_id' 'trace_id'; do
  grep -q "^ *$k: Total" "$work/tags.txt" || fail "label '$k' not listed"
done
echo "PASS"
