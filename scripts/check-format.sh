#!/usr/bin/env bash
# Checks that every C/C++ source of the project is formatted with
# clang-format 14 and the repository's .clang-format.
#
# Usage: scripts/check-format.sh [--fix] [FILE...]
#   --fix   reformat the files in place instead of reporting
#   FILE    check only these files (default: the whole project)
#
# Which files: *.c, *.h, *.cpp known to git (tracked, or new and not
# ignored), so build directories and generated sources (protoc-c output
# lives in the build tree) are never looked at. Outside a git checkout it
# falls back to `find`, skipping build*/ directories. Excluded on purpose:
#   nginx/   follows nginx's own code style, not ours
set -euo pipefail

CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
EXCLUDE_RE='^(nginx/|build[^/]*/)'

fix=0
if [ "${1:-}" = "--fix" ]; then
  fix=1
  shift
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "check-format.sh: $CLANG_FORMAT not found (scripts/setup.sh" \
    "installs it)" >&2
  exit 2
fi

files=()
if [ $# -gt 0 ]; then
  files=("$@")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    # ls-files --cached also lists files deleted but not yet committed.
    [ -f "$f" ] && files+=("$f")
  done < <(git ls-files -z --cached --others --exclude-standard \
    -- '*.c' '*.h' '*.cpp' | grep -zEv "$EXCLUDE_RE" || true)
else
  while IFS= read -r -d '' f; do
    files+=("${f#./}")
  done < <(find . -path './build*' -prune -o -path './nginx' -prune -o \
    -path './.git' -prune -o -type f \( -name '*.c' -o -name '*.h' -o \
    -name '*.cpp' \) -print0)
fi

if [ ${#files[@]} -eq 0 ]; then
  echo "check-format.sh: no files to check"
  exit 0
fi

if [ "$fix" -eq 1 ]; then
  "$CLANG_FORMAT" -i --style=file "${files[@]}"
  echo "check-format.sh: formatted ${#files[@]} file(s)"
  exit 0
fi

# --dry-run --Werror prints each offending place and fails; collect the
# names of the files so the summary says what to run.
bad=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --dry-run --Werror --style=file "$f"; then
    bad+=("$f")
  fi
done
if [ ${#bad[@]} -ne 0 ]; then
  echo "check-format.sh: ${#bad[@]} of ${#files[@]} file(s) not formatted;" \
    "fix with: scripts/check-format.sh --fix ${bad[*]}" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} file(s) formatted correctly"
