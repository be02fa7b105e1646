"""The real node: pods are real containers (containerd + runc) with cluster networking and DNS.

Against the session's `real_node_plane` (kubelet, containerd, CNI bridge, kube-proxy in iptables
mode, CoreDNS; see modelpilot.testing.node), each test in its own namespace, waiting by polling
the API. The image is Debian's static busybox packed as an OCI archive by the harness (no registry,
no podman) and imported into containerd. The teardown test starts a plane of its own and checks
that stopping it leaves no process, mount, network interface, iptables rule, cgroup or changed
kernel setting behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modelpilot.testing import controlplane, node
from tests import polling

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.realnode,
    pytest.mark.skipif(os.geteuid() != 0, reason="a real node needs root (namespaces, cgroups)"),
]

T = TypeVar("T")
WEB_IMAGE_CMD = ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = 90.0) -> T:
    return polling.wait_for(what, probe, timeout=timeout, interval=0.2)


def get_json(plane: controlplane.ControlPlane, *args: str) -> Any:
    return json.loads(plane.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def web_image(real_node_plane: controlplane.ControlPlane) -> str:
    assert real_node_plane.node is not None
    archive = node.busybox_image(node.TEST_IMAGE, WEB_IMAGE_CMD)
    assert node.TEST_IMAGE in real_node_plane.node.import_image(archive)
    return node.TEST_IMAGE


@pytest.fixture
def namespace(real_node_plane: controlplane.ControlPlane) -> Iterator[str]:
    name = f"n-{uuid.uuid4().hex[:8]}"
    real_node_plane.kubectl("create", "namespace", name)
    yield name
    real_node_plane.kubectl("delete", "namespace", name, "--wait=false")


def _pod_ready(plane: controlplane.ControlPlane, name: str, namespace: str) -> bool:
    pod = get_json(plane, "pod", name, "-n", namespace)
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return conditions.get("Ready") == "True"


def test_the_real_node_joins_with_its_kubelet_and_is_the_only_node(
    real_node_plane: controlplane.ControlPlane,
) -> None:
    nodes = get_json(real_node_plane, "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [node.NODE_NAME]
    info = nodes[0]["status"]["nodeInfo"]
    assert info["kubeletVersion"].startswith("v1.36.")
    assert info["containerRuntimeVersion"].startswith("containerd://1.")
    addresses = {a["type"]: a["address"] for a in nodes[0]["status"]["addresses"]}
    assert real_node_plane.node is not None
    assert addresses["InternalIP"] == real_node_plane.node.node_ip


def test_a_pod_from_a_locally_built_image_becomes_ready_only_when_its_probe_passes(
    real_node_plane: controlplane.ControlPlane, web_image: str, namespace: str
) -> None:
    # Ready when /www/ready exists, which the container does not create: `kubectl exec` does
    # (through the API server, the kubelet and containerd's streaming server).
    manifest = textwrap.dedent(
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: web, labels: {{app: web}}}}
        spec:
          containers:
          - name: web
            image: {web_image}
            imagePullPolicy: Never
            ports: [{{containerPort: 8080}}]
            readinessProbe:
              httpGet: {{path: /ready, port: 8080}}
              periodSeconds: 1
        """
    )
    real_node_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)

    def running() -> dict[str, Any] | None:
        pod = get_json(real_node_plane, "pod", "web", "-n", namespace)
        statuses = pod["status"].get("containerStatuses") or [{}]
        return pod if "running" in statuses[0].get("state", {}) else None

    pod = wait_for("the web container running", running)
    assert pod["spec"]["nodeName"] == node.NODE_NAME
    assert pod["status"]["podIP"].startswith("10.244.0.")
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    # Running but failing its probe (404; the first probes may find httpd not yet listening):
    # the kubelet reports it, and the pod is not Ready.
    wait_for(
        "a readiness probe failed with 404",
        lambda: (
            [
                e
                for e in get_json(real_node_plane, "events", "-n", namespace)["items"]
                if e["reason"] == "Unhealthy" and "statuscode: 404" in e["message"]
            ]
            or None
        ),
    )
    assert not _pod_ready(real_node_plane, "web", namespace)

    real_node_plane.kubectl("exec", "-n", namespace, "web", "--", "touch", "/www/ready")
    wait_for("the pod Ready", lambda: _pod_ready(real_node_plane, "web", namespace))


def test_a_service_reaches_the_pod_by_cluster_ip_and_by_dns_name_from_another_pod(
    real_node_plane: controlplane.ControlPlane, web_image: str, namespace: str
) -> None:
    manifest = textwrap.dedent(
        f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              containers:
              - name: web
                image: {web_image}
                imagePullPolicy: Never
                readinessProbe:
                  httpGet: {{path: /index.html, port: 8080}}
                  periodSeconds: 1
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: web}}
        spec:
          selector: {{app: web}}
          ports: [{{port: 80, targetPort: 8080}}]
        """
    )
    real_node_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    real_node_plane.kubectl(
        "rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s", timeout=150
    )
    cluster_ip = get_json(real_node_plane, "service", "web", "-n", namespace)["spec"]["clusterIP"]
    assert cluster_ip.startswith("10.96.")
    fqdn = f"web.{namespace}.svc.cluster.local"
    # (Debian's busybox wget crashes writing a body to stdout with -q: write to a file.)
    script = " && ".join(
        [
            *(
                f"wget -O /tmp/{i} {url} && cat /tmp/{i}"
                for i, url in enumerate(
                    [
                        f"http://{cluster_ip}/index.html",
                        f"http://{fqdn}/index.html",
                        "http://web/index.html",
                    ]
                )
            ),
            f"nslookup {fqdn}",
            "cat /etc/resolv.conf",
            # The API server through the `kubernetes` Service (a TCP connect: busybox's TLS has
            # no cipher in common with Go's; in-cluster clients are covered in tests/e2e).
            "nc -w 5 kubernetes.default.svc.cluster.local 443 </dev/null && echo api-tcp-ok",
        ]
    )
    client = textwrap.dedent(
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: client}}
        spec:
          restartPolicy: Never
          containers:
          - name: client
            image: {web_image}
            imagePullPolicy: Never
            command: ["sh", "-c", {json.dumps(script)}]
        """
    )
    real_node_plane.kubectl("apply", "-n", namespace, "-f", "-", input=client)

    def finished() -> str | None:
        phase = get_json(real_node_plane, "pod", "client", "-n", namespace)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for("the client pod to finish", finished)
    logs = real_node_plane.kubectl("logs", "-n", namespace, "client").stdout
    assert phase == "Succeeded", logs
    assert logs.count("hello from a real container") == 3, logs
    assert cluster_ip in logs  # nslookup answered with the Service's ClusterIP
    assert f"nameserver {node.CLUSTER_DNS}" in logs
    assert f"search {namespace}.svc.cluster.local" in logs
    assert "api-tcp-ok" in logs


# ---- teardown ----------------------------------------------------------------------------------


def _host_snapshot() -> dict[str, Any]:
    """What a node could leave on the host: links, iptables rules, mounts, kernel settings."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return {
        "links": {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()},
        "rules": {
            line
            for line in rules.splitlines()
            if line and not line.startswith(("#", ":")) and line not in ("COMMIT",)
        },
        "mounts": set(Path("/proc/self/mounts").read_text().splitlines()),
        "tunables": {n: (Path("/proc/sys") / n).read_text().strip() for n in node.KERNEL_TUNABLES},
    }


def _node_processes(inodes: dict[str, int], state_dir: Path, cgroup: str) -> list[str]:
    """Processes of this node: in its namespaces, in its cgroups, or naming its state dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ns = {k: os.stat(entry / "ns" / k).st_ino for k in inodes}
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroups = (entry / "cgroup").read_text()
        except OSError:
            continue
        if (
            any(ns[k] == v for k, v in inodes.items())
            or f"{cgroup}/" in cgroups
            or str(state_dir) in cmdline
        ):
            found.append(f"{entry.name} {cmdline[:120]}")
    return found


@dataclass
class _Started:
    kubeconfig: Path
    kubectl: Path
    import_image: Callable[[Path], object]


@contextlib.contextmanager
def _in_process(state: Path) -> Iterator[_Started]:
    """The fixtures' way: controlplane.running(node="real")."""
    with controlplane.running(state, node="real", timeout=240.0) as plane:
        assert plane.node is not None
        yield _Started(plane.kubeconfig, plane.binaries / "kubectl", plane.node.import_image)


@contextlib.contextmanager
def _up_down(state: Path) -> Iterator[_Started]:
    """A person's way: `controlplane up --node real` (what `make cluster-up NODE=real` runs),
    `node import-image`, then `controlplane down` (`make cluster-down`)."""
    module = "modelpilot.testing.controlplane"
    up = subprocess.run(
        [sys.executable, "-m", module, "up", f"--dir={state}", "--node=real", "--timeout=240"],
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    assert "real node modelpilot-node-0" in up.stdout

    def import_image(archive: Path) -> object:
        return subprocess.run(
            [sys.executable, "-m", "modelpilot.testing.node", "import-image", str(archive),
             f"--dir={state}"],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout  # fmt: skip

    try:
        yield _Started(state / "kubeconfig", state / "bin" / "kubectl", import_image)
    finally:
        down = subprocess.run(
            [sys.executable, "-m", module, "down", f"--dir={state}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.parametrize("how", [_in_process, _up_down], ids=["fixture", "cluster-up-down"])
def test_stopping_a_real_node_leaves_no_process_mount_interface_rule_or_cgroup(
    tmp_path: Path, how: Callable[[Path], contextlib.AbstractContextManager[_Started]]
) -> None:
    archive = node.busybox_image(node.TEST_IMAGE, WEB_IMAGE_CMD)
    before = _host_snapshot()
    state_dir = tmp_path / "plane"
    with how(state_dir) as started:
        started.import_image(archive)
        state = node.NodeState.load(state_dir / node.STATE_FILE)
        inodes = {"net": state.netns or 0, "mnt": state.mntns or 0}

        def kubectl(*args: str) -> str:
            return subprocess.run(
                [str(started.kubectl), f"--kubeconfig={started.kubeconfig}", *args],
                capture_output=True, text=True, timeout=150, check=True,
            ).stdout  # fmt: skip

        kubectl(
            "run", "web", f"--image={node.TEST_IMAGE}", "--image-pull-policy=Never",
            "--port=8080", "--", *WEB_IMAGE_CMD,
        )  # fmt: skip
        kubectl("wait", "pod/web", "--for=condition=Ready", "--timeout=120s")
        # While it runs the node has what teardown must remove (so the checks below can fail):
        during = _host_snapshot()
        assert state.veth in during["links"]
        assert _node_processes(inodes, state_dir, state.cgroup)
        node_mounts = Path(f"/proc/{state.holder_pid}/mounts").read_text()
        assert "overlay" in node_mounts
        assert "/var/log" in node_mounts
        iptables_inside = subprocess.run(
            ["nsenter", f"--target={state.holder_pid}", "--net", "iptables-save"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "KUBE-SERVICES" in iptables_inside
        assert "CNI-" in iptables_inside
        # ...and none of it on the host, even while it runs; the node has no way out.
        ours_during = ("KUBE-", "CNI-", "10.244.", "10.96.")
        new_rules = during["rules"] - before["rules"]
        assert {r for r in new_rules if any(o in r for o in ours_during)} == set()
        routes = subprocess.run(
            ["nsenter", f"--target={state.holder_pid}", "--net", "ip", "route"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "default" not in routes
        assert state.link in routes
        assert list(Path("/sys/fs/cgroup").glob(f"*/{state.cgroup.lstrip('/')}/kubepods"))
    after = _host_snapshot()
    assert _node_processes(inodes, state_dir, state.cgroup) == []
    assert state.veth not in after["links"]
    new_links = after["links"] - before["links"]
    assert {link for link in new_links if link.startswith(("mpn-", "cni", "veth"))} == set()
    ours = ("KUBE-", "CNI-", "10.244.", "10.96.", state.link.split("/")[0].rsplit(".", 1)[0])
    assert {r for r in after["rules"] - before["rules"] if any(o in r for o in ours)} == set()
    new_mounts = after["mounts"] - before["mounts"]
    assert {m for m in new_mounts if str(tmp_path) in m or "nsfs" in m} == set()
    assert {m for m in after["mounts"] if state.data_dir in m} == set()
    assert not Path(state.data_dir).exists()
    assert after["tunables"] == before["tunables"]
    assert list(Path("/sys/fs/cgroup").glob(f"*/{state.cgroup.lstrip('/')}")) == []
    assert not (state_dir / node.STATE_FILE).exists()


KILLED_CHILD = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from modelpilot.testing import controlplane, node
    with controlplane.running(node="real", timeout=240.0) as plane:
        plane.node.import_image(Path(sys.argv[1]))
        plane.kubectl("run", "web", f"--image={node.TEST_IMAGE}", "--image-pull-policy=Never")
        plane.kubectl("wait", "pod/web", "--for=condition=Ready", "--timeout=120s", timeout=150)
        print(json.dumps({"state": str(plane.state_dir)}), flush=True)
        sys.stdin.read()  # until the test SIGKILLs us
    """
)


def test_a_sigkilled_owner_still_leaves_nothing_once_the_watchdog_cleans_up() -> None:
    archive = node.busybox_image(node.TEST_IMAGE, WEB_IMAGE_CMD)
    before = _host_snapshot()
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(archive)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line, "the child failed to start a plane with a real node"
    state_dir = Path(json.loads(line)["state"])
    state = node.NodeState.load(state_dir / node.STATE_FILE)
    inodes = {"net": state.netns or 0, "mnt": state.mntns or 0}
    assert _node_processes(inodes, state_dir, state.cgroup)
    child.kill()  # no `finally`, no atexit: only the watchdog can clean up
    child.wait()
    wait_for("the watchdog to remove the state dir", lambda: not state_dir.exists(), timeout=60)
    wait_for(
        "the watchdog itself to exit",
        lambda: _node_processes(inodes, state_dir, state.cgroup) == [],
        timeout=10,
    )
    after = _host_snapshot()
    assert state.veth not in after["links"]
    ours = ("KUBE-", "CNI-", "10.244.", "10.96.")
    assert {r for r in after["rules"] - before["rules"] if any(o in r for o in ours)} == set()
    assert after["tunables"] == before["tunables"]
    assert list(Path("/sys/fs/cgroup").glob(f"*/{state.cgroup.lstrip('/')}")) == []
    assert not Path(state.data_dir).exists()
