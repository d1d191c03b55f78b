#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs
# each for the given number of seconds, starting from the committed seed
# corpus in fuzz/corpus/<target>/.
#
#   scripts/run-fuzzers.sh [seconds-per-target]     (default 20)
#
# Environment: HOTSPAN_FUZZ_BUILD_DIR (default <source>/build-fuzz),
# HOTSPAN_FUZZ_JOBS (build parallelism, default 2).
# Exits nonzero if a target finds a crash, a sanitizer report or a property
# violation; the reproducer is left in <build>/fuzz-artifacts/<target>/ and
# can be replayed with `<build>/fuzz/<target> <file>`. The corpus grown
# during the run stays in <build>/fuzz-corpus/<target>/ (the committed seed
# corpus is not modified).
set -euo pipefail

secs=${1:-20}
case $secs in
'' | *[!0-9]*)
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
  ;;
esac

src=$(cd "$(dirname "$0")/.." && pwd)
build=${HOTSPAN_FUZZ_BUILD_DIR:-$src/build-fuzz}
jobs=${HOTSPAN_FUZZ_JOBS:-2}
targets="fuzz_extract_datadog fuzz_extract_tracecontext fuzz_extract_b3multi fuzz_extract_b3
fuzz_agent_dd_msgpack fuzz_agent_pprof fuzz_agent_dd_profile fuzz_agent_pyroscope
fuzz_agent_otlp fuzz_agent_otlp_json"

cmake -S "$src" -B "$build" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHOTSPAN_BUILD_FUZZ=ON -DHOTSPAN_BUILD_TESTS=OFF \
  -DHOTSPAN_BUILD_EXAMPLES=OFF -DHOTSPAN_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target fuzz

status=0
for t in $targets; do
  corpus=$build/fuzz-corpus/$t
  artifacts=$build/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  echo "== $t: ${secs}s"
  # -max_len: headers beyond a few KB only repeat what the codecs already
  # reject by length; longer inputs just slow the search down. The agent's
  # decoders take payloads, which need more room, and no header dictionary.
  case $t in
  fuzz_agent_*) opts=(-max_len=65536) ;;
  *) opts=(-max_len=4096 -dict="$src/fuzz/propagation.dict") ;;
  esac
  if ! "$build/fuzz/$t" -max_total_time="$secs" "${opts[@]}" \
    -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    "$corpus" "$src/fuzz/corpus/$t" 2>"$build/fuzz-$t.log"; then
    echo "!! $t failed; log: $build/fuzz-$t.log" >&2
    tail -n 40 "$build/fuzz-$t.log" >&2
    status=1
  else
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' \
      "$build/fuzz-$t.log" || true
  fi
done
exit $status
