#!/usr/bin/env bash
# Checks the ABI surface of libhotspan.so:
#   - it exports only the public API (hotspan_*), the thread context TLS
#     symbol otel_thread_ctx_v1, and the allow-list below; never an
#     internal hs_* symbol;
#   - every function declared HOTSPAN_API in include/hotspan/*.h is
#     actually defined (a declared but unimplemented function links in no
#     test until a user calls it);
#   - otel_thread_ctx_v1 is a global TLS object, as external profilers
#     expect;
#   - the static TLS block (PT_TLS MemSiz) stays tiny, so that the library
#     can be dlopen()ed into a running program: glibc reserves only a small
#     surplus for initial-exec TLS of libraries loaded later.
#
# Usage: test_exports.sh <build dir> <source dir>
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
lib="$build/libhotspan.so"

# Deliberate exports that are not hotspan_*, one per line with the reason.
# Keep in sync with hotspan.map.
ALLOWED=(
  # The OTEP 4947 thread context pointer read by external profilers.
  otel_thread_ctx_v1
  # Interposed so threads created after the profiler starts get registered
  # (only once the profiler exports it; allowed, not required).
  pthread_create
)
# Largest static TLS block allowed, in bytes.
MAX_TLS=64

fail=0
err() {
  echo "FAIL: $*" >&2
  fail=1
}

[ -f "$lib" ] || {
  echo "FAIL: $lib not found" >&2
  exit 1
}

# Defined dynamic symbols, without version suffix. The version node itself
# (HOTSPAN_0, type A) is not a symbol of ours.
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
  sort -u >"${TMPDIR:-/tmp}/hotspan-exports.$$"
trap 'rm -f "${TMPDIR:-/tmp}/hotspan-exports.$$"' EXIT
exports=$(cat "${TMPDIR:-/tmp}/hotspan-exports.$$")

echo "exported symbols: $(echo "$exports" | grep -c . || true)"
while IFS= read -r sym; do
  [ -n "$sym" ] || continue
  case "$sym" in
    hs_* | _hs_*) err "internal symbol exported: $sym" ;;
    hotspan_*) ;;
    *)
      ok=0
      for a in "${ALLOWED[@]}"; do
        [ "$sym" = "$a" ] && ok=1
      done
      [ "$ok" -eq 1 ] || err "unexpected export: $sym (not hotspan_*, not" \
        "in the allow-list of this script)"
      ;;
  esac
done <<<"$exports"

# Every HOTSPAN_API function of the public headers is defined. Comments and
# directives are dropped first (the preprocessor in -fpreprocessed mode
# strips comments without expanding macros); declarations may span lines,
# so each header becomes one line and the identifier just before the first
# "(" after HOTSPAN_API is taken.
declared=$(for h in "$src"/include/hotspan/*.h; do
  cpp -fpreprocessed -dD -P -w "$h" | sed '/^[[:space:]]*#/d' | tr '\n' ' ' |
    { grep -oE 'HOTSPAN_API[^;(]*\(' || true; } |
    sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/'
done | sort -u)
[ -n "$declared" ] || err "found no HOTSPAN_API declarations in the headers"
for fn in $declared; do
  grep -qx "$fn" <<<"$exports" ||
    err "declared in include/hotspan but not exported: $fn"
done
echo "public functions declared: $(echo "$declared" | wc -l)"

# otel_thread_ctx_v1: global TLS object. readelf --dyn-syms columns:
# Num Value Size Type Bind Vis Ndx Name
tls_line=$(readelf --dyn-syms -W "$lib" | awk '$8 ~ /^otel_thread_ctx_v1(@|$)/')
if [ -z "$tls_line" ]; then
  err "otel_thread_ctx_v1 is not exported"
else
  read -r _ _ size type bind _ ndx _ <<<"$tls_line"
  [ "$type" = TLS ] || err "otel_thread_ctx_v1 has type $type, want TLS"
  [ "$bind" = GLOBAL ] || err "otel_thread_ctx_v1 has binding $bind, want GLOBAL"
  [ "$ndx" != UND ] || err "otel_thread_ctx_v1 is undefined"
  [ "$size" = 8 ] || err "otel_thread_ctx_v1 has size $size, want 8 (a pointer)"
fi

# Static TLS size: MemSiz of the PT_TLS program header (0 if none).
tls_hex=$(readelf -lW "$lib" | awk '$1 == "TLS" { print $6 }')
tls_size=$((${tls_hex:-0}))
echo "static TLS: $tls_size bytes (max $MAX_TLS)"
[ "$tls_size" -le "$MAX_TLS" ] ||
  err "PT_TLS MemSiz is $tls_size bytes, more than $MAX_TLS: move per-thread" \
    "state out of __thread variables (see context/thread_ctx.h)"

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "PASS: exports and TLS"
