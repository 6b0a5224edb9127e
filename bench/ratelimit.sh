#!/usr/bin/env bash
# The cost of rate limits that are configured but never hit (issue 5): throughput of
# respite with a realistic rule set that applies to every benchmark client but whose
# limits cannot be reached, against respite with the limiter off, side by side with
# redis-server directly and twemproxy (nutcracker) in one run. Target: a cost below 3%
# (rps limits/nolimits >= 0.97).
#
# Targets (one redis-server behind all of them; TARGETS picks a subset):
#   direct            redis-server
#   twemproxy         nutcracker, configured as in compare.sh
#   respite-nolimits  respite --set cache.enabled=false --set ratelimit.enabled=false (no rules)
#   respite-limits    respite --config RL.toml --set cache.enabled=false, RL.toml (written
#                     to the work dir, printed in the report): exempt = 4 globs that match
#                     no benchmark client; rules "per-client" (scope client, clients ["*"],
#                     @all, reject), "global" (scope global, @all, reject) and "writes"
#                     (scope client, clients ["addr:127.0.0.1:*"], @write, delay), each at
#                     rate 1e9/s, burst 1e9. Every request is checked against the three
#                     rules: a GET is charged to two of them, a SET to all three.
#   respite-control   a second respite-nolimits (A/A control): its ratio to respite-nolimits
#                     shows the run-to-run noise when nothing differs
# Near-cache off in every respite (the comparison isolates the limiter).
#
# Workloads: compare.sh's set/get at -c 50 -P 1 and -c 50 -P 16 (100-byte values, random
# keys over 100k, all present), with compare.sh's request counts times BENCH_SCALE. Each
# target gets one unrecorded warm-up run; then ROUNDS rounds per workload, each running
# every target once, the starting target rotating from round to round.
#
# After the runs the script checks that the limits were in effect and never hit: on
# respite-limits, RESPITE RATELIMIT STATS must show enabled:1, the three rules, each with
# rejected=0 and delayed=0, per-client and global allowed >= the requests sent to it (and
# equal to each other), writes allowed >= the SET requests sent; on respite-nolimits,
# enabled:0. Any mismatch stops the script with an error (exit 1).
#
# Then (unless CALLGRIND=0) a callgrind pass through bench/callgrind.sh (CG_TARGETS=respite,
# once with the limits off and once with RL.toml, per command of CG_CMDS): instructions
# per request (delta between N and 2N requests) and the difference per request. The
# STATS check is repeated on each limits-on callgrind run.
#
# Usage (from any directory):
#   bench/ratelimit.sh                      # about 5-6 min on 2 cores (callgrind: 1 min of it)
#   QUICK=1 bench/ratelimit.sh              # under 1 min: 2 rounds, BENCH_SCALE=0.2, N=4000 callgrind
#   RESPITE_BIN=build-bench/respite ROUNDS=7 bench/ratelimit.sh
#   TARGETS="direct twemproxy respite-nolimits respite-limits" bench/ratelimit.sh   # no A/A control
#   CALLGRIND=0 bench/ratelimit.sh          # throughput only
#   BENCH_OUT=/tmp/rl-run bench/ratelimit.sh    # also keep raw.tsv, summary.md, rl.toml, cg.tsv
#
# Environment:
#   ROUNDS (5; QUICK 2), BENCH_SCALE (0.5; QUICK 0.2), WORKLOADS (set-c50-P1 get-c50-P1
#   set-c50-P16 get-c50-P16), TARGETS (direct twemproxy respite-nolimits respite-limits
#   respite-control),
#   RESPITE_BIN (build/respite), RESPITE_ARGS (extra arguments for every respite),
#   RUN_TIMEOUT (120 s per run), KEYSPACE (100000), VALUE_SIZE (100),
#   CALLGRIND (1), CG_CMDS ("get set"), CG_REQUESTS (20000; QUICK 4000), CG_CLIENTS (50),
#   CG_PIPELINE (16), BENCH_LIFETIME (1800 s)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

CMDLINE="$(printf '%q ' "$0" "$@")"
ENVLINE=$(bench_env_line QUICK ROUNDS BENCH_SCALE WORKLOADS TARGETS RESPITE_BIN RESPITE_ARGS RUN_TIMEOUT KEYSPACE VALUE_SIZE \
  CALLGRIND CG_CMDS CG_REQUESTS CG_CLIENTS CG_PIPELINE)

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-2}; BENCH_SCALE=${BENCH_SCALE:-0.2}; CG_REQUESTS=${CG_REQUESTS:-4000}
fi
ROUNDS=${ROUNDS:-5}
BENCH_SCALE=${BENCH_SCALE:-0.5}
WORKLOADS=${WORKLOADS:-set-c50-P1 get-c50-P1 set-c50-P16 get-c50-P16}
TARGETS=${TARGETS:-direct twemproxy respite-nolimits respite-limits respite-control}
RESPITE_BIN=${RESPITE_BIN:-build/respite}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
KEYSPACE=${KEYSPACE:-100000}
VALUE_SIZE=${VALUE_SIZE:-100}
CALLGRIND=${CALLGRIND:-1}
CG_CMDS=${CG_CMDS:-get set}
CG_REQUESTS=${CG_REQUESTS:-20000}
CG_CLIENTS=${CG_CLIENTS:-50}
CG_PIPELINE=${CG_PIPELINE:-16}
USER_RESPITE_ARGS=${RESPITE_ARGS:-}

bench_require redis-server redis-benchmark redis-cli python3 timeout
if [[ " $TARGETS " == *" twemproxy "* ]]; then bench_require nutcracker; fi
if [[ $CALLGRIND == 1 ]]; then bench_require valgrind; fi
[[ -x $RESPITE_BIN ]] || bench_die "respite binary $RESPITE_BIN not found (build it, or set RESPITE_BIN)"
for w in $WORKLOADS; do
  [[ $w =~ ^(get|set)-c[0-9]+-P[0-9]+$ ]] || bench_die "unknown workload $w"
  bench_workload_requests "$w" 1 >/dev/null
done

bench_init "${BENCH_LIFETIME:-1800}"

# ------------------------------------------------------------------ the rule set
RL_CONF=$BENCH_WORK/rl.toml
cat >"$RL_CONF" <<'EOF'
# bench/ratelimit.sh: limits that apply to every benchmark client but cannot be hit.
[ratelimit]
enabled = true
exempt = ["user:admin", "name:healthcheck-*", "addr:10.*", "name:batch-[0-9]*"]

[[ratelimit.rules]]
name = "per-client"
scope = "client"
clients = ["*"]
commands = ["@all"]
rate = 1e9
burst = 1000000000
action = "reject"

[[ratelimit.rules]]
name = "global"
scope = "global"
clients = ["*"]
commands = ["@all"]
rate = 1e9
burst = 1000000000
action = "reject"

[[ratelimit.rules]]
name = "writes"
scope = "client"
clients = ["addr:127.0.0.1:*"]
commands = ["@write"]
rate = 1e9
burst = 1000000000
action = "delay"
max_wait_ms = 100
EOF
"$RESPITE_BIN" --config "$RL_CONF" --check-config >/dev/null 2>"$BENCH_WORK/check-config.err" ||
  { cat "$BENCH_WORK/check-config.err" >&2; bench_die "respite rejects $RL_CONF"; }
ARGS_NOLIMITS=(--set cache.enabled=false --set ratelimit.enabled=false)
ARGS_LIMITS=(--config "$RL_CONF" --set cache.enabled=false)

# ------------------------------------------------------------------ servers
ntargets=$(wc -w <<<"$TARGETS")
mapfile -t ports < <(bench_free_ports "$((ntargets + 3))")
P_REDIS=${ports[0]}
bench_log "starting redis-server on 127.0.0.1:$P_REDIS"
bench_start_redis "$P_REDIS"

declare -A PORT PID
active=()
pi=1
for t in $TARGETS; do
  case "$t" in
    direct)
      PORT[direct]=$P_REDIS; PID[direct]=$REDIS_PID ;;
    twemproxy)
      bench_log "starting nutcracker on 127.0.0.1:${ports[pi]}"
      bench_start_twemproxy "${ports[pi]}" "$P_REDIS" "${ports[pi + 1]}"
      PORT[twemproxy]=${ports[pi]}; PID[twemproxy]=$TW_PID; pi=$((pi + 2)) ;;
    respite-nolimits | respite-control | respite-limits)
      if [[ $t == respite-limits ]]; then args=("${ARGS_LIMITS[@]}"); else args=("${ARGS_NOLIMITS[@]}"); fi
      bench_log "starting $t ($RESPITE_BIN ${args[*]} $USER_RESPITE_ARGS) on 127.0.0.1:${ports[pi]}"
      bench_start_respite "$RESPITE_BIN" "${ports[pi]}" "$P_REDIS" "${args[@]}" || bench_die "$t does not serve"
      PORT[$t]=${ports[pi]}; PID[$t]=$RESPITE_PID; pi=$((pi + 1)) ;;
    *) bench_die "unknown target $t (use direct, twemproxy, respite-nolimits, respite-limits, respite-control)" ;;
  esac
  active+=("$t")
done

bench_log "populating $KEYSPACE keys of $VALUE_SIZE bytes"
bench_populate "$P_REDIS" "$KEYSPACE" "$VALUE_SIZE"
dbsize=$(redis-cli -h 127.0.0.1 -p "$P_REDIS" dbsize)
[[ $dbsize -ge $KEYSPACE ]] || bench_die "populate failed: dbsize $dbsize"
for t in "${active[@]}"; do bench_check_target "$t" "${PORT[$t]}" "$VALUE_SIZE"; done

# rl_stats PORT: RESPITE RATELIMIT STATS, without the \r
rl_stats() { timeout 10 redis-cli -h 127.0.0.1 -p "$1" RESPITE RATELIMIT STATS 2>&1 | tr -d '\r' || true; }

# rl_verify FILE LABEL ALL_REQUESTS WRITE_REQUESTS: the limits were in effect and never
# hit (see the header); prints one line per rule, exits the script on a mismatch.
rl_verify() {
  python3 - "$@" <<'EOF' || bench_die "$2: the limits were not in effect as configured, or were hit (see above)"
import sys
path, label, all_req, write_req = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
kv, rules = {}, {}
for line in open(path):
    line = line.strip()
    key, sep, val = line.partition(":")
    if not sep or line.startswith("#"):
        continue
    if key.startswith("rule_"):
        rules[key[5:]] = dict(p.split("=", 1) for p in val.split(",") if "=" in p)
    else:
        kv[key] = val
bad = []
if kv.get("enabled") != "1":
    bad.append(f"enabled:{kv.get('enabled')} (want 1)")
if kv.get("rules") != "3" or set(rules) != {"per-client", "global", "writes"}:
    bad.append(f"rules:{kv.get('rules')} {sorted(rules)} (want per-client, global, writes)")
want_min = {"per-client": all_req, "global": all_req, "writes": write_req}
for name, r in sorted(rules.items()):
    allowed, delayed, rejected = (int(r.get(k, -1)) for k in ("allowed", "delayed", "rejected"))
    print(f"  {label}: rule {name}: allowed={allowed:,} delayed={delayed} rejected={rejected} "
          f"(requests sent that it applies to: >= {want_min.get(name, 0):,})")
    if rejected != 0 or delayed != 0:
        bad.append(f"rule {name}: rejected={rejected} delayed={delayed} (want 0: the limits must not be hit)")
    if name in want_min and (allowed < want_min[name] or allowed <= 0 and want_min[name] > 0):
        bad.append(f"rule {name}: allowed={allowed} < {want_min[name]} requests sent")
if "per-client" in rules and "global" in rules and rules["per-client"].get("allowed") != rules["global"].get("allowed"):
    bad.append(f"per-client allowed {rules['per-client'].get('allowed')} != global allowed {rules['global'].get('allowed')}")
for b in bad:
    print(f"  {label}: FAIL {b}")
sys.exit(1 if bad else 0)
EOF
}

if [[ -n ${PORT[respite-limits]:-} ]]; then
  rl_stats "${PORT[respite-limits]}" >"$BENCH_WORK/stats-before.txt"
  grep -q '^enabled:1' "$BENCH_WORK/stats-before.txt" ||
    { cat "$BENCH_WORK/stats-before.txt" >&2; bench_die "respite-limits: RESPITE RATELIMIT STATS does not show enabled:1"; }
fi
for t in respite-nolimits respite-control; do
  [[ -n ${PORT[$t]:-} ]] || continue
  s=$(rl_stats "${PORT[$t]}")
  if ! grep -q '^enabled:0' <<<"$s" || ! grep -q '^rules:0' <<<"$s"; then
    echo "$s" >&2
    bench_die "$t: RESPITE RATELIMIT STATS does not show enabled:0, rules:0"
  fi
done

# ------------------------------------------------------------------ runs
RAW=$BENCH_WORK/raw.tsv
echo "$BENCH_RAW_HEADER" >"$RAW"

# warm-up: one short run per target (connections, allocator); not recorded
for t in "${active[@]}"; do
  bench_rb_run "${PORT[$t]}" get 50 1 10000 "$KEYSPACE" "$VALUE_SIZE" >/dev/null
done

bench_log "targets: ${active[*]}; workloads: $WORKLOADS; rounds: $ROUNDS; scale: $BENCH_SCALE"
failures=0
t_start=$SECONDS
for w in $WORKLOADS; do
  IFS=- read -r cmd cs ps <<<"$w"
  c=${cs#c}; p=${ps#P}
  n=$(bench_workload_requests "$w" "$BENCH_SCALE")
  for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < ${#active[@]}; k++)); do
      t=${active[(k + r - 1) % ${#active[@]}]}
      bench_record_run "$RAW" "$w" "$cmd" "$c" "$p" "$n" "$r" "$t" "${PORT[$t]}" "${PID[$t]}" "$KEYSPACE" "$VALUE_SIZE"
      [[ $BENCH_RUN_STATUS == ok ]] || failures=$((failures + 1))
      for tt in "${active[@]}"; do
        bench_alive "${PID[$tt]}" || bench_die "$tt (pid ${PID[$tt]}) died; log: $(tail -5 "$BENCH_WORK/respite-${PORT[$tt]}.log" 2>/dev/null)"
      done
    done
  done
done
t_runs=$((SECONDS - t_start))

# ------------------------------------------------------------------ were the limits in effect?
VERIFY=$BENCH_WORK/verify.txt
: >"$VERIFY"
if [[ -n ${PORT[respite-limits]:-} ]]; then
  rl_stats "${PORT[respite-limits]}" >"$BENCH_WORK/stats-after.txt"
  read -r all_req write_req < <(awk -F'\t' 'NR > 1 && $7 == "respite-limits" && $8 == "ok" {
    a += $5; if ($2 == "set") s += $5 } END { print a + 0, s + 0 }' "$RAW")
  rl_verify "$BENCH_WORK/stats-after.txt" respite-limits "$all_req" "$write_req" | tee -a "$VERIFY" >&2
  grep -E '^(enabled|rules|generation|exempt):' "$BENCH_WORK/stats-after.txt" | tr '\n' ' ' |
    sed 's/^/  respite-limits: /; s/ $/\n/' >>"$VERIFY"
fi
for t in respite-nolimits respite-control; do
  [[ -n ${PORT[$t]:-} ]] || continue
  s=$(rl_stats "${PORT[$t]}")
  grep -q '^enabled:0' <<<"$s" || { echo "$s" >&2; bench_die "$t: limiter not off after the runs"; }
  echo "  $t: $(grep -E '^(enabled|rules):' <<<"$s" | tr '\n' ' ')" >>"$VERIFY"
done

# ------------------------------------------------------------------ callgrind
CG_TSV=$BENCH_WORK/cg.tsv
: >"$CG_TSV"
CG_OK=1
t_cg_start=$SECONDS
if [[ $CALLGRIND == 1 ]]; then
  for cgcmd in $CG_CMDS; do
    for cfg in nolimits limits; do
      if [[ $cfg == limits ]]; then cgargs="--config $RL_CONF"; else cgargs="--set ratelimit.enabled=false"; fi
      keep=$BENCH_WORK/cg-$cgcmd-$cfg
      bench_log "callgrind: respite-$cfg, $cgcmd x $CG_REQUESTS and 2x, -c $CG_CLIENTS -P $CG_PIPELINE"
      before=$(wc -l <"$CG_TSV")
      if ! CG_TARGETS=respite CG_CMD=$cgcmd CG_REQUESTS=$CG_REQUESTS CG_CLIENTS=$CG_CLIENTS \
          CG_PIPELINE=$CG_PIPELINE CG_TOP=0 CG_KEEP_DIR=$keep CG_TSV=$CG_TSV \
          CG_INFO_CMD="RESPITE RATELIMIT STATS" RESPITE_BIN=$RESPITE_BIN \
          RESPITE_ARGS="$cgargs $USER_RESPITE_ARGS" BENCH_LIFETIME=900 \
          bench/callgrind.sh >"$BENCH_WORK/cg-$cgcmd-$cfg.out" 2>"$BENCH_WORK/cg-$cgcmd-$cfg.err" ||
          (($(wc -l <"$CG_TSV") == before)); then
        tail -20 "$BENCH_WORK/cg-$cgcmd-$cfg.err" >&2
        bench_log "callgrind pass respite-$cfg $cgcmd failed"
        CG_OK=0
        continue
      fi
      # tag the line just written with the configuration
      sed -i "\$s/^respite\t/respite-$cfg\t/" "$CG_TSV"
      for nn in "$CG_REQUESTS" "$((2 * CG_REQUESTS))"; do
        f=$keep/info.respite.$nn
        if [[ $cfg == limits ]]; then
          if [[ $cgcmd == set ]]; then wr=$nn; else wr=0; fi
          rl_verify "$f" "callgrind respite-limits $cgcmd N=$nn" "$nn" "$wr" | tee -a "$VERIFY" >&2
        else
          grep -q '^enabled:0' "$f" || { cat "$f" >&2; bench_die "callgrind respite-nolimits: limiter not off"; }
        fi
      done
    done
  done
fi
t_cg=$((SECONDS - t_cg_start))

# ------------------------------------------------------------------ report
PAIRS="respite-limits/respite-nolimits,respite-limits/direct,respite-limits/twemproxy,respite-nolimits/direct,respite-nolimits/twemproxy"
PAIRED="respite-limits/respite-nolimits"
if [[ " ${active[*]} " == *" respite-control "* ]]; then
  PAIRS="$PAIRS,respite-control/respite-nolimits"
  PAIRED="$PAIRED,respite-control/respite-nolimits"
fi
{
  bench_report_head ratelimit.sh
  echo "targets:  ${active[*]}"
  echo "          respite-nolimits: $RESPITE_BIN ${ARGS_NOLIMITS[*]} $USER_RESPITE_ARGS"
  echo "          respite-limits:   $RESPITE_BIN --config rl.toml --set cache.enabled=false $USER_RESPITE_ARGS"
  echo "client:   redis-benchmark -h 127.0.0.1 -p PORT -t CMD -n N -c C -P P -d $VALUE_SIZE -r $KEYSPACE --csv"
  echo "          $ROUNDS rounds per workload, every target once per round, starting target rotating; BENCH_SCALE=$BENCH_SCALE"
  echo "time:     runs ${t_runs}s, callgrind ${t_cg}s"
  echo '```'
  echo
  echo "rl.toml (respite-limits):"
  echo
  echo '```toml'
  grep -v '^#' "$RL_CONF" | sed '/^$/N;/^\n$/D'
  echo '```'
  echo
  echo "Limits in effect and not hit (RESPITE RATELIMIT STATS after the runs):"
  echo
  echo '```'
  cat "$VERIFY"
  echo '```'
  echo
  python3 bench/summarize.py "$RAW" "$CLK_TCK" --pairs "$PAIRS" --paired "$PAIRED"
  echo
  python3 - "$RAW" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["status"] == "ok"]
ws = list(dict.fromkeys(r["workload"] for r in rows))
print("## The issue's target: cost of configured-but-not-hit limits below 3% (rps ratio >= 0.97)")
print()
for w in ws:
    med = {}
    for t in ("respite-limits", "respite-nolimits", "respite-control"):
        v = [float(r["rps"]) for r in rows if r["workload"] == w and r["target"] == t]
        med[t] = statistics.median(v) if v else None
    if not med["respite-limits"] or not med["respite-nolimits"]:
        continue
    rounds = {}
    for r in rows:
        if r["workload"] == w and r["target"] in ("respite-limits", "respite-nolimits"):
            rounds.setdefault(r["round"], {})[r["target"]] = float(r["rps"])
    paired = sorted(v["respite-limits"] / v["respite-nolimits"] for v in rounds.values() if len(v) == 2)
    if not paired:
        continue
    ratio = med["respite-limits"] / med["respite-nolimits"]
    pm = statistics.median(paired)
    verdict = "PASS" if min(ratio, pm) >= 0.97 else ("MISS" if max(ratio, pm) < 0.97 else "MIXED")
    ctl = ""
    if med["respite-control"]:
        cr = {}
        for r in rows:
            if r["workload"] == w and r["target"] in ("respite-control", "respite-nolimits"):
                cr.setdefault(r["round"], {})[r["target"]] = float(r["rps"])
        cp = [v["respite-control"] / v["respite-nolimits"] for v in cr.values() if len(v) == 2]
        ctl = (f"; A/A control/nolimits {med['respite-control'] / med['respite-nolimits']:.3f}, "
               f"per round {min(cp):.3f}-{max(cp):.3f}")
    print(f"- {verdict}  {w}: limits/nolimits {ratio:.3f} (medians {med['respite-limits']:,.0f} / "
          f"{med['respite-nolimits']:,.0f} rps); per round median {pm:.3f}, range "
          f"{min(paired):.3f}-{max(paired):.3f}{ctl}")
print()
print("PASS: both the ratio of medians and the median of the per-round ratios are >= 0.97; MISS: "
      "both below; MIXED: one each. When the per-round ranges (and the A/A control's) are wider "
      "than 3%, throughput on this machine cannot resolve the target; the callgrind figures are "
      "the stable measure.")
EOF
  if [[ $CALLGRIND == 1 ]]; then
    echo
    echo "## Instructions per request (callgrind, bench/callgrind.sh)"
    echo
    echo "respite under \`valgrind --tool=callgrind\`, redis-benchmark -t CMD -n N -c $CG_CLIENTS -P $CG_PIPELINE -d 100 -r 100000, N=$CG_REQUESTS and 2N;"
    echo "Ir/req (delta) = (Ir(2N) - Ir(N)) / N. Each configuration: \`CG_TARGETS=respite CG_CMD=CMD CG_CLIENTS=$CG_CLIENTS CG_PIPELINE=$CG_PIPELINE CG_REQUESTS=$CG_REQUESTS RESPITE_ARGS=\"--set ratelimit.enabled=false\" | \"--config rl.toml\" bench/callgrind.sh\`."
    echo
    python3 - "$CG_TSV" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
d = {}
for t, cmd, c, p, n, a, b in rows:
    d[(cmd, t)] = ((int(b) - int(a)) / int(n), int(b) / (2 * int(n)))
print("| cmd | Ir/req limits off (delta) | Ir/req limits on (delta) | difference | on/off | Ir/req total off / on |")
print("|---|---:|---:|---:|---:|---:|")
for cmd in dict.fromkeys(k[0] for k in d):
    off, on = d.get((cmd, "respite-nolimits")), d.get((cmd, "respite-limits"))
    if not off or not on:
        print(f"| {cmd} | {off[0] if off else '—'} | {on[0] if on else '—'} | — | — | — |")
        continue
    diff = on[0] - off[0]
    print(f"| {cmd} | {off[0]:,.0f} | {on[0]:,.0f} | {diff:+,.0f} | {on[0] / off[0]:.3f} | {off[1]:,.0f} / {on[1]:,.0f} |")
EOF
  fi
} >"$BENCH_WORK/summary.md"

if [[ -n ${BENCH_OUT:-} ]]; then
  mkdir -p "$BENCH_OUT"
  cp "$RAW" "$BENCH_WORK/summary.md" "$RL_CONF" "$CG_TSV" "$BENCH_OUT/"
fi
echo
cat "$BENCH_WORK/summary.md"
((CG_OK)) || bench_die "a callgrind pass failed"
if ((failures > 0)); then
  bench_log "$failures run(s) failed"
  exit 1
fi
