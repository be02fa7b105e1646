#!/usr/bin/env bash
# Ensure the real Prometheus binaries the tests run against, from Debian's packages:
#   prometheus, promtool      (package prometheus)
#   prometheus-pushgateway    (package prometheus-pushgateway)
#
# Installs only what is missing (apt-get, as root), then stops and disables the services the
# packages enable: where systemd runs, apt starts Prometheus on :9090 and the Pushgateway on :9091,
# and the harness (dev/modelpilot/testing/prometheus.py) starts its own on free ports instead, so
# nothing of ours is left listening. Without an init system (containers) Debian's invoke-rc.d does
# not start them in the first place.
#
# Usage: hack/install-prometheus.sh [--quiet]   (make prometheus-binaries)
set -euo pipefail

QUIET=0
for arg in "$@"; do
  case "${arg}" in
    --quiet) QUIET=1 ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-prometheus.sh: unknown argument '${arg}' (allowed: --quiet)" >&2; exit 2 ;;
  esac
done

declare -A PACKAGE=([prometheus]=prometheus [promtool]=prometheus [prometheus-pushgateway]=prometheus-pushgateway)
declare -A UNIT=([prometheus]=prometheus.service [prometheus-pushgateway]=prometheus-pushgateway.service)

missing=()
for binary in prometheus promtool prometheus-pushgateway; do
  if ! command -v "${binary}" >/dev/null 2>&1; then
    package="${PACKAGE[${binary}]}"
    [[ " ${missing[*]} " == *" ${package} "* ]] || missing+=("${package}")
  fi
done

if ((${#missing[@]})); then
  if [[ "$(id -u)" != 0 ]]; then
    echo "install-prometheus.sh: missing Debian package(s) ${missing[*]}; run as root, or:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (Debian)" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ -d /run/systemd/system ]]; then
    units=()
    for package in "${missing[@]}"; do units+=("${UNIT[${package}]}"); done
    systemctl disable --now "${units[@]}" >&2 || true
  fi
fi

if ((!QUIET)); then
  prometheus --version 2>&1 | head -1
  promtool --version 2>&1 | head -1
  prometheus-pushgateway --version 2>&1 | head -1
fi
