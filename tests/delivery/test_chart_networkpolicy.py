"""The chart's NetworkPolicies and emptyDir sizeLimits (issue 15, item 6), rendered by the real
helm and checked by the real API server (a server-side dry run).

Their selectors are checked against the labels the operator's builders put on the pods they create
(the contract of docs/architecture.md), so a label change on either side fails here. What cannot be
tested here is enforcement: the control plane of the tests has no CNI that enforces NetworkPolicies
(kwok's fake nodes run no network at all; the real-node tier's bridge CNI ignores them), so these
tests show that the policies say the right thing and are valid, not that packets are dropped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import drift, workloads
from modelpilot.testing import controlplane as controlplane_harness

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
VALUES = CHART / "ci" / "networkpolicy-values.yaml"
SETTINGS = settings_mod.OperatorSettings()
MD = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris", "namespace": "ml-team", "uid": "u-1"},
    "spec": {"model": {"name": "iris", "version": "1"}, "drift": {}},
}


def _policies(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"].rsplit("-", 1)[-1]): o["spec"]
        for o in objects
        if o["kind"] == "NetworkPolicy"
    }


def _pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj["spec"]
    template = (
        spec["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else spec["template"]
    )
    labels: dict[str, str] = template["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


SERVER = _pod_labels(
    workloads.build_model_server_deployment(
        MD, variant="stable", model={"name": "iris", "version": "1"}, replicas=1, settings=SETTINGS
    )
)
CHALLENGER = _pod_labels(
    workloads.build_model_server_deployment(
        MD,
        variant="challenger",
        model={"name": "iris", "version": "2"},
        replicas=1,
        settings=SETTINGS,
        experiment="ab",
    )
)
ROUTER = _pod_labels(workloads.build_router_deployment(MD, settings=SETTINGS))
DRIFT = _pod_labels(drift.build_drift_cronjob(MD, settings=SETTINGS))


def test_no_networkpolicy_unless_switched_on(render_chart: Any) -> None:
    objects = render_chart()
    assert [o for o in objects if o["kind"] == "NetworkPolicy"] == []


def test_each_listed_namespace_gets_the_three_policies(render_chart: Any) -> None:
    policies = _policies(render_chart(VALUES))
    assert set(policies) == {
        (ns, part) for ns in ("ml-team", "ml-other") for part in ("servers", "routers", "drift")
    }


def test_without_namespaces_the_policies_go_where_the_operator_deploys(render_chart: Any) -> None:
    on = ("networkPolicy.enabled=true",)
    assert {ns for ns, _ in _policies(render_chart(sets=on, namespace="mp"))} == {"mp"}
    scoped = (*on, "operator.scope=namespace", "operator.watchNamespace=models")
    assert {ns for ns, _ in _policies(render_chart(sets=scoped, namespace="mp"))} == {"models"}


def test_only_routers_and_drift_jobs_reach_the_model_servers_and_only_on_their_port(
    render_chart: Any,
) -> None:
    spec = _policies(render_chart(VALUES))[("ml-team", "servers")]
    assert _selects(spec["podSelector"], SERVER)
    assert _selects(spec["podSelector"], CHALLENGER)  # an experiment's variants too
    assert not _selects(spec["podSelector"], ROUTER)
    assert spec["policyTypes"] == ["Ingress"]
    workload_rule, metrics_rule = spec["ingress"]
    peers = workload_rule["from"]
    assert len(peers) == 2
    assert all(set(p) == {"podSelector"} for p in peers)  # this namespace only
    allowed = [
        name
        for name, labels in (("router", ROUTER), ("drift", DRIFT), ("server", SERVER))
        if any(_selects(p["podSelector"], labels) for p in peers)
    ]
    assert allowed == ["router", "drift"]
    # The named port is the model server's only container port.
    (port,) = workload_rule["ports"]
    assert port == {"port": "http", "protocol": "TCP"}
    assert metrics_rule["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "prometheus"
    }


def test_the_routers_take_the_listed_clients_and_the_operator_only(render_chart: Any) -> None:
    objects = render_chart(VALUES, namespace="mp")
    spec = _policies(objects)[("ml-team", "routers")]
    assert _selects(spec["podSelector"], ROUTER)
    (rule,) = spec["ingress"]
    operator_peer, clients = rule["from"]
    assert operator_peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "mp"
    }
    operator = next(
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    )
    assert _selects(operator_peer["podSelector"], _pod_labels(operator))
    assert clients == {"namespaceSelector": {"matchLabels": {"team": "web"}}}


def test_the_drift_jobs_take_no_traffic_at_all(render_chart: Any) -> None:
    spec = _policies(render_chart(VALUES))[("ml-other", "drift")]
    assert _selects(spec["podSelector"], DRIFT)
    assert spec["policyTypes"] == ["Ingress"]
    assert "ingress" not in spec


def test_a_bad_namespace_or_a_misspelt_key_stops_helm_naming_the_field(helm: Path) -> None:
    for sets, named in (
        (("networkPolicy.namespaces[0]=Not_A_Namespace",), "/networkPolicy/namespaces/0"),
        (("networkPolicy.enabeld=true",), "enabeld"),
    ):
        argv = [str(helm), "template", "m", str(CHART)]
        for item in sets:
            argv += ["--set", item]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode != 0
        assert named in proc.stderr, proc.stderr


def test_the_api_server_accepts_the_policies_in_a_server_side_dry_run(
    control_plane: controlplane_harness.ControlPlane,
) -> None:
    out = control_plane.helm(
        "template", "modelpilot", str(CHART), "-n", "mp", "-f", str(VALUES)
    ).stdout
    policies = [o for o in yaml.safe_load_all(out) if o and o["kind"] == "NetworkPolicy"]
    assert len(policies) == 6
    for namespace in ("ml-team", "ml-other"):
        control_plane.kubectl("create", "namespace", namespace, check=False)
    proc = control_plane.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
        input="\n---\n".join(yaml.safe_dump(p) for p in policies),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("networkpolicy.networking.k8s.io/") == 6
    assert proc.stdout.count("(server dry run)") == 6


@pytest.mark.parametrize(
    "values_file", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name
)
def test_every_emptydir_the_chart_renders_has_a_size_limit(
    render_chart: Any, values_file: Path
) -> None:
    """The chart's own pods (issue 15, item 6); the operator's are in test_builders_hardening."""
    objects = render_chart(values_file, sets=("mlflow.enabled=true",))
    volumes = [
        v
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob", "Pod")
        for v in (
            (
                o["spec"].get("template")
                or o["spec"].get("jobTemplate", {}).get("spec", {}).get("template")
                or {"spec": o["spec"]}
            )["spec"].get("volumes")
            or []
        )
    ]
    empty_dirs = [v for v in volumes if "emptyDir" in v]
    assert empty_dirs
    for volume in empty_dirs:
        assert (volume["emptyDir"] or {}).get("sizeLimit"), (values_file.name, volume)
