#!/usr/bin/env bash
# Profiles a program that knows nothing of hotspan (tests/tools/prof_burn.c:
# two threads burning CPU in burn_alpha and burn_beta), turned on only by
# the environment:
#   LD_PRELOAD=libhotspan.so HOTSPAN_PROFILING_ENABLED=true
#   HOTSPAN_OUTPUT_DIR=DIR prog
# and through `hotspan run`. Checks that the last profile is written at
# exit (normal exit, and exit() called from a thread other than main while
# the others still run), what the profiles say (go tool pprof -top: the two
# burners share the CPU profile), the CLI's usage errors and exit codes.
#
# Usage: test_preload.sh <build dir> <source dir>
# Exits 77 (skipped) only when go is missing. Not registered in sanitizer
# builds: an instrumented libhotspan.so cannot be preloaded into an
# uninstrumented program.
set -euo pipefail

build=$(cd "${1:?build dir}" && pwd)
lib=$build/libhotspan.so
prog=$build/tests/tools/prof_burn
cli=$build/cli/hotspan

skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

command -v go >/dev/null || skip "go not installed (golang-go): the profiles' content cannot be checked"
for f in "$lib" "$prog" "$cli"; do
  [ -e "$f" ] || fail "$f not built"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home GOCACHE=$work/gocache GOPROXY=off GOFLAGS=
mkdir -p "$HOME"
unset HOTSPAN_PROFILING_ENABLED DD_PROFILING_ENABLED HOTSPAN_OUTPUT_DIR \
  HOTSPAN_LIBRARY LD_PRELOAD || true
export HOTSPAN_LOG_LEVEL=warn

# One CPU and one wall profile in $1, nothing else (no temporary files).
expect_profiles() {
  local dir=$1 what=$2
  local cpu wall
  cpu=$(find "$dir" -maxdepth 1 -name 'hotspan.cpu.*.pb.gz' | wc -l)
  wall=$(find "$dir" -maxdepth 1 -name 'hotspan.wall.*.pb.gz' | wc -l)
  [ "$cpu" -eq 1 ] || fail "$what: $cpu CPU profiles in $dir: $(ls -a "$dir")"
  [ "$wall" -eq 1 ] || fail "$what: $wall wall profiles in $dir"
  if find "$dir" -name '*.tmp' | grep . >/dev/null; then
    fail "$what: temporary file left in $dir"
  fi
  for f in "$dir"/hotspan.*.pb.gz; do
    gzip -t "$f" || fail "$what: $f is not gzip"
  done
}

# The CPU profile splits between the two burners (each 25..75 % flat), and
# their callers are on the stacks; the wall profile holds every thread.
check_content() {
  local dir=$1 what=$2
  local top
  top=$(go tool pprof -top -nodecount=50 "$dir"/hotspan.cpu.*.pb.gz 2>&1) ||
    fail "$what: go tool pprof cannot read the CPU profile: $top"
  for fn in burn_alpha burn_beta; do
    local pct
    pct=$(echo "$top" | awk -v f="$fn" '$NF == f { sub("%", "", $2); print int($2) }')
    [ -n "$pct" ] || fail "$what: $fn missing from the CPU profile:
$top"
    if [ "$pct" -lt 25 ] || [ "$pct" -gt 75 ]; then
      fail "$what: $fn has $pct % of the CPU profile:
$top"
    fi
  done
  echo "$top" | grep -w alpha >/dev/null || fail "$what: caller alpha missing"
  echo "$top" | grep -w beta >/dev/null || fail "$what: caller beta missing"
  local wall
  wall=$(go tool pprof -traces "$dir"/hotspan.wall.*.pb.gz 2>&1) ||
    fail "$what: go tool pprof cannot read the wall profile: $wall"
  echo "$wall" | grep -w burn_alpha >/dev/null || fail "$what: no wall sample in burn_alpha"
  echo "$wall" | grep 'thread name' >/dev/null || fail "$what: no thread name label"
}

# --- LD_PRELOAD, normal exit ---------------------------------------------
LD_PRELOAD=$lib HOTSPAN_PROFILING_ENABLED=true HOTSPAN_OUTPUT_DIR=$work/a \
  "$prog" 400
expect_profiles "$work/a" "normal exit"
check_content "$work/a" "normal exit"

# --- LD_PRELOAD, exit() from a non-main thread ----------------------------
LD_PRELOAD=$lib HOTSPAN_PROFILING_ENABLED=true HOTSPAN_OUTPUT_DIR=$work/b \
  "$prog" 400 exit-from-thread
expect_profiles "$work/b" "exit from a thread"
check_content "$work/b" "exit from a thread"
go tool pprof -traces "$work"/b/hotspan.wall.*.pb.gz | grep -w exiter >/dev/null ||
  fail "exit from a thread: the exiting thread is not in the wall profile"

# --- Datadog's variable, and "off" ----------------------------------------
LD_PRELOAD=$lib DD_PROFILING_ENABLED=1 HOTSPAN_OUTPUT_DIR=$work/c "$prog" 200
expect_profiles "$work/c" "DD_PROFILING_ENABLED"
LD_PRELOAD=$lib HOTSPAN_PROFILING_ENABLED=false HOTSPAN_OUTPUT_DIR=$work/off \
  "$prog" 100
[ ! -e "$work/off" ] || fail "profiles written with profiling off"
# A bad value is ignored with a warning, never fatal.
out=$(LD_PRELOAD=$lib HOTSPAN_PROFILING_ENABLED=perhaps \
  HOTSPAN_OUTPUT_DIR=$work/bad "$prog" 50 2>&1)
echo "$out" | grep 'HOTSPAN_PROFILING_ENABLED' >/dev/null ||
  fail "no warning for a bad HOTSPAN_PROFILING_ENABLED: $out"
[ ! -e "$work/bad" ] || fail "profiles written with a bad enable value"

# --- hotspan run ------------------------------------------------------------
"$cli" run --output "$work/d" --hz 199 --wall-hz 49 -- "$prog" 400 \
  exit-from-thread
expect_profiles "$work/d" "hotspan run"
check_content "$work/d" "hotspan run"
# The default output directory is ./hotspan-profiles.
(cd "$work" && "$cli" run "$prog" 100)
expect_profiles "$work/hotspan-profiles" "hotspan run, default directory"

# The program's exit status is passed on.
set +e
"$cli" run --output "$work/e" -- sh -c 'exit 3'
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "hotspan run returned $rc for a program exiting 3"

# Usage errors exit 2, with a message; --help exits 0.
expect_rc() {
  local want=$1
  shift
  set +e
  "$@" >"$work/out" 2>&1
  local rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, not $want: $(cat "$work/out")"
}
expect_rc 2 "$cli"
expect_rc 2 "$cli" frobnicate
expect_rc 2 "$cli" run
expect_rc 2 "$cli" run --hz
expect_rc 2 "$cli" run --hz 0 -- true
expect_rc 2 "$cli" run --hz fast -- true
expect_rc 2 "$cli" run --wall-hz 5000 -- true
expect_rc 2 "$cli" run --bogus -- true
expect_rc 2 "$cli" run --output "" -- true
grep -q 'hotspan --help' "$work/out" || fail "usage error without a hint"
expect_rc 0 "$cli" --help
grep -q 'hotspan run' "$work/out" || fail "--help does not describe run"
expect_rc 0 "$cli" run --help
expect_rc 0 "$cli" --version
expect_rc 127 "$cli" run -- "$work/no-such-program"

# The library is found next to an installed binary, or by HOTSPAN_LIBRARY.
mkdir -p "$work/inst/bin" "$work/inst/lib/x86_64-linux-gnu" "$work/lone"
cp "$cli" "$work/inst/bin/hotspan"
cp "$lib" "$work/inst/lib/x86_64-linux-gnu/libhotspan.so"
"$work/inst/bin/hotspan" run --output "$work/f" -- "$prog" 100
expect_profiles "$work/f" "installed layout"
cp "$cli" "$work/lone/hotspan"
expect_rc 127 "$work/lone/hotspan" run -- "$prog" 10
grep -q 'HOTSPAN_LIBRARY' "$work/out" || fail "no hint to HOTSPAN_LIBRARY"
HOTSPAN_LIBRARY=$lib "$work/lone/hotspan" run --output "$work/g" -- "$prog" 100
expect_profiles "$work/g" "HOTSPAN_LIBRARY"
HOTSPAN_LIBRARY=$work/missing.so expect_rc 127 "$work/lone/hotspan" run -- true

echo "PASS"
