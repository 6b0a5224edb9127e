#!/usr/bin/env bash
# Pass-through comparison: redis-server directly vs twemproxy (nutcracker) vs respite.
#
# For each workload (GET and SET, 100-byte values, random keys over 100k, at
# -c 50 -P 1, -c 50 -P 16 and -c 1 -P 1) runs redis-benchmark against the targets
# alternately (direct, twemproxy, respite, direct, ...) for ROUNDS rounds, and
# prints median throughput / latency, ratios, and CPU time per request of each
# proxy (and of redis-server) from /proc/<pid>/stat.
#
# Environment:
#   TARGETS        targets to run (default "direct twemproxy respite"; respite is
#                  skipped with a warning if its binary is missing or does not answer
#                  PING, unless RESPITE_REQUIRED=1)
#   RESPITE_BIN    respite binary (default build/respite, relative to the repo root)
#   RESPITE_ARGS   extra respite arguments (word-split), e.g. "--config x.toml"
#   BENCH_SCALE    multiplies the request counts (default 1: ~2-4 s per run here)
#   ROUNDS         rounds per workload and target (default 3)
#   WORKLOADS      subset of: set-c50-P1 get-c50-P1 set-c50-P16 get-c50-P16
#                  set-c1-P1 get-c1-P1 (default: all, in that order)
#   RUN_TIMEOUT    seconds before a single redis-benchmark run is killed (default 120)
#   KEYSPACE       random key range (default 100000), VALUE_SIZE (default 100)
#   TW_SERVER_CONNECTIONS  twemproxy server_connections (default 1)
#   BENCH_OUT      if set, a directory where raw.tsv and summary.md are also written
#   BENCH_LIFETIME hard limit for the whole script in seconds (default 3600)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

CMDLINE="$(printf '%q ' "$0" "$@")"
ENVLINE=$(bench_env_line TARGETS RESPITE_BIN RESPITE_ARGS BENCH_SCALE ROUNDS WORKLOADS RUN_TIMEOUT KEYSPACE VALUE_SIZE TW_SERVER_CONNECTIONS)

TARGETS=${TARGETS:-direct twemproxy respite}
RESPITE_BIN=${RESPITE_BIN:-build/respite}
BENCH_SCALE=${BENCH_SCALE:-1}
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-set-c50-P1 get-c50-P1 set-c50-P16 get-c50-P16 set-c1-P1 get-c1-P1}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
KEYSPACE=${KEYSPACE:-100000}
VALUE_SIZE=${VALUE_SIZE:-100}

bench_require redis-server redis-benchmark redis-cli python3 timeout
if [[ " $TARGETS " == *" twemproxy "* ]]; then bench_require nutcracker; fi

bench_init "${BENCH_LIFETIME:-3600}"

mapfile -t ports < <(bench_free_ports 4)
P_REDIS=${ports[0]} P_TW=${ports[1]} P_TWSTATS=${ports[2]} P_RESPITE=${ports[3]}

bench_log "starting redis-server on 127.0.0.1:$P_REDIS"
bench_start_redis "$P_REDIS"

declare -A PORT PID
active=()
for t in $TARGETS; do
  case "$t" in
    direct)
      PORT[direct]=$P_REDIS; PID[direct]=$REDIS_PID; active+=(direct) ;;
    twemproxy)
      bench_log "starting nutcracker on 127.0.0.1:$P_TW"
      bench_start_twemproxy "$P_TW" "$P_REDIS" "$P_TWSTATS"
      PORT[twemproxy]=$P_TW; PID[twemproxy]=$TW_PID; active+=(twemproxy) ;;
    respite)
      bench_log "starting respite ($RESPITE_BIN) on 127.0.0.1:$P_RESPITE"
      # Pass-through: the near-cache would answer the GETs itself (bench/cache.sh measures it).
      if bench_try_respite "$RESPITE_BIN" "$P_RESPITE" "$P_REDIS" --set cache.enabled=false; then
        PORT[respite]=$P_RESPITE; PID[respite]=$RESPITE_PID; active+=(respite)
      fi ;;
    *) bench_die "unknown target $t (use direct, twemproxy, respite)" ;;
  esac
done
((${#active[@]} > 0)) || bench_die "no targets"

bench_log "populating $KEYSPACE keys of $VALUE_SIZE bytes"
bench_populate "$P_REDIS" "$KEYSPACE" "$VALUE_SIZE"
dbsize=$(redis-cli -h 127.0.0.1 -p "$P_REDIS" dbsize)
[[ $dbsize -ge $KEYSPACE ]] || bench_die "populate failed: dbsize $dbsize"
for t in "${active[@]}"; do bench_check_target "$t" "${PORT[$t]}" "$VALUE_SIZE"; done

RAW=$BENCH_WORK/raw.tsv
echo "$BENCH_RAW_HEADER" >"$RAW"

# run_one TARGET CMD CLIENTS PIPELINE REQUESTS -> prints "status rps p50 p99"
run_one() { bench_rb_run "${PORT[$1]}" "$2" "$3" "$4" "$5" "$KEYSPACE" "$VALUE_SIZE"; }

# warm-up: one short run per target (connections, allocator, page cache); not recorded
for t in "${active[@]}"; do
  run_one "$t" get 50 1 10000 >/dev/null
done

bench_log "targets: ${active[*]}; workloads: $WORKLOADS; rounds: $ROUNDS; scale: $BENCH_SCALE"
failures=0
for w in $WORKLOADS; do
  IFS=- read -r cmd cs ps <<<"$w"
  c=${cs#c}; p=${ps#P}
  n=$(bench_workload_requests "$w" "$BENCH_SCALE")
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${active[@]}"; do
      bench_record_run "$RAW" "$w" "$cmd" "$c" "$p" "$n" "$r" "$t" "${PORT[$t]}" "${PID[$t]}" "$KEYSPACE" "$VALUE_SIZE"
      [[ $BENCH_RUN_STATUS == ok ]] || failures=$((failures + 1))
      for tt in "${active[@]}"; do
        bench_alive "${PID[$tt]}" || bench_die "$tt (pid ${PID[$tt]}) died"
      done
    done
  done
done

ks=$(redis-cli -h 127.0.0.1 -p "$P_REDIS" info stats | tr -d '\r' | awk -F: '/^keyspace_(hits|misses)/ { printf "%s=%s ", $1, $2 }')
{
  bench_report_head compare.sh
  echo "targets:  ${active[*]}$([[ -n ${PID[respite]:-} ]] && echo "   (respite: $RESPITE_BIN --set cache.enabled=false ${RESPITE_ARGS:-})")"
  echo "client:   redis-benchmark -h 127.0.0.1 -p PORT -t CMD -n N -c C -P P -d $VALUE_SIZE -r $KEYSPACE --csv"
  echo "          $ROUNDS rounds per workload, targets alternated within each round; BENCH_SCALE=$BENCH_SCALE"
  echo "redis:    $ks(GET misses should be 0: every key exists)"
  echo "twemproxy: server_connections=${TW_SERVER_CONNECTIONS:-1}, preconnect, fnv1a_64/ketama, one server"
  echo '```'
  echo
  python3 bench/summarize.py "$RAW" "$CLK_TCK"
} >"$BENCH_WORK/summary.md"

if [[ -n ${BENCH_OUT:-} ]]; then
  mkdir -p "$BENCH_OUT"
  cp "$RAW" "$BENCH_WORK/summary.md" "$BENCH_OUT/"
fi
echo
cat "$BENCH_WORK/summary.md"
if ((failures > 0)); then
  bench_log "$failures run(s) failed"
  exit 1
fi
