#!/usr/bin/env bash
# Run chains of make targets side by side, each chain's targets in order, every output line
# prefixed with its chain's name; wait for all; fail (stopping the others) as soon as one fails.
#
#   hack/parallel.sh NAME='TARGET...' [NAME='TARGET...' ...]
#
# `make test` uses it to build the Go binaries (the control plane, then the node: CPU-bound on every
# core, with single-threaded links) beside the images (pip installs, single-threaded, and
# debootstrap's downloads): on a cold 2-core machine the two overlap instead of adding up. With
# warm caches each chain returns in about a second. Interrupting it stops every chain.
set -euo pipefail

MAKE="${MAKE:-make}"
(($# > 0)) || { echo "usage: hack/parallel.sh NAME='TARGET...' ..." >&2; exit 2; }

declare -A PID=() NAME_OF=() START=() TARGETS=()
NAMES=()
width=0
for chain in "$@"; do
  [[ "${chain}" == *=* && -n "${chain%%=*}" && -n "${chain#*=}" ]] \
    || { echo "hack/parallel.sh: '${chain}' is not NAME='TARGET...'" >&2; exit 2; }
  name="${chain%%=*}"
  NAMES+=("${name}")
  TARGETS[${name}]="${chain#*=}"
  ((${#name} > width)) && width=${#name}
done

log() { printf '[parallel] %s\n' "$*" >&2; }

# Each chain runs in a process group of its own (setsid) so that stopping it stops its compilers
# and builds too; a trap stops every group still running when this script ends or is interrupted.
stop_all() {
  local n
  for n in "${!PID[@]}"; do kill -TERM -- "-${PID[${n}]}" 2>/dev/null || true; done
}
trap 'stop_all' EXIT
trap 'stop_all; exit 130' INT TERM

T0=${SECONDS}
for name in "${NAMES[@]}"; do
  label="$(printf "%-${width}s" "${name}")"
  log "${name}: ${TARGETS[${name}]}"
  # shellcheck disable=SC2086  # the targets are words
  setsid bash -c 'set -o pipefail; "$1" --no-print-directory $2 2>&1 | sed -u "s/^/$3 | /"' \
    _ "${MAKE}" "${TARGETS[${name}]}" "${label}" &
  PID[${name}]=$!
  NAME_OF[$!]="${name}"
  START[${name}]=${SECONDS}
done

failed=""
while ((${#PID[@]} > 0)); do
  set +e
  wait -n -p done_pid "${PID[@]}"
  rc=$?
  set -e
  name="${NAME_OF[${done_pid}]}"
  unset "PID[${name}]"
  if ((rc != 0)); then
    log "${name} (${TARGETS[${name}]}) failed (exit ${rc}) after $((SECONDS - START[${name}])) s; stopping the others"
    failed="${name}"
    stop_all
    break
  fi
  log "${name} (${TARGETS[${name}]}) done in $((SECONDS - START[${name}])) s"
done
if [[ -n "${failed}" ]]; then
  wait 2>/dev/null || true
  log "failed: ${failed}; its output above is prefixed '${failed} |'; rerun alone with: ${MAKE} ${TARGETS[${failed}]}"
  exit 1
fi
log "all done in $((SECONDS - T0)) s"
