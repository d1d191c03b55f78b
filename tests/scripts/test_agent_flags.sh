#!/usr/bin/env bash
# hotspan-agent's command line: --help lists every flag, a bad flag or value
# exits 2 with a message naming it (and creates no database), and the
# agent starts with each flag given in both spellings (--flag value and
# --flag=value), then stops with exit 0 on SIGTERM.
set -euo pipefail

build=$1
agent=$build/agent/hotspan-agent
[ -x "$agent" ] || { echo "SKIP: $agent not built"; exit 77; }
work=$(mktemp -d)
pid=
cleanup() {
  [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }

help=$("$agent" --help)
for f in --listen --db --retention --max-db-size --db-cache --help --version; do
  grep -qe "$f" <<<"$help" || fail "--help does not list $f"
done

# bad_usage EXPECTED-TEXT ARGS...: exit code 2, the text on stderr, no
# database file left behind.
bad_usage() {
  local want=$1
  shift
  local rc=0
  "$agent" --listen 127.0.0.1:0 --db "$work/bad.db" "$@" \
    >"$work/out" 2>"$work/err" || rc=$?
  [ "$rc" = 2 ] || fail "$*: exit $rc, want 2"
  grep -qF -- "$want" "$work/err" ||
    fail "$*: stderr does not say '$want': $(cat "$work/err")"
  [ ! -e "$work/bad.db" ] || fail "$*: created a database"
}
bad_usage "unknown option '--nope'" --nope
bad_usage "--retention" --retention 7x
bad_usage "--max-db-size" --max-db-size -5
bad_usage "--db-cache" --db-cache 1M
bad_usage "--db-cache" --db-cache 17G
bad_usage "--db-cache" --db-cache lots
bad_usage "needs a value" --db-cache

# start_stop ARGS...: the start line names the address, SIGTERM exits 0.
start_stop() {
  # Emptied here, before the agent starts: the background job's own
  # redirection may happen after the first check below, which must not
  # see the previous run's start line.
  : >"$work/out"
  : >"$work/err"
  "$agent" --listen 127.0.0.1:0 --db "$work/ok.db" "$@" \
    >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 100); do
    grep -q "listening on 127.0.0.1:" "$work/out" && break
    sleep 0.05
  done
  grep -q "listening on 127.0.0.1:" "$work/out" ||
    fail "$*: no start line: $(cat "$work/out" "$work/err")"
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=
  [ "$rc" = 0 ] || fail "$*: exit $rc after SIGTERM, want 0"
}
start_stop --db-cache 32M --retention 12h --max-db-size 2G
start_stop --db-cache=1G --retention=0 --max-db-size=500M
[ -s "$work/ok.db" ] || fail "no database created"
echo "ok: flags parsed, bad ones refused with exit 2, start and stop clean"
