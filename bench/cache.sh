#!/usr/bin/env bash
# Near-cache benchmark: GET throughput and latency of redis-server directly, twemproxy
# (nutcracker) and respite with its cache on, side by side in one run, without and with
# a 1 ms round trip between the proxy (or, for "direct", the client) and Redis.
#
# Scenarios (WORKLOADS picks a subset):
#   s1-P1, s1-P16  hot set of HOT_KEYS keys (fits the cache), no delay:
#                  redis-benchmark -t get -c 50 -P 1|16 -d 100 -r HOT_KEYS
#   s1-c1          the same hot set at -c 1 -P 1 (getload): latency of one hit
#   s2-P1, s2-P16  Zipf(ZIPF_ALPHA) over ZIPF_KEYS keys, larger than respite's cache
#                  budget (CACHE_MEMORY), no delay: getload -c 50 -P 1|16
#   s3-P1, s3-P16, s3-c1  s1 with Redis behind the delay relay (DELAY_US each way)
#   s4-P1, s4-P16  s2 behind the delay relay
# With the delay every target reaches Redis through its own bench/delay_relay.c
# (direct = client -> relay -> redis; twemproxy/respite = client -> proxy -> relay ->
# redis).  Each workload: the respite caches are flushed (RESPITE CACHE FLUSH), every
# target gets one unrecorded warm-up run, then ROUNDS rounds with the targets
# alternated (the starting target rotates each round).  For the hot-set workloads
# every hot key is read once through respite before the warm-up.  Around every respite round
# `RESPITE CACHE STATS` is read and the round's hit ratio printed; where respite has
# no cache yet (the command errors) the hit ratio is "n/a" and respite just forwards.
# Before the workloads the relay's added round trip is measured with getload -m ping
# (idle, and under a -c 50 GET load through the same relay).
#
# Prints: per workload and target the median rps (min-max), p50, p99, hit ratio,
# upstream GETs per request, CPU per request of the proxy and of the relay; ratios
# respite/direct and respite/twemproxy; the issue's targets as PASS/MISS lines.
#
# Usage (from any directory):
#   bench/cache.sh                         # full run, about 7-9 minutes on 2 cores
#   QUICK=1 bench/cache.sh                 # about 2 minutes: 2 rounds of 1 s, and only
#                                          # s1-P1 s1-P16 s2-P1 s3-P1 s3-P16 s3-c1 s4-P1
#   RESPITE_BIN=build-bench/respite bench/cache.sh
#   WORKLOADS="s1-P1 s3-P1 s3-c1" ROUNDS=5 bench/cache.sh
#   BENCH_OUT=/tmp/cache-run bench/cache.sh    # also keep raw.tsv, summary.md, logs
#
# Environment:
#   TARGETS        default "direct twemproxy respite"; respite is skipped with a warning
#                  if its binary is missing or does not serve, unless RESPITE_REQUIRED=1.
#                  Also "respite-nocache": respite with --set cache.enabled=false (the
#                  cost or gain of the cache itself, side by side)
#   RESPITE_BIN    default build/respite;  RESPITE_ARGS: extra respite arguments
#   CACHE_MEMORY   respite [cache] memory_bytes (default 4mb); written to a config
#                  file in the work dir, with enabled = true
#   ROUNDS         rounds per workload and target (default 3; QUICK: 2)
#   RUN_SECONDS    seconds per run (default 3; QUICK: 1)
#   WARM_SECONDS   seconds of each warm-up run (default 1; QUICK: 0.5)
#                  (redis-benchmark runs -n requests, sized per target from the rate of
#                  its warm-up run so that each run lasts about RUN_SECONDS too)
#   HOT_KEYS (1000), ZIPF_KEYS (200000), ZIPF_ALPHA (0.99), VALUE_SIZE (100),
#   DELAY_US (500: 0.5 ms each way), PING_COUNT (2000; QUICK: 1000)
#   SEED           getload's key sequence seed base (default 1): round r uses SEED*1000+r
#                  for every target, the warm-up SEED*1000
#   RUN_TIMEOUT    seconds before one run is killed (default 120)
#   BENCH_LIFETIME hard limit for the whole script in seconds (default 1500)
#
# Every server listens on 127.0.0.1 on free ports and is stopped by pid at the end
# (bench/lib.sh; bench/watchdog.py stops them if this script dies).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

CMDLINE="$(printf '%q ' "$0" "$@")"
ENVLINE=$(bench_env_line QUICK TARGETS RESPITE_BIN RESPITE_ARGS CACHE_MEMORY ROUNDS RUN_SECONDS WARM_SECONDS WORKLOADS \
  HOT_KEYS ZIPF_KEYS ZIPF_ALPHA VALUE_SIZE DELAY_US SEED PING_COUNT)

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-2}; RUN_SECONDS=${RUN_SECONDS:-1}; PING_COUNT=${PING_COUNT:-1000}
  WARM_SECONDS=${WARM_SECONDS:-0.5}
  WORKLOADS=${WORKLOADS:-s1-P1 s1-P16 s2-P1 s3-P1 s3-P16 s3-c1 s4-P1}
fi
TARGETS=${TARGETS:-direct twemproxy respite}
RESPITE_BIN=${RESPITE_BIN:-build/respite}
CACHE_MEMORY=${CACHE_MEMORY:-4mb}
ROUNDS=${ROUNDS:-3}
RUN_SECONDS=${RUN_SECONDS:-3}
WARM_SECONDS=${WARM_SECONDS:-1}
WORKLOADS=${WORKLOADS:-s1-P1 s1-P16 s1-c1 s2-P1 s2-P16 s3-P1 s3-P16 s3-c1 s4-P1 s4-P16}
HOT_KEYS=${HOT_KEYS:-1000}
ZIPF_KEYS=${ZIPF_KEYS:-200000}
ZIPF_ALPHA=${ZIPF_ALPHA:-0.99}
VALUE_SIZE=${VALUE_SIZE:-100}
DELAY_US=${DELAY_US:-500}
SEED=${SEED:-1}
PING_COUNT=${PING_COUNT:-2000}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
LIFETIME=${BENCH_LIFETIME:-1500}

bench_require redis-server redis-benchmark redis-cli python3 timeout cc
if [[ " $TARGETS " == *" twemproxy "* ]]; then bench_require nutcracker; fi
((HOT_KEYS <= ZIPF_KEYS)) || bench_die "HOT_KEYS must not exceed ZIPF_KEYS (both are preloaded as key:0..)"

# wl_def NAME: sets W_TOOL (rb|gl) W_DELAYED (0|1) W_C W_P W_WARM (requests of a redis-benchmark
# warm-up run, times WARM_SECONDS) W_KEYS (hot|zipf) W_DESC
wl_def() {
  local base=${1%%-*} shape=${1#*-}
  case "$base" in
    s1) W_DELAYED=0; W_KEYS=hot ;;
    s2) W_DELAYED=0; W_KEYS=zipf ;;
    s3) W_DELAYED=1; W_KEYS=hot ;;
    s4) W_DELAYED=1; W_KEYS=zipf ;;
    *) bench_die "unknown workload $1" ;;
  esac
  case "$shape" in
    P1) W_C=50; W_P=1; W_WARM=20000 ;;
    P16) W_C=50; W_P=16; W_WARM=100000 ;;
    c1) W_C=1; W_P=1; W_WARM=0 ;;
    *) bench_die "unknown workload $1" ;;
  esac
  if [[ $W_KEYS == hot && $shape != c1 ]]; then W_TOOL=rb; else W_TOOL=gl; fi
  [[ $W_KEYS == zipf && $shape == c1 ]] && bench_die "unknown workload $1"
  local keys where
  if [[ $W_KEYS == hot ]]; then keys="uniform over a hot set of $HOT_KEYS keys"; else keys="Zipf($ZIPF_ALPHA) over $ZIPF_KEYS keys"; fi
  if ((W_DELAYED)); then where="Redis behind the delay relay (${DELAY_US} us each way)"; else where="no delay"; fi
  if [[ $W_TOOL == rb ]]; then
    W_DESC="redis-benchmark -t get -n N -c $W_C -P $W_P -d $VALUE_SIZE -r $HOT_KEYS --csv (N = warm-up rps x $RUN_SECONDS s, per target); $keys; $where"
  else
    W_DESC="getload -c $W_C -P $W_P -d $RUN_SECONDS; $keys; $where"
  fi
}
for w in $WORKLOADS; do wl_def "$w"; done   # validate early

bench_init "$LIFETIME"
cc -O2 -o "$BENCH_WORK/delay_relay" bench/delay_relay.c || bench_die "cannot build bench/delay_relay.c"
cc -O2 -o "$BENCH_WORK/getload" bench/getload.c -lm || bench_die "cannot build bench/getload.c"
RELAY=$BENCH_WORK/delay_relay
GETLOAD=$BENCH_WORK/getload

mapfile -t ports < <(bench_free_ports 13)
P_REDIS=${ports[0]}
declare -A PORT PID RELAY_PORT RELAY_PID
# key "target" (no delay) or "target+d" (behind the relay)

bench_log "starting redis-server on 127.0.0.1:$P_REDIS"
bench_start_redis "$P_REDIS"
bench_log "populating $ZIPF_KEYS keys of $VALUE_SIZE bytes (key:000000000000 ...)"
bench_populate "$P_REDIS" "$ZIPF_KEYS" "$VALUE_SIZE"
dbsize=$(redis-cli -h 127.0.0.1 -p "$P_REDIS" dbsize)
[[ $dbsize -ge $ZIPF_KEYS ]] || bench_die "populate failed: dbsize $dbsize"

# start_relay NAME PORT: a delay relay in front of redis, for target NAME
start_relay() {
  local name=$1 port=$2 pid
  "$RELAY" -l "$port" -u "127.0.0.1:$P_REDIS" -d "$DELAY_US" -t "$LIFETIME" \
    </dev/null 2>"$BENCH_WORK/relay-$name.log" &
  pid=$!
  bench_track "$pid"
  bench_wait_ping "$port" "$pid" 10 || { cat "$BENCH_WORK/relay-$name.log" >&2; bench_die "relay $name did not start"; }
  RELAY_PORT[$name]=$port
  RELAY_PID[$name]=$pid
}

any_delayed=0
for w in $WORKLOADS; do wl_def "$w"; ((W_DELAYED)) && any_delayed=1; done

RESPITE_CONF=$BENCH_WORK/respite-cache.toml
cat >"$RESPITE_CONF" <<EOF
[cache]
enabled = true
memory_bytes = "$CACHE_MEMORY"
EOF
RESPITE_CONF_NOTE="--config $RESPITE_CONF ([cache] enabled = true, memory_bytes = \"$CACHE_MEMORY\")"

# start_respite KEY PORT UPSTREAM_PORT [extra respite args...]
start_respite() {
  local key=$1 port=$2 up=$3
  shift 3
  if [[ ! -x $RESPITE_BIN ]]; then
    [[ ${RESPITE_REQUIRED:-0} == 1 ]] && bench_die "respite binary $RESPITE_BIN not found"
    bench_log "WARNING: $RESPITE_BIN not found; skipping respite"
    return 1
  fi
  RESPITE_PID=
  if bench_start_respite "$RESPITE_BIN" "$port" "$up" --config "$RESPITE_CONF" "$@"; then
    PORT[$key]=$port; PID[$key]=$RESPITE_PID; return 0
  fi
  bench_log "WARNING: respite did not start with $RESPITE_CONF; trying without the [cache] config"
  if bench_start_respite "$RESPITE_BIN" "$port" "$up"; then
    RESPITE_CONF_NOTE="(no config: this build rejected the [cache] table)"
    PORT[$key]=$port; PID[$key]=$RESPITE_PID; return 0
  fi
  [[ ${RESPITE_REQUIRED:-0} == 1 ]] && bench_die "respite does not serve"
  bench_log "WARNING: respite does not serve; skipping it"
  return 1
}

pi=1
active=()
for t in $TARGETS; do
  case "$t" in
    direct)
      PORT[direct]=$P_REDIS; PID[direct]=$REDIS_PID
      if ((any_delayed)); then
        start_relay direct "${ports[pi]}"; pi=$((pi + 1))
        PORT[direct+d]=${RELAY_PORT[direct]}; PID[direct+d]=$REDIS_PID
      fi
      active+=(direct) ;;
    twemproxy)
      bench_log "starting nutcracker"
      bench_start_twemproxy "${ports[pi]}" "$P_REDIS" "${ports[pi + 1]}"
      PORT[twemproxy]=${ports[pi]}; PID[twemproxy]=$TW_PID; pi=$((pi + 2))
      if ((any_delayed)); then
        start_relay twemproxy "${ports[pi]}"; pi=$((pi + 1))
        bench_start_twemproxy "${ports[pi]}" "${RELAY_PORT[twemproxy]}" "${ports[pi + 1]}"
        PORT[twemproxy+d]=${ports[pi]}; PID[twemproxy+d]=$TW_PID; pi=$((pi + 2))
      fi
      active+=(twemproxy) ;;
    respite | respite-nocache)
      # respite-nocache: the same binary and config with --set cache.enabled=false, to
      # compare with the cache on in the same run.  A missing instance (no-delay or
      # behind the relay) skips the target in its workloads.
      extra=()
      [[ $t == respite-nocache ]] && extra=(--set cache.enabled=false)
      bench_log "starting $t ($RESPITE_BIN ${extra[*]})"
      if start_respite "$t" "${ports[pi]}" "$P_REDIS" "${extra[@]}"; then active+=("$t"); fi
      pi=$((pi + 1))
      if ((any_delayed)) && [[ -x $RESPITE_BIN ]]; then
        start_relay "$t" "${ports[pi]}"; pi=$((pi + 1))
        if start_respite "$t+d" "${ports[pi]}" "${RELAY_PORT[$t]}" "${extra[@]}" && [[ -z ${PORT[$t]:-} ]]; then
          active+=("$t")
        fi
        pi=$((pi + 1))
      fi ;;
    *) bench_die "unknown target $t (use direct, twemproxy, respite, respite-nocache)" ;;
  esac
done
((${#active[@]} > 0)) || bench_die "no targets"
for k in "${!PORT[@]}"; do bench_check_target "$k" "${PORT[$k]}" "$VALUE_SIZE"; done

# cache_stats PORT -> "hits misses" or "nan nan" when RESPITE CACHE STATS is not available
cache_stats() {
  local out
  out=$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" RESPITE CACHE STATS 2>&1 | tr -d '\r') || true
  awk -F: '$1 == "hits" { h = $2 } $1 == "misses" { m = $2 }
    END { if (h == "" || m == "") print "nan nan"; else print h + 0, m + 0 }' <<<"$out"
}
cache_stats_raw() { timeout 5 redis-cli -h 127.0.0.1 -p "$1" RESPITE CACHE STATS 2>&1 | tr -d '\r' || true; }
redis_get_calls() {
  timeout 5 redis-cli -h 127.0.0.1 -p "$P_REDIS" info commandstats 2>/dev/null | tr -d '\r' |
    awk -F'[:=,]' '$1 == "cmdstat_get" { c = $3 } END { print c + 0 }'
}

CACHE_STATE="n/a"
if [[ -n ${PORT[respite]:-} ]]; then
  read -r h _ < <(cache_stats "${PORT[respite]}")
  if [[ $h == nan ]]; then
    CACHE_STATE="n/a: RESPITE CACHE STATS answered '$(cache_stats_raw "${PORT[respite]}" | head -1 | cut -c1-100)'"
    bench_log "respite has no cache stats ($CACHE_STATE): hit ratios will be n/a"
  else
    CACHE_STATE="on: $(cache_stats_raw "${PORT[respite]}" | grep -E '^(enabled|tracking|mode|budget_bytes):' | tr '\n' ' ')"
    bench_log "respite cache: $CACHE_STATE"
  fi
fi

# ---------------------------------------------------------------- relay probe
kv() { awk -F= -v k="$2" '$1 == k { print $2; exit }' "$1"; }
RELAY_REPORT=$BENCH_WORK/relay-report.txt
: >"$RELAY_REPORT"
if ((any_delayed)) && [[ -n ${RELAY_PORT[direct]:-${RELAY_PORT[twemproxy]:-${RELAY_PORT[respite]:-}}} ]]; then
  probe_relay=${RELAY_PORT[direct]:-${RELAY_PORT[twemproxy]:-${RELAY_PORT[respite]:-}}}
  bench_log "measuring the relay's added round trip (PING x $PING_COUNT, direct vs through the relay)"
  timeout 60 "$GETLOAD" -m ping -p "$P_REDIS" -n "$PING_COUNT" >"$BENCH_WORK/ping-direct.out" || true
  timeout 60 "$GETLOAD" -m ping -p "$probe_relay" -n "$PING_COUNT" >"$BENCH_WORK/ping-relay.out" || true
  # under load: 50 connections of GETs through the same relay while the probe runs
  load_s=$(python3 -c "print(max(2.0, $PING_COUNT * 0.0016 + 1))")
  timeout 60 "$GETLOAD" -p "$probe_relay" -c 50 -P 1 -d "$load_s" -k "$HOT_KEYS" -s "$VALUE_SIZE" \
    >"$BENCH_WORK/ping-load-bg.out" &
  bgpid=$!
  sleep 0.3
  timeout 60 "$GETLOAD" -m ping -p "$probe_relay" -n "$((PING_COUNT / 2))" >"$BENCH_WORK/ping-relay-load.out" || true
  wait "$bgpid" || true
  python3 - "$BENCH_WORK" "$DELAY_US" >"$RELAY_REPORT" <<'EOF'
import sys
work, delay = sys.argv[1], float(sys.argv[2])
def load(name):
    d = {}
    try:
        for line in open(f"{work}/{name}"):
            k, _, v = line.strip().partition("=")
            d[k] = v
    except OSError:
        pass
    return d
def f(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None
di, rel, rl, bg = (load(n) for n in ("ping-direct.out", "ping-relay.out", "ping-relay-load.out", "ping-load-bg.out"))
print(f"relay:    delay_relay -d {delay:.0f} (us each way; nominal added round trip {2 * delay / 1000:.3f} ms); "
      f"PING round trips, {di.get('pings', '?')} sequential on one connection")
def line(label, d, base=None):
    p50, p99, mn = f(d, "rtt_p50_ms"), f(d, "rtt_p99_ms"), f(d, "rtt_min_ms")
    if p50 is None:
        return f"  {label:<36} (no result: {d.get('first_error', 'probe failed')})"
    s = f"  {label:<36} min {mn:.3f}  p50 {p50:.3f}  p99 {p99:.3f} ms"
    if base is not None and f(base, "rtt_p50_ms") is not None:
        s += (f"   added: p50 {p50 - f(base, 'rtt_p50_ms'):+.3f}  p99 {p99 - f(base, 'rtt_p99_ms'):+.3f} ms")
    return s
print(line("direct to redis", di))
print(line("through the relay, idle", rel, di))
print(line("through the relay, under GET load", rl, di) +
      (f"   (load: 50 conns -P 1, {bg.get('rps', '?')} rps, p50 {bg.get('p50_ms', '?')} ms)" if bg else ""))
EOF
  cat "$RELAY_REPORT" >&2
fi

# ---------------------------------------------------------------- runs
RAW=$BENCH_WORK/raw.tsv
printf 'workload\tdesc\tround\ttarget\tstatus\trps\tp50_ms\tp99_ms\trequests\terrors\tnil\thits\tmisses\tupstream_gets\tproxy_ticks\trelay_ticks\telapsed_s\n' >"$RAW"

# run_one PORT [SECONDS [REQUESTS]]: runs the current workload (W_*) once (getload for SECONDS,
# redis-benchmark for REQUESTS); prints "status rps p50 p99 requests errors nil"
run_one() {
  local port=$1 secs=${2:-$RUN_SECONDS} n=${3:-0} out=$BENCH_WORK/run.out err=$BENCH_WORK/run.err rc=0 line
  if [[ $W_TOOL == rb ]]; then
    timeout -k 5 "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -t get -n "$n" -c "$W_C" \
      -P "$W_P" -d "$VALUE_SIZE" -r "$HOT_KEYS" --csv >"$out" 2>"$err" || rc=$?
    if ((rc != 0)); then echo "fail($rc) nan nan nan 0 0 0"; return; fi
    line=$(grep -i '^"GET"' "$out" | tail -1 || true)
    if [[ -z $line ]]; then echo "noparse nan nan nan 0 0 0"; return; fi
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    echo "$line" | tr -d '"' | awk -F, -v n="$n" '{ print "ok", $2, $5, $7, n, 0, 0 }'
  else
    local keyargs=(-k "$HOT_KEYS")
    [[ $W_KEYS == zipf ]] && keyargs=(-z "$ZIPF_ALPHA" -N "$ZIPF_KEYS")
    timeout -k 5 "$RUN_TIMEOUT" "$GETLOAD" -h 127.0.0.1 -p "$port" -c "$W_C" -P "$W_P" -d "$secs" \
      "${keyargs[@]}" -S "$RUN_SEED" -s "$VALUE_SIZE" >"$out" 2>"$err" || rc=$?
    if [[ -z $(kv "$out" rps) ]]; then echo "fail($rc) nan nan nan 0 0 0"; return; fi
    local status=ok
    ((rc == 0)) || status="errors"
    echo "$status $(kv "$out" rps) $(kv "$out" p50_ms) $(kv "$out" p99_ms) $(kv "$out" replies) $(kv "$out" errors) $(kv "$out" nil_replies)"
  fi
}

failures=0
bench_log "targets: ${active[*]}; workloads: $WORKLOADS; rounds: $ROUNDS"
for w in $WORKLOADS; do
  wl_def "$w"
  sfx=""; ((W_DELAYED)) && sfx="+d"
  for k in respite respite+d; do
    if [[ -n ${PORT[$k]:-} ]]; then
      timeout 5 redis-cli -h 127.0.0.1 -p "${PORT[$k]}" RESPITE CACHE FLUSH >/dev/null 2>&1 || true
    fi
  done
  # hot set: GET every hot key once through respite, so the set is cached before the
  # warm-up (a warm-up of cache misses behind the relay would not cover it)
  if [[ $W_KEYS == hot && -n ${PORT[respite$sfx]:-} ]]; then
    python3 -c "import sys
for i in range(int(sys.argv[1])):
    k = 'key:%012d' % i
    sys.stdout.write('*2\r\n\$3\r\nGET\r\n\$%d\r\n%s\r\n' % (len(k), k))" "$HOT_KEYS" |
      timeout 60 redis-cli -h 127.0.0.1 -p "${PORT[respite$sfx]}" --pipe >/dev/null 2>&1 ||
      bench_log "WARNING: prefilling the hot set through respite failed"
  fi
  # warm-up (not recorded): connections, allocator, and respite's cache (a Zipf
  # workload warms respite for RUN_SECONDS, the others WARM_SECONDS); for redis-benchmark the
  # warm-up's rate sizes the target's -n (about RUN_SECONDS per run)
  declare -A NREQ=()
  RUN_SEED=$((SEED * 1000))
  for t in "${active[@]}"; do
    if [[ -n ${PORT[$t$sfx]:-} ]]; then
      wsecs=$WARM_SECONDS
      [[ $t == respite && $W_KEYS == zipf ]] && wsecs=$RUN_SECONDS
      read -r _ wrps _ < <(run_one "${PORT[$t$sfx]}" "$wsecs" \
        "$(awk -v n="$W_WARM" -v s="$WARM_SECONDS" 'BEGIN { printf "%d", n * s }')")
      NREQ[$t]=$(python3 -c "import sys
try: r = float(sys.argv[1])
except ValueError: r = 0
print(min(5000000, max(5000, int(r * float(sys.argv[2])))))" "$wrps" "$RUN_SECONDS")
    fi
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    # getload's key sequence: the same for every target within a round, different
    # between rounds and from the warm-up (which would otherwise have cached exactly
    # the keys the round asks for)
    RUN_SEED=$((SEED * 1000 + r))
    n_act=${#active[@]}
    for ((i = 0; i < n_act; i++)); do
      t=${active[$(((i + r - 1) % n_act))]}
      key=$t$sfx
      [[ -n ${PORT[$key]:-} ]] || continue
      port=${PORT[$key]}
      if [[ $t == respite ]]; then read -r h0 m0 < <(cache_stats "$port"); else h0=nan; m0=nan; fi
      g0=$(redis_get_calls)
      pt0=$(bench_cpu_ticks "${PID[$key]}")
      rt0=0; [[ -n $sfx ]] && rt0=$(bench_cpu_ticks "${RELAY_PID[$t]}")
      t0=$EPOCHREALTIME
      read -r status rps p50 p99 nreq errs nils < <(run_one "$port" "$RUN_SECONDS" "${NREQ[$t]}")
      t1=$EPOCHREALTIME
      pt1=$(bench_cpu_ticks "${PID[$key]}")
      rt1=0; [[ -n $sfx ]] && rt1=$(bench_cpu_ticks "${RELAY_PID[$t]}")
      g1=$(redis_get_calls)
      if [[ $t == respite ]]; then read -r h1 m1 < <(cache_stats "$port"); else h1=nan; m1=nan; fi
      if [[ $h0 != nan && $h1 != nan ]]; then
        hits=$((h1 - h0)); misses=$((m1 - m0))
        hr=$(awk -v h="$hits" -v m="$misses" 'BEGIN { if (h + m > 0) printf "%.4f", h / (h + m); else print "n/a" }')
      else
        hits=nan; misses=nan; hr=n/a
      fi
      if [[ $t == direct ]]; then ptick=0; else ptick=$((pt1 - pt0)); fi
      if [[ -n $sfx ]]; then rtick=$((rt1 - rt0)); else rtick=nan; fi
      elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
      if [[ $status != ok ]]; then
        failures=$((failures + 1))
        bench_log "run failed: $t $w round $r: $status $(head -c 300 "$BENCH_WORK/run.err") $(grep first_error "$BENCH_WORK/run.out" || true)"
      fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$w" "$W_DESC" "$r" "$t" "$status" "$rps" "$p50" "$p99" "$nreq" "$errs" "$nils" \
        "$hits" "$misses" "$((g1 - g0))" "$ptick" "$rtick" "$elapsed" >>"$RAW"
      ups=$(awk -v g="$((g1 - g0))" -v n="$nreq" 'BEGIN { if (n > 0) printf "%.4f", g / n; else print "n/a" }')
      msg="$w round $r $t: $status rps=$rps p50=${p50}ms p99=${p99}ms upstream_gets/req=$ups (${elapsed}s)"
      [[ $t == respite ]] && msg+=" hit_ratio=$hr (hits $hits, misses $misses)"
      bench_log "$msg"
      for kk in "${!PID[@]}"; do
        bench_alive "${PID[$kk]}" || bench_die "$kk (pid ${PID[$kk]}) died"
      done
      for kk in "${!RELAY_PID[@]}"; do
        bench_alive "${RELAY_PID[$kk]}" || bench_die "relay for $kk (pid ${RELAY_PID[$kk]}) died"
      done
    done
  done
done

# final cache stats, then stop the proxies and the relays (the relays print their timing)
FINAL_STATS=""
for k in respite respite+d; do
  if [[ -n ${PORT[$k]:-} ]]; then
    FINAL_STATS+="$k: $(cache_stats_raw "${PORT[$k]}" | tr '\n' ' ')"$'\n'
  fi
done
for k in respite+d respite respite-nocache+d respite-nocache twemproxy+d twemproxy; do
  if [[ -n ${PID[$k]:-} ]]; then bench_stop "${PID[$k]}"; fi
done
for k in "${!RELAY_PID[@]}"; do bench_stop "${RELAY_PID[$k]}"; done

{
  bench_report_head cache.sh
  echo "targets:  ${active[*]}"
  if [[ -n ${PORT[respite]:-} ]]; then
    echo "respite:  $RESPITE_BIN $RESPITE_CONF_NOTE ${RESPITE_ARGS:-}"
    echo "cache:    $CACHE_STATE"
  fi
  echo "twemproxy: server_connections=${TW_SERVER_CONNECTIONS:-1}, preconnect, one server"
  echo "data:     $ZIPF_KEYS keys key:000000000000.. with $VALUE_SIZE-byte values; hot set = the first $HOT_KEYS"
  echo "rounds:   $ROUNDS per workload, targets alternated (start rotates); per workload: RESPITE CACHE FLUSH, hot set read once through respite (s1, s3), one unrecorded warm-up per target"
  if [[ -s $RELAY_REPORT ]]; then cat "$RELAY_REPORT"; fi
  for k in direct twemproxy respite respite-nocache; do
    if [[ -s $BENCH_WORK/relay-$k.log ]]; then
      echo "relay for $k: $(tail -1 "$BENCH_WORK/relay-$k.log" | sed 's/^delay_relay: //')"
    fi
  done
  echo '```'
  echo
  python3 bench/cache_summary.py "$RAW" "$CLK_TCK"
  if [[ -n $FINAL_STATS ]]; then
    echo
    echo "respite cache stats at the end:"
    echo
    echo '```'
    printf '%s' "$FINAL_STATS"
    echo '```'
  fi
  for k in respite respite+d respite-nocache respite-nocache+d; do
    log=$BENCH_WORK/respite-${PORT[$k]:-none}.log
    if [[ -s $log ]]; then
      echo
      echo "respite ($k) log: $(wc -l <"$log") lines; first lines:"
      echo '```'
      head -5 "$log"
      echo '```'
    fi
  done
} >"$BENCH_WORK/summary.md"

if [[ -n ${BENCH_OUT:-} ]]; then
  mkdir -p "$BENCH_OUT"
  cp "$RAW" "$BENCH_WORK/summary.md" "$BENCH_OUT/"
  cp "$BENCH_WORK"/*.log "$BENCH_OUT/" 2>/dev/null || true
fi
echo
cat "$BENCH_WORK/summary.md"
if ((failures > 0)); then
  bench_log "$failures run(s) failed"
  exit 1
fi
