#!/usr/bin/env bash
# Regenerate the wrapper Go modules under hack/gomod/ from the Go module proxy.
#
# Each wrapper is a tiny module whose only content is a go.mod with `tool` directives naming the
# main packages we build (Go >= 1.24), so `go mod tidy` records exactly the dependencies those
# binaries need and `go build <tool package>` from the wrapper directory builds them.
#
# The Kubernetes wrapper is the interesting one: k8s.io/kubernetes requires its staging modules at
# v0.0.0 and replaces them with ./staging/src/... paths, which only work inside its own repository.
# We derive the replace list from the go.mod the proxy serves for the chosen version, so a later
# version needs no hand edits: every staging module that k8s.io/kubernetes requires is replaced by
# the published v0.<minor>.<patch> of that module.
#
# Usage: hack/update-gomod.sh [kubernetes|etcd|kwok|helm|all]
#   KUBERNETES_VERSION (default v1.36.3), ETCD_VERSION (v3.6.16), KWOK_VERSION (v0.8.0),
#   HELM_MODULE (helm.sh/helm/v4), HELM_VERSION (v4.3.1)
# The results (go.mod, go.sum) are committed; hack/build-binaries.sh only reads them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GOMOD_DIR="${HERE}/gomod"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_MODULE="${HELM_MODULE:-helm.sh/helm/v4}"
HELM_VERSION="${HELM_VERSION:-v4.3.1}"

go_major_minor() { "${GO}" env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/'; }

# new_wrapper DIR MODULE_NAME: start a fresh go.mod in DIR.
new_wrapper() {
  local dir="$1" name="$2"
  mkdir -p "${dir}"
  rm -f "${dir}/go.mod" "${dir}/go.sum"
  (cd "${dir}" && "${GO}" mod init "${name}" >/dev/null 2>&1 && "${GO}" mod edit -go="$(go_major_minor).0")
}

update_kubernetes() {
  local dir="${GOMOD_DIR}/kubernetes" v="${KUBERNETES_VERSION}"
  local staging="v0.${v#v1.}"
  echo ">> kubernetes ${v} (staging modules at ${staging})"
  new_wrapper "${dir}" modelpilot.local/hack/gomod/kubernetes
  local upstream_mod
  upstream_mod="$(cd "${dir}" && "${GO}" mod download -json "k8s.io/kubernetes@${v}" \
    | sed -nE 's/^[[:space:]]*"GoMod": "(.*)",?$/\1/p')"
  [[ -f "${upstream_mod}" ]] || { echo "cannot fetch go.mod of k8s.io/kubernetes@${v}" >&2; exit 1; }
  # Staging modules: replaced with a ./staging path upstream AND required by k8s.io/kubernetes
  # (the replace block also lists modules nothing requires, some of which are never published).
  local replaced required mod
  replaced="$(awk '/^replace[[:space:]]*\(/{f=1;next} f&&/^\)/{f=0} f&&/=>[[:space:]]*\.\//{print $1}' "${upstream_mod}" | sort -u)"
  required="$(awk '/^require[[:space:]]*\(/{f=1;next} f&&/^\)/{f=0} f&&NF>=2{print $1}' "${upstream_mod}" | sort -u)"
  local -a edits=("-require=k8s.io/kubernetes@${v}")
  for mod in $(comm -12 <(echo "${replaced}") <(echo "${required}")); do
    edits+=("-replace=${mod}=${mod}@${staging}")
  done
  (cd "${dir}" && "${GO}" mod edit "${edits[@]}")
  local tool
  for tool in cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubectl; do
    (cd "${dir}" && "${GO}" mod edit -tool="k8s.io/kubernetes/${tool}")
  done
  (cd "${dir}" && "${GO}" mod tidy)
}

update_simple() {
  local name="$1" module="$2" version="$3"
  shift 3
  echo ">> ${name}: ${module}@${version}"
  local dir="${GOMOD_DIR}/${name}"
  new_wrapper "${dir}" "modelpilot.local/hack/gomod/${name}"
  (cd "${dir}" && "${GO}" mod edit -require="${module}@${version}")
  local pkg
  for pkg in "$@"; do
    (cd "${dir}" && "${GO}" mod edit -tool="${pkg}")
  done
  (cd "${dir}" && "${GO}" mod tidy)
}

what="${1:-all}"
case "${what}" in
  kubernetes) update_kubernetes ;;
  etcd) update_simple etcd go.etcd.io/etcd/server/v3 "${ETCD_VERSION}" go.etcd.io/etcd/server/v3 ;;
  kwok) update_simple kwok sigs.k8s.io/kwok "${KWOK_VERSION}" sigs.k8s.io/kwok/cmd/kwok ;;
  helm) update_simple helm "${HELM_MODULE}" "${HELM_VERSION}" "${HELM_MODULE}/cmd/helm" ;;
  all)
    "$0" kubernetes
    "$0" etcd
    "$0" kwok
    "$0" helm
    ;;
  *) echo "usage: $0 [kubernetes|etcd|kwok|helm|all]" >&2; exit 2 ;;
esac
