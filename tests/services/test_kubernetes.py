"""The data plane against a real Kubernetes control plane: the routes ConfigMap watch, and the
drift job writing status, the DriftDetected condition and an Event into a ModelDeployment.

The model servers and the router run as local processes on loopback (kwok's pods run nothing);
they reach the API server with the fixture's kubeconfig, exactly as they would in-cluster.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from modelpilot.api import modeldeployment
from modelpilot.cli import main as cli_main
from tests.services import conftest as svc
from tests.services.driftjob import test_drift_job as drift_tests

pytestmark = [pytest.mark.k8s, pytest.mark.mlflow]


@pytest.fixture(scope="module")
def namespace(control_plane: object) -> str:
    name = f"svc-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)  # type: ignore[attr-defined]
    return name


def _configmap(namespace: str, doc: dict[str, object]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "iris-routes", "namespace": namespace},
            "data": {"routes.json": json.dumps(doc)},
        }
    )


def test_a_configmap_change_of_weights_takes_effect_within_a_second(
    control_plane: object,
    namespace: str,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
    tmp_path: object,
) -> None:
    from pathlib import Path

    plane: object = control_plane
    a, b = two_servers
    plane.kubectl(
        "apply",
        "-f",
        "-",  # type: ignore[attr-defined]
        input=_configmap(namespace, svc.routes_doc(a.url, b.url, weights=(100, 0))),
    )
    body = {"instances": iris_model.features.head(1).to_dict(orient="records")}
    with svc.router_process(
        None,
        Path(str(tmp_path)),
        KUBECONFIG=str(plane.kubeconfig),  # type: ignore[attr-defined]
        MODELPILOT_ROUTER_NAMESPACE=namespace,
        MODELPILOT_ROUTER_CONFIGMAP="iris-routes",
    ) as router:
        with httpx.Client() as client:
            first = [client.post(router.url + "/predict", json=body) for _ in range(20)]
        assert {r.headers["x-modelpilot-variant"] for r in first} == {"stable"}
        before = httpx.get(router.admin + "/stats").json()["routes_version"]
        plane.kubectl(
            "apply",
            "-f",
            "-",  # type: ignore[attr-defined]
            input=_configmap(namespace, svc.routes_doc(a.url, b.url, weights=(0, 100))),
        )
        start = time.monotonic()
        while httpx.get(router.admin + "/stats").json()["routes_version"] == before:
            assert time.monotonic() - start < 5, "the ConfigMap change never arrived"
            time.sleep(0.01)  # poll interval of a deadline loop
        elapsed = time.monotonic() - start
        assert elapsed < 1.0
        with httpx.Client() as client:
            after = [client.post(router.url + "/predict", json=body) for _ in range(20)]
        assert {r.headers["x-modelpilot-variant"] for r in after} == {"challenger"}


def test_the_drift_job_writes_drift_status_the_condition_and_an_event(
    control_plane: object,
    namespace: str,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plane: object = control_plane
    kubectl = plane.kubectl  # type: ignore[attr-defined]
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(modeldeployment.build_crd()))
    plane.wait_established("modeldeployments.modelpilot.io")  # type: ignore[attr-defined]
    md = {
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": namespace},
        "spec": {
            "model": {"name": iris_model.name, "version": iris_model.version},
            "drift": {"schedule": "*/30 * * * *", "methods": ["psi", "ks"], "psiThreshold": 0.2},
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(md))
    kubectl(
        "patch",
        "modeldeployment",
        "iris",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "model": {"name": iris_model.name, "version": iris_model.version},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "Serving",
                            "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                        }
                    ],
                }
            }
        ),
    )
    a, b = two_servers
    drift_tests._feed(a.url, drift_tests._traffic(iris_model.features, 300, seed=3))
    drift_tests._feed(b.url, drift_tests._traffic(iris_model.features, 300, seed=4))
    monkeypatch.setenv("KUBECONFIG", str(plane.kubeconfig))  # type: ignore[attr-defined]
    argv = [
        "drift",
        "run",
        "--deployment",
        "iris",
        "--namespace",
        namespace,
        "--tracking-uri",
        iris_model.tracking_uri,
        "--window-url",
        a.admin,  # /drift/window is on the admin port (issue 15)
        "--window-url",
        b.admin,
    ]
    cli_main.main(argv)
    capsys.readouterr()
    got = json.loads(
        kubectl("get", "modeldeployment", "iris", "-n", namespace, "-o", "json").stdout
    )
    assert sorted(got["status"]["drift"]["driftedFeatures"]) == sorted(drift_tests.SHIFTED)
    assert got["status"]["drift"]["maxPsi"] >= 0.2
    conditions = {c["type"]: c for c in got["status"]["conditions"]}
    assert conditions["DriftDetected"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "Serving"  # the operator's condition is kept
    events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert any(
        e["reason"] == "DriftDetected" and e["involvedObject"]["name"] == "iris" for e in events
    )
    # A second run with the same outcome keeps the condition's lastTransitionTime.
    cli_main.main(argv)
    capsys.readouterr()
    again = json.loads(
        kubectl("get", "modeldeployment", "iris", "-n", namespace, "-o", "json").stdout
    )
    cond = {c["type"]: c for c in again["status"]["conditions"]}["DriftDetected"]
    assert cond["lastTransitionTime"] == conditions["DriftDetected"]["lastTransitionTime"]
