#!/usr/bin/env bash
# Installs what `make test` needs that Go does not bring: redis-server and
# redis-cli (Debian's redis-server package). The tests start and stop their
# own throwaway servers on free loopback ports; the system service that the
# package starts on install is stopped again so nothing is left running.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have redis-server || missing+=(redis-server)
have redis-cli || missing+=(redis-tools)
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
"${sudo[@]}" service redis-server stop >/dev/null 2>&1 || "${sudo[@]}" pkill -x redis-server >/dev/null 2>&1 || true
