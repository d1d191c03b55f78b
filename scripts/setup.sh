#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, test, benchmark and
# profile hotspan. Safe to run again: when everything is present it only
# asks dpkg and exits within a second, without touching apt.
#
# Usage: scripts/setup.sh [--check]
#   --check   only report missing packages (exit 1 if any), install nothing
#
# Privileges: as root it installs directly. Otherwise it uses `sudo -n` when
# sudo can run without a password prompt; if it cannot, it prints the exact
# command to run as root and exits 1 (it never waits for a password, so it
# is safe in scripts and CI).
set -euo pipefail

# One package per line, grouped by what needs it. Add new ones here.
PACKAGES=(
  # Toolchain and build system
  build-essential
  cmake
  pkg-config
  git
  ca-certificates
  # clang: second compiler in CI, libFuzzer and sanitizer runtimes,
  # clang-format-14 for scripts/check-format.sh, clang-tidy/scan-build
  clang
  clang-format
  clang-tools
  libclang-rt-14-dev
  # CI: lint of the shell scripts
  shellcheck
  # Tests (cmocka unit tests)
  libcmocka-dev
  # Profiler: unwinding, symbolization (DWARF/ELF), gzip of pprof files
  libunwind-dev
  libdw-dev
  libelf-dev
  zlib1g-dev
  # Protobuf encoders (pprof, OTLP) and decoding our output in tests
  libprotobuf-c-dev
  protobuf-c-compiler
  protobuf-compiler
  # Exporters: Datadog msgpack, HTTP transport
  libmsgpack-dev
  libcurl4-openssl-dev
  # hotspan-agent: HTTP server and store
  libuv1-dev
  libsqlite3-dev
  libhttp-parser-dev
  libzstd-dev
  # Symbolization tests: strip/objcopy for separate debug files, dwz for
  # DWARF alt files
  binutils
  dwz
  # Independent decoders used by tests: msgpack, `go tool pprof` and the
  # official profile.proto
  python3
  python3-msgpack
  golang-go
  golang-github-google-pprof-dev
  # Peers measured against in bench/
  libdd-opentracing-dev
  libopentracing-dev
  libgoogle-perftools-dev
  valgrind
  hyperfine
  linux-perf
)

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "setup.sh: unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: this script installs Debian packages (Debian 12);" \
    "dpkg-query was not found. Install the equivalents of:" >&2
  printf '  %s\n' "${PACKAGES[@]}" >&2
  exit 1
fi

# A package counts as present only when dpkg says it is fully installed
# ("install ok installed"); half-configured or removed ones are reinstalled.
missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [ "$status" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

echo "setup.sh: missing: ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
  exit 1
fi

apt_install=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  echo "setup.sh: not root and sudo needs a password; run as root:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive" \
    "${apt_install[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update </dev/null
"${as_root[@]}" "${apt_install[@]}" </dev/null

# Verify, so that a package apt silently skipped does not go unnoticed.
still=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || still+=("$pkg")
done
if [ ${#still[@]} -ne 0 ]; then
  echo "setup.sh: still missing after apt-get: ${still[*]}" >&2
  exit 1
fi
echo "setup.sh: installed ${#missing[@]} package(s)"
