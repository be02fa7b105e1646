"""The router's ConfigMap watch against a real Kubernetes API server: any document keeps the last
good routes, is counted, makes the router unready with the reason when it lasts, and never stops
the watch (later valid routes still apply).

The router runs as a local process with the control plane's kubeconfig, exactly as in-cluster; its
backends are addresses nothing listens on, which is all a routes document needs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import conftest as svc

pytestmark = pytest.mark.k8s


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


@pytest.fixture
def router(control_plane: object, namespace: str, tmp_path: Path) -> Iterator[svc.RouterProc]:
    _apply(control_plane, namespace, json.dumps(svc.routes_doc(svc.dead_url(), svc.dead_url())))
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
        rejected = router.routes_rejected()
        _apply(control_plane, namespace, text)
        svc.wait_until(
            lambda r=rejected: router.routes_rejected() > r,  # type: ignore[misc]
            f"{name}: the rejection counted",
            timeout=15.0,
        )
        assert httpx.get(router.admin + "/routes").json() == before, name
    # Still invalid after the grace period: unready, saying why; the last routes still serve.
    svc.wait_until(
        lambda: httpx.get(router.url + "/readyz").status_code == 503, "unready", timeout=15.0
    )
    assert "routes" in httpx.get(router.url + "/readyz").json()["reason"]
    _apply(
        control_plane,
        namespace,
        json.dumps(svc.routes_doc(svc.dead_url(), svc.dead_url(), weights=(5, 95))),
    )
    svc.wait_until(
        lambda: httpx.get(router.url + "/readyz").status_code == 200, "ready again", timeout=15.0
    )
    doc = httpx.get(router.admin + "/routes").json()
    assert [v["weight"] for v in doc["variants"]] == [5, 95]
    assert doc["version"] == before["version"] + 1
    assert router.proc.poll() is None
