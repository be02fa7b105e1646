"""End to end on real pods: the chart's operator, MLflow, model servers, routers and drift Jobs
run as real containers of the project's images on the local control plane's real node (kubelet,
containerd + runc, CNI bridge, kube-proxy, CoreDNS). Traffic comes from pods inside the cluster
through the router's Service by its DNS name. One install serves the module (tests/e2e/conftest.py);
the tests run in file order, each leaving `iris` Ready.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
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
        # The images `make images` built and the node imported (never pulled: no registry).
        image = pod["spec"]["containers"][0]["image"]
        assert image.startswith(f"{cluster.image_registry}/"), image
        assert image.endswith(f":{cluster.image_tag}"), image
        # Their startup probe waited for them (a slow start on a busy node is not a restart).
        assert "startupProbe" in pod["spec"]["containers"][0]
        assert status["restartCount"] == 0, status
    # The chart's MLflow holds the versions the Job registered, and the alias resolved to v1.
    registered = cluster.registered  # read from the Job's log when it finished
    assert registered["versions"] == ["1", "2", "3"], registered
    md = cluster.get("modeldeployment", "iris") or {}
    assert str(md["status"]["model"]["version"]) == "1", md.get("status")


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


# Inside a container: its uid, the first mount option of its root filesystem ("ro" when
# read-only: a failed `touch` would also fail on a root-owned directory), and whether /tmp (the
# emptyDir) takes a file.
UID_AND_ROOT = (
    'id -u; while read -r dev mnt rest; do [ "$mnt" = / ] && opts=${rest#* }; done'
    " < /proc/self/mounts; opts=${opts%% *}; echo root-${opts%%,*};"
    " touch /tmp/x && echo tmp-writable"
)


def test_workloads_run_as_uid_10001_with_a_read_only_root_filesystem(cluster: e2e.Cluster) -> None:
    pods = {
        "model-server": _pods(cluster, "model-server")[0],
        "router": _pods(cluster, "router")[0],
        "operator": _pods(cluster, "operator", md="modelpilot")[0],
        "mlflow": _pods(cluster, "mlflow", md="modelpilot")[0],
    }
    for component, pod in pods.items():
        out = cluster.k("exec", pod["metadata"]["name"], "--", "sh", "-c", UID_AND_ROOT)
        assert out.stdout.split() == ["10001", "root-ro", "tmp-writable"], (component, out)
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
    # The Job's pod ran to completion as uid 10001 on a read-only root (it has exited: its spec,
    # which the kubelet enforced, is what is left to read).
    (job, *_) = succeeded_job()
    (pod, *_) = cluster.items("pods", f"job-name={job['metadata']['name']}")
    assert pod["status"]["phase"] == "Succeeded"
    uid = pod["spec"]["containers"][0].get("securityContext", {}).get("runAsUser") or pod["spec"][
        "securityContext"
    ].get("runAsUser")
    assert uid == 10001, pod["spec"]
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
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
    # Mid-experiment: running, undecided, its counts so far kept in the status.
    before = (cluster.get("experiment", "iris-v2") or {}).get("status", {})
    assert before.get("phase") == "Running", before
    requests_before = {v["name"]: int(v.get("requests", 0)) for v in before["variants"]}
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
    # The new operator pod took the decision, on counts that carried over the restart: each
    # variant met minSamplesPerVariant in rewards joined from the delayed feedback, and no
    # variant's request count went backwards.
    started = _time(new["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
    assert _time(exp["status"]["decision"]["time"]) >= started, (exp["status"], started)
    final = {v["name"]: v for v in exp["status"]["report"]["variants"]}
    assert set(final) == {"stable", "challenger"}, final
    for name, variant in final.items():
        assert variant["requests"] >= requests_before.get(name, 0), (name, variant)
        assert variant["rewards"] >= 100, (name, variant)
    assert final["challenger"]["posteriorMean"] > final["stable"]["posteriorMean"], final
    cluster.wait_ready("iris", version="2", timeout=600)


@pytest.mark.e2e_long
def test_a_rollout_to_a_new_version_under_continuous_traffic_fails_no_request(
    cluster: e2e.Cluster,
) -> None:
    # The earlier tests' model servers (the promotion retires the old champion) drain for
    # DRAIN_SECONDS after they leave the Service: start once they are gone, so every answer comes
    # from the version serving now or from version 3.
    selector = "app.kubernetes.io/instance=iris,app.kubernetes.io/component=model-server"
    e2e.poll(
        "the earlier model servers gone (none terminating)",
        lambda: (
            not any(p["metadata"].get("deletionTimestamp") for p in cluster.items("pods", selector))
        ),
        timeout=120,
    )
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
    # The probes held the new pods out of the Service until the model was loaded (proved, not
    # assumed): each new pod failed its startup probe (connection refused while importing, 503
    # while loading), became Ready only after its container started, was never restarted, and
    # yet no request failed.
    new_pods = [p for p in _pods(cluster, "model-server") if p["metadata"]["name"] not in before]
    assert new_pods
    for pod in new_pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["restartCount"] == 0, status
        started = _time(status["state"]["running"]["startedAt"])
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert _time(ready["lastTransitionTime"]) > started, pod["status"]
        held = [
            e
            for e in cluster.events(pod["metadata"]["name"])
            if e.get("reason") == "Unhealthy" and "Startup probe failed" in e.get("message", "")
        ]
        assert held, cluster.events(pod["metadata"]["name"])


# ModelDeployments whose pods start badly, applied together by the first test that needs them (one
# wait instead of four in a row) and deleted at the end of the module.
CANNOT_START: dict[str, tuple[dict[str, Any], set[str]]] = {
    "bad-image": (
        {"image": "ghcr.io/modelpilot/no-such-image:0.0.0"},
        {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"},
    ),
    "crash-loop": ({"image": "ghcr.io/modelpilot/drift:__TAG__"}, {"CrashLoopBackOff"}),
    "oom": (
        {"resources": {"limits": {"memory": "40Mi"}, "requests": {"memory": "40Mi"}}},
        {"OOMKilled"},
    ),
}
# A model server held to 50 millicores: importing its libraries and loading the model take minutes
# of wall time, far past its liveness probe's budget (3 x 10 s).
SLOW_START = {
    "resources": {"requests": {"cpu": "50m", "memory": "200Mi"}, "limits": {"cpu": "50m"}}
}


@pytest.fixture(scope="module")
def hard_starts(cluster: e2e.Cluster) -> Iterator[list[str]]:
    names = [*CANNOT_START, "slow-start"]
    objects = [
        cluster.model_deployment(
            name,
            model={"version": "1"},
            serving=json.loads(json.dumps(serving).replace("__TAG__", cluster.image_tag)),
        )
        for name, (serving, _) in CANNOT_START.items()
    ]
    objects.append(
        cluster.model_deployment("slow-start", model={"version": "1"}, serving=SLOW_START)
    )
    cluster.apply(*objects)
    yield names
    cluster.k("delete", "modeldeployment", *names, "--wait=false", "--ignore-not-found")


@pytest.mark.e2e_long
@pytest.mark.parametrize("name", sorted(CANNOT_START))
def test_a_pod_that_cannot_start_shows_its_reason_in_the_status_and_a_warning_event(
    cluster: e2e.Cluster, hard_starts: list[str], name: str
) -> None:
    reasons = CANNOT_START[name][1]

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


@pytest.mark.e2e_long
def test_a_model_server_slower_to_start_than_its_liveness_budget_is_waited_for_not_restarted(
    cluster: e2e.Cluster, hard_starts: list[str]
) -> None:
    cluster.wait_ready("slow-start", version="1", timeout=900)
    (pod,) = _pods(cluster, "model-server", md="slow-start")
    container = pod["spec"]["containers"][0]
    status = pod["status"]["containerStatuses"][0]
    # Without the startup probe the liveness probe would have restarted it again and again
    # (CrashLoopBackOff, never Ready); with it, one start, Ready once the model loaded.
    assert status["restartCount"] == 0, status
    started = _time(status["state"]["running"]["startedAt"])
    live = container["livenessProbe"]
    budget = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
    # The premise, measured: the process refused connections for longer than that budget (the
    # kubelet's Unhealthy events of the startup probe; repeated events keep their last time).
    refused = [
        _time(e["lastTimestamp"])
        for e in cluster.events(pod["metadata"]["name"])
        if e.get("reason") == "Unhealthy"
        and "Startup probe failed" in e.get("message", "")
        and "connection refused" in e.get("message", "")
        and e.get("lastTimestamp")
    ]
    assert refused, cluster.events(pod["metadata"]["name"])
    assert (max(refused) - started).total_seconds() > budget, (refused, started, budget)
