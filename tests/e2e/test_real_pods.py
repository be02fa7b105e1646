"""End to end on real pods: the chart's operator, MLflow, model servers, routers and drift Jobs
run as real containers of the project's images on the local control plane's real node (kubelet,
containerd + runc, CNI bridge, kube-proxy, CoreDNS). Traffic comes from pods inside the cluster
through the router's Service by its DNS name. One install serves the module (tests/e2e/conftest.py);
the tests run in file order, each leaving `iris` Ready.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from modelpilot.testing import e2e

pytestmark = [pytest.mark.k8s, pytest.mark.realnode, pytest.mark.slow, pytest.mark.timeout(1800)]


def _time(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _pods(cluster: e2e.Cluster, component: str, md: str = "iris") -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={md},app.kubernetes.io/component={component}"
    pods = cluster.items("pods", selector)
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_helm_install_runs_the_operator_and_mlflow_as_real_containers(
    cluster: e2e.Cluster,
) -> None:
    pods = cluster.items("pods", "app.kubernetes.io/instance=modelpilot")
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert {"operator", "mlflow"} <= components
    for pod in pods:
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") not in {
            "operator",
            "mlflow",
        }:
            continue
        (status,) = pod["status"]["containerStatuses"]
        # A real container: containerd's id and the imported image's digest (kwok reports none).
        assert status["containerID"].startswith("containerd://"), status
        assert status["imageID"], status
        assert status["ready"] is True
        assert pod["spec"]["nodeName"] != "kwok-node"


def test_predictions_reach_the_model_servers_through_the_router_service_from_inside_the_cluster(
    cluster: e2e.Cluster,
) -> None:
    cluster.script_job(
        "traffic-check", "traffic.py", "rollout", cluster.router_url("iris"), "1", "120"
    )
    summary = cluster.summary(cluster.wait_job("traffic-check", timeout=300))
    assert summary["reached"] is True, summary
    assert summary["failed"] == 0, summary
    assert summary["versions"] == {"1": summary["sent"]}


def test_workloads_run_as_uid_10001_with_a_read_only_root_filesystem(cluster: e2e.Cluster) -> None:
    script = (
        "id -u; if touch /opt/modelpilot/x 2>/dev/null; then echo root-writable; "
        "else echo root-read-only; fi; touch /tmp/x && echo tmp-writable"
    )
    for component in ("model-server", "router"):
        (pod, *_) = _pods(cluster, component)
        out = cluster.k("exec", pod["metadata"]["name"], "--", "sh", "-c", script).stdout.split()
        assert out == ["10001", "root-read-only", "tmp-writable"], (component, out)
        security = pod["spec"]["containers"][0]["securityContext"]
        assert security["readOnlyRootFilesystem"] is True


def test_the_drift_cronjob_runs_as_a_real_job_and_writes_status_drift(
    cluster: e2e.Cluster,
) -> None:
    # The previous test's traffic is in the model servers' windows; the CronJob runs every minute.
    def drift() -> dict[str, Any] | None:
        md = cluster.get("modeldeployment", "iris") or {}
        found: dict[str, Any] | None = md.get("status", {}).get("drift")
        return found if found and found.get("lastRun") else None

    status = e2e.poll(
        "status.drift of iris",
        drift,
        timeout=360,
        explain=lambda: cluster.describe("cronjobs,jobs"),
    )
    assert status["maxPsi"] >= 0

    def succeeded_job() -> list[dict[str, Any]]:
        # The Job that wrote the status ends a moment later: its pod exits after the patch.
        return [
            j
            for j in cluster.items("jobs")
            if any(o.get("kind") == "CronJob" for o in j["metadata"].get("ownerReferences", []))
            and j.get("status", {}).get("succeeded")
        ]

    e2e.poll(
        "a drift Job of the CronJob succeeded",
        succeeded_job,
        timeout=180,
        explain=lambda: cluster.describe("cronjobs,jobs"),
    )
    condition = cluster.condition("modeldeployment", "iris", "DriftDetected") or {}
    assert condition.get("reason") not in (None, "AwaitingFirstRun"), condition
    # No more runs for the rest of the session: they would compete for the 2 cores.
    cluster.k(
        "patch",
        "modeldeployment",
        "iris",
        "--type=merge",
        "-p",
        '{"spec":{"drift":{"suspend":true}}}',
    )


@pytest.mark.e2e_long
def test_the_better_challenger_is_promoted_even_when_the_operator_pod_is_deleted_mid_experiment(
    cluster: e2e.Cluster,
) -> None:
    experiment = {
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "iris-v2"},
        "spec": {
            "deploymentRef": "iris",
            "variants": [
                {
                    "name": "challenger",
                    "model": {"name": e2e.MODEL_NAME, "version": "2"},
                    "replicas": 1,
                }
            ],
            "policy": {
                "type": "thompson",
                "minWeight": 10,
                "maxWeight": 90,
                "updateInterval": "5s",
            },
            "reward": {"type": "binary"},
            "stopping": {
                "minSamplesPerVariant": 100,
                "probabilityToBeBest": 0.95,
                "maxDuration": "1h",
            },
            "guardrails": {"maxErrorRate": 0.05, "maxLatencyP99Ms": 5000},
            "onSuccess": "promote",
        },
    }
    cluster.apply(experiment)
    # Traffic with delayed rewards (challenger 0.9, stable 0.3) for up to 10 minutes.
    cluster.script_job("traffic-bandit", "traffic.py", "bandit", cluster.router_url("iris"), "600")

    def counting() -> bool:
        exp = cluster.get("experiment", "iris-v2") or {}
        variants = exp.get("status", {}).get("variants", [])
        return sum(int(v.get("requests", 0)) for v in variants) > 0

    e2e.poll(
        "the experiment counting requests",
        counting,
        timeout=600,
        explain=lambda: cluster.describe("experiments,deployments"),
    )
    (old,) = cluster.items("pods", "app.kubernetes.io/component=operator")
    cluster.k("delete", "pod", old["metadata"]["name"], "--wait=false")

    def promoted() -> dict[str, Any] | None:
        exp = cluster.get("experiment", "iris-v2") or {}
        return exp if exp.get("status", {}).get("phase") == "Promoted" else None

    exp = e2e.poll(
        "the challenger promoted",
        promoted,
        timeout=900,
        explain=lambda: (
            json.dumps((cluster.get("experiment", "iris-v2") or {}).get("status"), indent=1)
            + cluster.describe("experiments,deployments")
            + cluster.job_logs("traffic-bandit")[-2000:]
        ),
    )
    cluster.k("delete", "job", "traffic-bandit", "--wait=false")
    assert exp["status"]["decision"]["winner"] == "challenger", exp["status"]
    (new,) = [
        p
        for p in cluster.items("pods", "app.kubernetes.io/component=operator")
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert new["metadata"]["name"] != old["metadata"]["name"]
    cluster.wait_ready("iris", version="2", timeout=600)


@pytest.mark.e2e_long
def test_a_rollout_to_a_new_version_under_continuous_traffic_fails_no_request(
    cluster: e2e.Cluster,
) -> None:
    cluster.script_job(
        "traffic-rollout", "traffic.py", "rollout", cluster.router_url("iris"), "3", "600"
    )
    e2e.poll(
        "the rollout traffic running",
        lambda: "progress" in cluster.job_logs("traffic-rollout"),
        timeout=300,
    )
    before = {p["metadata"]["name"] for p in _pods(cluster, "model-server")}
    # Whatever the earlier tests left serving (v2 after the promotion test; v1 when run alone).
    serving = str(
        ((cluster.get("modeldeployment", "iris") or {}).get("status") or {})["model"]["version"]
    )
    cluster.k(
        "patch",
        "modeldeployment",
        "iris",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"model": {"name": e2e.MODEL_NAME, "alias": None, "version": "3"}}}),
    )
    cluster.wait_ready("iris", version="3", timeout=600)
    summary = cluster.summary(cluster.wait_job("traffic-rollout", timeout=660))
    assert summary["reached"] is True, summary
    assert summary["failed"] == 0, summary
    assert set(summary["versions"]) == {serving, "3"}, summary
    # The readiness probe held the new pods out of the Service until the model was loaded: each
    # became Ready well after its container started (proved, not assumed).
    for pod in _pods(cluster, "model-server"):
        if pod["metadata"]["name"] in before:
            continue
        started = _time(pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert _time(ready["lastTransitionTime"]) > started, pod["status"]


@pytest.mark.e2e_long
@pytest.mark.parametrize(
    ("name", "serving", "reasons"),
    [
        (
            "bad-image",
            {"image": "ghcr.io/modelpilot/no-such-image:0.0.0"},
            {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"},
        ),
        ("crash-loop", {"image": "ghcr.io/modelpilot/drift:__TAG__"}, {"CrashLoopBackOff"}),
        (
            "oom",
            {"resources": {"limits": {"memory": "40Mi"}, "requests": {"memory": "40Mi"}}},
            {"OOMKilled"},
        ),
    ],
)
def test_a_pod_that_cannot_start_shows_its_reason_in_the_status_and_a_warning_event(
    cluster: e2e.Cluster, name: str, serving: dict[str, Any], reasons: set[str]
) -> None:
    serving = json.loads(json.dumps(serving).replace("__TAG__", cluster.image_tag))
    cluster.apply(cluster.model_deployment(name, model={"version": "1"}, serving=serving))
    try:

        def stuck() -> dict[str, Any] | None:
            cond = cluster.condition("modeldeployment", name, "Ready") or {}
            return cond if cond.get("reason") in reasons else None

        cond = e2e.poll(
            f"{name}: Ready reason in {sorted(reasons)}",
            stuck,
            timeout=420,
            explain=lambda: (
                json.dumps(cluster.condition("modeldeployment", name, "Ready"))
                + cluster.describe("modeldeployments")
            ),
        )
        assert cond["status"] == "False"
        assert "model-server" in cond["message"], cond
        events = [e for e in cluster.events(name) if e.get("type") == "Warning"]
        assert any(e["reason"] in reasons for e in events), events
    finally:
        cluster.k("delete", "modeldeployment", name, "--wait=false")
