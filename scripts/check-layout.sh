#!/usr/bin/env bash
# Checks the rules of docs/architecture.md that a machine can check:
#   1. includes point down the layers only (the table below says which
#      folders each folder may include); a circle is possible only inside
#      one folder;
#   2. exporters see the tracer and the profiler only through
#      tracer/trace_sink.h and profiler/profile_sink.h; only lib/ includes tracer/build.h
#      and profiler/engine.h from outside their folders;
#   3. source files stay under 800 lines and functions under 120 lines,
#      unless the file says why near its top ("One file on purpose" or
#      "Long on purpose"); test files are exempt (a list of cases);
#   4. test sources live under tests/ only, by area (tests/<folder>/),
#      and include helpers from tests/support, never from another test;
#   5. with a build directory: hotspan-agent and hotspan contain no
#      pthread_create and no hotspan_profiler_ / hotspan_span_ symbol, and
#      HOTSPAN_PROFILING_ENABLED=1 hotspan-agent starts no profiler thread.
#
# Usage: scripts/check-layout.sh [BUILD-DIR]
# Exit status 0 when every rule holds; each violation is printed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${1:-}

fail=0
err() {
  echo "layout: $*" >&2
  fail=1
}

# Folder -> the folders its files may include (besides itself). "hotspan"
# is include/hotspan (the public API); "pb" the generated wire/*.pb-c.h.
declare -A allowed=(
  [common]="hotspan"
  [wire]="common"
  [context]="common hotspan"
  [tracer]="common context hotspan"
  [profiler]="common wire pb context hotspan"
  [exporter]="common wire pb context hotspan tracer/trace_sink.h profiler/profile_sink.h"
  [lib]="common context hotspan exporter tracer/trace_sink.h tracer/build.h profiler/profile_sink.h profiler/engine.h"
  [backend]="common wire pb hotspan/error.h hotspan/version.h"
  [agent]="common wire pb backend hotspan/error.h hotspan/version.h"
  [cli]="common wire pb backend hotspan/error.h hotspan/version.h"
)

may_include() { # folder header
  local folder=$1 h=$2 a
  case "$h" in
    "$folder"/*) return 0 ;;
    */*) ;;
    *.pb-c.h) h=pb ;;
    *) return 0 ;; # a file next to this one
  esac
  for a in ${allowed[$folder]}; do
    case "$a" in
      */*.h) [ "$h" = "$a" ] && return 0 ;;
      pb) [ "$h" = pb ] && return 0 ;;
      *) case "$h" in "$a"/*) return 0 ;; esac ;;
    esac
  done
  return 1
}

for folder in "${!allowed[@]}"; do
  [ -d "$folder" ] || continue
  while IFS= read -r f; do
    while IFS= read -r h; do
      may_include "$folder" "$h" ||
        err "$f includes \"$h\": $folder/ may include only ${allowed[$folder]}"
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done < <(find "$folder" -maxdepth 1 -name '*.[ch]' | sort)
done

# Sizes. Functions: clang-format puts a function's opening line at column
# 0 ending in "{" and its closing brace alone at column 0.
for folder in common wire context tracer profiler exporter lib backend agent cli; do
  [ -d "$folder" ] || continue
  while IFS= read -r f; do
    if head -n 40 "$f" | grep -q -e 'One file on purpose' -e 'Long on purpose'; then
      continue
    fi
    n=$(wc -l <"$f")
    [ "$n" -le 800 ] || err "$f has $n lines (limit 800, or say why at its top)"
    awk -v f="$f" '
      # A definition starts at column 0 (its signature may span lines) and
      # its body ends at the first "}" at column 0.
      !start && /^[A-Za-z_][^;]*\(/ && !/^(if|for|while|switch|do|return)[ (]/ { cand = NR; name = $0 }
      !start && cand && /;$/ { cand = 0 }
      !start && cand && /\{$/ { start = cand; cand = 0; next }
      start && /^\}/ { if (NR - start > 120) printf "%s:%d: function of %d lines (limit 120): %s\n", f, start, NR - start, name; start = 0 }
    ' "$f" | while IFS= read -r line; do
      echo "layout: $line" >&2
      echo x
    done | grep -q x && fail=1
  done < <(find "$folder" -maxdepth 1 -name '*.[ch]' | sort)
done

# Tests by area: no test source outside tests/, and a test includes shared
# helpers from tests/support only (a helper in another test's folder would
# be copied next).
while IFS= read -r f; do
  err "$f: test sources live under tests/<area>/"
done < <(git ls-files '*test_*.c' | grep -v -e '^tests/' -e '^fuzz/' || true)
while IFS= read -r line; do
  err "$line: shared test helpers live in tests/support/"
done < <(git ls-files 'tests/*.c' | xargs grep -n '^#include "[^"]*"' |
  grep -v -e '"support/' -e '"hotspan/' -e '"\(common\|wire\|context\|tracer\|profiler\|exporter\|lib\|backend\|agent\|cli\)/' -e '\.pb-c\.h"' || true)

# The binaries of the backend side carry no library code.
if [ -n "$build" ]; then
  for bin in "$build/agent/hotspan-agent" "$build/cli/hotspan"; do
    if [ ! -x "$bin" ]; then
      err "$bin not built"
      continue
    fi
    syms=$(nm "$bin" 2>/dev/null; nm -D "$bin" 2>/dev/null) || true
    if grep -E '(pthread_create|hotspan_profiler_|hotspan_span_)' <<<"$syms" >/dev/null; then
      err "$bin contains library symbols: $(grep -E -o '[A-Za-z_@.0-9]*(pthread_create|hotspan_profiler_|hotspan_span_)[A-Za-z_@.0-9]*' <<<"$syms" | sort -u | tr '\n' ' ')"
    fi
  done
  agent="$build/agent/hotspan-agent"
  if [ -x "$agent" ]; then
    tmp=$(mktemp -d)
    HOTSPAN_PROFILING_ENABLED=1 DD_PROFILING_ENABLED=1 \
      "$agent" --listen 127.0.0.1:0 --db "$tmp/a.db" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    for _ in $(seq 50); do
      grep -q 'listening on' "$tmp/out" && break
      sleep 0.1
    done
    grep -q 'listening on' "$tmp/out" || err "hotspan-agent did not start: $(cat "$tmp/err")"
    sleep 0.5
    names=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | sort -u | tr '\n' ' ')
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    case "$names" in
      *hotspan-prof* | *hotspan-wall* | *hotspan-export*)
        err "HOTSPAN_PROFILING_ENABLED=1 hotspan-agent runs profiler threads: $names"
        ;;
    esac
    if grep -q -i 'profil' "$tmp/out" "$tmp/err"; then
      err "hotspan-agent under HOTSPAN_PROFILING_ENABLED=1 speaks of profiling: $(grep -i -h profil "$tmp/out" "$tmp/err" | head -n 3)"
    fi
    rm -rf "$tmp"
  fi
fi

if [ "$fail" -ne 0 ]; then
  echo "layout: FAILED (rules in docs/architecture.md)" >&2
  exit 1
fi
echo "layout: ok"
