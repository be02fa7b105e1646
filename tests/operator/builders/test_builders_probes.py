"""Issue 13, readiness proven: the probes of the model server and router containers. Kubernetes
runs no liveness probe before a container's startupProbe has succeeded, so a slow start (imports,
a large model, a throttled CPU) is waited for, not restarted."""

from __future__ import annotations

from typing import Any

from modelpilot.operator.builders import workloads
from tests.operator.builders.test_builders import MODEL, SETTINGS, md_body

# kubelet's defaults for a probe that does not set them (core/v1 Probe).
DEFAULT_PERIOD_SECONDS = 10
DEFAULT_FAILURE_THRESHOLD = 3


def _budget(probe: dict[str, Any]) -> int:
    """Seconds of failed probes before kubelet acts (initial delay + period x threshold)."""
    period = int(probe.get("periodSeconds", DEFAULT_PERIOD_SECONDS))
    threshold = int(probe.get("failureThreshold", DEFAULT_FAILURE_THRESHOLD))
    return int(probe.get("initialDelaySeconds", 0)) + period * threshold


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_liveness_probe_cannot_restart_a_model_server_before_its_model_is_loaded() -> None:
    container = _container(
        workloads.build_model_server_deployment(
            md_body(), variant="stable", model=MODEL, replicas=1, settings=SETTINGS
        )
    )
    startup = container["startupProbe"]
    # "Started" means the model is loaded: the readiness path, on the serving container's port.
    assert startup["httpGet"] == container["readinessProbe"]["httpGet"]
    assert startup["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    # Ten minutes for imports and a large model's download and load, where the liveness probe
    # alone would restart the container after about thirty seconds.
    assert _budget(startup) >= 600
    assert _budget(container["livenessProbe"]) < 60
    assert startup["periodSeconds"] <= container["readinessProbe"]["periodSeconds"]


def test_a_slow_starting_router_process_is_waited_for_not_restarted() -> None:
    container = _container(workloads.build_router_deployment(md_body(), settings=SETTINGS))
    startup = container["startupProbe"]
    # The router has no model: it has started once its process answers the liveness path.
    assert startup["httpGet"] == container["livenessProbe"]["httpGet"]
    assert startup["httpGet"] == {"path": "/healthz", "port": "http"}
    assert _budget(startup) >= 600


def test_challengers_get_the_same_startup_probe_as_the_stable_model_server() -> None:
    challenger = _container(
        workloads.build_model_server_deployment(
            md_body(),
            variant="challenger",
            model=MODEL,
            replicas=1,
            settings=SETTINGS,
            experiment="iris-v2",
        )
    )
    stable = _container(
        workloads.build_model_server_deployment(
            md_body(), variant="stable", model=MODEL, replicas=1, settings=SETTINGS
        )
    )
    assert challenger["startupProbe"] == stable["startupProbe"]


def test_a_terminating_model_server_or_router_serves_until_its_endpoint_removal_spreads() -> None:
    # A real-pod rollout without it: 2 of 141 requests failed with "variant stable could not
    # connect" (kube-proxy still routed new connections to the stopped container).
    for deployment in (
        workloads.build_model_server_deployment(
            md_body(), variant="stable", model=MODEL, replicas=1, settings=SETTINGS
        ),
        workloads.build_router_deployment(md_body(), settings=SETTINGS),
    ):
        container = _container(deployment)
        sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        assert 3 <= sleep < grace - 10  # time for kube-proxy, and still time to drain after it
