#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running respite: installs the
# dependencies, builds, starts a local redis-server on 127.0.0.1:6379 (unless one already
# answers there) and runs respite in the foreground on 127.0.0.1:6380.
# Try it from another terminal with: redis-cli -p 6380 ping
# Ctrl-C stops respite and the redis-server this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh

REDIS_PORT=${REDIS_PORT:-6379}
RESPITE_PORT=${RESPITE_PORT:-6380}
redis_pid=""
cleanup() {
  if [[ -n "$redis_pid" ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "quickstart: using the redis-server already answering on 127.0.0.1:$REDIS_PORT"
else
  mkdir -p .run
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$PWD/.run" \
    --logfile "$PWD/.run/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  echo "quickstart: started redis-server on 127.0.0.1:$REDIS_PORT (pid $redis_pid)"
fi
echo "quickstart: respite on 127.0.0.1:$RESPITE_PORT -> redis://127.0.0.1:$REDIS_PORT ; try: redis-cli -p $RESPITE_PORT ping (metrics: curl http://127.0.0.1:9180/metrics)"
build/respite --config conf/respite.toml --listen "127.0.0.1:$RESPITE_PORT" \
  --upstream "redis://127.0.0.1:$REDIS_PORT" "$@" &
respite_pid=$!
trap 'kill -TERM $respite_pid 2>/dev/null || true' INT TERM
wait "$respite_pid" || true
