#!/usr/bin/env bash
# Installs the Node packages of tests/npm (third-party tracers that the
# agent client tests run: dd-trace, the OpenTelemetry JS SDK) into
# <build dir>/npm/node_modules, at the versions pinned by
# tests/npm/package.json and package-lock.json. Nothing is installed
# globally; npm's download cache lives in <build dir>/npm/.npm-cache.
# A second run with the same package files does nothing (a stamp records
# what was installed), so every test can call it. Concurrent callers (ctest
# -j) are serialised with flock.
#
# Usage: scripts/npm-deps.sh <build dir>
# Prints the node_modules directory's parent on success.
# Exit codes: 0 installed (or already there); 77 node or npm missing, or
# the npm registry unreachable (the message says which); 1 other failures.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 <build dir>" >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
dest=$build/npm

for tool in node npm flock; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed" >&2
    exit 77
  fi
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "SKIP: node $(node --version) is older than 20" >&2
  exit 77
fi

mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9

stamp_want=$(cat "$src/tests/npm/package.json" \
  "$src/tests/npm/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp_want="$stamp_want node-$node_major"
if [ -f "$dest/.installed" ] && [ -d "$dest/node_modules" ] &&
  [ "$(cat "$dest/.installed")" = "$stamp_want" ]; then
  echo "$dest"
  exit 0
fi

rm -f "$dest/.installed"
cp "$src/tests/npm/package.json" "$src/tests/npm/package-lock.json" "$dest/"
log=$dest/install.log
# npm ci installs exactly the lock file's tree (replacing any old
# node_modules); no audit or funding requests, no update notice.
if (cd "$dest" && timeout 600 npm ci --no-audit --no-fund \
  --no-update-notifier --cache "$dest/.npm-cache" \
  --omit-lockfile-registry-resolved) >"$log" 2>&1; then
  echo "$stamp_want" >"$dest/.installed"
  echo "$dest"
  exit 0
fi

# Tell an unreachable registry (skip) from a broken install (failure).
if ! (cd "$dest" && timeout 30 npm ping --cache "$dest/.npm-cache") \
  >>"$log" 2>&1; then
  echo "SKIP: the npm registry cannot be reached (npm ping failed; see" \
    "$log)" >&2
  exit 77
fi
echo "npm-deps.sh: npm ci failed in $dest:" >&2
tail -n 30 "$log" >&2
exit 1
