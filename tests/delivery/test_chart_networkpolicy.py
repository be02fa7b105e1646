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


def _rules_by_port(spec: dict[str, Any]) -> dict[str, list[dict[str, Any] | None]]:
    """Port name -> the peers of every rule that opens it (None: a rule open to anyone)."""
    out: dict[str, list[dict[str, Any] | None]] = {}
    for rule in spec["ingress"]:
        for port in rule["ports"]:
            assert port["protocol"] == "TCP"
            out.setdefault(port["port"], []).extend(rule.get("from") or [None])
    return out


def _who(peers: list[dict[str, Any] | None], objects: dict[str, dict[str, str]]) -> list[str]:
    """Which of the named pods (in the policy's own namespace) some peer lets in."""
    return [
        name
        for name, labels in objects.items()
        if any(
            p is None or ("podSelector" in p and _selects(p["podSelector"], labels)) for p in peers
        )
    ]


PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def test_every_port_the_policies_name_is_a_port_the_operator_s_pods_name() -> None:
    """Named ports resolve against the pods' container ports: a name that is not there opens
    nothing (the model servers' and routers' `admin` port is constants.ADMIN_PORT)."""
    from modelpilot.api import constants

    for build in (
        workloads.build_model_server_deployment(
            MD,
            variant="stable",
            model={"name": "iris", "version": "1"},
            replicas=1,
            settings=SETTINGS,
        ),
        workloads.build_router_deployment(MD, settings=SETTINGS),
    ):
        (container,) = build["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == constants.CONTAINER_PORT
        assert ports["admin"] == constants.ADMIN_PORT


def test_model_servers_take_inference_from_routers_only_and_admin_reads_from_drift_jobs_only(
    render_chart: Any,
) -> None:
    spec = _policies(render_chart(VALUES))[("ml-team", "servers")]
    assert _selects(spec["podSelector"], SERVER)
    assert _selects(spec["podSelector"], CHALLENGER)  # an experiment's variants too
    assert not _selects(spec["podSelector"], ROUTER)
    assert spec["policyTypes"] == ["Ingress"]
    by_port = _rules_by_port(spec)
    assert set(by_port) == {"http", "admin"}  # no grpcClients in these values: gRPC closed
    pods = {"router": ROUTER, "drift": DRIFT, "server": SERVER}
    # Inference: the routers of this namespace, nobody else (not the drift job, not Prometheus).
    assert all(set(p or {}) == {"podSelector"} for p in by_port["http"])  # this namespace only
    assert _who(by_port["http"], pods) == ["router"]
    assert PROMETHEUS not in by_port["http"]
    # /drift/window and /metrics: the drift jobs and the monitoring listed, never the routers.
    assert _who(by_port["admin"], pods) == ["drift"]
    assert PROMETHEUS in by_port["admin"]
    assert None not in by_port["http"] + by_port["admin"]  # no rule open to anyone


def test_routers_take_inference_from_the_clients_and_admin_reads_from_the_operator_only(
    render_chart: Any,
) -> None:
    objects = render_chart(VALUES, namespace="mp")
    spec = _policies(objects)[("ml-team", "routers")]
    assert _selects(spec["podSelector"], ROUTER)
    by_port = _rules_by_port(spec)
    assert set(by_port) == {"http", "admin"}
    clients = {"namespaceSelector": {"matchLabels": {"team": "web"}}}
    assert by_port["http"] == [clients]  # the clients: inference and /feedback only
    operator = next(
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    )
    operator_peer, monitoring = by_port["admin"]
    assert operator_peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "mp"
    }
    assert _selects(operator_peer["podSelector"], _pod_labels(operator))
    assert monitoring == PROMETHEUS
    assert clients not in by_port["admin"]  # /stats is not the clients' to read


def test_without_router_clients_anyone_may_call_inference_but_not_read_stats(
    render_chart: Any,
) -> None:
    spec = _policies(render_chart(sets=("networkPolicy.enabled=true",), namespace="mp"))[
        ("mp", "routers")
    ]
    by_port = _rules_by_port(spec)
    assert by_port["http"] == [None]
    (operator_peer,) = by_port["admin"]  # no monitoring listed: the operator alone
    assert operator_peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"


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
