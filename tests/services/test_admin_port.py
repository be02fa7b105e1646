"""The admin port (issue 15, item 6), against real router and model-server processes on loopback.

A NetworkPolicy sees ports, not paths, so the readers' endpoints (the router's `/stats`, `/routes`
and `/metrics`; the model server's `/drift/window` and `/metrics`) are served on a second port and
no longer on the inference port, which answers them 404 in the protocol's `{"error": ...}` shape.
The readers are shown reading through it: the operator's `/stats` source and the drift job, each
finding the port by its name on a pod built by the operator's own builders (the pod's IP is the
loopback address, its `admin` containerPort the test process's free port).

What is not shown here is enforcement: no CNI on this machine enforces NetworkPolicy (see
tests/delivery/test_chart_networkpolicy.py), so the split is shown at the port and render level.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelpilot.api import constants, windows
from modelpilot.api import stats as stats_contract
from modelpilot.cli import main as cli_main
from modelpilot.driftjob import collect
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import workloads
from modelpilot.operator.experiment import sources
from tests.services import conftest as svc
from tests.services.driftjob import test_drift_job as drift_tests

pytestmark = pytest.mark.mlflow

MD = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris", "namespace": "ml", "uid": "u-1"},
    "spec": {"model": {"name": "iris", "version": "1"}},
}
SETTINGS = settings_mod.OperatorSettings()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _pod_on_loopback(deployment: dict[str, Any], admin_url: str) -> dict[str, Any]:
    """A pod of the operator's Deployment as the API would list it: running and ready at
    127.0.0.1, its `admin` containerPort the one the test's process listens on."""
    template = copy.deepcopy(deployment["spec"]["template"])
    for container in template["spec"]["containers"]:
        for port in container["ports"]:
            if port["name"] == constants.ADMIN_PORT_NAME:
                port["containerPort"] = _port(admin_url)
    return {
        "metadata": {**template["metadata"], "name": "pod-0"},
        "spec": template["spec"],
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


@pytest.fixture(scope="module")
def router(
    served_iris: svc.Proc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[svc.RouterProc]:
    doc = svc.routes_doc(served_iris.url, served_iris.url, weights=(100, 0))
    with svc.router_process(doc, tmp_path_factory.mktemp("admin-router")) as proc:
        yield proc


def _not_found(answer: httpx.Response) -> None:
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"error": "Not Found"}


@pytest.mark.parametrize("path", ["/stats", "/routes", "/metrics"])
def test_the_router_serves_its_readers_paths_on_the_admin_port_and_404_on_the_inference_port(
    router: svc.RouterProc, path: str
) -> None:
    assert router.admin
    assert _port(router.admin) != _port(router.url)
    _not_found(httpx.get(router.url + path))
    answer = httpx.get(router.admin + path)
    assert answer.status_code == 200, answer.text
    if path == "/stats":
        assert stats_contract.parse(answer.json()).deployment == "iris"
    if path == "/metrics":
        assert "modelpilot_router_route_weight" in answer.text


def test_the_router_serves_inference_feedback_and_health_on_the_inference_port_only(
    router: svc.RouterProc, iris_model: svc.RegisteredModel
) -> None:
    row = iris_model.features.head(1).to_dict(orient="records")
    answer = httpx.post(router.url + "/predict", json={"instances": row})
    assert answer.status_code == 200, answer.text
    for path in ("/healthz", "/readyz"):
        assert httpx.get(router.url + path).status_code == 200
        _not_found(httpx.get(router.admin + path))
    # The admin port takes no inference and no rewards: clients have nothing to call there.
    _not_found(httpx.post(router.admin + "/predict", json={"instances": row}))
    body = {"request_id": answer.headers["x-request-id"], "reward": 1}
    _not_found(httpx.post(router.admin + "/feedback", json=body))
    assert httpx.post(router.url + "/feedback", json=body).status_code == 200


@pytest.mark.parametrize("path", ["/drift/window", "/metrics"])
def test_the_model_server_serves_its_readers_paths_on_the_admin_port_and_404_on_inference(
    served_iris: svc.Proc, path: str
) -> None:
    assert served_iris.admin
    assert _port(served_iris.admin) != _port(served_iris.url)
    _not_found(httpx.get(served_iris.url + path))
    answer = httpx.get(served_iris.admin + path)
    assert answer.status_code == 200, answer.text
    if path == "/drift/window":
        assert windows.parse(answer.text).variant == "stable"
    else:
        assert "modelpilot_model_requests_total" in answer.text


def test_the_model_server_serves_inference_and_health_on_the_inference_port_only(
    served_iris: svc.Proc, iris_model: svc.RegisteredModel
) -> None:
    row = iris_model.features.head(1).to_dict(orient="records")
    assert httpx.post(served_iris.url + "/predict", json={"instances": row}).status_code == 200
    _not_found(httpx.post(served_iris.admin + "/predict", json={"instances": row}))
    for path in ("/v2/health/ready", "/v2/health/live", f"/v2/models/{iris_model.name}"):
        assert httpx.get(served_iris.url + path).status_code == 200
        _not_found(httpx.get(served_iris.admin + path))


def test_the_operator_s_stats_source_reads_a_real_router_through_the_admin_port_it_names(
    router: svc.RouterProc, iris_model: svc.RegisteredModel
) -> None:
    row = iris_model.features.head(1).to_dict(orient="records")
    for _ in range(3):
        assert httpx.post(router.url + "/predict", json={"instances": row}).status_code == 200
    pod = _pod_on_loopback(workloads.build_router_deployment(MD, settings=SETTINGS), router.admin)
    url = sources.stats_url(pod)
    assert url == f"{router.admin}/stats"
    settings = SETTINGS.model_copy(update={"stats_urls": {"ml/iris": [url]}})
    observed = sources.StatsSource(settings).read(namespace="ml", deployment="iris")
    assert observed[url][constants.STABLE].requests >= 3
    # The inference port no longer answers /stats: a source pointed there fails, naming the URL.
    wrong = f"{router.url}/stats"
    settings = SETTINGS.model_copy(update={"stats_urls": {"ml/iris": [wrong]}})
    with pytest.raises(sources.SourceError, match="404"):
        sources.StatsSource(settings).read(namespace="ml", deployment="iris")


def test_the_drift_job_reads_the_window_on_the_admin_port_and_skips_an_inference_port_url(
    served_iris: svc.Proc,
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    drift_tests._feed(served_iris.url, drift_tests._traffic(iris_model.features, 100, seed=3))
    deployment = workloads.build_model_server_deployment(
        MD, variant="stable", model={"name": "iris", "version": "1"}, replicas=1, settings=SETTINGS
    )
    url = collect.pod_url(_pod_on_loopback(deployment, served_iris.admin))
    assert url == served_iris.admin
    # The second URL is the inference port: 404 there now.
    cli_main.main(svc.drift_run_args(iris_model, [url, served_iris.url]))
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == 1
    assert summary["rows"] >= 100
    assert summary["skipped"][served_iris.url].startswith("http_status")


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        (["serve", "router", "--routes-file", "/nonexistent.json"], "MODELPILOT_ROUTER_ADMIN_PORT"),
        (["serve", "model", "--model-uri", "models:/iris/1"], "MODELPILOT_SERVER_ADMIN_PORT"),
    ],
    ids=["router", "model-server"],
)
def test_an_admin_port_equal_to_the_inference_port_is_refused_naming_the_flag(
    argv: list[str], variable: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelpilot.testing import ports

    port = str(ports.free_port())
    with pytest.raises(SystemExit) as info:
        cli_main.main([*argv, "--port", port, "--admin-port", port])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--admin-port ({variable})" in err
    assert "also the inference port" in err


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_a_bad_flush_interval_is_refused_at_start_naming_its_variable(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Read with the other settings before anything loads, not later by the flusher (which
    # raised pydantic's own error once the model had loaded).
    monkeypatch.setenv("MODELPILOT_SERVER_WINDOW_FLUSH_SECONDS", value)
    with pytest.raises(SystemExit) as info:
        cli_main.main(["serve", "model", "--model-uri", "models:/iris/1", "--port", "0"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "MODELPILOT_SERVER_WINDOW_FLUSH_SECONDS: " in err
    assert len(err.strip().splitlines()) == 1
