#!/usr/bin/env bash
# Installs what respite needs to build, test and benchmark on Debian 12, with apt-get,
# only when something is missing. Safe to run repeatedly.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libuv1-dev libhiredis-dev libxxhash-dev libspdlog-dev libtomlplusplus-dev libgtest-dev libhttp-parser-dev
  redis-server redis-tools
  clang libclang-rt-14-dev
  python3 python3-redis ruby ruby-redis
  nutcracker
  prometheus  # promtool, which checks the /metrics output in the integration tests
  # deploy/check.py, which checks deploy/ without a cluster or a Docker daemon (Debian's
  # docker-compose is used for `docker-compose config` only; docker.io is not installed)
  python3-yaml python3-jsonschema yamllint docker-compose
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Debian starts redis-server as a service when it can; respite's scripts and tests start
# their own on other ports, so that one is left alone.
