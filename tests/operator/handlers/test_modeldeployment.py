"""The ModelDeployment controller on a real control plane with a real MLflow server.

Each test has its own namespace and runs the operator (kopf's test runner, or a real subprocess
where it must be killed) with a token of the operator's ServiceAccount bound to the rules of
`modelpilot.api.rbac`. Waits poll the API with a deadline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelpilot.operator import metrics as metrics_mod
from modelpilot.testing import controlplane, ports
from tests.operator import conftest as op

pytestmark = [pytest.mark.k8s, pytest.mark.mlflow]

EXPECTED = {
    "Deployment/iris-stable",
    "Deployment/iris-router",
    "Service/iris-stable",
    "Service/iris",
    "ConfigMap/iris-routes",
    "ServiceAccount/iris-router",
    "Role/iris-router",
    "RoleBinding/iris-router",
}
WITH_DRIFT = EXPECTED | {
    "CronJob/iris-drift",
    "ServiceAccount/iris-drift",
    "Role/iris-drift",
    "RoleBinding/iris-drift",
}
DRIFT = {"schedule": "*/30 * * * *", "methods": ["psi", "ks"]}


def _http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read().decode()
            return (body or "(empty body)") if response.status == 200 else None
    except OSError:
        return None


def ready_md(
    plane: controlplane.ControlPlane, namespace: str, *, version: str | None = None
) -> Any:
    md = op.get(plane, op.md_path(namespace, "iris"))
    ready = op.condition(md, "Ready")
    if ready is None or ready["status"] != "True":
        return None
    if version is not None and md["status"]["model"]["version"] != version:
        return None
    return md


def test_applying_a_modeldeployment_by_alias_gives_ready_owned_objects_within_ten_seconds(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    metrics = metrics_mod.make_metrics()
    with op.kopf_operator(settings, operator_kubeconfig, metrics=metrics):
        started = time.monotonic()
        op.apply_yaml(
            control_plane,
            op.modeldeployment("iris", registered_model.name, drift=DRIFT),
            "-n",
            namespace,
        )
        md = op.wait_for("Ready=True", lambda: ready_md(control_plane, namespace), timeout=10)
        elapsed = time.monotonic() - started
        objects = op.owned_objects(control_plane, namespace, "iris")
        table = control_plane.kubectl("get", "modeldeployments", "-n", namespace).stdout
    assert elapsed < 10
    assert set(objects) == WITH_DRIFT
    uid = md["metadata"]["uid"]
    for key, obj in objects.items():
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["uid"], owner["kind"], owner["controller"]) == (
            uid,
            "ModelDeployment",
            True,
        ), key
    for key in ("Deployment/iris-stable", "Deployment/iris-router"):
        status = objects[key]["status"]
        assert status["availableReplicas"] == objects[key]["spec"]["replicas"], key
    assert md["status"]["model"]["version"] == "1"
    assert md["status"]["model"]["name"] == registered_model.name
    assert md["status"]["endpoint"] == f"http://iris.{namespace}.svc:80"
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    assert [h["version"] for h in md["status"]["history"]] == ["1"]
    routes = json.loads(objects["ConfigMap/iris-routes"]["data"]["routes.json"])
    assert [(v["name"], v["weight"], v["modelVersion"]) for v in routes["variants"]] == [
        ("stable", 100, "1")
    ]
    header, row = table.strip().splitlines()
    assert header.split() == ["NAME", "READY", "MODEL", "VERSION", "TRAFFIC", "AGE"]
    assert row.split()[:5] == ["iris", "True", registered_model.name, "1", "stable=100"]
    events = control_plane.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "involvedObject.name=iris",
        "-o",
        "json",
    ).stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"Resolved", "Ready"} <= reasons
    assert op.counter(metrics, "modelpilot_operator_reconcile") >= 1
    assert op.counter(metrics, "modelpilot_operator_reconcile_errors") == 0


def test_moving_the_alias_rolls_out_the_new_version_within_one_resync_and_records_history(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(
            control_plane, op.modeldeployment("iris", registered_model.name), "-n", namespace
        )
        op.wait_for("v1 Ready", lambda: ready_md(control_plane, namespace, version="1"), timeout=30)
        registered_model.move_alias("2")
        moved = time.monotonic()
        md = op.wait_for(
            "v2 Ready",
            lambda: ready_md(control_plane, namespace, version="2"),
            timeout=op.RESYNC_SECONDS + 10,
        )
        elapsed = time.monotonic() - moved
        deployment = op.get(
            control_plane, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris-stable"
        )
    # Within one resync period for the operator to notice, plus the rollout on the fake node.
    assert elapsed < op.RESYNC_SECONDS + 10
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELPILOT_SERVER_MODEL_URI"] == f"models:/{registered_model.name}/2"
    history = md["status"]["history"]
    assert [h["version"] for h in history] == ["1", "2"]
    assert history[0]["to"] == history[1]["from"]
    assert "to" not in history[1]
    assert history[1]["reason"] == "alias champion moved"


def test_an_unknown_alias_sets_degraded_model_not_found_and_builds_nothing(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment("iris", registered_model.name)
    body["spec"]["model"]["alias"] = "no-such-alias"
    metrics = metrics_mod.make_metrics()
    with op.kopf_operator(settings, operator_kubeconfig, metrics=metrics) as runner:
        op.apply_yaml(control_plane, body, "-n", namespace)
        md = op.wait_for(
            "Degraded/ModelNotFound",
            lambda: op.with_reason(
                op.get(control_plane, op.md_path(namespace, "iris")), "Degraded", "ModelNotFound"
            ),
            timeout=30,
        )
        # Two resync periods later: still nothing built, operator alive and still looking.
        deadline = time.monotonic() + 2 * op.RESYNC_SECONDS
        while time.monotonic() < deadline:
            assert op.owned_objects(control_plane, namespace, "iris") == {}
            time.sleep(0.5)
        # The alias appears in MLflow: the resync timer picks it up.
        registered_model.move_alias("3", alias="no-such-alias")
        healed = op.wait_for(
            "Ready after the alias appears",
            lambda: ready_md(control_plane, namespace, version="3"),
            timeout=op.RESYNC_SECONDS + 10,
        )
    assert op.condition(md, "Degraded")["status"] == "True"  # type: ignore[index]
    assert op.condition(md, "Ready")["status"] == "False"  # type: ignore[index]
    assert "no-such-alias" in op.condition(md, "Degraded")["message"]  # type: ignore[index]
    assert op.condition(healed, "Degraded")["status"] == "False"  # type: ignore[index]
    assert "Traceback" not in runner.output
    assert op.counter(metrics, "modelpilot_operator_reconcile_errors") >= 1


def test_an_unreachable_registry_sets_degraded_registry_unavailable_and_recovers(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    dead = f"http://127.0.0.1:{ports.free_port()}"
    body = op.modeldeployment("iris", registered_model.name, registry={"trackingUri": dead})
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, body, "-n", namespace)
        md = op.wait_for(
            "Degraded/RegistryUnavailable",
            lambda: op.with_reason(
                op.get(control_plane, op.md_path(namespace, "iris")),
                "Degraded",
                "RegistryUnavailable",
            ),
            timeout=30,
        )
        assert op.owned_objects(control_plane, namespace, "iris") == {}
        body["spec"]["registry"]["trackingUri"] = tracking_uri  # the registry comes back
        op.apply_yaml(control_plane, body, "-n", namespace)
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace, version="1"), timeout=15)
    assert dead in op.condition(md, "Degraded")["message"]  # type: ignore[index]


def test_a_hand_edit_of_a_managed_deployment_is_reverted(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment("iris", registered_model.name, serving={"replicas": 2})
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, body, "-n", namespace)
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace), timeout=30)
        control_plane.kubectl("scale", "deployment/iris-stable", "--replicas=5", "-n", namespace)
        control_plane.kubectl(
            "set", "image", "deployment/iris-stable", "model-server=evil:1", "-n", namespace
        )
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/iris-stable"

        def reverted() -> Any:
            dep = op.get(control_plane, path)
            image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
            return (
                dep
                if dep["spec"]["replicas"] == 2 and image == settings.model_server_image
                else None
            )

        op.wait_for("the hand edit reverted", reverted, timeout=op.RESYNC_SECONDS + 10)


def test_deleting_the_modeldeployment_removes_everything_it_owned(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(
            control_plane,
            op.modeldeployment("iris", registered_model.name, drift=DRIFT),
            "-n",
            namespace,
        )
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace), timeout=30)
        assert set(op.owned_objects(control_plane, namespace, "iris")) == WITH_DRIFT
        control_plane.kubectl("delete", "modeldeployment", "iris", "-n", namespace, "--wait=true")
        op.wait_for(
            "garbage collection of every owned object",
            lambda: op.owned_objects(control_plane, namespace, "iris") == {},
            timeout=30,
        )
        op.wait_for(
            "the pods gone",
            lambda: (
                json.loads(
                    control_plane.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
                )["items"]
                == []
            ),
            timeout=30,
        )
        md_gone = op.get(control_plane, op.md_path(namespace, "iris"))
    assert md_gone is None  # the finalizer was released by the running operator


def test_removing_drift_from_the_spec_prunes_the_cronjob_and_its_account(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment("iris", registered_model.name, drift=DRIFT)
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, body, "-n", namespace)
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace), timeout=30)
        control_plane.kubectl(
            "patch",
            "modeldeployment",
            "iris",
            "-n",
            namespace,
            "--type=json",
            "-p",
            '[{"op": "remove", "path": "/spec/drift"}]',
        )
        op.wait_for(
            "the drift objects pruned",
            lambda: set(op.owned_objects(control_plane, namespace, "iris")) == EXPECTED,
            timeout=10,
        )


def test_killing_the_operator_mid_reconcile_and_restarting_converges_without_duplicates(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
    tmp_path: Path,
) -> None:
    env = op.operator_env(operator_kubeconfig, tracking_uri, namespace)
    command = list(op.OPERATOR_COMMAND)
    log = (tmp_path / "operator.log").open("wb")
    first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        op.apply_yaml(
            control_plane,
            op.modeldeployment("iris", registered_model.name, drift=DRIFT),
            "-n",
            namespace,
        )
        # SIGKILL as soon as the first owned object exists: the reconcile is under way.
        op.wait_for(
            "the reconcile to start (the subprocess imports kopf, kubernetes and mlflow first)",
            lambda: op.get(
                control_plane, f"/api/v1/namespaces/{namespace}/serviceaccounts/iris-router"
            ),
            timeout=120,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        partial = set(op.owned_objects(control_plane, namespace, "iris"))
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    health_port, metrics_port = ports.free_port(), ports.free_port()
    env["MODELPILOT_OPERATOR_HEALTH_PORT"] = str(health_port)
    env["MODELPILOT_OPERATOR_METRICS_PORT"] = str(metrics_port)
    second = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        md = op.wait_for(
            "Ready after restart", lambda: ready_md(control_plane, namespace), timeout=120
        )
        healthz = op.wait_for(
            "/healthz", lambda: _http_get(f"http://127.0.0.1:{health_port}/healthz"), timeout=10
        )
        exposition = op.wait_for(
            "/metrics", lambda: _http_get(f"http://127.0.0.1:{metrics_port}/metrics"), timeout=10
        )
        objects = op.owned_objects(control_plane, namespace, "iris")
        replicasets = json.loads(
            control_plane.kubectl(
                "get",
                "replicasets",
                "-n",
                namespace,
                "-l",
                "modelpilot.io/deployment=iris",
                "-o",
                "json",
            ).stdout
        )["items"]
        pods = json.loads(
            control_plane.kubectl(
                "get",
                "pods",
                "-n",
                namespace,
                "-l",
                "modelpilot.io/deployment=iris",
                "-o",
                "json",
            ).stdout
        )["items"]
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        log.close()
    assert partial <= WITH_DRIFT
    assert set(objects) == WITH_DRIFT  # nothing missing, nothing extra
    assert all(
        o["metadata"]["ownerReferences"][0]["uid"] == md["metadata"]["uid"]
        for o in objects.values()
    )
    # One ReplicaSet per Deployment (no duplicate rollout), one pod per replica.
    assert sorted(
        rs["metadata"]["labels"]["app.kubernetes.io/component"] for rs in replicasets
    ) == [
        "model-server",
        "router",
    ]
    assert len(pods) == 2
    assert [h["version"] for h in md["status"]["history"]] == ["1"]
    assert healthz is not None
    assert 'modelpilot_operator_reconcile_total{kind="ModelDeployment"}' in exposition
