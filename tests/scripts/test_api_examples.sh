#!/usr/bin/env bash
# Checks the API reference in docs/api/:
#   1. every public function and type declared in include/hotspan/*.h is
#      linked from docs/api/README.md, the linked page exists and names it
#      in its Synopsis, and every page is reachable from the index;
#   2. every page but the index has an example, and every ```c block of
#      every page is a complete program: it must compile with
#      -std=c11 -Wall -Wextra -Werror against the public headers and the
#      built libhotspan.so, and exit 0 (HOTSPAN_LOG_LEVEL=warn, 20 s limit).
# Failures name the page (and the function, for index problems).
#
# Usage: test_api_examples.sh <build dir> <source dir>
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
docs="$src/docs/api"
index="$docs/README.md"

failures=()
fail() {
  echo "FAIL: $*" >&2
  failures+=("$*")
}

[ -f "$index" ] || {
  echo "FAIL: $index missing" >&2
  exit 1
}
[ -f "$build/libhotspan.so" ] || {
  echo "FAIL: $build/libhotspan.so missing (build the library first)" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hotspan-api-examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ------------------------------------------------------------ 1. index

# Public names: functions marked HOTSPAN_API (the name is on the same line),
# the typedef'd structs and enums, and function pointer types.
mapfile -t functions < <(grep -h 'HOTSPAN_API' "$src"/include/hotspan/*.h |
  grep -o 'hotspan_[a-z0-9_]*(' | tr -d '(' | sort -u)
mapfile -t types < <({
  grep -hE '^typedef (struct|enum) hotspan_[a-z0-9_]+' \
    "$src"/include/hotspan/*.h |
    sed -E 's/^typedef (struct|enum) (hotspan_[a-z0-9_]+).*/\2/'
  grep -hoE '^typedef [^;]*\(\*hotspan_[a-z0-9_]+\)' \
    "$src"/include/hotspan/*.h | sed -E 's/.*\(\*(hotspan_[a-z0-9_]+)\)$/\1/'
} | sort -u)
[ "${#functions[@]}" -gt 20 ] ||
  fail "found only ${#functions[@]} public functions in include/hotspan"

# Links of the index: "[`name`](page.md)" -> "name page.md". The backquotes
# are literal.
# shellcheck disable=SC2016
{ grep -oE '\[`hotspan_[a-z0-9_]+`\]\([a-z0-9_]+\.md\)' "$index" || true; } |
  sed -E 's/^\[`([a-z0-9_]+)`\]\(([a-z0-9_.]+)\)$/\1 \2/' |
  sort -u >"$tmp/links"

for name in "${functions[@]}" "${types[@]}"; do
  page=$(awk -v n="$name" '$1 == n { print $2; exit }' "$tmp/links")
  if [ -z "$page" ]; then
    fail "README.md: $name is not linked from the index"
    continue
  fi
  if [ ! -f "$docs/$page" ]; then
    fail "README.md: $name links to $page, which does not exist"
    continue
  fi
  # The page's Synopsis (up to the next heading) must declare the name.
  if ! awk '/^## /{ s = ($0 == "## Synopsis") } s' "$docs/$page" |
    grep -qw "$name"; then
    fail "$page: Synopsis does not mention $name"
  fi
done

# Every page is reachable from the index, and every link in it resolves.
for page in "$docs"/*.md; do
  base=$(basename "$page")
  [ "$base" = README.md ] && continue
  grep -qF "]($base)" "$index" || fail "$base: not linked from README.md"
done
while read -r target; do
  [ -f "$docs/$target" ] || fail "README.md: broken link to $target"
done < <({ grep -oE '\]\([a-z0-9_]+\.md\)' "$index" || true; } |
  sed -E 's/^\]\((.*)\)$/\1/' | sort -u)

# ------------------------------------------------------------ 2. examples

# Same compiler and sanitizers as the library under test: a sanitized
# libhotspan can only be loaded by a program built with the same runtime.
cache_get() {
  [ -f "$build/CMakeCache.txt" ] || return 0
  sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n 1
}
cc=$(cache_get CMAKE_C_COMPILER)
cc=${cc:-cc}
sanitize=$(cache_get HOTSPAN_SANITIZE)
san_flags=()
if [ -n "$sanitize" ]; then
  san_flags=("-fsanitize=$sanitize" -fno-sanitize-recover=all)
fi

nexamples=0
for page in "$docs"/*.md; do
  base=$(basename "$page" .md)
  [ "$base" = README ] && continue
  # Split the page's ```c blocks into base_1.c, base_2.c, ...
  awk -v out="$tmp/$base" '
    /^```c[ \t]*$/ { n++; file = out "_" n ".c"; inblock = 1; next }
    inblock && /^```[ \t]*$/ { inblock = 0; close(file); next }
    inblock { print > file }
    END { if (inblock) { print "unterminated" > "/dev/stderr"; exit 1 } }
  ' "$page" || {
    fail "$base.md: unterminated \`\`\`c block"
    continue
  }
  shopt -s nullglob
  blocks=("$tmp/$base"_*.c)
  shopt -u nullglob
  if [ "${#blocks[@]}" -eq 0 ]; then
    fail "$base.md: no example (no \`\`\`c block)"
    continue
  fi
  for c in "${blocks[@]}"; do
    label="$base.md example $(basename "$c" .c | sed 's/.*_//')"
    exe="${c%.c}"
    if ! "$cc" "${san_flags[@]}" -std=c11 -Wall -Wextra -Werror \
      -I"$src/include" "$c" -o "$exe" -L"$build" -lhotspan \
      -Wl,-rpath,"$build" -pthread >"$exe.cc.log" 2>&1; then
      fail "$label does not compile"
      sed 's/^/    /' "$exe.cc.log" >&2
      continue
    fi
    rc=0
    (cd "$tmp" && HOTSPAN_LOG_LEVEL=warn timeout 20 "$exe" \
      </dev/null >"$exe.out" 2>"$exe.err") || rc=$?
    if [ "$rc" -ne 0 ]; then
      if [ "$rc" -eq 124 ]; then
        fail "$label timed out (20 s)"
      else
        fail "$label exited with status $rc"
      fi
      echo "    --- stdout" >&2
      sed 's/^/    /' "$exe.out" >&2
      echo "    --- stderr" >&2
      sed 's/^/    /' "$exe.err" >&2
      continue
    fi
    nexamples=$((nexamples + 1))
  done
done

if [ "${#failures[@]}" -ne 0 ]; then
  echo >&2
  echo "${#failures[@]} problem(s) in docs/api:" >&2
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "docs/api: ${#functions[@]} functions and ${#types[@]} types indexed;" \
  "$nexamples examples compiled and ran"
