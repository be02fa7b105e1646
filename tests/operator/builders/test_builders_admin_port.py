"""The admin port (issue 15): `/stats`, `/drift/window` and `/metrics` on a port of their own, so a
NetworkPolicy can open the inference port to clients and the admin port to its readers only."""

from __future__ import annotations

from typing import Any

import pytest

from modelpilot.api import constants
from modelpilot.operator.builders import workloads
from tests.operator.builders import test_builders as base


def _model_server() -> dict[str, Any]:
    return workloads.build_model_server_deployment(
        base.md_body(), variant="stable", model=base.MODEL, replicas=1, settings=base.SETTINGS
    )


def _router() -> dict[str, Any]:
    return workloads.build_router_deployment(base.md_body(), settings=base.SETTINGS)


@pytest.mark.parametrize(
    ("build", "prefix"),
    [(_model_server, "MODELPILOT_SERVER"), (_router, "MODELPILOT_ROUTER")],
    ids=["model-server", "router"],
)
def test_each_workload_names_its_admin_port_listens_there_and_is_scraped_there(
    build: Any, prefix: str
) -> None:
    dep = build()
    pod = dep["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == constants.CONTAINER_PORT
    assert ports[constants.ADMIN_PORT_NAME] == constants.ADMIN_PORT != constants.CONTAINER_PORT
    env = base.env_of(dep)
    assert env[f"{prefix}_PORT"] == str(constants.CONTAINER_PORT)
    assert env[f"{prefix}_ADMIN_PORT"] == str(constants.ADMIN_PORT)
    # Prometheus' annotation-based discovery scrapes /metrics where it is served now.
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(constants.ADMIN_PORT)
    # The probes stay on the inference port: they check the listener the users reach.
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http"


@pytest.mark.parametrize(
    "service",
    [
        workloads.build_model_server_service(base.md_body(), variant="stable"),
        workloads.build_router_service(base.md_body()),
    ],
    ids=["model-server", "router"],
)
def test_no_service_exposes_the_admin_port(service: dict[str, Any]) -> None:
    """Its readers want each pod's own counters and window, never one replica the Service picks."""
    targets = [p["targetPort"] for p in service["spec"]["ports"]]
    assert constants.ADMIN_PORT_NAME not in targets
    assert constants.ADMIN_PORT not in [p["port"] for p in service["spec"]["ports"]]
