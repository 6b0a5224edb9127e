# shellcheck shell=bash disable=SC2034
# Shared helpers for the bench scripts (sourced, not executed).
#
# Every process started through these helpers is recorded (pid + start time) in
# $BENCH_WORK/pids; bench_cleanup (EXIT trap) stops them by pid, and
# bench/watchdog.py stops them if this script dies without running its trap or
# exceeds BENCH_LIFETIME seconds.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
CLK_TCK=$(getconf CLK_TCK)
# The system python when there is one (PYTHON overrides): a pyenv shim on PATH can take a
# second per start. This function covers the helpers below and the scripts.
PYTHON=${PYTHON:-/usr/bin/python3}
if [[ -x $PYTHON ]]; then python3() { "$PYTHON" "$@"; }; fi

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "ERROR: $*"; exit 1; }

# "NAME=value " for each named variable that is set (shell-quoted): the environment part of
# the command line a report quotes.
bench_env_line() {
  local v out=""
  for v in "$@"; do
    if [[ -n ${!v:-} ]]; then out+="$v=$(printf '%q' "${!v}") "; fi
  done
  printf '%s' "$out"
}

# The head of a report: title, then (inside a code block left open for the caller's own
# lines) the command that made it and the machine's state. Uses ENVLINE and CMDLINE.
bench_report_head() {
  echo "# respite bench/$1"
  echo
  echo '```'
  echo "command:  ${ENVLINE}${CMDLINE}"
  bench_machine_info
  bench_busy_warning
}

bench_require() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || bench_die "required program not found: $c"
  done
}

# bench_init LIFETIME_SECONDS
bench_init() {
  local lifetime=${1:-3600}
  BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  BENCH_WORK=$(mktemp -d /tmp/respite-bench.XXXXXX)
  BENCH_PIDFILE=$BENCH_WORK/pids
  : >"$BENCH_PIDFILE"
  BENCH_STARTED=()
  trap bench_cleanup EXIT
  trap 'bench_log "command failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR
  trap 'exit 130' INT
  trap 'exit 143' TERM
  python3 "$BENCH_DIR/watchdog.py" "$$" "$lifetime" "$BENCH_PIDFILE" </dev/null &
  BENCH_WATCHDOG=$!
}

bench_starttime() {
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  # shellcheck disable=SC2086
  set -- $rest
  echo "${20}"   # field 22 (starttime); $1 here is field 3
}

# bench_track PID: remember a process we started.
bench_track() {
  local st
  st=$(bench_starttime "$1") || return 0
  echo "$1 $st" >>"$BENCH_PIDFILE"
  BENCH_STARTED+=("$1")
}

# bench_alive PID: running (not gone, not a zombie waiting to be reaped).
bench_alive() {
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  [[ ${rest:0:1} != Z && ${rest:0:1} != X ]]
}

# bench_stop PID: SIGTERM, wait up to 5 s, then SIGKILL.  Only for pids we started.
bench_stop() {
  local pid=$1 i
  bench_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    bench_alive "$pid" || break
    sleep 0.1
  done
  if bench_alive "$pid"; then
    bench_log "pid $pid did not stop after SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  # stop in reverse start order: clients/proxies before redis
  for ((i = ${#BENCH_STARTED[@]} - 1; i >= 0; i--)); do
    bench_stop "${BENCH_STARTED[$i]}"
  done
  if [[ -n ${BENCH_WATCHDOG:-} ]]; then
    kill -TERM "$BENCH_WATCHDOG" 2>/dev/null || true
    wait "$BENCH_WATCHDOG" 2>/dev/null || true
  fi
  if [[ -n ${BENCH_KEEP_WORK:-} ]]; then
    bench_log "kept work dir $BENCH_WORK"
  elif [[ -n ${BENCH_WORK:-} && -d $BENCH_WORK ]]; then
    rm -rf "$BENCH_WORK"
  fi
  exit "$rc"
}

# bench_free_ports N: print N currently free TCP ports on 127.0.0.1, one per line.
bench_free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# bench_wait_ping PORT PID TIMEOUT_S: wait until PING on 127.0.0.1:PORT answers PONG.
bench_wait_ping() {
  local port=$1 pid=$2 timeout_s=${3:-10} deadline
  deadline=$((SECONDS + timeout_s))
  while ((SECONDS < deadline)); do
    if ! bench_alive "$pid"; then
      return 2
    fi
    if [[ $(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# bench_start_redis PORT [extra redis-server args...]; sets REDIS_PID
bench_start_redis() {
  local port=$1
  shift
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$BENCH_WORK" --logfile "$BENCH_WORK/redis-$port.log" "$@" </dev/null &
  REDIS_PID=$!
  bench_track "$REDIS_PID"
  bench_wait_ping "$port" "$REDIS_PID" 10 ||
    { tail -20 "$BENCH_WORK/redis-$port.log" >&2; bench_die "redis-server on port $port did not start"; }
}

# bench_start_twemproxy PORT REDIS_PORT STATS_PORT; sets TW_PID
# server_connections: TW_SERVER_CONNECTIONS (default 1, twemproxy's own default).
# bench_twemproxy_conf FILE PORT REDIS_PORT TIMEOUT_MS: writes a one-pool nutcracker config.
bench_twemproxy_conf() {
  cat >"$1" <<EOF
bench:
  listen: 127.0.0.1:$2
  hash: fnv1a_64
  distribution: ketama
  redis: true
  preconnect: true
  auto_eject_hosts: false
  server_connections: ${TW_SERVER_CONNECTIONS:-1}
  timeout: $4
  servers:
   - 127.0.0.1:$3:1
EOF
}

bench_start_twemproxy() {
  local port=$1 rport=$2 sport=$3 conf=$BENCH_WORK/nutcracker-$1.yml
  bench_twemproxy_conf "$conf" "$port" "$rport" 5000
  nutcracker -c "$conf" -s "$sport" -a 127.0.0.1 -o "$BENCH_WORK/nutcracker-$port.log" \
    -p "$BENCH_WORK/nutcracker-$port.pid" </dev/null &
  TW_PID=$!
  bench_track "$TW_PID"
  bench_wait_ping "$port" "$TW_PID" 10 ||
    { tail -20 "$BENCH_WORK/nutcracker-$port.log" >&2; bench_die "nutcracker on port $port did not start"; }
}

# bench_start_respite BIN PORT REDIS_PORT [extra args...]; sets RESPITE_PID.
# Returns non-zero (does not exit) if it does not answer PING within RESPITE_START_TIMEOUT s.
# RESPITE_ARGS (env, word-split) is appended, e.g. RESPITE_ARGS="--config bench.toml".
bench_start_respite() {
  local bin=$1 port=$2 rport=$3
  shift 3
  # shellcheck disable=SC2086
  "$bin" --listen "127.0.0.1:$port" --upstream "redis://127.0.0.1:$rport" --admin "" \
    --log-level "${RESPITE_LOG_LEVEL:-warn}" "$@" ${RESPITE_ARGS:-} \
    </dev/null >"$BENCH_WORK/respite-$port.log" 2>&1 &
  RESPITE_PID=$!
  bench_track "$RESPITE_PID"
  if ! bench_wait_ping "$port" "$RESPITE_PID" "${RESPITE_START_TIMEOUT:-10}"; then
    bench_log "respite ($bin) did not answer PING on port $port; its log:"
    tail -20 "$BENCH_WORK/respite-$port.log" >&2 || true
    bench_stop "$RESPITE_PID"
    RESPITE_PID=
    return 1
  fi
}

# bench_try_respite BIN PORT REDIS_PORT [respite args...]: starts respite if the binary
# exists and it answers PING (sets RESPITE_PID, returns 0); otherwise warns and returns 1,
# or stops the script when RESPITE_REQUIRED=1.
bench_try_respite() {
  local bin=$1
  if [[ ! -x $bin ]]; then
    [[ ${RESPITE_REQUIRED:-0} == 1 ]] && bench_die "respite binary $bin not found"
    bench_log "WARNING: $bin not found; skipping respite"
    return 1
  fi
  if bench_start_respite "$@"; then return 0; fi
  [[ ${RESPITE_REQUIRED:-0} == 1 ]] && bench_die "respite does not serve"
  bench_log "WARNING: respite does not serve; skipping it"
  return 1
}

# bench_cpu_ticks PID: utime+stime (all threads) in clock ticks.
bench_cpu_ticks() {
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
  rest=${line##*) }
  # shellcheck disable=SC2086
  set -- $rest
  echo $(( ${12} + ${13} ))   # fields 14 (utime) and 15 (stime)
}

# bench_status_kb PID FIELD: a "kB" field of /proc/PID/status (VmHWM, VmRSS).
bench_status_kb() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# bench_populate REDIS_PORT KEYS VALUE_SIZE: SET key:%012d (redis-benchmark's -r key
# names) for 0..KEYS-1 to a VALUE_SIZE-byte value, so GET runs hit.
bench_populate() {
  python3 - "$2" "$3" <<'EOF' | timeout 120 redis-cli -h 127.0.0.1 -p "$1" --pipe >/dev/null
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
val = b"x" * size
out = sys.stdout.buffer
chunk = []
for i in range(n):
    k = b"key:%012d" % i
    chunk.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, val))
    if len(chunk) == 10000:
        out.write(b"".join(chunk))
        chunk = []
out.write(b"".join(chunk))
EOF
}

# bench_rb_run PORT CMD CLIENTS PIPELINE REQUESTS KEYSPACE VALUE_SIZE: one run of
# `redis-benchmark -t CMD ... --csv` against 127.0.0.1:PORT, killed after RUN_TIMEOUT s
# (default 120). Prints "status rps p50_ms p99_ms", status ok, noparse or fail(RC);
# redis-benchmark's output is left in $BENCH_WORK/rb.out and rb.err.
bench_rb_run() {
  local port=$1 cmd=$2 c=$3 p=$4 n=$5 keyspace=$6 size=$7 out line
  out=$BENCH_WORK/rb.out
  if timeout -k 5 "${RUN_TIMEOUT:-120}" redis-benchmark -h 127.0.0.1 -p "$port" \
      -t "$cmd" -n "$n" -c "$c" -P "$p" -d "$size" -r "$keyspace" --csv \
      >"$out" 2>"$BENCH_WORK/rb.err"; then
    line=$(grep -i "^\"$cmd\"" "$out" | tail -1 || true)
    if [[ -n $line ]]; then
      # "test","rps","avg","min","p50","p95","p99","max"
      echo "$line" | tr -d '"' | awk -F, '{ print "ok", $2, $5, $7 }'
      return
    fi
    echo "noparse nan nan nan"
  else
    echo "fail($?) nan nan nan"
  fi
}

# bench_workload_requests WORKLOAD SCALE: requests per run of a compare.sh workload
# (CMD-cC-PP): 200k at -c 50 -P 1, 1M at -c 50 -P 16, 40k at -c 1 -P 1 (about 2-4 s per
# run on the 2-core dev box), times SCALE, at least 1000.
bench_workload_requests() {
  local base
  case "$1" in
    *-c50-P1) base=200000 ;;
    *-c50-P16) base=1000000 ;;
    *-c1-P1) base=40000 ;;
    *) bench_die "unknown workload $1" ;;
  esac
  python3 -c "import sys; print(max(1000, int(float(sys.argv[1]) * float(sys.argv[2]))))" "$base" "$2"
}

# The columns of the raw.tsv that bench_record_run writes and bench/summarize.py reads.
BENCH_RAW_HEADER=$'workload\tcmd\tclients\tpipeline\trequests\tround\ttarget\tstatus\trps\tp50_ms\tp99_ms\tproxy_ticks\tredis_ticks\telapsed_s'

# bench_record_run RAW WORKLOAD CMD CLIENTS PIPELINE REQUESTS ROUND TARGET PORT PID KEYSPACE
# VALUE_SIZE: one bench_rb_run against PORT, with the CPU ticks of PID (the proxy; not
# counted when TARGET is "direct") and of REDIS_PID over the run; appends a row to RAW
# and logs it. Sets BENCH_RUN_STATUS (ok, noparse, fail(RC)) and BENCH_RUN_RPS.
bench_record_run() {
  local raw=$1 w=$2 cmd=$3 c=$4 p=$5 n=$6 r=$7 t=$8 port=$9 pid=${10} keyspace=${11} size=${12}
  local pt0 pt1 rt0 rt1 t0 t1 status rps p50 p99 ptick elapsed
  pt0=$(bench_cpu_ticks "$pid")
  rt0=$(bench_cpu_ticks "$REDIS_PID")
  t0=$EPOCHREALTIME
  read -r status rps p50 p99 < <(bench_rb_run "$port" "$cmd" "$c" "$p" "$n" "$keyspace" "$size")
  t1=$EPOCHREALTIME
  pt1=$(bench_cpu_ticks "$pid")
  rt1=$(bench_cpu_ticks "$REDIS_PID")
  if [[ $t == direct ]]; then ptick=0; else ptick=$((pt1 - pt0)); fi
  elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  [[ $status == ok ]] || bench_log "run failed: $t $w round $r: $status $(head -c 300 "$BENCH_WORK/rb.err")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$w" "$cmd" "$c" "$p" "$n" "$r" "$t" "$status" "$rps" "$p50" "$p99" "$ptick" "$((rt1 - rt0))" "$elapsed" >>"$raw"
  bench_log "$w round $r $t: $status rps=$rps p50=${p50}ms p99=${p99}ms (${elapsed}s)"
  BENCH_RUN_STATUS=$status
  BENCH_RUN_RPS=$rps
}

# bench_busy_warning: a line of warning if the 1-minute load average when the script
# started exceeded half the cores (i.e. something else was using the machine)
# bench_check_target NAME PORT VALUE_SIZE: the target must return the populated value of
# key:000000000042 and read back its own SET; dies otherwise (an erroring or wrong proxy
# must not produce throughput figures).
bench_check_target() {
  local name=$1 port=$2 size=$3 want got k
  want=$(printf '%*s' "$size" '' | tr ' ' x)
  got=$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" get key:000000000042 2>&1) || true
  [[ $got == "$want" ]] || bench_die "$name: GET key:000000000042 returned '${got:0:80}', expected $size x's"
  k="bench:check:$$:$RANDOM"
  got=$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" set "$k" hello 2>&1) || true
  [[ $got == OK ]] || bench_die "$name: SET returned '${got:0:80}'"
  got=$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" get "$k" 2>&1) || true
  [[ $got == hello ]] || bench_die "$name: GET after SET returned '${got:0:80}'"
  timeout 5 redis-cli -h 127.0.0.1 -p "$port" del "$k" >/dev/null 2>&1 || true
}

bench_busy_warning() {
  python3 - "$(nproc)" "${BENCH_LOAD_START:-$(cat /proc/loadavg)}" <<'EOF2'
import sys
n = int(sys.argv[1]); l1 = float(sys.argv[2].split()[0])
if l1 > n / 2:
    print(f"WARNING:  machine was busy before the run (1-min load {l1:.1f} on {n} cores): "
          "figures are noisy; compare ratios within one run only")
EOF2
}

bench_machine_info() {
  local model
  model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine:  nproc=$(nproc), kernel $(uname -r), ${model:-unknown cpu}"
  echo "load avg: at start ${BENCH_LOAD_START:-?}, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "tools:    $(redis-server --version | awk '{print $1, $2, $3}'), $(nutcracker --version 2>&1 | head -1 | sed "s/^This is //")"
  echo "repo:     $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_DIR" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
}
