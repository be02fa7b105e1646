"""Every example under manifests/examples/ is accepted by the API server of the local control plane
once the CRDs exist (server-side dry run: the CRDs' structural schemas and CEL rules are applied),
and each example holds one idea: one object of a modelpilot kind, with a comment saying what it
shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modelpilot.testing import controlplane as controlplane_harness

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
NAMESPACE = "examples"


@pytest.fixture(scope="module")
def crds_installed(control_plane: controlplane_harness.ControlPlane) -> None:
    control_plane.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "manifests" / "crds")
    )
    control_plane.wait_established("modeldeployments.modelpilot.io", "experiments.modelpilot.io")
    namespace = json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    control_plane.kubectl("apply", "-f", "-", input=namespace)


def test_examples_cover_deployment_bandit_drift_and_fixed_split() -> None:
    specs = {p.stem: yaml.safe_load(p.read_text()) for p in EXAMPLES}
    assert specs["modeldeployment"]["kind"] == "ModelDeployment"
    assert specs["experiment-thompson"]["spec"]["policy"]["type"] == "thompson"
    assert "drift" in specs["drift-monitoring"]["spec"]
    assert specs["experiment-fixed-split"]["spec"]["policy"]["type"] == "fixed"
    for path in EXAMPLES:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(documents) == 1, f"{path.name}: one idea, one object"
        assert path.read_text().startswith("#"), f"{path.name}: say what it shows"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_accepted_by_the_api_server(
    control_plane: controlplane_harness.ControlPlane, crds_installed: None, path: Path
) -> None:
    proc = control_plane.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        NAMESPACE,
        "-f",
        str(path),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(server dry run)" in proc.stdout


def test_a_broken_example_is_rejected_with_the_field_named(
    control_plane: controlplane_harness.ControlPlane, crds_installed: None
) -> None:
    # The dry run must be able to say no: both alias and version, and an unknown field.
    broken = yaml.safe_load((REPO / "manifests" / "examples" / "modeldeployment.yaml").read_text())
    broken["spec"]["model"]["version"] = "3"
    proc = control_plane.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        NAMESPACE,
        "-f",
        "-",
        input=yaml.safe_dump(broken),
        check=False,
    )
    assert proc.returncode != 0
    assert "spec.model" in proc.stderr
    typo = yaml.safe_load((REPO / "manifests" / "examples" / "modeldeployment.yaml").read_text())
    typo["spec"]["serving"]["replica"] = 2
    proc = control_plane.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        NAMESPACE,
        "-f",
        "-",
        input=yaml.safe_dump(typo),
        check=False,
    )
    assert proc.returncode != 0
    assert "replica" in proc.stderr
