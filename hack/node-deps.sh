#!/usr/bin/env bash
# Ensure the Debian packages a real node needs (make node-deps; run by hack/node-binaries.sh):
#   containerd (CRI runtime, with its ctr client), runc (the OCI runtime: crun refuses this
#   kind of machine's cgroup v1 hybrid mode), containernetworking-plugins (the CNI bridge,
#   host-local, loopback, portmap plugins in /usr/lib/cni), iptables and conntrack (kube-proxy's
#   iptables mode), busybox-static (the test image and the pause image are made from it),
#   iproute2 (ip netns/link, the node's network namespace), util-linux (nsenter, unshare).
#
# Installs only what is missing (apt-get, as root, waiting for another apt run's lock), and
# stops a containerd service that a systemd machine would start on install: the harness
# (dev/modelpilot/testing/node.py) runs its own containerd with its own root, state and socket.
#
# Usage: hack/node-deps.sh [--quiet]
set -euo pipefail

QUIET=0
for arg in "$@"; do
  case "${arg}" in
    --quiet) QUIET=1 ;;
    -h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "node-deps.sh: unknown argument '${arg}' (allowed: --quiet)" >&2; exit 2 ;;
  esac
done

# file that proves the package is installed -> package
declare -A NEED=(
  [/usr/bin/containerd]=containerd
  [/usr/bin/ctr]=containerd
  [/usr/sbin/runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [/usr/sbin/iptables]=iptables
  [/usr/sbin/conntrack]=conntrack
  [/bin/busybox]=busybox-static
  [/usr/sbin/ip]=iproute2
  [/usr/bin/nsenter]=util-linux
)
missing=()
for file in "${!NEED[@]}"; do
  if [[ ! -e "${file}" ]]; then
    package="${NEED[${file}]}"
    [[ " ${missing[*]} " == *" ${package} "* ]] || missing+=("${package}")
  fi
done
# busybox-static replaces the dynamic busybox; check that the one installed is static.
if [[ -e /bin/busybox ]] && ! dpkg -s busybox-static >/dev/null 2>&1; then
  [[ " ${missing[*]} " == *" busybox-static "* ]] || missing+=(busybox-static)
fi

if ((${#missing[@]})); then
  if [[ "$(id -u)" != 0 ]]; then
    echo "node-deps.sh: missing Debian package(s) ${missing[*]}; run as root, or:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (Debian)" >&2
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
  if [[ -d /run/systemd/system ]] && [[ " ${missing[*]} " == *" containerd "* ]]; then
    systemctl disable --now containerd.service >&2 || true
  fi
fi

if ((!QUIET)); then
  containerd --version
  runc --version | head -1
  /usr/lib/cni/bridge --version 2>&1 | head -1 || true
  iptables --version
fi
