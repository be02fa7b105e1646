"""The operator runs with nothing but the RBAC the chart installs, and fails without one rule.

The chart is installed by the real helm in namespace scope (a Role in the watched namespace); the
operator then runs in this process under `kopf.testing.KopfRunner`, authenticated only by a token of
the chart's ServiceAccount, against a real MLflow server holding the model. A ModelDeployment must
reach Ready with all its objects. Then one rule loses `configmaps` (the routes ConfigMap) and a
second ModelDeployment cannot converge: the API server answers 403, the operator counts a reconcile
error, and no routes ConfigMap appears.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import mlflow.tracking
import pytest
import yaml
from kopf import testing as kopf_testing
from kubernetes.config import kube_config

from modelpilot.operator import main as operator_main
from modelpilot.operator import metrics as operator_metrics
from modelpilot.operator import settings as operator_settings
from modelpilot.testing import controlplane as controlplane_harness

pytestmark = [pytest.mark.k8s, pytest.mark.mlflow]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
RELEASE = "rbacproof"
SYSTEM_NAMESPACE = "rbacproof-system"
ACCOUNT = "rbacproof-modelpilot-operator"
T = TypeVar("T")


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def watched(control_plane: controlplane_harness.ControlPlane) -> Iterator[str]:
    """A namespace watched by a namespace-scoped release of the chart (CRDs applied first, as a
    platform team would with crds.enabled=false, so this release owns no cluster object)."""
    namespace = f"rbacproof-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "manifests" / "crds")
    )
    control_plane.wait_established("modeldeployments.modelpilot.io", "experiments.modelpilot.io")
    control_plane.kubectl("create", "namespace", namespace)
    control_plane.helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        SYSTEM_NAMESPACE,
        "--create-namespace",
        "--set",
        "operator.scope=namespace",
        "--set",
        f"operator.watchNamespace={namespace}",
        "--set",
        "crds.enabled=false",
        "--set",
        "tests.enabled=false",
        "--wait",
        "--timeout",
        "180s",
        timeout=240,
    )
    yield namespace
    control_plane.helm("uninstall", RELEASE, "-n", SYSTEM_NAMESPACE, "--wait", check=False)
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def model_name(mlflow_server: Any) -> str:
    """A registered model whose alias `champion` points at version 1 (the operator only resolves
    it; the model servers are kwok pods that never load it)."""
    uri = mlflow_server.tracking_uri
    client = mlflow.tracking.MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = f"iris-{uuid.uuid4().hex[:6]}"
    experiment = client.create_experiment(f"exp-{name}")
    client.create_registered_model(name)
    run = client.create_run(experiment)
    client.create_model_version(
        name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias(name, "champion", "1")
    return name


@contextlib.contextmanager
def _operator(
    settings: operator_settings.OperatorSettings,
    kubeconfig: Path,
    metrics: operator_metrics.Metrics,
) -> Iterator[kopf_testing.KopfRunner]:
    """The operator under kopf's test runner, logged in with `kubeconfig` only. The kubernetes
    client reads KUBECONFIG once, at import, into KUBE_CONFIG_DEFAULT_LOCATION (kopf's login
    calls `load_kube_config()` without a path), so both are pointed at the token's kubeconfig."""
    args = ["run", "--standalone", *[a for ns in settings.namespaces for a in ("--namespace", ns)]]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kubeconfig))
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        with kopf_testing.KopfRunner(
            args,
            registry=operator_main.build_registry(settings, metrics=metrics),
            settings=operator_main.build_kopf_settings(settings),
            timeout=60,
        ) as runner:
            yield runner


def _modeldeployment(name: str, model: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "modelpilot.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"model": {"name": model, "alias": "champion"}},
        }
    )


def _ready(plane: controlplane_harness.ControlPlane, namespace: str, name: str) -> bool:
    status, md = plane.api_get(
        f"/apis/modelpilot.io/v1alpha1/namespaces/{namespace}/modeldeployments/{name}"
    )
    conditions = ((md or {}).get("status") or {}).get("conditions") or [] if status == 200 else []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _configmaps(plane: controlplane_harness.ControlPlane, namespace: str, md: str) -> list[str]:
    out = plane.kubectl(
        "get", "configmaps", "-n", namespace, "-l", f"modelpilot.io/deployment={md}", "-o", "name"
    ).stdout
    return out.split()


def test_operator_converges_with_only_the_charts_rbac_and_fails_without_one_rule(
    control_plane: controlplane_harness.ControlPlane,
    watched: str,
    model_name: str,
    mlflow_server: Any,
) -> None:
    kubeconfig = control_plane.kubeconfig_for_token(
        control_plane.token_for(ACCOUNT, SYSTEM_NAMESPACE)
    )
    settings = operator_settings.OperatorSettings(
        namespaces=[watched],
        mlflow_tracking_uri=mlflow_server.tracking_uri,
        resync_seconds=3.0,
        registry_retry_seconds=1.0,
        health_port=0,
        metrics_port=0,
    )
    metrics = operator_metrics.make_metrics()
    records = _Records()
    logging.getLogger().addHandler(records)
    role = f"{RELEASE}-modelpilot-operator"
    try:
        with _operator(settings, kubeconfig, metrics):
            # 1. Everything it needs is in the chart's Role.
            control_plane.kubectl(
                "apply", "-n", watched, "-f", "-", input=_modeldeployment("ok", model_name)
            )
            _wait_for("ModelDeployment ok Ready", lambda: _ready(control_plane, watched, "ok"))
            assert _configmaps(control_plane, watched, "ok") == ["configmap/ok-routes"]
            errors_before = (
                metrics.registry.get_sample_value(
                    "modelpilot_operator_reconcile_errors_total", {"kind": "ModelDeployment"}
                )
                or 0.0
            )

            # 2. Take `configmaps` out of the chart's Role: the next reconcile must fail on it.
            rules = json.loads(
                control_plane.kubectl("get", "role", role, "-n", watched, "-o", "json").stdout
            )["rules"]
            index = next(i for i, r in enumerate(rules) if "configmaps" in r["resources"])
            reduced = [r for r in rules[index]["resources"] if r != "configmaps"]
            patch = [{"op": "replace", "path": f"/rules/{index}/resources", "value": reduced}]
            control_plane.kubectl(
                "patch", "role", role, "-n", watched, "--type=json", "-p", json.dumps(patch)
            )
            control_plane.kubectl(
                "apply", "-n", watched, "-f", "-", input=_modeldeployment("denied", model_name)
            )
            _wait_for(
                "a reconcile error counted for the denied ModelDeployment",
                lambda: (
                    (
                        metrics.registry.get_sample_value(
                            "modelpilot_operator_reconcile_errors_total",
                            {"kind": "ModelDeployment"},
                        )
                        or 0.0
                    )
                    > errors_before
                ),
            )
            _wait_for(
                "the operator to log the API server's refusal",
                lambda: any(
                    "configmaps" in m and "forbidden" in m.lower() for m in records.messages
                ),
            )
            assert _configmaps(control_plane, watched, "denied") == []
            assert not _ready(control_plane, watched, "denied")
    finally:
        logging.getLogger().removeHandler(records)
