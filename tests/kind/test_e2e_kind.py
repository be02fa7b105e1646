"""The end-to-end tier on a kind cluster: the same test bodies as the real-node tier
(tests/e2e/test_real_pods.py), against the kind context instead of the local control plane.

`make kind-up kind-load e2e-kind` prepares and runs it: kind-load imports the archive of
`make images` (hack/images.sh: the same five images the real node runs); the `cluster` fixture
installs the chart with charts/modelpilot/ci/kind-values.yaml and brings up `iris` exactly as
tests/e2e does. kind cannot start on the machines this project is developed on (its node image
comes from a registry that cannot be reached; docs/delivery.md): here the tier is skipped,
saying why. Environment: MODELPILOT_KIND_CONTEXT (default kind-modelpilot),
MODELPILOT_KIND_NAMESPACE (default modelpilot), KUBECTL and HELM (default: on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from modelpilot.testing import e2e

pytestmark = [pytest.mark.kind, pytest.mark.slow, pytest.mark.timeout(1800)]

CONTEXT = os.environ.get("MODELPILOT_KIND_CONTEXT", "kind-modelpilot")
NAMESPACE = os.environ.get("MODELPILOT_KIND_NAMESPACE", "modelpilot")
KUBECTL = os.environ.get("KUBECTL", "kubectl")
HELM = os.environ.get("HELM", "helm")
TIMINGS: dict[str, float] = {}


def _why_not() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed: the kind tier needs a Docker engine"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no Docker engine answers (`docker info` failed)"
    for tool in ("kind", KUBECTL, HELM):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(
        [KUBECTL, "--context", CONTEXT, "get", "nodes"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return f"no kind cluster answers at context {CONTEXT}: run `make kind-up kind-load`"
    return None


@pytest.fixture(scope="module")
def cluster() -> e2e.Cluster:
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    tag = subprocess.run(
        ["bash", str(e2e.REPO / "hack" / "images.sh"), "--print-tag"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cluster = e2e.Cluster(
        runner=e2e.KindCluster(context=CONTEXT, kubectl_bin=KUBECTL, helm_bin=HELM),
        namespace=NAMESPACE,
        image_tag=tag,
    )
    e2e.bring_up(cluster, values=[e2e.CHART / "ci" / "kind-values.yaml"], timings=TIMINGS)
    print(f"kind timings: {TIMINGS}", file=sys.stderr)
    return cluster


_BODIES: dict[str, Any] = e2e.load_test_bodies(e2e.REPO / "tests" / "e2e" / "test_real_pods.py")
globals().update(_BODIES)
