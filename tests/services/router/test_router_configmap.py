"""The router's ConfigMap watch against a real Kubernetes API server: any document keeps the last
good routes, is counted, makes the router unready with the reason when it lasts, and never stops
the watch (later valid routes still apply).

The router runs as a local process with the control plane's kubeconfig, exactly as in-cluster; its
backends are addresses nothing listens on, which is all a routes document needs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelpilot.testing import ports
from tests.services import conftest as svc

pytestmark = pytest.mark.k8s


def _dead() -> str:
    return f"http://127.0.0.1:{ports.free_port()}"


@pytest.fixture(scope="module")
def namespace(control_plane: object) -> str:
    name = f"rcm-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)  # type: ignore[attr-defined]
    return name


def _apply(plane: object, namespace: str, text: str | None) -> None:
    data = {} if text is None else {"routes.json": text}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "iris-routes", "namespace": namespace},
        "data": data,
    }
    plane.kubectl("apply", "-f", "-", input=json.dumps(configmap))  # type: ignore[attr-defined]


def _rejected(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("modelpilot_router_routes_rejected_total"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait(predicate: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)  # poll interval of a deadline loop
    raise AssertionError(f"{what}: not within {timeout}s")


@pytest.fixture
def router(control_plane: object, namespace: str, tmp_path: Path) -> Iterator[svc.RouterProc]:
    _apply(control_plane, namespace, json.dumps(svc.routes_doc(_dead(), _dead())))
    with svc.router_process(
        None,
        tmp_path,
        KUBECONFIG=str(control_plane.kubeconfig),  # type: ignore[attr-defined]
        MODELPILOT_ROUTER_NAMESPACE=namespace,
        MODELPILOT_ROUTER_CONFIGMAP="iris-routes",
        MODELPILOT_ROUTER_ROUTES_INVALID_UNREADY_SECONDS="2",
    ) as proc:
        yield proc


BAD = {
    "10,000 nested brackets": "[" * 10_000 + "]" * 10_000,
    "stable is a list": json.dumps({**svc.routes_doc("http://a:1", "http://b:1"), "stable": []}),
    "not JSON": "\x00\x01garbage\xff",
    "no routes key": None,
}


def test_every_broken_configmap_keeps_the_last_routes_counts_and_the_watch_lives_on(
    control_plane: object, namespace: str, router: svc.RouterProc
) -> None:
    before = httpx.get(router.admin + "/routes").json()
    for name, text in BAD.items():
        rejected = _rejected(router.admin)
        _apply(control_plane, namespace, text)
        _wait(lambda r=rejected: _rejected(router.admin) > r, f"{name}: the rejection counted")  # type: ignore[misc]
        assert httpx.get(router.admin + "/routes").json() == before, name
    # Still invalid after the grace period: unready, saying why; the last routes still serve.
    _wait(lambda: httpx.get(router.url + "/readyz").status_code == 503, "unready")
    assert "routes" in httpx.get(router.url + "/readyz").json()["reason"]
    _apply(control_plane, namespace, json.dumps(svc.routes_doc(_dead(), _dead(), weights=(5, 95))))
    _wait(lambda: httpx.get(router.url + "/readyz").status_code == 200, "ready again")
    doc = httpx.get(router.admin + "/routes").json()
    assert [v["weight"] for v in doc["variants"]] == [5, 95]
    assert doc["version"] == before["version"] + 1
    assert router.proc.poll() is None
