"""The ModelDeployment controller at rest and at the edges (issue 18), on a real control plane.

Each test names the defect it guards: an idle operator that kept listing, a hand edit repaired only
at the next resync, statuses that stopped on a long change-reason, an emoji or a large annotation,
deletion blocked by a finalizer, conditions and Events that broke kubectl conventions.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from modelpilot.kube import apply
from modelpilot.operator import mdstatus
from modelpilot.operator import metrics as metrics_mod
from modelpilot.testing import controlplane
from tests.operator import conftest as op
from tests.operator.handlers.test_modeldeployment import ready_md

pytestmark = [pytest.mark.k8s, pytest.mark.mlflow]


def _checks(metrics: metrics_mod.Metrics) -> float:
    return float(metrics.registry.get_sample_value("modelpilot_operator_check_seconds_count") or 0)


def test_an_idle_operator_makes_no_api_request_across_several_periodic_checks(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    metrics = metrics_mod.make_metrics()
    with op.kopf_operator(settings, operator_kubeconfig, metrics=metrics):
        op.apply_yaml(
            control_plane, op.modeldeployment("iris", registered_model.name), "-n", namespace
        )
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace), timeout=30)
        # Let the rollout's last events be checked, then count across three full checks.
        settled = _checks(metrics)
        op.wait_for("one more check", lambda: _checks(metrics) >= settled + 1, timeout=30)
        before, checks = sum(apply.REQUESTS.values()), _checks(metrics)
        op.wait_for(
            "three periodic checks",
            lambda: _checks(metrics) >= checks + 3,
            timeout=4 * op.RESYNC_SECONDS + 10,
        )
        after = sum(apply.REQUESTS.values())
        md = op.get(control_plane, op.md_path(namespace, "iris"))
    # The former resync re-applied eight objects and listed eight kinds every period.
    assert after - before == 0
    assert md["metadata"].get("finalizers") in (None, [])


def test_becoming_ready_after_a_create_reads_nothing_back_from_the_api_server(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    # Issue 18 (1,000 at once): every Ready flip read its ModelDeployment back with a GET, though
    # the watch cache already held the conditions the operator had just written.
    settings = op.operator_settings(tracking_uri, namespace, resync_seconds=600)
    with op.kopf_operator(settings, operator_kubeconfig):
        before = apply.REQUESTS["GET"]
        op.apply_yaml(
            control_plane, op.modeldeployment("iris", registered_model.name), "-n", namespace
        )
        md = op.wait_for("Ready", lambda: ready_md(control_plane, namespace), timeout=30)
        after = apply.REQUESTS["GET"]
    assert after - before == 0
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]


def test_a_hand_edit_is_repaired_from_its_watch_event_long_before_the_resync(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace, resync_seconds=600)
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(
            control_plane, op.modeldeployment("iris", registered_model.name), "-n", namespace
        )
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace), timeout=30)
        control_plane.kubectl("scale", "deployment/iris-stable", "--replicas=4", "-n", namespace)
        edited = time.monotonic()
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/iris-stable"
        op.wait_for(
            "replicas reverted", lambda: op.get(control_plane, path)["spec"]["replicas"] == 1
        )
        reverted = time.monotonic() - edited
        control_plane.kubectl("delete", "service", "iris", "-n", namespace)
        deleted = time.monotonic()
        op.wait_for(
            "the router Service recreated",
            lambda: op.get(control_plane, f"/api/v1/namespaces/{namespace}/services/iris"),
        )
        recreated = time.monotonic() - deleted
    assert reverted < 5
    assert recreated < 5


def test_a_change_reason_longer_than_the_crd_allows_is_cut_and_the_status_follows(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment("iris", registered_model.name)
    body["spec"]["model"] = {"name": registered_model.name, "version": "1"}
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, body, "-n", namespace)
        op.wait_for("v1 Ready", lambda: ready_md(control_plane, namespace, version="1"))
        reason = "promoted: " + "p=0.97 " * 60  # 430 characters
        body["metadata"]["annotations"] = {
            "modelpilot.io/change-reason": json.dumps({"version": "2", "reason": reason})
        }
        body["spec"]["model"]["version"] = "2"
        op.apply_yaml(control_plane, body, "-n", namespace)
        md = op.wait_for("v2 Ready", lambda: ready_md(control_plane, namespace, version="2"))
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    last = md["status"]["history"][-1]
    assert len(last["reason"]) == mdstatus.HISTORY_REASON_MAX
    assert last["reason"] == reason[: mdstatus.HISTORY_REASON_MAX - 1] + "\u2026"


def test_a_model_name_with_an_emoji_is_served_with_a_status(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    name = f"iris-\U0001f600-{uuid.uuid4().hex[:6]}"
    client = registered_model.client
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(f"exp-{uuid.uuid4().hex[:6]}"))
    client.create_model_version(
        name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias(name, "champion", "1")
    settings = op.operator_settings(tracking_uri, namespace)
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, op.modeldeployment("iris", name), "-n", namespace)
        md = op.wait_for("Ready", lambda: ready_md(control_plane, namespace, version="1"))
        deployment = op.get(
            control_plane, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris-stable"
        )
    assert md["status"]["model"]["name"] == name
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELPILOT_SERVER_MODEL_URI"] == f"models:/{name}/1"


def test_a_150_kb_annotation_neither_stops_updates_nor_deletion(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment("iris", registered_model.name)
    body["metadata"]["annotations"] = {"example.com/notes": "n" * 150_000}
    with op.kopf_operator(settings, operator_kubeconfig):
        # Server-side: a client-side apply would copy the annotation into its own one.
        op.apply_yaml(control_plane, body, "-n", namespace, "--server-side")
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace))
        body["spec"]["serving"] = {"replicas": 2}
        op.apply_yaml(control_plane, body, "-n", namespace, "--server-side")

        def updated() -> Any:
            md = op.get(control_plane, op.md_path(namespace, "iris"))
            return (
                md
                if md["status"].get("observedGeneration") == md["metadata"]["generation"]
                and md["metadata"]["generation"] >= 2
                else None
            )

        md = op.wait_for("the update observed", updated)
        annotations = md["metadata"]["annotations"]
        control_plane.kubectl("delete", "modeldeployment", "iris", "-n", namespace, "--timeout=20s")
        gone = op.get(control_plane, op.md_path(namespace, "iris"))
    kopf_keys = [k for k in annotations if k.startswith("operator.modelpilot.io/")]
    assert all("example.com/notes" not in annotations[k] for k in kopf_keys)
    assert gone is None


def test_deleting_a_modeldeployment_while_the_operator_is_stopped_finishes_and_collects_its_objects(
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
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace))
    # The operator is gone: nothing may hold the deletion.
    control_plane.kubectl("delete", "modeldeployment", "iris", "-n", namespace, "--timeout=20s")
    assert op.get(control_plane, op.md_path(namespace, "iris")) is None
    op.wait_for(
        "garbage collection of every owned object",
        lambda: op.owned_objects(control_plane, namespace, "iris") == {},
        timeout=30,
    )


def test_a_failed_resolution_still_sets_observed_generation(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment("iris", registered_model.name)
    body["spec"]["model"]["alias"] = "nowhere"
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, body, "-n", namespace)
        md = op.wait_for(
            "Degraded/ModelNotFound",
            lambda: op.with_reason(
                op.get(control_plane, op.md_path(namespace, "iris")), "Degraded", "ModelNotFound"
            ),
        )
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    for cond in md["status"]["conditions"]:
        assert cond["observedGeneration"] == md["metadata"]["generation"], cond["type"]


def test_a_version_change_emits_only_normal_events_from_the_operator_and_one_resolved(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment("iris", registered_model.name)
    body["spec"]["model"] = {"name": registered_model.name, "version": "1"}
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, body, "-n", namespace)
        op.wait_for("v1 Ready", lambda: ready_md(control_plane, namespace, version="1"))
        body["spec"]["model"]["version"] = "2"
        op.apply_yaml(control_plane, body, "-n", namespace)
        op.wait_for("v2 Ready", lambda: ready_md(control_plane, namespace, version="2"))

        def rollout_and_ready() -> list[Any] | None:
            found = op.events(control_plane, namespace, "iris")
            return found if {"Rollout", "Ready"} <= {e["reason"] for e in found} else None

        events = op.wait_for("the Rollout and Ready events", rollout_and_ready)
    assert [e["reason"] for e in events if e["type"] != "Normal"] == []
    assert {e["source"].get("component") for e in events} == {"modelpilot-operator"}
    assert sum(e.get("count", 1) for e in events if e["reason"] == "Resolved") == 1


def test_an_unschedulable_modeldeployment_says_why_in_its_ready_condition(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    body = op.modeldeployment(
        "iris", registered_model.name, serving={"resources": {"requests": {"cpu": "500"}}}
    )
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(control_plane, body, "-n", namespace)

        def unschedulable() -> Any:
            cond = op.condition(op.get(control_plane, op.md_path(namespace, "iris")), "Ready")
            return cond if cond and cond["reason"] == "Unschedulable" else None

        ready = op.wait_for("Ready=False/Unschedulable", unschedulable, timeout=30)
        events = op.events(control_plane, namespace, "iris")
    assert ready["status"] == "False"
    assert "Insufficient cpu" in ready["message"]
    warnings = [e for e in events if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["Unschedulable"]


def test_the_operators_log_lines_about_a_modeldeployment_name_it(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = op.operator_settings(tracking_uri, namespace)
    caplog.set_level("INFO", logger="modelpilot.operator.handlers.modeldeployment")
    with op.kopf_operator(settings, operator_kubeconfig):
        op.apply_yaml(
            control_plane, op.modeldeployment("iris", registered_model.name), "-n", namespace
        )
        op.wait_for("Ready", lambda: ready_md(control_plane, namespace))
        control_plane.kubectl("scale", "deployment/iris-router", "--replicas=3", "-n", namespace)
        op.wait_for(
            "the repair logged",
            lambda: any("differed" in r.getMessage() for r in caplog.records),
        )
    ours = [r for r in caplog.records if r.name == "modelpilot.operator.handlers.modeldeployment"]
    assert ours
    assert all(f"[{namespace}/iris]" in r.getMessage() for r in ours)
