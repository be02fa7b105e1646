"""Issue 15 in the builders' output: a sizeLimit on every emptyDir (item 6), model servers that
flush their drift window (item 5)."""

from __future__ import annotations

from typing import Any

from modelpilot.operator.builders import desired, drift, routes, workloads
from tests.operator.builders.test_builders import MODEL, SETTINGS, env_of, md_body


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "Deployment":
        return [spec["template"]["spec"]]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def test_every_emptydir_of_every_desired_workload_has_a_size_limit() -> None:
    md = md_body(drift={"schedule": "*/5 * * * *"})
    variants, policy = routes.route_variants(stable_version="3", experiment=None)
    objects = desired.build_desired(
        md, model=MODEL, variants=variants, policy=policy, settings=SETTINGS
    )
    pod_specs = [p for obj in objects for p in _pod_specs(obj)]
    assert {o["kind"] for o in objects} >= {"Deployment", "CronJob"}
    assert len(pod_specs) == 3  # model server, router, drift
    for pod in pod_specs:
        empty_dirs = [v for v in pod["volumes"] if "emptyDir" in v]
        assert empty_dirs, pod
        for volume in empty_dirs:
            assert volume["emptyDir"]["sizeLimit"], volume


def test_each_workload_gets_the_tmp_room_it_needs() -> None:
    server = workloads.build_model_server_deployment(
        md_body(), variant="stable", model=MODEL, replicas=1, settings=SETTINGS
    )
    router = workloads.build_router_deployment(md_body(), settings=SETTINGS)
    job = drift.build_drift_cronjob(md_body(drift={}), settings=SETTINGS)
    sizes = [
        p["volumes"][0]["emptyDir"]["sizeLimit"]
        for o in (server, router, job)
        for p in _pod_specs(o)
    ]
    # The model server downloads the model into /tmp; the router and the job only need scratch.
    assert sizes == ["2Gi", "64Mi", "256Mi"]


def test_an_ephemeral_storage_limit_in_the_resources_sets_the_model_servers_tmp_size() -> None:
    resources = {"limits": {"memory": "1Gi", "ephemeral-storage": "8Gi"}}
    server = workloads.build_model_server_deployment(
        md_body(serving={"resources": resources}),
        variant="stable",
        model=MODEL,
        replicas=1,
        settings=SETTINGS,
    )
    (pod,) = _pod_specs(server)
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}}]


def test_model_servers_flush_their_drift_window_keyed_by_namespace_and_deployment() -> None:
    server = workloads.build_model_server_deployment(
        md_body(), variant="stable", model=MODEL, replicas=1, settings=SETTINGS
    )
    env = env_of(server)
    assert env["MODELPILOT_SERVER_NAMESPACE"] == "ml"
    assert env["MODELPILOT_SERVER_DEPLOYMENT"] == "iris"
    assert float(env["MODELPILOT_SERVER_WINDOW_FLUSH_SECONDS"]) == 60
