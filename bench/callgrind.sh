#!/usr/bin/env bash
# Instructions per request, counted by callgrind: a stable second opinion to the
# wall-clock numbers of compare.sh on a noisy machine.
#
# For each target, runs the proxy under `valgrind --tool=callgrind` twice, serving
# N and 2N pipelined GETs from redis-benchmark (-P 16, 100-byte values, random keys
# over 100k, all present), and prints:
#   Ir/req (total)  = total instructions of the 2N run / 2N (includes start-up,
#                     connection set-up and shutdown)
#   Ir/req (delta)  = (Ir(2N) - Ir(N)) / N: the marginal cost of one request, with the
#                     fixed costs cancelled out; this is the number to compare.
#
# Environment:
#   CG_TARGETS   default "respite twemproxy" (respite skipped if missing/not serving)
#   RESPITE_BIN  default build/respite; RESPITE_ARGS: extra respite arguments
#   CG_REQUESTS  N (default 20000);  CG_CLIENTS: redis-benchmark -c (default 10)
#   CG_PIPELINE  redis-benchmark -P (default 16);  CG_CMD: get or set (default get)
#   CG_TOP       if > 0, print the top CG_TOP functions (self Ir) of respite's 2N run
#                (default 15)
#   CG_KEEP_DIR  if set, copy the callgrind.out files there
#   CG_INFO_CMD  if set, a command sent to the proxy after each load, before it is stopped
#                (e.g. "RESPITE RATELIMIT STATS"); its reply goes to the log, and to
#                CG_KEEP_DIR/info.TARGET.REQUESTS when CG_KEEP_DIR is set
#   CG_TSV       if set, a file to append one line per target to (tab-separated:
#                target cmd clients pipeline N Ir(N) Ir(2N)), for scripts that call this one
#   BENCH_LIFETIME hard limit for the whole script in seconds (default 1200)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

CMDLINE="$(printf '%q ' "$0" "$@")"
ENVLINE=$(bench_env_line CG_TARGETS RESPITE_BIN RESPITE_ARGS CG_REQUESTS CG_CLIENTS CG_PIPELINE CG_CMD CG_INFO_CMD)
CG_TARGETS=${CG_TARGETS:-respite twemproxy}
RESPITE_BIN=${RESPITE_BIN:-build/respite}
N=${CG_REQUESTS:-20000}
CLIENTS=${CG_CLIENTS:-10}
PIPELINE=${CG_PIPELINE:-16}
CMD=${CG_CMD:-get}
TOP=${CG_TOP:-15}
KEYSPACE=100000
VALUE_SIZE=100

bench_require valgrind redis-server redis-benchmark redis-cli python3 timeout

bench_init "${BENCH_LIFETIME:-1200}"
mapfile -t ports < <(bench_free_ports 3)
P_REDIS=${ports[0]} P_PROXY=${ports[1]} P_TWSTATS=${ports[2]}
bench_start_redis "$P_REDIS"
bench_populate "$P_REDIS" "$KEYSPACE" "$VALUE_SIZE"

VG=(valgrind --tool=callgrind --trace-children=no)

# start_under_callgrind TARGET OUTFILE -> sets CG_PID, returns 1 if it does not serve
start_under_callgrind() {
  local t=$1 out=$2
  case "$t" in
    respite)
      # shellcheck disable=SC2086
      "${VG[@]}" --callgrind-out-file="$out" "$RESPITE_BIN" --listen "127.0.0.1:$P_PROXY" --admin "" \
        --upstream "redis://127.0.0.1:$P_REDIS" --log-level warn --set cache.enabled=false ${RESPITE_ARGS:-} \
        </dev/null >"$BENCH_WORK/$t.log" 2>&1 &
      ;;
    twemproxy)
      bench_twemproxy_conf "$BENCH_WORK/nc.yml" "$P_PROXY" "$P_REDIS" 60000
      "${VG[@]}" --callgrind-out-file="$out" nutcracker -c "$BENCH_WORK/nc.yml" -s "$P_TWSTATS" \
        -a 127.0.0.1 -o "$BENCH_WORK/nc-run.log" -p "$BENCH_WORK/nc.pid" \
        </dev/null >"$BENCH_WORK/$t.log" 2>&1 &
      ;;
  esac
  CG_PID=$!
  bench_track "$CG_PID"
  if ! bench_wait_ping "$P_PROXY" "$CG_PID" 60; then
    bench_log "$t under callgrind did not answer PING; its output:"
    tail -20 "$BENCH_WORK/$t.log" >&2 || true
    bench_stop "$CG_PID"
    return 1
  fi
}

# stop_and_wait PID: SIGTERM, then up to 60 s for callgrind to write its output.
stop_and_wait() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    bench_alive "$pid" || break
    sleep 0.1
  done
  bench_stop "$pid"   # SIGKILL if it is still there
}

total_ir() {
  # "summary: N" (or "totals: N") line of a callgrind output file; first event is Ir
  awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

declare -A IR
results=()
failed=0
for t in $CG_TARGETS; do
  case "$t" in
    respite)
      if [[ ! -x $RESPITE_BIN ]]; then
        bench_log "WARNING: $RESPITE_BIN not found; skipping respite"
        continue
      fi ;;
    twemproxy) bench_require nutcracker ;;
    *) bench_die "unknown target $t (use respite, twemproxy)" ;;
  esac
  ok=1
  for n in "$N" "$((2 * N))"; do
    out=$BENCH_WORK/callgrind.out.$t.$n
    bench_log "$t under callgrind: $n x $CMD, -c $CLIENTS -P $PIPELINE"
    if ! start_under_callgrind "$t" "$out"; then ok=0; break; fi
    if ! timeout -k 5 600 redis-benchmark -h 127.0.0.1 -p "$P_PROXY" -t "$CMD" -n "$n" \
        -c "$CLIENTS" -P "$PIPELINE" -d "$VALUE_SIZE" -r "$KEYSPACE" --csv \
        >"$BENCH_WORK/rb.out" 2>"$BENCH_WORK/rb.err"; then
      bench_log "redis-benchmark against $t failed: $(head -c 300 "$BENCH_WORK/rb.err")"
      ok=0
    fi
    if [[ -n ${CG_INFO_CMD:-} ]]; then
      # shellcheck disable=SC2086
      info=$(timeout 30 redis-cli -h 127.0.0.1 -p "$P_PROXY" $CG_INFO_CMD 2>&1 | tr -d '\r' || true)
      bench_log "$t: $CG_INFO_CMD -> $(tr '\n' ' ' <<<"$info")"
      if [[ -n ${CG_KEEP_DIR:-} ]]; then mkdir -p "$CG_KEEP_DIR" && printf '%s\n' "$info" >"$CG_KEEP_DIR/info.$t.$n"; fi
    fi
    stop_and_wait "$CG_PID"
    ir=$(total_ir "$out" 2>/dev/null || true)
    if [[ -z $ir ]]; then
      bench_log "no callgrind totals for $t ($out)"
      ok=0
      break
    fi
    IR[$t.$n]=$ir
    bench_log "$t: $n requests, $ir Ir total"
  done
  if ((ok)); then results+=("$t"); else failed=$((failed + 1)); fi
  if ((ok)) && [[ -n ${CG_TSV:-} ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$CMD" "$CLIENTS" "$PIPELINE" "$N" "${IR[$t.$N]}" "${IR[$t.$((2 * N))]}" >>"$CG_TSV"
  fi
  if [[ -n ${CG_KEEP_DIR:-} ]]; then mkdir -p "$CG_KEEP_DIR" && cp "$BENCH_WORK"/callgrind.out."$t".* "$CG_KEEP_DIR"/ 2>/dev/null || true; fi
done

echo
bench_report_head callgrind.sh
echo "workload: redis-benchmark -t $CMD -n N -c $CLIENTS -P $PIPELINE -d $VALUE_SIZE -r $KEYSPACE, N=$N and 2N, proxy under $(valgrind --version)"
echo '```'
echo
echo "| target | Ir total (N=$N) | Ir total (2N) | Ir/req (total, 2N run) | Ir/req (delta) |"
echo "|---|---:|---:|---:|---:|"
for t in "${results[@]}"; do
  a=${IR[$t.$N]} b=${IR[$t.$((2 * N))]}
  python3 -c "
import sys
t, n, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f'| {t} | {a:,} | {b:,} | {b / (2 * n):,.0f} | {(b - a) / n:,.0f} |')" "$t" "$N" "$a" "$b"
done
if [[ ${#results[@]} -eq 2 ]]; then
  python3 -c "
import sys
n = int(sys.argv[1]); r = (int(sys.argv[3]) - int(sys.argv[2])) / n; w = (int(sys.argv[5]) - int(sys.argv[4])) / n
print(f'\nIr/req (delta) {sys.argv[6]}/{sys.argv[7]}: {r / w:.2f}')" "$N" \
    "${IR[${results[0]}.$N]}" "${IR[${results[0]}.$((2 * N))]}" \
    "${IR[${results[1]}.$N]}" "${IR[${results[1]}.$((2 * N))]}" "${results[0]}" "${results[1]}"
fi
if ((TOP > 0)) && command -v callgrind_annotate >/dev/null; then
  for t in "${results[@]}"; do
    echo
    echo "Top $TOP functions by self Ir, $t, 2N run:"
    echo '```'
    callgrind_annotate --inclusive=no "$BENCH_WORK/callgrind.out.$t.$((2 * N))" 2>/dev/null |
      grep -E '^ *[0-9][0-9,]* +\(' | grep -v 'PROGRAM TOTALS' | head -n "$TOP" || true
    echo '```'
  done
fi
if ((failed > 0)); then
  bench_log "$failed target(s) failed"
  exit 1
fi
