#!/usr/bin/env bash
# Installs what `make test` needs that Go does not bring, from Debian's
# packages: redis-server and redis-cli (broker tests, single and cluster),
# nginx (the compose file's load balancer, run for real), docker-compose
# (only to validate docker-compose.yml; no Docker engine is used) and
# Chromium (browser tests of the web client) and Node.js (the JavaScript
# client's tests) when it is missing. The tests start and stop their
# own throwaway servers and browsers; services the packages start on install
# are stopped again so nothing is left running.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have redis-server || missing+=(redis-server)
have redis-cli || missing+=(redis-tools)
have chromium || missing+=(chromium)
have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)
have docker-compose || missing+=(docker-compose)
# The JavaScript client's tests run on Node (>= 20, for its WebSocket).
have node || missing+=(nodejs)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif have sudo; then
  sudo=(sudo)
else
  echo "make test needs ${missing[*]}: run as root or install them with apt-get" >&2
  exit 1
fi

echo "installing ${missing[*]} from Debian's packages" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a redis-server on port 6379; the tests do not use it.
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
  "${sudo[@]}" service redis-server stop >/dev/null 2>&1 || "${sudo[@]}" pkill -x redis-server >/dev/null 2>&1 || true
fi
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  "${sudo[@]}" service nginx stop >/dev/null 2>&1 || "${sudo[@]}" pkill -x nginx >/dev/null 2>&1 || true
fi
