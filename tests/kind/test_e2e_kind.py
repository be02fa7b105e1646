"""End to end on a kind cluster prepared by `make kind-up images kind-load kind-deploy`: real
containers of the modelpilot image, the chart's MLflow, a registered model served through the
router.

This tier is where the image itself is proven (the control-plane tier fakes pods with kwok). It is
skipped, saying why, where Docker, kind or the cluster is missing; `make e2e-kind` runs it.
Environment: MODELPILOT_KIND_CONTEXT (default kind-modelpilot), MODELPILOT_KIND_NAMESPACE
(default modelpilot), KUBECTL (default: kubectl on PATH).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.kind

CONTEXT = os.environ.get("MODELPILOT_KIND_CONTEXT", "kind-modelpilot")
NAMESPACE = os.environ.get("MODELPILOT_KIND_NAMESPACE", "modelpilot")
KUBECTL = os.environ.get("KUBECTL", "kubectl")
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def _kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--context", CONTEXT, *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


@pytest.fixture(scope="module", autouse=True)
def kind_cluster() -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed: the kind tier needs a Docker engine")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Docker engine answers (`docker info` failed)")
    if shutil.which("kind") is None:
        pytest.skip("kind is not installed")
    if shutil.which(KUBECTL) is None:
        pytest.skip(f"{KUBECTL} is not installed")
    if _kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        pytest.skip(
            f"no kind cluster {CONTEXT} with namespace {NAMESPACE}: "
            "run `make kind-up images kind-load kind-deploy`"
        )


def _poll(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def router_url() -> Iterator[str]:
    """The `iris` router Service, port-forwarded to loopback."""
    port = _free_port()
    proc = subprocess.Popen(
        [KUBECTL, "--context", CONTEXT, "-n", NAMESPACE, "port-forward", "svc/iris", f"{port}:80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        _poll("the port-forward to svc/iris", listening, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_operator_runs_its_real_image_and_is_available() -> None:
    deployment = json.loads(
        _kubectl("get", "deployment", "modelpilot-operator", "-n", NAMESPACE, "-o", "json").stdout
    )
    conditions = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
    assert conditions["Available"] == "True"
    pods = json.loads(
        _kubectl(
            "get",
            "pods",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/component=operator",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in pods)


def test_the_example_model_deployment_becomes_ready_with_a_resolved_version() -> None:
    def ready() -> dict[str, Any] | None:
        md = json.loads(
            _kubectl("get", "modeldeployment", "iris", "-n", NAMESPACE, "-o", "json").stdout
        )
        conditions = {c["type"]: c["status"] for c in md.get("status", {}).get("conditions", [])}
        return md if conditions.get("Ready") == "True" else None

    md = _poll("ModelDeployment iris Ready", ready, timeout=300)
    assert md["status"]["model"]["name"] == "iris-classifier"
    assert int(md["status"]["model"]["version"]) >= 1


def test_predictions_come_back_through_the_router_with_the_variant_named(router_url: str) -> None:
    body = json.dumps({"instances": IRIS_ROWS}).encode()
    request = urllib.request.Request(
        f"{router_url}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
        assert response.headers["X-Modelpilot-Variant"] == "stable"
        assert response.headers["X-Request-Id"]
    assert len(payload["predictions"]) == len(IRIS_ROWS)


def test_router_metrics_count_the_requests(router_url: str) -> None:
    with urllib.request.urlopen(f"{router_url}/metrics", timeout=30) as response:
        text = response.read().decode()
    assert 'modelpilot_router_requests_total{deployment="iris",variant="stable"}' in text
