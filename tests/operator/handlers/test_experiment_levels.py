"""Experiments at scale and at the edges, on a real control plane (issue 18, items 1, 4 and 6).

- Running Experiments never delay other resources: each loop is a coroutine, not a thread of
  kopf's pool, so with 30 running a new ModelDeployment is Ready within seconds.
- Level-triggered: an Experiment created before its ModelDeployment waits (Pending, Ready=False
  DeploymentNotFound, a Normal Event) and starts when it appears; a second Experiment on one
  deployment waits (DeploymentBusy, naming the first) without touching the split, and starts when
  the first ends; deleting the ModelDeployment removes the running Experiment's challengers and the
  status says why; `kubectl apply -f manifests/examples/` leaves no Experiment Failed.

The routers' `/stats` come from `StatsServer` over a real loopback socket (zero traffic unless a
test drives it). Waits poll the API with a deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.exceptions
import mlflow.tracking
import pytest
import yaml

from modelpilot.operator.experiment import simulate
from modelpilot.testing import controlplane
from tests.operator import conftest as op
from tests.operator.handlers import test_experiment as exp_tests

pytestmark = [pytest.mark.k8s, pytest.mark.mlflow]

REPO = Path(__file__).resolve().parents[3]
API = "/apis/modelpilot.io/v1alpha1/namespaces"


def experiment_path(namespace: str, name: str) -> str:
    return f"{API}/{namespace}/experiments/{name}"


def an_experiment(
    name: str, *, deployment: str, model: str, variant: str = "challenger", **spec: Any
) -> dict[str, Any]:
    body = exp_tests.experiment("2", deploymentRef=deployment, **spec)
    body["metadata"]["name"] = name
    body["spec"]["variants"][0].update(name=variant, model={"name": model, "version": "2"})
    return body


@contextlib.contextmanager
def operator_reading_idle_routers(
    tracking_uri: str, namespace: str, kubeconfig: Path
) -> Iterator[None]:
    """The operator in this process, every deployment's routers read as one real `/stats`
    endpoint that saw no traffic (its `stats_urls` setting)."""
    traffic = simulate.Traffic(reward_rates={"stable": 0.1}, requests_per_interval=0, seed=1)
    with (
        exp_tests.StatsServer(traffic) as stats,
        op.kopf_operator(
            op.operator_settings(tracking_uri, namespace, stats_urls={"*": stats.urls}),
            kubeconfig,
        ),
    ):
        yield


def status_of(plane: controlplane.ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    found = op.get(plane, experiment_path(namespace, name))
    return dict((found or {}).get("status") or {})


def deployment_names(plane: controlplane.ControlPlane, namespace: str) -> set[str]:
    found = op.get(plane, f"/apis/apps/v1/namespaces/{namespace}/deployments") or {}
    return {d["metadata"]["name"] for d in found.get("items") or []}


def resolved(plane: controlplane.ControlPlane, namespace: str, name: str) -> Any:
    md = op.get(plane, op.md_path(namespace, name))
    return md if ((md or {}).get("status") or {}).get("model") else None


def apply_all(plane: controlplane.ControlPlane, namespace: str, objects: list[Any]) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def assert_conventional(status: dict[str, Any], generation: int) -> None:
    """kubectl conventions of item 6: observedGeneration on the status and every condition."""
    assert status["observedGeneration"] == generation
    for cond in status["conditions"]:
        assert set(cond) >= {
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
            "observedGeneration",
        }, cond
        assert cond["observedGeneration"] == generation


def test_thirty_running_experiments_leave_the_operator_free_to_make_a_new_deployment_ready(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    count = 30  # more than the 20 threads of kopf's pool (settings.workers)
    with operator_reading_idle_routers(tracking_uri, namespace, operator_kubeconfig):
        names = [f"md-{i:02d}" for i in range(count)]
        apply_all(
            control_plane,
            namespace,
            [op.modeldeployment(n, registered_model.name) for n in names],
        )

        def all_resolved() -> bool:
            return all(resolved(control_plane, namespace, n) for n in names)

        op.wait_for(f"{count} ModelDeployments resolved", all_resolved, timeout=120)
        apply_all(
            control_plane,
            namespace,
            [an_experiment(f"exp-{n}", deployment=n, model=registered_model.name) for n in names],
        )

        def all_running() -> bool:
            found = op.get(control_plane, f"{API}/{namespace}/experiments") or {}
            phases = [(i.get("status") or {}).get("phase") for i in found.get("items") or []]
            return len(phases) == count and all(p == "Running" for p in phases)

        op.wait_for(f"{count} Experiments Running", all_running, timeout=120)
        started = time.monotonic()
        op.apply_yaml(
            control_plane, op.modeldeployment("late", registered_model.name), "-n", namespace
        )

        def late_ready() -> Any:
            md = op.get(control_plane, op.md_path(namespace, "late"))
            ready = op.condition(md, "Ready")
            return md if ready and ready["status"] == "True" else None

        op.wait_for("the new ModelDeployment Ready", late_ready, timeout=60)
        elapsed = time.monotonic() - started
        still_running = all_running()
    print(f"\nnew ModelDeployment Ready {elapsed:.2f} s after apply, {count} Experiments running")
    # Within seconds (about 5-6 s at a load of 14-20 on two cores; the old code: never).
    assert elapsed < 15
    assert still_running


def test_an_experiment_created_before_its_deployment_waits_then_starts_when_it_appears(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    with operator_reading_idle_routers(tracking_uri, namespace, operator_kubeconfig):
        op.apply_yaml(
            control_plane,
            an_experiment("early", deployment="iris", model=registered_model.name),
            "-n",
            namespace,
        )

        def waiting() -> Any:
            status = status_of(control_plane, namespace, "early")
            ready = op.condition({"status": status}, "Ready")
            return status if ready and ready["reason"] == "DeploymentNotFound" else None

        pending = op.wait_for("Pending: DeploymentNotFound", waiting, timeout=30)
        nothing_built = deployment_names(control_plane, namespace)
        op.apply_yaml(
            control_plane, op.modeldeployment("iris", registered_model.name), "-n", namespace
        )

        def started() -> Any:
            status = status_of(control_plane, namespace, "early")
            return status if status.get("phase") == "Running" else None

        running = op.wait_for("Running once the deployment exists", started, timeout=60)
        body = op.get(control_plane, experiment_path(namespace, "early"))
        challenger = op.get(
            control_plane, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris-challenger"
        )
        posted = op.events(control_plane, namespace, "early")
    assert pending["phase"] == "Pending"
    ready = op.condition({"status": pending}, "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert "iris" in ready["message"]
    assert_conventional(pending, body["metadata"]["generation"])
    assert nothing_built == set()
    assert challenger is not None
    assert_conventional(running, body["metadata"]["generation"])
    assert op.condition({"status": running}, "Ready")["status"] == "True"  # type: ignore[index]
    by_reason = {e["reason"]: e["type"] for e in posted}
    # Waiting for a deployment is routine: Normal, never a Warning that pages someone.
    assert by_reason["DeploymentNotFound"] == "Normal"
    assert by_reason["Started"] == "Normal"
    assert "Warning" not in by_reason.values()


def test_a_second_experiment_on_one_deployment_waits_untouched_and_starts_when_the_first_ends(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    with operator_reading_idle_routers(tracking_uri, namespace, operator_kubeconfig):
        exp_tests.start_deployment(control_plane, namespace, registered_model)
        # The first ends by itself after its maxDuration (Concluded); created first, it wins.
        op.apply_yaml(
            control_plane,
            an_experiment(
                "first",
                deployment="iris",
                model=registered_model.name,
                stopping={"maxDuration": "8s"},
            ),
            "-n",
            namespace,
        )
        op.wait_for(
            "the first Running",
            lambda: status_of(control_plane, namespace, "first").get("phase") == "Running",
            timeout=30,
        )
        op.apply_yaml(
            control_plane,
            an_experiment(
                "second", deployment="iris", model=registered_model.name, variant="candidate"
            ),
            "-n",
            namespace,
        )

        def busy() -> Any:
            status = status_of(control_plane, namespace, "second")
            ready = op.condition({"status": status}, "Ready")
            return status if ready and ready["reason"] == "DeploymentBusy" else None

        refused = op.wait_for("the second refused", busy, timeout=30)
        routes_while_refused = exp_tests.routes_of(control_plane, namespace)
        built_while_refused = deployment_names(control_plane, namespace)
        first_phase_then = status_of(control_plane, namespace, "first").get("phase")

        def second_running() -> Any:
            status = status_of(control_plane, namespace, "second")
            return status if status.get("phase") == "Running" else None

        running = op.wait_for("the second Running after the first", second_running, timeout=60)
        first = status_of(control_plane, namespace, "first")
        routes_after = exp_tests.routes_of(control_plane, namespace)
    assert refused["phase"] == "Pending"
    assert not refused.get("variants")
    message = op.condition({"status": refused}, "Ready")["message"]  # type: ignore[index]
    assert "Experiment first" in message
    assert first_phase_then == "Running"
    assert "iris-candidate" not in built_while_refused
    assert [name for name, _, _ in routes_while_refused] == ["stable", "challenger"]
    assert first["phase"] == "Concluded"
    assert running["phase"] == "Running"
    assert [name for name, _, _ in routes_after] == ["stable", "candidate"]


def test_deleting_the_deployment_stops_its_experiment_and_removes_the_challenger(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    with operator_reading_idle_routers(tracking_uri, namespace, operator_kubeconfig):
        exp_tests.start_deployment(control_plane, namespace, registered_model)
        op.apply_yaml(
            control_plane,
            an_experiment("exp", deployment="iris", model=registered_model.name),
            "-n",
            namespace,
        )
        op.wait_for(
            "Running",
            lambda: status_of(control_plane, namespace, "exp").get("phase") == "Running",
            timeout=30,
        )
        selector = "modelpilot.io/experiment=exp"

        def challenger_pods() -> list[str]:
            out = control_plane.kubectl(
                "get", "pods", "-n", namespace, "-l", selector, "-o", "name"
            ).stdout
            return out.split()

        pods_before = op.wait_for("the challenger's pod", challenger_pods, timeout=30)
        control_plane.kubectl("delete", "modeldeployment", "iris", "-n", namespace, "--wait=false")

        def stopped() -> Any:
            status = status_of(control_plane, namespace, "exp")
            ready = op.condition({"status": status}, "Ready")
            return status if ready and ready["reason"] == "DeploymentNotFound" else None

        status = op.wait_for("the Experiment stopped", stopped, timeout=30)

        def workloads_gone() -> bool:
            names = deployment_names(control_plane, namespace)
            service = op.get(
                control_plane, f"/api/v1/namespaces/{namespace}/services/iris-challenger"
            )
            return "iris-challenger" not in names and service is None and not challenger_pods()

        op.wait_for("the challenger's Deployment, Service and pod gone", workloads_gone, timeout=60)
        posted = op.events(control_plane, namespace, "exp")
        body = op.get(control_plane, experiment_path(namespace, "exp"))
    assert pods_before
    assert status["phase"] == "Pending"
    assert status["variants"] == []
    assert status["traffic"] == ""
    message = op.condition({"status": status}, "Ready")["message"]  # type: ignore[index]
    assert "Deployment/iris-challenger" in message
    assert_conventional(status, body["metadata"]["generation"])
    stop = next(e for e in posted if e["reason"] == "Stopped")
    assert stop["type"] == "Warning"  # a running experiment lost its deployment: a person decides


def _register(client: mlflow.tracking.MlflowClient, name: str, versions: int) -> None:
    """`name` with at least `versions` versions and `champion` on 1, in the session's MLflow."""
    with contextlib.suppress(mlflow.exceptions.MlflowException):
        client.create_registered_model(name)
    have = len(client.search_model_versions(f"name='{name}'"))
    experiment = client.create_experiment(f"examples-{name}-{time.time_ns()}")
    for _ in range(versions - have):
        run = client.create_run(experiment)
        client.create_model_version(
            name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
    client.set_registered_model_alias(name, "champion", "1")


def test_applying_the_examples_directory_in_one_go_leaves_no_experiment_failed(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
) -> None:
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    _register(client, "iris-classifier", 5)
    examples = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
    docs = [yaml.safe_load(p.read_text()) for p in examples]
    refs = [d["spec"]["deploymentRef"] for d in docs if d["kind"] == "Experiment"]
    mds = {d["metadata"]["name"] for d in docs if d["kind"] == "ModelDeployment"}
    # kubectl applies a directory in file-name order: an Experiment before its ModelDeployment.
    order = [(d["kind"], d["metadata"]["name"]) for d in docs]
    early = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "Experiment"
        and order.index(("Experiment", d["metadata"]["name"]))
        < order.index(("ModelDeployment", d["spec"]["deploymentRef"]))
    ]
    with operator_reading_idle_routers(tracking_uri, namespace, operator_kubeconfig):
        control_plane.kubectl("apply", "-n", namespace, "-f", str(REPO / "manifests" / "examples"))

        def settled() -> Any:
            found = op.get(control_plane, f"{API}/{namespace}/experiments") or {}
            items = found.get("items") or []
            phases = {i["metadata"]["name"]: (i.get("status") or {}).get("phase") for i in items}
            return phases if "Running" in phases.values() and None not in phases.values() else None

        phases = op.wait_for("an example Experiment Running", settled, timeout=60)
        found = op.get(control_plane, f"{API}/{namespace}/experiments")
    assert early, "the examples exercise an Experiment applied before its ModelDeployment"
    assert len(refs) == len(set(refs)), "one Experiment per ModelDeployment in the examples"
    assert set(refs) <= mds, "every example Experiment has its ModelDeployment among the examples"
    assert "Failed" not in phases.values()
    for item in found["items"]:
        if item["status"]["phase"] != "Running":
            # The churn example points at an in-cluster MLflow this test does not have: it waits.
            ready = op.condition(item, "Ready")
            assert ready is not None
            assert (item["status"]["phase"], ready["reason"]) == ("Pending", "DeploymentNotReady")
