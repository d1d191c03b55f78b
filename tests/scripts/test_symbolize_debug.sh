#!/usr/bin/env bash
# Separate debug files: a stripped library's static function is named, with
# file:line, only through its debug file, found by GNU build id under the
# debug directory or through .gnu_debuglink beside the library.
# Usage: test_symbolize_debug.sh <build dir> <source dir>
# Exits 77 (skipped) only when binutils (objcopy, strip, readelf) or dwz is
# missing.
set -euo pipefail

build=${1:?build dir}
for t in objcopy strip readelf dwz; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed (binutils, dwz)"; exit 77; }
done
tool=$build/tests/tools/pprof_dump
lib=$build/tests/tools/libhs_symtest.so
if [ ! -x "$tool" ] || [ ! -f "$lib" ]; then
  echo "FAIL: test tools not built"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Unstripped: the library's own .symtab and DWARF.
out=$("$tool" --symbolize "$lib" "$work/none")
# Word splitting is intended: $out holds "function file line".
# shellcheck disable=SC2086
set -- $out
[ "$1" = symtest_hidden_static ] || fail "unstripped: got '$out'"
case $2 in */symtest_lib.c) ;; *) fail "unstripped: file '$2'";; esac
[ "$3" -gt 0 ] || fail "unstripped: no line"
want_line=$3

# Stripped: only .dynsym is left, which lacks the static function.
objcopy --only-keep-debug "$lib" "$work/libhs_symtest.so.debug"
cp "$lib" "$work/stripped.so"
strip --strip-all "$work/stripped.so"
readelf -S "$work/stripped.so" | grep '\.symtab' >/dev/null && fail "strip kept .symtab"
out=$("$tool" --symbolize "$work/stripped.so" "$work/none")
# Word splitting is intended: $out holds "function file line".
# shellcheck disable=SC2086
set -- $out
[ "$1" != symtest_hidden_static ] || fail "stripped library still names the static function"

# Debug file by build id under the debug directory.
id=$(readelf -n "$lib" | sed -n 's/.*Build ID: *//p' | head -1)
[ -n "$id" ] || fail "library has no build id"
mkdir -p "$work/dbg/.build-id/${id:0:2}"
cp "$work/libhs_symtest.so.debug" "$work/dbg/.build-id/${id:0:2}/${id:2}.debug"
out=$("$tool" --symbolize "$work/stripped.so" "$work/dbg")
# Word splitting is intended: $out holds "function file line".
# shellcheck disable=SC2086
set -- $out
[ "$1" = symtest_hidden_static ] || fail "build-id debug file: got '$out'"
case $2 in */symtest_lib.c) ;; *) fail "build-id debug file: file '$2'";; esac
[ "$3" = "$want_line" ] || fail "build-id debug file: line $3, want $want_line"

# Debug file by .gnu_debuglink, beside the library (no build-id tree).
mkdir -p "$work/linked"
cp "$work/libhs_symtest.so.debug" "$work/linked/"
(cd "$work/linked" && cp ../stripped.so linked.so &&
   objcopy --add-gnu-debuglink=libhs_symtest.so.debug linked.so)
out=$("$tool" --symbolize "$work/linked/linked.so" "$work/none")
# Word splitting is intended: $out holds "function file line".
# shellcheck disable=SC2086
set -- $out
[ "$1" = symtest_hidden_static ] || fail "debuglink: got '$out'"
[ "$3" = "$want_line" ] || fail "debuglink: line $3, want $want_line"

# A debuglink whose CRC does not match (a debug file of another build) is
# not used.
mkdir -p "$work/bad"
cp "$work/linked/linked.so" "$work/bad/"
printf 'not the debug file' > "$work/bad/libhs_symtest.so.debug"
out=$("$tool" --symbolize "$work/bad/linked.so" "$work/none")
# Word splitting is intended: $out holds "function file line".
# shellcheck disable=SC2086
set -- $out
[ "$1" != symtest_hidden_static ] || fail "mismatched debuglink was used"
# dwz: the debug file moved shared DWARF into a common file named by its
# .gnu_debugaltlink (Debian's debug packages do this); the common file is
# found by its own build id.
mkdir -p "$work/dwz"
cp "$work/libhs_symtest.so.debug" "$work/dwz/a.debug"
cp "$work/libhs_symtest.so.debug" "$work/dwz/b.debug"
(cd "$work/dwz" && dwz -m common.debug -M /nonexistent/common.debug \
  a.debug b.debug) > "$work/dwz.log" 2>&1 ||
  fail "dwz could not process the debug files: $(cat "$work/dwz.log")"
readelf -S "$work/dwz/a.debug" | grep gnu_debugaltlink >/dev/null ||
  fail "dwz left no .gnu_debugaltlink in the debug file"
cid=$(readelf -n "$work/dwz/common.debug" | sed -n 's/.*Build ID: *//p' | head -1)
mkdir -p "$work/dbgz/.build-id/${id:0:2}" "$work/dbgz/.build-id/${cid:0:2}"
cp "$work/dwz/a.debug" "$work/dbgz/.build-id/${id:0:2}/${id:2}.debug"
cp "$work/dwz/common.debug" "$work/dbgz/.build-id/${cid:0:2}/${cid:2}.debug"
out=$("$tool" --symbolize "$work/stripped.so" "$work/dbgz")
# Word splitting is intended: $out holds "function file line".
# shellcheck disable=SC2086
set -- $out
[ "$1" = symtest_hidden_static ] || fail "dwz alt file: got '$out'"
[ "$3" = "$want_line" ] || fail "dwz alt file: line $3, want $want_line"

echo PASS
