"""Issue 13, readiness proven: the chart's own long-starting pods (the operator, MLflow) have a
startupProbe, so a slow start on a busy node is waited for and their liveness probe cannot restart
them before they first answer. The operator's workloads get theirs from the builders
(tests/operator/builders/test_builders_probes.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.delivery.test_chart_render import CHART, _kind

pytestmark = pytest.mark.k8s


def _budget(probe: dict[str, Any]) -> int:
    """Seconds of failed probes before kubelet acts (defaults: period 10 s, 3 failures)."""
    period = int(probe.get("periodSeconds", 10))
    return int(probe.get("initialDelaySeconds", 0)) + period * int(probe.get("failureThreshold", 3))


def _container(objects: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    (deployment,) = [
        d for d in _kind(objects, "Deployment") if d["metadata"]["name"].endswith(suffix)
    ]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("suffix", ["-operator", "-mlflow"])
def test_the_charts_long_starting_pods_are_waited_for_by_a_startup_probe_before_liveness(
    render_chart: Any, suffix: str
) -> None:
    container = _container(render_chart(CHART / "ci" / "mlflow-sqlite-values.yaml"), suffix)
    startup = container["startupProbe"]
    # The endpoint the liveness probe asks, so "started" means "would pass liveness".
    assert startup["httpGet"] == container["livenessProbe"]["httpGet"]
    assert _budget(startup) >= 300
    assert startup["periodSeconds"] <= 2


def test_the_operators_startup_probe_timings_come_from_values(render_chart: Any) -> None:
    sets = ("operator.startupProbe.periodSeconds=3", "operator.startupProbe.failureThreshold=400")
    startup = _container(render_chart(sets=sets), "-operator")["startupProbe"]
    assert startup["periodSeconds"] == 3
    assert startup["failureThreshold"] == 400
