#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a small consumer
# program against it the two ways users do:
#   1. pkg-config: shared library, then static libhotspan.a with
#      `pkg-config --static` (proves Libs.private/Requires.private);
#   2. CMake find_package(hotspan): hotspan::hotspan and
#      hotspan::hotspan_static (proves hotspanConfig.cmake recreates the
#      static library's pkg-config dependencies).
# Each consumer is run and must create and finish a span.
#
# Usage: test_install.sh <build dir> <source dir>
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
consumer_src="$src/tests/scripts/consumer"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hotspan-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Same compiler and sanitizer flags as the build under test: a sanitized
# libhotspan can only be loaded by a program built with the same runtime.
cache_get() {
  sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n 1
}
cc=$(cache_get CMAKE_C_COMPILER)
cc=${cc:-cc}
sanitize=$(cache_get HOTSPAN_SANITIZE)
san_flags=()
if [ -n "$sanitize" ]; then
  san_flags=("-fsanitize=$sanitize")
fi

echo "== install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log" >&2; fail "cmake --install"; }

# Only the public headers are installed, and all of them.
(cd "$src/include" && find hotspan -name '*.h' | sort) >"$tmp/want_headers"
(cd "$prefix/include" && find . -type f | sed 's|^\./||' | sort) \
  >"$tmp/got_headers"
diff -u "$tmp/want_headers" "$tmp/got_headers" ||
  fail "installed headers differ from include/hotspan"

libdir=$(dirname "$(find "$prefix" -name hotspan.pc -print -quit)")
libdir=${libdir%/pkgconfig}
[ -f "$libdir/libhotspan.a" ] || fail "libhotspan.a not installed"
ls "$libdir"/libhotspan.so.* >/dev/null 2>&1 || fail "libhotspan.so not installed"

# Program whose run proves it loaded the installed library. (grep reads
# all of its input, not -q: with pipefail an early exit of grep -q would
# kill the writer with SIGPIPE and fail the pipeline at random.)
check_needed() { # <binary> <shared|static>
  if [ "$2" = shared ]; then
    LD_LIBRARY_PATH="$libdir" ldd "$1" | grep "=> $libdir/libhotspan.so" >/dev/null ||
      fail "$1 does not load libhotspan.so from the install prefix"
  else
    if readelf -dW "$1" | grep 'NEEDED.*libhotspan' >/dev/null; then
      fail "$1 should contain hotspan statically but needs libhotspan.so"
    fi
  fi
}
run() { # <binary>
  local out
  out=$("$@") || fail "$1 exited with status $?"
  echo "$out"
  echo "$out" | grep "span created and finished" >/dev/null ||
    fail "$1 did not report a finished span"
}

echo "== pkg-config, shared"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists --print-errors hotspan || fail "pkg-config hotspan"
read -ra pc_cflags <<<"$(pkg-config --cflags hotspan)"
read -ra pc_libs <<<"$(pkg-config --libs hotspan)"
"$cc" "${san_flags[@]}" -std=c11 -Wall -Wextra -Werror "${pc_cflags[@]}" \
  "$consumer_src/consumer.c" -o "$tmp/pc_shared" "${pc_libs[@]}" ||
  fail "building against pkg-config --libs hotspan"
check_needed "$tmp/pc_shared" shared
LD_LIBRARY_PATH="$libdir" run "$tmp/pc_shared"

echo "== pkg-config --static, libhotspan.a"
read -ra pc_cflags <<<"$(pkg-config --static --cflags hotspan)"
read -ra pc_libs <<<"$(pkg-config --static --libs hotspan)"
# Keep every flag pkg-config gives, but make -lhotspan pick the archive
# even though the shared library sits next to it.
static_libs=()
for f in "${pc_libs[@]}"; do
  if [ "$f" = "-lhotspan" ]; then
    static_libs+=("-l:libhotspan.a")
  else
    static_libs+=("$f")
  fi
done
"$cc" "${san_flags[@]}" -std=c11 -Wall -Wextra -Werror "${pc_cflags[@]}" \
  "$consumer_src/consumer.c" -o "$tmp/pc_static" "${static_libs[@]}" ||
  fail "static link with pkg-config --static --libs hotspan" \
    "(missing Libs.private/Requires.private?)"
check_needed "$tmp/pc_static" static
run "$tmp/pc_static"
unset PKG_CONFIG_PATH

echo "== CMake find_package(hotspan)"
cmake_args=(-S "$consumer_src" -B "$tmp/cmake-build"
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc"
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-Wall -Wextra -Werror")
if [ -n "$sanitize" ]; then
  cmake_args+=(-DCMAKE_C_FLAGS="-Wall -Wextra -Werror ${san_flags[*]}"
    -DCMAKE_EXE_LINKER_FLAGS="${san_flags[*]}")
fi
cmake "${cmake_args[@]}" >"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log" >&2; fail "configuring the find_package consumer"; }
cmake --build "$tmp/cmake-build" -j2 >"$tmp/cmake-build.log" 2>&1 ||
  { cat "$tmp/cmake-build.log" >&2; fail "building the find_package consumer"; }
# CMake gives the shared consumer an RPATH to the prefix: no
# LD_LIBRARY_PATH needed, which is what users of find_package get.
ldd "$tmp/cmake-build/consumer_shared" | grep "=> $libdir/libhotspan.so" >/dev/null ||
  fail "consumer_shared does not load libhotspan.so from the prefix"
run "$tmp/cmake-build/consumer_shared"
check_needed "$tmp/cmake-build/consumer_static" static
run "$tmp/cmake-build/consumer_static"

echo "PASS: install, pkg-config (shared, static) and find_package" \
  "(shared, static) consumers"
