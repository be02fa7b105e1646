#!/usr/bin/env bash
# Ensure the real Redis server the router's reward tests run against, from Debian's package
# (redis-server; Debian 12 ships Redis 7.0, whose SET NX EX the router's de-duplication uses; the
# chart runs Valkey, its protocol-compatible fork, from the same command set).
#
# Installs only what is missing (apt-get, as root), then stops and disables the service the package
# enables where systemd runs (apt starts Redis on :6379); the tests (fixture `redis_server` of
# tests/services/router/test_rewards.py) start their own on a free loopback port, so nothing of ours is
# left listening. Without an init system (containers) Debian's invoke-rc.d does not start it.
#
# Usage: hack/install-redis.sh [--quiet]   (make redis-binaries)
set -euo pipefail

QUIET=0
for arg in "$@"; do
  case "${arg}" in
    --quiet) QUIET=1 ;;
    -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-redis.sh: unknown argument '${arg}' (allowed: --quiet)" >&2; exit 2 ;;
  esac
done

if ! command -v redis-server >/dev/null 2>&1 && ! command -v valkey-server >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "install-redis.sh: missing Debian package redis-server; run as root, or:" >&2
    echo "  sudo apt-get install --no-install-recommends redis-server" >&2
    exit 1
  fi
  echo "installing redis-server (Debian)" >&2
  # Another apt run (CI setup, a second install script) may hold the lock: wait for it.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends redis-server >/dev/null
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now redis-server.service >&2 || true
  fi
fi

if ((!QUIET)); then
  { command -v valkey-server >/dev/null 2>&1 && valkey-server --version; } || redis-server --version
fi
