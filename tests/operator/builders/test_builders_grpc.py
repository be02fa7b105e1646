"""The model server's gRPC port (issue 16): its container listens on it, its Service exposes it."""

from __future__ import annotations

from modelpilot.api import constants
from modelpilot.operator.builders import workloads
from tests.operator.builders import test_builders as base


def test_the_model_server_listens_for_grpc_and_its_service_exposes_it_as_h2c() -> None:
    dep = workloads.build_model_server_deployment(
        base.md_body(), variant="stable", model=base.MODEL, replicas=1, settings=base.SETTINGS
    )
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": constants.CONTAINER_PORT,
        "admin": constants.ADMIN_PORT,
        "grpc": constants.GRPC_PORT,
    }
    assert base.env_of(dep)["MODELPILOT_SERVER_GRPC_PORT"] == str(constants.GRPC_PORT)
    service = workloads.build_model_server_service(base.md_body(), variant="stable")
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert grpc == {
        "name": "grpc",
        "port": constants.GRPC_PORT,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "kubernetes.io/h2c",
    }


def test_the_routers_service_stays_http_only() -> None:
    service = workloads.build_router_service(base.md_body())
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
