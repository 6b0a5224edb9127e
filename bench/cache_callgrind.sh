#!/usr/bin/env bash
# Instructions per cache hit: respite answering GETs of a warm hot set from its near-cache,
# against redis-server answering the same GETs, both counted by callgrind (a stable measure
# on a noisy machine; system calls are not counted).
#
# For each target, runs it under `valgrind --tool=callgrind` twice, serving N and 2N GETs
# of redis-benchmark (-c CLIENTS -P PIPELINE, -r HOT keys, all present and, for respite,
# cached by a warm-up pass), and prints (Ir(2N) - Ir(N)) / N: the marginal instructions of
# one GET, with start-up and warm-up cancelled out.
#
# Usage: bench/cache_callgrind.sh            (about 3 minutes)
#   N (default 40000), CLIENTS (50), PIPELINE (1), HOT (1000), RESPITE_BIN (build/respite)
#   e.g. PIPELINE=16 N=200000 bench/cache_callgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

N=${N:-40000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
HOT=${HOT:-1000}
RESPITE_BIN=${RESPITE_BIN:-build/respite}
bench_require valgrind redis-server redis-benchmark redis-cli
[[ -x $RESPITE_BIN ]] || bench_die "respite binary $RESPITE_BIN not found (build first)"
bench_init "${BENCH_LIFETIME:-1200}"
mapfile -t ports < <(bench_free_ports 2)
P_REDIS=${ports[0]} P_SERVER=${ports[1]}
bench_start_redis "$P_REDIS"
VG=(valgrind --tool=callgrind --trace-children=no)

# run TARGET REQUESTS -> prints total Ir
run() {
  local t=$1 n=$2 out=$BENCH_WORK/callgrind.$1.$2 pid i
  if [[ $t == respite ]]; then
    "${VG[@]}" --callgrind-out-file="$out" "$RESPITE_BIN" --listen "127.0.0.1:$P_SERVER" --admin "" \
      --upstream "redis://127.0.0.1:$P_REDIS" --log-level warn </dev/null >"$BENCH_WORK/$t.log" 2>&1 &
  else
    "${VG[@]}" --callgrind-out-file="$out" redis-server --port "$P_SERVER" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$BENCH_WORK" </dev/null >"$BENCH_WORK/$t.log" 2>&1 &
  fi
  pid=$!
  bench_track "$pid"
  bench_wait_ping "$P_SERVER" "$pid" 60 || bench_die "$t under callgrind did not answer PING"
  # The hot set exists in Redis (SET through either target), then is read once (cached).
  redis-benchmark -p "$P_SERVER" -t set -n "$((HOT * 20))" -r "$HOT" -d 100 -c 10 -q >/dev/null
  redis-benchmark -p "$P_SERVER" -t get -n "$((HOT * 20))" -r "$HOT" -c 10 -q >/dev/null
  redis-benchmark -p "$P_SERVER" -t get -n "$n" -r "$HOT" -c "$CLIENTS" -P "$PIPELINE" -q >/dev/null
  if [[ $t == respite ]]; then
    bench_log "respite: $(redis-cli -p "$P_SERVER" RESPITE CACHE STATS | grep -E '^(hits|misses):' | tr -d '\r' | tr '\n' ' ')"
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do bench_alive "$pid" || break; sleep 0.1; done
  bench_stop "$pid"
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

echo "command:  $(printf '%q ' "$0" "$@")(N=$N CLIENTS=$CLIENTS PIPELINE=$PIPELINE HOT=$HOT)"
echo "repo:     $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
for t in respite redis; do
  a=$(run "$t" "$N")
  b=$(run "$t" "$((2 * N))")
  printf '%-8s Ir per GET (delta): %d\n' "$t" "$(((b - a) / N))"
done
