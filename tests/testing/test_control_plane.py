"""The local control plane behaves like a real cluster: scheduling, controllers, GC, RBAC, helm.

The cluster tests run against the session's `control_plane` (real etcd, kube-apiserver,
controller-manager, scheduler; kwok plays the kubelet), each in its own namespace, waiting by
polling the API with a deadline, never by sleeping a fixed time. The harness tests at the end start
planes of their own (`up`/`down`, a SIGKILLed owner, a squatted port) and check nothing is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modelpilot.testing import controlplane, ports
from tests import polling

pytestmark = pytest.mark.k8s

CHARTS = Path(__file__).parent / "charts"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = 60.0) -> T:
    """Poll `probe` until it returns something other than None/False; fail after `timeout`."""
    return polling.wait_for(what, probe, timeout=timeout, interval=0.2)


def get_json(plane: controlplane.ControlPlane, *args: str) -> Any:
    return json.loads(plane.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture
def namespace(control_plane: controlplane.ControlPlane) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false")


def test_the_fake_node_is_ready_and_the_binaries_report_kubernetes_1_36(
    control_plane: controlplane.ControlPlane,
) -> None:
    nodes = get_json(control_plane, "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [controlplane.NODE_NAME]
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"

    versions = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"].startswith("v1.36.")
    assert versions["serverVersion"]["gitVersion"].startswith("v1.36.")
    assert versions["serverVersion"]["minor"] == "36"
    helm_version = control_plane.helm("version", "--short").stdout
    assert helm_version.startswith(("v3.", "v4.")), helm_version


def test_kubectl_apply_creates_and_updates_an_object_that_kubectl_get_returns(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    manifest = textwrap.dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
        data:
          colour: blue
        """
    )
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    assert get_json(control_plane, "configmap", "settings", "-n", namespace)["data"] == {
        "colour": "blue"
    }

    changed = manifest.replace("colour: blue", "colour: green\n  size: large")
    out = control_plane.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=changed)
    assert "serverside-applied" in out.stdout
    got = get_json(control_plane, "configmap", "settings", "-n", namespace)
    assert got["data"] == {"colour": "green", "size": "large"}
    listed = control_plane.kubectl("get", "configmaps", "-n", namespace, "-o", "name").stdout
    assert "configmap/settings" in listed.split()


def test_a_deployments_pods_are_scheduled_on_the_node_and_become_ready(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    control_plane.kubectl(
        "create", "deployment", "web", "--image=registry.invalid/web:1", "--replicas=3",
        "-n", namespace,
    )  # fmt: skip

    def ready_replicas() -> int | None:
        status = get_json(control_plane, "deployment", "web", "-n", namespace).get("status", {})
        return 3 if status.get("readyReplicas") == 3 else None

    wait_for("3 ready replicas", ready_replicas)
    pods = get_json(control_plane, "pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["spec"]["nodeName"] == controlplane.NODE_NAME  # the scheduler placed it
        assert pod["status"]["phase"] == "Running"
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions["Ready"] == "True"
        assert pod["status"]["podIP"].startswith("10.244.")
        owner = pod["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "ReplicaSet"  # Deployment -> ReplicaSet -> Pod


def _job_succeeded(plane: controlplane.ControlPlane, name: str, namespace: str) -> bool:
    status = get_json(plane, "job", name, "-n", namespace).get("status", {})
    complete = any(
        c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions", [])
    )
    return complete and status.get("succeeded") == 1


CRONJOB = textwrap.dedent(
    """
    apiVersion: batch/v1
    kind: CronJob
    metadata:
      name: tick
    spec:
      schedule: "* * * * *"
      concurrencyPolicy: Forbid
      jobTemplate:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
                - name: tick
                  image: registry.invalid/tick:1
    """
)


def test_a_job_created_from_a_cronjob_runs_to_completion(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=CRONJOB)
    control_plane.kubectl("create", "job", "tick-now", "--from=cronjob/tick", "-n", namespace)
    wait_for(
        "job tick-now to complete", lambda: _job_succeeded(control_plane, "tick-now", namespace)
    )
    pods = get_json(control_plane, "pods", "-n", namespace, "-l", "job-name=tick-now")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]


@pytest.mark.slow
def test_the_cronjob_controller_starts_a_job_on_schedule_and_it_completes(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=CRONJOB)

    def scheduled_job() -> str | None:
        for job in get_json(control_plane, "jobs", "-n", namespace)["items"]:
            owners = job["metadata"].get("ownerReferences", [])
            if any(o["kind"] == "CronJob" and o["name"] == "tick" for o in owners):
                return str(job["metadata"]["name"])
        return None

    # "* * * * *" fires at the next minute boundary: at most 60 s away, plus the controller's lag.
    job = wait_for("the cronjob controller to create a job", scheduled_job, timeout=90)
    wait_for(f"job {job} to complete", lambda: _job_succeeded(control_plane, job, namespace))
    cron_status = wait_for(
        "the cronjob to record the success",
        lambda: (
            get_json(control_plane, "cronjob", "tick", "-n", namespace)
            .get("status", {})
            .get("lastSuccessfulTime")
        ),
    )
    assert cron_status


def test_deleting_an_owner_garbage_collects_its_dependents(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("create", "configmap", "owner", "--from-literal=k=v", "-n", namespace)
    owner_uid = get_json(control_plane, "configmap", "owner", "-n", namespace)["metadata"]["uid"]
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
            ],
        },
        "data": {"k": "v"},
    }
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(dependent))
    control_plane.kubectl(
        "create", "deployment", "gc", "--image=registry.invalid/gc:1", "--replicas=2",
        "-n", namespace,
    )  # fmt: skip
    wait_for(
        "the deployment's pods",
        lambda: len(get_json(control_plane, "pods", "-n", namespace, "-l", "app=gc")["items"]) == 2,
    )

    # Background propagation: the owners go at once, the garbage collector removes the rest.
    control_plane.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")
    control_plane.kubectl("delete", "deployment", "gc", "-n", namespace, "--cascade=background")

    def gone(*args: str) -> bool:
        out = control_plane.kubectl(
            "get", *args, "-n", namespace, "-o", "name", "--ignore-not-found"
        ).stdout
        return out.strip() == ""

    wait_for("the dependent configmap to be collected", lambda: gone("configmap", "dependent"))
    wait_for("the replicasets to be collected", lambda: gone("replicasets", "-l", "app=gc"))
    wait_for("the pods to be collected", lambda: gone("pods", "-l", "app=gc"))


def test_a_service_account_token_without_rights_is_forbidden_where_the_admin_is_allowed(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = control_plane.token_for("nobody", namespace)
    path = f"/api/v1/namespaces/{namespace}/pods"

    status, body = control_plane.api_get(path, token=token)
    assert status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in body["message"]
    assert control_plane.api_get(path)[0] == 200

    as_nobody = control_plane.kubeconfig_for_token(token)
    denied = control_plane.kubectl(
        f"--kubeconfig={as_nobody}", "get", "pods", "-n", namespace, check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()

    # The same token is allowed once RBAC grants it the right: authentication was never the issue.
    control_plane.kubectl(
        "create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace
    )
    control_plane.kubectl(
        "create", "rolebinding", "nobody-reads", "--role=pod-reader",
        f"--serviceaccount={namespace}:nobody", "-n", namespace,
    )  # fmt: skip
    wait_for("RBAC to admit the token", lambda: control_plane.api_get(path, token=token)[0] == 200)
    still_denied = control_plane.api_get(f"/api/v1/namespaces/{namespace}/secrets", token=token)
    assert still_denied[0] == 403


def test_helm_install_waits_for_a_small_chart_and_helm_uninstall_removes_it(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    control_plane.helm(
        "install", "greeter", str(CHARTS / "hello"), "-n", namespace, "--wait", "--timeout=90s",
    )  # fmt: skip
    deployment = get_json(control_plane, "deployment", "greeter", "-n", namespace)
    assert deployment["status"]["readyReplicas"] == 2  # --wait returned only once they were Ready
    releases = json.loads(control_plane.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("greeter", "deployed")]

    control_plane.helm("uninstall", "greeter", "-n", namespace, "--wait", "--timeout=90s")
    assert json.loads(control_plane.helm("list", "-n", namespace, "-o", "json").stdout) == []
    left = control_plane.kubectl(
        "get", "deployments,services,configmaps,secrets", "-n", namespace,
        "-l", "app.kubernetes.io/instance=greeter", "-o", "name",
    ).stdout  # fmt: skip
    assert left.strip() == ""


# ---- the harness itself: start-up and teardown leave nothing behind -------------------------


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from modelpilot.testing import controlplane, ports
    with controlplane.running(binaries=Path(sys.argv[1])) as plane:
        pids = json.loads((plane.state_dir / "pids.json").read_text())
        print(json.dumps({"state": str(plane.state_dir), "groups": pids["groups"]}), flush=True)
        time.sleep(600)  # killed by the test long before
    """
)


@pytest.mark.slow
def test_a_killed_test_session_leaves_no_process_and_no_temp_dir(
    control_plane: controlplane.ControlPlane,
) -> None:
    # A second plane in a child process that is SIGKILLed: no `finally` runs, the watchdog must.
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(control_plane.binaries)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    started = json.loads(child.stdout.readline())
    groups = list(started["groups"].values())
    assert len(groups) == 5
    assert all(_alive(g) for g in groups)
    child.send_signal(signal.SIGKILL)
    child.wait()
    wait_for("every component to exit", lambda: not any(_alive(g) for g in groups), timeout=30)
    wait_for("the temp dir to go", lambda: not Path(started["state"]).exists(), timeout=10)


@pytest.mark.slow
def test_cluster_up_then_down_serves_a_ready_node_and_leaves_no_process(
    control_plane: controlplane.ControlPlane, tmp_path: Path
) -> None:
    state = tmp_path / "cluster"
    module = "modelpilot.testing.controlplane"
    binaries = f"--binaries={control_plane.binaries}"
    up = subprocess.run(
        [sys.executable, "-m", module, "up", f"--dir={state}", binaries],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    groups = list(json.loads((state / "pids.json").read_text())["groups"].values())
    try:
        nodes = subprocess.run(
            [str(control_plane.binaries / "kubectl"), f"--kubeconfig={state / 'kubeconfig'}",
             "get", "nodes", "--no-headers"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert nodes.split()[:2] == [controlplane.NODE_NAME, "Ready"]
    finally:
        down = subprocess.run(
            [sys.executable, "-m", module, "down", f"--dir={state}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert not any(_alive(g) for g in groups)
    assert not state.exists()


@pytest.mark.slow
def test_a_port_taken_before_a_component_binds_it_is_retried_on_fresh_ports(
    control_plane: controlplane.ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deterministic stand-in for the race: the first port handed out is already listened on.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = ports.free_port
        handed: list[int] = []

        def free_port() -> int:
            handed.append(taken if not handed else real_free_port())
            return handed[-1]

        monkeypatch.setattr(ports, "free_port", free_port)
        with controlplane.running(binaries=control_plane.binaries) as plane:
            assert str(taken) not in plane.server
            assert plane.api_get("/readyz")[0] == 200
            etcd_log = (plane.log_dir / "etcd.log").read_text()
    assert handed[0] == taken
    assert len(handed) == 10  # two attempts of five ports each
    assert "address already in use" not in etcd_log  # the log of the attempt that worked


def test_the_kubernetes_wrapper_replaces_exactly_the_staging_modules_upstream_requires() -> None:
    # The committed wrapper must match what hack/update-gomod.sh derives from upstream's go.mod:
    # every staging module k8s.io/kubernetes requires, pinned to v0.<minor>.<patch>, nothing else.
    hack = Path(__file__).parents[2] / "hack"
    wrapper = (hack / "gomod" / "kubernetes" / "go.mod").read_text().splitlines()
    version = next(
        line.split()[1] for line in wrapper if line.strip().startswith("k8s.io/kubernetes ")
    )
    replaces = {
        parts[1]: parts[4] for line in wrapper if (parts := line.split())[:1] == ["replace"]
    }
    download = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        capture_output=True, text=True, check=True, cwd=hack / "gomod" / "kubernetes",
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )  # fmt: skip
    upstream = Path(json.loads(download.stdout)["GoMod"])  # the go.mod the module proxy serves
    staged: set[str] = set()
    required: set[str] = set()
    block = ""
    for line in upstream.read_text().splitlines():
        words = line.split()
        if words[:2] in (["require", "("], ["replace", "("]):
            block = words[0]
        elif words == [")"]:
            block = ""
        elif block == "replace" and "=>" in words and words[-1].startswith("./staging/"):
            staged.add(words[0])
        elif block == "require" and words:
            required.add(words[0])
    assert set(replaces) == staged & required
    assert set(replaces.values()) == {"v0." + version.removeprefix("v1.")}
