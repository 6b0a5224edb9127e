#!/usr/bin/env bash
# Runs test files of Redis's own tcl test suite in external-server mode twice, against a
# redis-server directly and through respite, and reports the tests whose outcome differs.
# Not part of .ci/run: it needs Redis's source tree, which is not in this repository.
#
# Redis's test suite is not vendored here. Get the one matching the installed server, e.g.
# on Debian 12 (needs a deb-src line for bookworm in the apt sources):
#   apt-get source --download-only redis=$(dpkg-query -W -f='${Version}' redis-server)
#   dpkg-source -x redis_*.dsc /tmp/redis-src
# then:
#   REDIS_SRC=/tmp/redis-src tests/redis-suite/run.sh unit/multi unit/pubsub unit/type/list
#
# Environment:
#   REDIS_SRC      Redis source tree (with tests/test_helper.tcl); required
#   RESPITE_BIN    default build/respite
#   SUITE_TAGS     tag filter for test_helper (default "-resp3": respite refuses HELLO 3)
#   SUITE_SKIP_RESP3  1 (default): also skip, in both runs, the tests whose body says
#                  `hello 3` (resp3_tests.py); untagged, they would abort their file
#   SUITE_SKIPFILE more test names to skip in both runs (test_helper --skipfile format);
#                  default tests/redis-suite/known-differences.txt (documented differences;
#                  SUITE_SKIPFILE=/dev/null runs them too)
#   SUITE_DB       if set, respite's upstream URL names this database (the suite's clients
#                  SELECT 9: with SUITE_DB=9 they stay on the shared connection)
#   SUITE_TIMEOUT  seconds per test file and target (default 600)
#   OUT            output directory (default /tmp/respite-redis-suite)
# Ports: two free loopback ports are picked. Every process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
: "${REDIS_SRC:?set REDIS_SRC to a Redis source tree (see the comment at the top)}"
RESPITE_BIN=${RESPITE_BIN:-$ROOT/build/respite}
TAGS=${SUITE_TAGS:--resp3}
TMO=${SUITE_TIMEOUT:-600}
OUT=${OUT:-/tmp/respite-redis-suite}
[[ -x $RESPITE_BIN ]] || { echo "no respite binary at $RESPITE_BIN (build first)" >&2; exit 2; }
[[ -f $REDIS_SRC/tests/test_helper.tcl ]] || { echo "$REDIS_SRC has no tests/test_helper.tcl" >&2; exit 2; }
(($# > 0)) || { echo "usage: $0 unit/NAME [unit/NAME...]" >&2; exit 2; }
mkdir -p "$OUT"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do stop_pid "$p"; done; }
trap cleanup EXIT

# One run of one test file: fresh redis-server (and respite), outcomes to $OUT/<tag>.out.
run_one() {
  local unit=$1 target=$2 tag=$3 skipfile=$4
  local rport pport port work
  rport=$(free_port)
  work=$(mktemp -d)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --enable-debug-command yes --enable-module-command yes --logfile "$OUT/$tag.redis.log" >/dev/null 2>&1 &
  local rpid=$!
  PIDS+=("$rpid")
  wait_ping "$rport" || { echo "redis-server did not start" >&2; return 1; }
  port=$rport
  local xpid=""
  if [[ $target == respite ]]; then
    pport=$(free_port)
    "$RESPITE_BIN" --upstream "redis://127.0.0.1:$rport${SUITE_DB:+/$SUITE_DB}" --listen "127.0.0.1:$pport" --admin "" \
      >"$OUT/$tag.respite.log" 2>&1 &
    xpid=$!
    PIDS+=("$xpid")
    wait_ping "$pport" || { echo "respite did not start" >&2; return 1; }
    port=$pport
  fi
  (cd "$REDIS_SRC" && timeout "$TMO" tclsh tests/test_helper.tcl --host 127.0.0.1 --port "$port" \
     --single "$unit" --tags "$TAGS" --timeout 120 --skipfile "$skipfile" 2>&1) | sed -u -r 's/\x1b\[[0-9;]*m//g' >"$OUT/$tag.out" || true
  [[ -n $xpid ]] && stop_pid "$xpid"
  stop_pid "$rpid"
  rm -rf "$work"
}

# Test names by outcome: "ok<TAB>name", "err<TAB>name", "exception" when the file aborted.
outcomes() {
  sed -n -E 's/^\[(ok|err)\]: (.*) \([0-9]+ ms\)$/\1\t\2/p; s/^\[(err)\]: (.*)$/\1\t\2/p; s/^\[(exception)\].*/\1\t(file aborted)/p' "$1" | sort -u
}

status=0
for unit in "$@"; do
  name=${unit//\//_}
  skipfile="$OUT/$name.skip"
  : >"$skipfile"
  if [[ ${SUITE_SKIP_RESP3:-1} == 1 ]]; then
    /usr/bin/python3 "$ROOT/tests/redis-suite/resp3_tests.py" "$REDIS_SRC/tests/$unit.tcl" >>"$skipfile"
  fi
  cat "${SUITE_SKIPFILE:-$ROOT/tests/redis-suite/known-differences.txt}" >>"$skipfile"
  run_one "$unit" direct "$name.direct" "$skipfile"
  run_one "$unit" respite "$name.respite" "$skipfile"
  outcomes "$OUT/$name.direct.out" >"$OUT/$name.direct.txt"
  outcomes "$OUT/$name.respite.out" >"$OUT/$name.respite.txt"
  d_ok=$(grep -c '^ok' "$OUT/$name.direct.txt" || true)
  r_ok=$(grep -c '^ok' "$OUT/$name.respite.txt" || true)
  printf '%-28s direct ok=%-4s respite ok=%-4s' "$unit" "$d_ok" "$r_ok"
  only=$(comm -23 <(grep '^ok' "$OUT/$name.direct.txt" | cut -f2) <(grep '^ok' "$OUT/$name.respite.txt" | cut -f2) || true)
  if grep -q '^exception' "$OUT/$name.respite.txt" && ! grep -q '^exception' "$OUT/$name.direct.txt"; then
    echo "  respite run aborted (see $OUT/$name.respite.out)"
    status=1
  elif [[ -n $only ]]; then
    echo "  passing directly but not through respite:"
    sed 's/^/      /' <<<"$only"
    status=1
  else
    echo "  same"
  fi
done
exit $status
