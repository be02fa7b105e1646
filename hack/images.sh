#!/usr/bin/env bash
# Build (or reuse) the five modelpilot images from the one Dockerfile, and the archive a node's
# containerd imports:
#   ghcr.io/modelpilot/{modelpilot,operator,model-server,router,drift}:<chart appVersion>
# Each image holds only its own distributions and their dependencies (Dockerfile; issue 14, item
# 5): they share the base and the runtime layer, not the Python environment.
#
# Engine: Docker when a Docker engine answers, otherwise podman (Debian's podman 4.3 with runc,
# installed with apt when missing, as root). IMAGE_ENGINE=docker|podman forces one.
# Base: no registry image is pulled. The base is made from Debian packages: `debootstrap
# --variant=minbase bookworm` plus python3 and python3-venv, trimmed (no apt lists, docs, locales),
# imported as localhost/modelpilot-base:bookworm-<key> and passed as the Dockerfile's PYTHON_IMAGE.
# PYTHON_IMAGE=python:3.11-slim-bookworm (or any) uses a registry base instead.
# Cache: ${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/images/<key>/, where <key> hashes the
# Dockerfile, .dockerignore, pyproject.toml, README.md, every file under src/ operator/ services/,
# hack/images/requirements.py (a snapshot of them is the build context), this script and the base.
# It holds images.tar (one multi-image docker-archive: shared layers stored once) and sizes.txt.
# A warm machine (stamp present and the engine has
# the five tags) does no work; an engine that lost its images loads them back from images.tar.
# A flock makes concurrent callers wait for one build.
#
# Usage: hack/images.sh [build] [--force] [--quiet]  build or reuse; print the sizes
#        hack/images.sh --print-key                  the cache key only
#        hack/images.sh --print-tag                  the image tag only (the chart's appVersion)
#        hack/images.sh --print-archive              build or reuse; print only images.tar's path
#        hack/images.sh env                          build or reuse; print shell assignments
#                                                    (IMAGES_ARCHIVE, IMAGE_TAG, IMAGES ...)
#        hack/images.sh import ADDRESS [NAMESPACE]   build or reuse, then import the archive into
#                                                    the containerd at socket ADDRESS (namespace
#                                                    k8s.io by default) with `ctr images import`
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="${HERE}/$(basename "${BASH_SOURCE[0]}")"
REPO="$(cd "${HERE}/.." && pwd)"
CACHE_ROOT="${MODELPILOT_CACHE:-${HOME}/.cache/modelpilot}/images"
IMAGE_REGISTRY="${IMAGE_REGISTRY:-ghcr.io/modelpilot}"
IMAGE_TAG="${IMAGE_TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' "${REPO}/charts/modelpilot/Chart.yaml")}"
TARGETS=(modelpilot operator model-server router drift)
BASE_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

MODE=build
FORCE=0
QUIET=0
IMPORT_ARGS=()
while (($#)); do
  case "$1" in
    build) MODE=build ;;
    env) MODE=env ;;
    import) MODE=import; shift; IMPORT_ARGS=("$@"); break ;;
    --print-key) MODE=key ;;
    --print-tag) MODE=tag ;;
    --print-archive) MODE=archive ;;
    --force) FORCE=1 ;;
    --quiet) QUIET=1 ;;
    -h | --help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "images.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { ((QUIET)) || printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

# --- the engine -------------------------------------------------------------------------------
# podman here: runc (crun refuses this kind of machine's cgroup v1/hybrid mode), cgroupfs (no
# systemd), file events (no journald), and explicit rlimits: podman's defaults exceed the hard
# limits here, and runc then fails with "error setting rlimit type 6 (NPROC): operation not
# permitted" (tried: nproc 65536 fails under a hard limit of 96367, 4096 works). One
# containers.conf, for our calls only.
PODMAN_CONF="${HERE}/images/containers.conf"
ulimit_flags() {
  local nofile nproc=4096
  nofile="$(ulimit -Hn)"; [[ "${nofile}" == unlimited || "${nofile}" -gt 65536 ]] && nofile=65536
  echo "--ulimit nofile=${nofile}:${nofile} --ulimit nproc=${nproc}:${nproc}"
}
podman_() { CONTAINERS_CONF="${PODMAN_CONF}" podman "$@"; }

apt_install() {
  [[ "$(id -u)" == 0 ]] || die "missing $*; run as root, or: sudo apt-get install --no-install-recommends $*"
  log "installing $* (Debian)"
  apt-get update -qq -o DPkg::Lock::Timeout=600
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "$@" >/dev/null
}

choose_engine() {
  local want="${IMAGE_ENGINE:-}"
  if [[ -z "${want}" ]]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then want=docker; else want=podman; fi
  fi
  case "${want}" in
    docker) ENGINE=docker ;;
    podman)
      command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 || apt_install podman runc
      ENGINE=podman ;;
    *) die "IMAGE_ENGINE must be docker or podman, not '${want}'" ;;
  esac
}
engine() { if [[ "${ENGINE}" == podman ]]; then podman_ "$@"; else docker "$@"; fi; }
image_exists() {
  if [[ "${ENGINE}" == podman ]]; then podman_ image exists "$1"; else docker image inspect "$1" >/dev/null 2>&1; fi
}

# --- keys -------------------------------------------------------------------------------------
base_key() {
  { echo "${BASE_SUITE} ${BASE_PACKAGES} $(uname -m)"; sed -n '/^# --- the base/,/^# --- end base/p' "${SELF}"; } \
    | sha256sum | cut -c1-12
}
# The build context is a snapshot (a copy of exactly what the Dockerfile copies, made once):
# every target is built from the same bytes, so the four after the first are layer-cache hits
# even while people edit the work tree, and the key describes what was built.
CONTEXT_FILES=(Dockerfile .dockerignore pyproject.toml README.md src operator services hack/images/requirements.py)
snapshot_context() {
  local dest="$1"
  (cd "${REPO}" && tar --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
    -cf - "${CONTEXT_FILES[@]}") | tar -C "${dest}" -xf -
}
input_key() {
  local context="$1"
  (
    cd "${context}"
    {
      echo "registry=${IMAGE_REGISTRY} tag=${IMAGE_TAG} python_image=${PYTHON_IMAGE:-debian-$(base_key)}"
      sha256sum "${SELF}" | cut -d' ' -f1
      find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
  )
}

# --- the base: Debian packages, no registry ----------------------------------------------------
# (This section is hashed into the base key: edit it and the base is made again.)
BASE_CHANGES=(
  "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "ENV LANG=C.UTF-8"
  'CMD ["python3"]'
)
ensure_base() {
  BASE_IMAGE="localhost/modelpilot-base:${BASE_SUITE}-$(base_key)"
  image_exists "${BASE_IMAGE}" && return 0
  local tarball="${CACHE_ROOT}/base-$(base_key).tar"
  if [[ ! -s "${tarball}" ]]; then
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local root
    root="$(mktemp -d "${CACHE_ROOT}/.rootfs.XXXXXX")"
    log "debootstrap --variant=minbase --include=${BASE_PACKAGES} ${BASE_SUITE} (a few minutes)"
    debootstrap --variant=minbase --include="${BASE_PACKAGES}" "${BASE_SUITE}" "${root}" "${DEBIAN_MIRROR}" \
      >"${CACHE_ROOT}/debootstrap.log" 2>&1 || { rm -rf "${root}"; die "debootstrap failed: see ${CACHE_ROOT}/debootstrap.log"; }
    # An image needs none of these: downloaded .debs, package lists, docs, manuals, translations.
    rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/* \
      "${root}"/usr/share/doc/* "${root}"/usr/share/man/* "${root}"/usr/share/info/* \
      "${root}"/usr/share/locale/* "${root}"/var/log/* "${root}"/tmp/* "${root}"/dev/*
    tar --numeric-owner -C "${root}" -cf "${tarball}.tmp" . && mv "${tarball}.tmp" "${tarball}"
    rm -rf "${root}"
  fi
  local changes=()
  for change in "${BASE_CHANGES[@]}"; do changes+=(--change "${change}"); done
  engine import "${changes[@]}" "${tarball}" "${BASE_IMAGE}" >/dev/null
  log "base ${BASE_IMAGE}"
}
# --- end base

# --- build ------------------------------------------------------------------------------------
build_images() {
  local base_arg=()
  if [[ -n "${PYTHON_IMAGE:-}" ]]; then
    base_arg=(--build-arg "PYTHON_IMAGE=${PYTHON_IMAGE}")
  else
    ensure_base
    base_arg=(--build-arg "PYTHON_IMAGE=${BASE_IMAGE}")
  fi
  # The host's trust store as a build secret, for pip behind an HTTPS proxy that re-signs.
  local ca="${MODELPILOT_BUILD_CA:-${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}}"
  local secret=()
  [[ -s "${ca}" ]] && secret=(--secret "id=ca-certificates,src=${ca}")
  local extra=()
  if [[ "${ENGINE}" == podman ]]; then
    # shellcheck disable=SC2207
    extra=(--network host --runtime runc $(ulimit_flags))
  else
    export DOCKER_BUILDKIT=1
    extra=(--network host)
  fi
  for target in "${TARGETS[@]}"; do
    log "build --target ${target} -> ${IMAGE_REGISTRY}/${target}:${IMAGE_TAG}"
    # --quiet: the engine's output goes to build.log, shown (its tail) only if the build fails.
    if ((QUIET)); then
      engine build "${extra[@]}" "${base_arg[@]}" "${secret[@]}" --target "${target}" \
        -t "${IMAGE_REGISTRY}/${target}:${IMAGE_TAG}" -f "${CONTEXT}/Dockerfile" "${CONTEXT}" \
        >"${CACHE_ROOT}/build.log" 2>&1 || { tail -40 "${CACHE_ROOT}/build.log" >&2; die "build of ${target} failed"; }
    else
      engine build "${extra[@]}" "${base_arg[@]}" "${secret[@]}" --target "${target}" \
        -t "${IMAGE_REGISTRY}/${target}:${IMAGE_TAG}" -f "${CONTEXT}/Dockerfile" "${CONTEXT}" >&2
    fi
  done
}

all_tags() { for t in "${TARGETS[@]}"; do echo "${IMAGE_REGISTRY}/${t}:${IMAGE_TAG}"; done; }
all_present() { local tag; for tag in $(all_tags); do image_exists "${tag}" || return 1; done; }

write_sizes() {
  local out="$1" tag size
  : >"${out}"
  for tag in $(all_tags); do
    size="$(engine image inspect --format '{{.Size}}' "${tag}")"
    printf '%s %s %s\n' "${tag}" "${size}" "$(numfmt --to=iec --suffix=B "${size}")" >>"${out}"
  done
}

ensure_images() {
  mkdir -p "${CACHE_ROOT}"
  CONTEXT="$(mktemp -d "${CACHE_ROOT}/.context.XXXXXX")"
  trap 'rm -rf "${CONTEXT}"' EXIT
  snapshot_context "${CONTEXT}"
  KEY="$(input_key "${CONTEXT}")"
  DIR="${CACHE_ROOT}/${KEY}"
  exec 9>"${CACHE_ROOT}/.lock"
  flock 9
  if ((!FORCE)) && [[ -f "${DIR}/done" ]]; then
    if all_present; then
      log "cache hit ${KEY} (${DIR})"
      return 0
    fi
    log "cache ${KEY}: the engine lost the images; loading ${DIR}/images.tar"
    engine load -i "${DIR}/images.tar" >/dev/null
    all_present && return 0
  fi
  local start=${SECONDS}
  build_images
  mkdir -p "${DIR}"
  rm -f "${DIR}/done"
  log "saving the five images to ${DIR}/images.tar (one docker-archive, shared layers)"
  # shellcheck disable=SC2046
  if [[ "${ENGINE}" == podman ]]; then
    podman_ save --quiet --multi-image-archive --format docker-archive -o "${DIR}/images.tar.tmp" $(all_tags)
  else
    docker save -o "${DIR}/images.tar.tmp" $(all_tags)
  fi
  mv "${DIR}/images.tar.tmp" "${DIR}/images.tar"
  write_sizes "${DIR}/sizes.txt"
  echo "$((SECONDS - start))" >"${DIR}/build-seconds"
  touch "${DIR}/done"
  log "built in $((SECONDS - start)) s"
  # Each key's archive is ~1 GB: keep this one and the one before it.
  local old
  for old in $(ls -1dt "${CACHE_ROOT}"/*/ 2>/dev/null | tail -n +3); do
    [[ -f "${old}/done" && "${old%/}" != "${DIR}" ]] && rm -rf "${old}"
  done
}

print_sizes() {
  ((QUIET)) && return 0
  log "images (uncompressed size; they share the base and runtime layers, each has its own venv):"
  awk '{printf "[images]   %-45s %s\n", $1, $3}' "${DIR}/sizes.txt" >&2
  log "archive ${DIR}/images.tar $(du -h "${DIR}/images.tar" | cut -f1)"
}

case "${MODE}" in
  key)
    mkdir -p "${CACHE_ROOT}"
    CONTEXT="$(mktemp -d "${CACHE_ROOT}/.context.XXXXXX")"
    trap 'rm -rf "${CONTEXT}"' EXIT
    snapshot_context "${CONTEXT}"
    input_key "${CONTEXT}" ;;
  tag) echo "${IMAGE_TAG}" ;;
  build)
    choose_engine
    ensure_images
    print_sizes ;;
  archive)
    choose_engine
    QUIET=1 ensure_images
    echo "${DIR}/images.tar" ;;
  env)
    choose_engine
    ensure_images
    echo "IMAGES_ARCHIVE=${DIR}/images.tar"
    echo "IMAGES_KEY=${KEY}"
    echo "IMAGE_REGISTRY=${IMAGE_REGISTRY}"
    echo "IMAGE_TAG=${IMAGE_TAG}"
    echo "IMAGES=\"$(all_tags | tr '\n' ' ' | sed 's/ $//')\"" ;;
  import)
    ((${#IMPORT_ARGS[@]} >= 1)) || die "usage: images.sh import ADDRESS [NAMESPACE]"
    address="${IMPORT_ARGS[0]}"
    namespace="${IMPORT_ARGS[1]:-k8s.io}"
    choose_engine
    ensure_images
    command -v ctr >/dev/null 2>&1 || die "ctr (Debian package containerd) is not installed"
    log "ctr -n ${namespace} images import ${DIR}/images.tar (containerd at ${address})"
    ctr --address "${address}" -n "${namespace}" images import "${DIR}/images.tar" >&2
    ;;
esac
