"""The chart lets listed clients reach the model servers' gRPC port (issue 16), nobody else.

Rendered by the real helm; the port is named as the operator's builders name it on the
model-server container, so a rename on either side fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import workloads

pytestmark = pytest.mark.k8s

MD = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris", "namespace": "ml", "uid": "u-1"},
    "spec": {"model": {"name": "iris", "version": "1"}},
}


def _model_server_ingress(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (policy,) = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-model-servers")
    ]
    rules: list[dict[str, Any]] = policy["spec"]["ingress"]
    return rules


def test_grpc_clients_listed_in_the_values_reach_the_model_servers_grpc_port_only(
    render_chart: Any,
) -> None:
    on = ("networkPolicy.enabled=true", "networkPolicy.namespaces[0]=ml")
    closed = _model_server_ingress(render_chart(sets=on))
    assert all(p["port"] != "grpc" for rule in closed for p in rule["ports"])
    peer = "networkPolicy.grpcClients[0].namespaceSelector.matchLabels.team=apps"
    rules = _model_server_ingress(render_chart(sets=(*on, peer)))
    grpc_rules = [r for r in rules if any(p["port"] == "grpc" for p in r["ports"])]
    assert grpc_rules == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"team": "apps"}}}],
            "ports": [{"port": "grpc", "protocol": "TCP"}],
        }
    ]
    container = workloads.build_model_server_deployment(
        MD,
        variant="stable",
        model={"name": "iris", "version": "1"},
        replicas=1,
        settings=settings_mod.OperatorSettings(),
    )["spec"]["template"]["spec"]["containers"][0]
    assert "grpc" in {p["name"] for p in container["ports"]}
