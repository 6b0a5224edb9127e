#!/usr/bin/env bash
# Connection scaling: 10,000 concurrent client connections, each sending GET/SET
# for a bounded time, against redis-server directly and through respite (and
# optionally twemproxy).  Zero errors required: failed connects, connections closed
# by the server, error replies, protocol errors and missing replies are counted,
# printed, and make the script exit 1.  Reports throughput, p50/p99 latency, CPU
# per request and the peak RSS (VmHWM) of the serving process.
#
# The load generator is bench/loadgen.c, compiled with cc into the temp dir.
#
# Environment:
#   TARGETS       default "direct respite" (also: twemproxy); respite is skipped with a
#                 warning if it is missing / does not serve, unless RESPITE_REQUIRED=1
#   RESPITE_BIN   default build/respite;  RESPITE_ARGS: extra respite arguments
#   CONNS         connections (default 10000)
#   DURATION      seconds of load after all connections are up (default 10)
#   INTERVAL_MS   per connection, minimum ms between request sends (default 500,
#                 i.e. CONNS*2 requests/s offered; 0 = closed loop)
#   SET_PCT       percentage of SETs (default 10, the rest are GETs of existing keys)
#   FD_LIMIT      ulimit -n to set (default 65536)
#   BENCH_LIFETIME hard limit for the whole script in seconds (default 900)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

CMDLINE="$(printf '%q ' "$0" "$@")"
ENVLINE=$(bench_env_line TARGETS RESPITE_BIN RESPITE_ARGS CONNS DURATION INTERVAL_MS SET_PCT)
TARGETS=${TARGETS:-direct respite}
RESPITE_BIN=${RESPITE_BIN:-build/respite}
CONNS=${CONNS:-10000}
DURATION=${DURATION:-10}
INTERVAL_MS=${INTERVAL_MS:-500}
SET_PCT=${SET_PCT:-10}
FD_LIMIT=${FD_LIMIT:-65536}
KEYSPACE=100000
VALUE_SIZE=100

bench_require redis-server redis-cli python3 timeout cc

# Raise the fd limit (inherited by redis-server, the proxies and loadgen).  Without
# CAP_SYS_RESOURCE the hard limit cannot be raised; then use the hard limit if enough.
need=$((CONNS + 1000))
if ! ulimit -n "$FD_LIMIT" 2>/dev/null; then
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((hard < need)); then
    bench_die "cannot raise the open-file limit to $FD_LIMIT (soft $(ulimit -n), hard $hard < $need needed for $CONNS connections); run as root with CAP_SYS_RESOURCE or raise the hard limit"
  fi
  ulimit -n "$hard" || bench_die "cannot set ulimit -n $hard"
  bench_log "note: could not raise the fd limit to $FD_LIMIT; using the hard limit $hard (enough for $CONNS connections)"
fi
(($(ulimit -n) >= need)) || bench_die "fd limit $(ulimit -n) < $need needed for $CONNS connections"
somax=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo '?')

bench_init "${BENCH_LIFETIME:-900}"
cc -O2 -o "$BENCH_WORK/loadgen" bench/loadgen.c || bench_die "cannot build bench/loadgen.c"

mapfile -t ports < <(bench_free_ports 4)
P_REDIS=${ports[0]} P_RESPITE=${ports[1]} P_TW=${ports[2]} P_TWSTATS=${ports[3]}

bench_log "starting redis-server on 127.0.0.1:$P_REDIS (maxclients 20000)"
bench_start_redis "$P_REDIS" --maxclients 20000
bench_populate "$P_REDIS" "$KEYSPACE" "$VALUE_SIZE"

declare -A PORT PID
active=()
for t in $TARGETS; do
  case "$t" in
    direct) PORT[direct]=$P_REDIS; PID[direct]=$REDIS_PID; active+=(direct) ;;
    twemproxy)
      bench_require nutcracker
      bench_start_twemproxy "$P_TW" "$P_REDIS" "$P_TWSTATS"
      PORT[twemproxy]=$P_TW; PID[twemproxy]=$TW_PID; active+=(twemproxy) ;;
    respite)
      if bench_try_respite "$RESPITE_BIN" "$P_RESPITE" "$P_REDIS" --set server.max_clients=20000 --set cache.enabled=false; then
        PORT[respite]=$P_RESPITE; PID[respite]=$RESPITE_PID; active+=(respite)
      fi ;;
    *) bench_die "unknown target $t" ;;
  esac
done
((${#active[@]} > 0)) || bench_die "no targets"
for t in "${active[@]}"; do bench_check_target "$t" "${PORT[$t]}" "$VALUE_SIZE"; done

declare -A R
total_errors=0
lg_timeout=$(python3 -c "print(int(60 + $DURATION + 5 + 60))")
for t in "${active[@]}"; do
  pid=${PID[$t]}
  rss0=$(bench_status_kb "$pid" VmRSS)
  ticks0=$(bench_cpu_ticks "$pid")
  bench_log "$t: $CONNS connections for ${DURATION}s (interval ${INTERVAL_MS} ms, ${SET_PCT}% SET)"
  rc=0
  timeout -k 5 "$lg_timeout" "$BENCH_WORK/loadgen" -h 127.0.0.1 -p "${PORT[$t]}" -c "$CONNS" \
    -d "$DURATION" -i "$INTERVAL_MS" -w "$SET_PCT" -s "$VALUE_SIZE" -k "$KEYSPACE" \
    -C 200 -T 60 -D 5 -P "$pid" >"$BENCH_WORK/lg-$t.out" || rc=$?
  ticks1=$(bench_cpu_ticks "$pid")
  hwm=$(bench_status_kb "$pid" VmHWM)
  rss1=$(bench_status_kb "$pid" VmRSS)
  bench_alive "$pid" || { bench_log "$t (pid $pid) DIED during the run"; rc=99; }
  while IFS='=' read -r k v; do R[$t.$k]=$v; done <"$BENCH_WORK/lg-$t.out"
  errs=${R[$t.errors]:-unknown}
  if [[ $rc -ne 0 || $errs != 0 ]]; then
    total_errors=$((total_errors + 1))
    bench_log "$t: FAILED (loadgen exit $rc, errors=$errs, first error: ${R[$t.first_error]:-?})"
  fi
  R[$t.rc]=$rc
  R[$t.rss0]=$rss0; R[$t.rss1]=$rss1; R[$t.hwm]=$hwm
  R[$t.cpu_us]=${R[$t.server_cpu_us_per_req]:-—}
  R[$t.total_cpu_s]=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / $CLK_TCK:.2f}')" "$((ticks1 - ticks0))")
  bench_log "$t: $(tr '\n' ' ' <"$BENCH_WORK/lg-$t.out")"
done

echo
bench_report_head conn_scale.sh
echo "load:     $CONNS connections (fd limit $(ulimit -n), somaxconn $somax), ${DURATION}s, one request in flight per connection, next sent >= ${INTERVAL_MS} ms after the previous; ${SET_PCT}% SET / GET, ${VALUE_SIZE}-byte values, $KEYSPACE keys"
if [[ -n ${PID[respite]:-} ]]; then echo "respite:  $RESPITE_BIN --set server.max_clients=20000 --set cache.enabled=false ${RESPITE_ARGS:-}"; fi
echo '```'
echo
echo "| target | conns ok | errors (connect/closed/err-reply/proto/missing/nil) | replies | rps | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/req (load phase) | server CPU s (whole run) | RSS before → after (MiB) | peak RSS VmHWM (MiB) |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in "${active[@]}"; do
  mib() { python3 -c "import sys; print(f'{int(sys.argv[1] or 0)/1024:.1f}')" "$1"; }
  errdetail="${R[$t.errors]:-?} (${R[$t.connect_failed]:-?}/${R[$t.closed_by_peer]:-?}/${R[$t.error_replies]:-?}/${R[$t.protocol_errors]:-?}/${R[$t.missing_replies]:-?}/${R[$t.nil_replies]:-?})"
  echo "| $t | ${R[$t.connections_ok]:-?}/$CONNS | $errdetail | ${R[$t.replies]:-?} | ${R[$t.rps]:-?} | ${R[$t.p50_ms]:-?} | ${R[$t.p99_ms]:-?} | ${R[$t.p999_ms]:-?} | ${R[$t.max_ms]:-?} | ${R[$t.cpu_us]} | ${R[$t.total_cpu_s]} | $(mib "${R[$t.rss0]}") → $(mib "${R[$t.rss1]}") | $(mib "${R[$t.hwm]}") |"
done
echo
echo "For direct the serving process is redis-server (its RSS includes the $KEYSPACE keys); for the proxies it is the proxy alone."
for t in "${active[@]}"; do
  if [[ ${R[$t.first_error]:-none} != none ]]; then echo "$t first error: ${R[$t.first_error]}"; fi
done
if ((total_errors > 0)); then
  bench_log "$total_errors target(s) had errors"
  exit 1
fi
