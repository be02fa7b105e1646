"""Fixtures for the operator's control-plane tests: CRDs, the operator's identity, a model in
MLflow, and a running operator.

The operator always runs with a token of its own ServiceAccount bound to the rules of
`modelpilot.api.rbac` (a namespaced Role, or the ClusterRole), never as the cluster admin, so the
rules are proven sufficient. It runs in-process under `kopf.testing.KopfRunner`, or as a real
`modelpilot operator run` subprocess where a test must SIGKILL it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlflow.tracking
import pytest
import yaml
from kopf.testing import KopfRunner

from modelpilot.api import rbac, render
from modelpilot.operator import main as operator_main
from modelpilot.operator import metrics as metrics_mod
from modelpilot.operator import settings as settings_mod
from modelpilot.testing import controlplane
from tests import polling

T = TypeVar("T")
OPERATOR_NAMESPACE = "modelpilot-system"
OPERATOR_ACCOUNT = "modelpilot-operator"
RESYNC_SECONDS = 3.0
# The operator as a real process, for tests that SIGKILL it (`operator_env` is its environment).
OPERATOR_COMMAND = (sys.executable, "-m", "modelpilot.cli.main", "operator", "run")


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = 30.0) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` with the last value."""
    return polling.wait_for(what, probe, timeout=timeout)


def get(plane: controlplane.ControlPlane, path: str) -> Any:
    status, body = plane.api_get(path)
    return body if status == 200 else None


def md_path(namespace: str, name: str = "") -> str:
    base = f"/apis/modelpilot.io/v1alpha1/namespaces/{namespace}/modeldeployments"
    return f"{base}/{name}" if name else base


def condition(md: Any, type_: str) -> dict[str, Any] | None:
    for cond in ((md or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            found: dict[str, Any] = cond
            return found
    return None


def with_reason(obj: Any, type_: str, reason: str) -> Any:
    """`obj` when its condition `type_` has `reason`, else None (a probe for `wait_for`)."""
    cond = condition(obj, type_)
    return obj if cond is not None and cond["reason"] == reason else None


def apply_yaml(plane: controlplane.ControlPlane, obj: dict[str, Any], *args: str) -> Any:
    return plane.kubectl("apply", "-f", "-", *args, input=yaml.safe_dump(obj))


@pytest.fixture(scope="session")
def crds(
    control_plane: controlplane.ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Our CRDs, from the same rendering as manifests/crds, Established."""
    out = tmp_path_factory.mktemp("crds")
    render.write(render.crd_files(), out)
    control_plane.kubectl("apply", "--server-side", "-f", str(out))
    control_plane.wait_established(*(name.removesuffix(".yaml") for name in render.crd_files()))


@pytest.fixture(scope="session")
def operator_account(control_plane: controlplane.ControlPlane, crds: None) -> str:
    """The operator's ServiceAccount (in modelpilot-system) and the ClusterRole of rbac.py."""
    control_plane.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    control_plane.kubectl(
        "create", "serviceaccount", OPERATOR_ACCOUNT, "-n", OPERATOR_NAMESPACE, check=False
    )
    apply_yaml(control_plane, rbac.build_cluster_role())
    return OPERATOR_ACCOUNT


@pytest.fixture
def namespace(control_plane: controlplane.ControlPlane) -> Iterator[str]:
    name = f"op-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false")


def _binding(kind: str, *, name: str, namespace: str | None, role_kind: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE}
        ],
    }


@pytest.fixture
def operator_kubeconfig(
    control_plane: controlplane.ControlPlane, operator_account: str, namespace: str
) -> Path:
    """A kubeconfig holding only a token of the operator's account, bound by a namespaced Role."""
    apply_yaml(control_plane, rbac.build_role(namespace=namespace))
    apply_yaml(
        control_plane,
        _binding("RoleBinding", name=rbac.OPERATOR_NAME, namespace=namespace, role_kind="Role"),
    )
    token = control_plane.token_for(operator_account, OPERATOR_NAMESPACE)
    return control_plane.kubeconfig_for_token(token)


@dataclass
class RegisteredModel:
    """A registered model with three versions in the real MLflow server; `champion` -> 1."""

    name: str
    client: mlflow.tracking.MlflowClient

    def move_alias(self, version: str, alias: str = "champion") -> None:
        self.client.set_registered_model_alias(self.name, alias, version)


@pytest.fixture
def registered_model(tracking_uri: str) -> RegisteredModel:
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = f"iris-{uuid.uuid4().hex[:6]}"
    experiment = client.create_experiment(f"exp-{name}")
    client.create_registered_model(name)
    for _ in range(3):
        run = client.create_run(experiment)
        client.create_model_version(
            name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
    client.set_registered_model_alias(name, "champion", "1")
    return RegisteredModel(name=name, client=client)


def operator_settings(
    tracking_uri: str, namespace: str, **overrides: Any
) -> settings_mod.OperatorSettings:
    values: dict[str, Any] = {
        "namespaces": [namespace],
        "mlflow_tracking_uri": tracking_uri,
        "resync_seconds": RESYNC_SECONDS,
        "registry_retry_seconds": 1.0,
        "health_port": 0,
        "metrics_port": 0,
        "model_server_image": "example.invalid/model-server:test",
        "router_image": "example.invalid/router:test",
        "drift_image": "example.invalid/drift:test",
        **overrides,
    }
    return settings_mod.OperatorSettings(**values)


def operator_env(
    kubeconfig: Path, tracking_uri: str, namespace: str, **extra: str
) -> dict[str, str]:
    """The environment of OPERATOR_COMMAND: the settings of `operator_settings` (its identity,
    the test's namespace, the fast resync, no health or metrics port) plus `extra` variables."""
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "MODELPILOT_OPERATOR_NAMESPACES": namespace,
        "MODELPILOT_OPERATOR_MLFLOW_TRACKING_URI": tracking_uri,
        "MODELPILOT_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
        "MODELPILOT_OPERATOR_HEALTH_PORT": "0",
        "MODELPILOT_OPERATOR_METRICS_PORT": "0",
        **extra,
    }


@contextlib.contextmanager
def kopf_operator(
    settings: settings_mod.OperatorSettings,
    kubeconfig: Path,
    *,
    metrics: metrics_mod.Metrics | None = None,
) -> Iterator[KopfRunner]:
    """The operator in this process (kopf's test runner), authenticated as its ServiceAccount."""
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(kubeconfig)
    args = ["run", "--standalone"]
    for ns in settings.namespaces:
        args += ["--namespace", ns]
    if not settings.namespaces:
        args.append("--all-namespaces")
    try:
        with KopfRunner(
            args,
            registry=operator_main.build_registry(settings, metrics=metrics),
            settings=operator_main.build_kopf_settings(settings),
            timeout=60,
        ) as runner:
            yield runner
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
    if runner.exception is not None:
        raise runner.exception
    assert runner.exit_code == 0, runner.output[-3000:]


def counter(metrics: metrics_mod.Metrics, name: str, kind: str = "ModelDeployment") -> float:
    value = metrics.registry.get_sample_value(f"{name}_total", {"kind": kind})
    return float(value or 0.0)


def modeldeployment(name: str, model: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"name": model, "alias": "champion"}, **spec},
    }


def owned_objects(plane: controlplane.ControlPlane, namespace: str, md_name: str) -> dict[str, Any]:
    """(kind/name) -> object for everything labelled with the ModelDeployment, via kubectl."""
    out = plane.kubectl(
        "get",
        "deployments,services,configmaps,cronjobs,serviceaccounts,roles,rolebindings",
        "-n",
        namespace,
        "-l",
        f"modelpilot.io/deployment={md_name}",
        "-o",
        "json",
    ).stdout
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in json.loads(out)["items"]}


def events(plane: controlplane.ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Events about object `name` in `namespace`, via kubectl."""
    out = plane.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name}",
        "-o",
        "json",
    ).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items
