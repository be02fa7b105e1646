#!/usr/bin/env bash
# Build (or reuse) the Go binaries of the local cluster's real node:
#   kubelet, kube-proxy   (hack/gomod/node: the kubernetes wrapper's module set, plus the
#                          k8s.io/cri-streaming staging replacement the kubelet needs)
#   coredns               (hack/gomod/coredns: a main package with only the plugins Service DNS
#                          needs; no `forward` plugin, so no query leaves the machine)
# and make sure the Debian packages the node runs on are there (hack/node-deps.sh: containerd,
# runc, CNI plugins, iptables, conntrack, busybox-static).
#
# Binaries live in ${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/node/<key>, <key> hashing the Go
# version and platform, this script and the wrapper modules (go.mod, go.sum, main.go). The node
# wrapper pins the very module versions of hack/gomod/kubernetes, so once the control plane is
# built the Go build cache makes kubelet and kube-proxy a link step.
#
# Usage: hack/node-binaries.sh [--print-dir] [--force] [--no-deps]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GOMOD_DIR="${HERE}/gomod"
CACHE_ROOT="${MODELPILOT_CACHE:-${HOME}/.cache/modelpilot}"
PRINT_DIR=0
FORCE=0
DEPS=1
for arg in "$@"; do
  case "${arg}" in
    --print-dir) PRINT_DIR=1 ;;
    --force) FORCE=1 ;;
    --no-deps) DEPS=0 ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "node-binaries.sh: unknown argument '${arg}' (allowed: --print-dir, --force, --no-deps)" >&2; exit 2 ;;
  esac
done

log() { printf '[node-binaries] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if ((DEPS)); then bash "${HERE}/node-deps.sh" --quiet >&2; fi

BINARIES=(kubelet kube-proxy coredns)
wrapper_of() { case "$1" in kubelet | kube-proxy) echo node ;; coredns) echo coredns ;; esac; }
package_of() {
  case "$1" in
    kubelet | kube-proxy) echo "k8s.io/kubernetes/cmd/$1" ;;
    coredns) echo . ;;
  esac
}
module_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit}' "${GOMOD_DIR}/$1/go.mod"; }

export GOTOOLCHAIN=local CGO_ENABLED=0
GO="${GO:-$(command -v go || true)}"
[[ -z "${GO}" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
[[ -n "${GO}" ]] || die "no 'go' on PATH"
GO_VERSION="$("${GO}" env GOVERSION)"

key_inputs() {
  echo "${GO_VERSION} $("${GO}" env GOOS)/$("${GO}" env GOARCH)"
  sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
  sha256sum "${GOMOD_DIR}/node/go.mod" "${GOMOD_DIR}/node/go.sum" "${GOMOD_DIR}/coredns/go.mod" \
    "${GOMOD_DIR}/coredns/go.sum" "${GOMOD_DIR}/coredns/main.go" | cut -d' ' -f1
}
KEY="$(key_inputs | sha256sum | cut -c1-16)"
OUT_DIR="${CACHE_ROOT}/node/${KEY}"
mkdir -p "${CACHE_ROOT}/node"
exec 9>"${CACHE_ROOT}/node/.lock"
if ! flock -n 9; then
  log "another build holds ${CACHE_ROOT}/node/.lock; waiting for it"
  flock 9
fi

TODO=()
for b in "${BINARIES[@]}"; do
  if ((FORCE)) || [[ ! -x "${OUT_DIR}/${b}" ]]; then TODO+=("${b}"); fi
done
if ((${#TODO[@]} == 0)); then
  log "cache warm (key ${KEY}); nothing to build"
else
  log "building ${TODO[*]} with ${GO_VERSION} into ${OUT_DIR} (key ${KEY})"
  mkdir -p "${OUT_DIR}"
  TOTAL_START=${SECONDS}
  for b in "${TODO[@]}"; do
    wrapper="$(wrapper_of "${b}")"
    pkg="$(package_of "${b}")"
    ldflags="-s -w"
    if [[ "${wrapper}" == node ]]; then
      kv="$(module_version node k8s.io/kubernetes)"
      kmaj="${kv#v}"; kmaj="${kmaj%%.*}"
      kmin="${kv#v*.}"; kmin="${kmin%%.*}"
      for pkgvar in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        ldflags+=" -X ${pkgvar}.gitVersion=${kv} -X ${pkgvar}.gitMajor=${kmaj} -X ${pkgvar}.gitMinor=${kmin}"
        ldflags+=" -X ${pkgvar}.gitTreeState=clean -X ${pkgvar}.gitCommit=module:k8s.io/kubernetes@${kv}"
      done
    else
      ldflags+=" -X github.com/coredns/coredns/coremain.GitCommit=module:$(module_version coredns github.com/coredns/coredns)"
    fi
    log "${b} <- ${pkg} (${wrapper})"
    start=${SECONDS}
    (cd "${GOMOD_DIR}/${wrapper}" && "${GO}" build -trimpath -ldflags "${ldflags}" -o "${OUT_DIR}/.${b}.tmp" "${pkg}") >&2 \
      || die "go build of ${b} failed"
    mv -f "${OUT_DIR}/.${b}.tmp" "${OUT_DIR}/${b}"
    log "    ${b} built in $((SECONDS - start))s"
  done
  log "done in $((SECONDS - TOTAL_START))s"
fi
echo "${OUT_DIR}"
