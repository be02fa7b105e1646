"""What the two operator benchmarks share: the start-up, the operator process, the measurements.

`operator_scale.py` (N ModelDeployments applied at once) and `operator_idle.py` (N at rest) start
the same world: a model with the alias `champion` in a real MLflow server, the CRDs, fake kwok nodes
so that 2N pods fit, the operator's ServiceAccount bound to the ClusterRole of
`modelpilot.api.rbac`, and `modelpilot operator run` as a real subprocess authenticating with that
account's token. They read the same figures: `apiserver_request_total` by verb and resource, CPU
seconds from /proc, and Ready ModelDeployments followed by one watch.

Design decision: this module is written once for both (it was written twice, duplicates D13), and
it only starts and measures; what each benchmark does with the world stays in its own script.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow.tracking
import yaml

from modelpilot.api import rbac, render
from modelpilot.testing import controlplane, processes

PODS_PER_NODE = 110
NAMESPACE = "bench"
OPERATOR_NAMESPACE = "modelpilot-system"
OPERATOR_ACCOUNT = "modelpilot-operator"
MODEL = "bench-model"
MD_PATH = f"/apis/modelpilot.io/v1alpha1/namespaces/{NAMESPACE}/modeldeployments"

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- measurements -------------------------------------------------------------------------------
def api_requests(plane: controlplane.ControlPlane) -> dict[str, float]:
    """apiserver_request_total summed by "VERB resource[/subresource]", WATCH excluded."""
    status, text = plane.api_get("/metrics")
    if status != 200 or not isinstance(text, str):
        raise SystemExit(f"cannot read the API server's metrics: {status}")
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") in ("WATCH", "WATCHLIST"):
            continue
        key = f"{labels.get('verb')} {labels.get('resource')}" + (
            f"/{labels['subresource']}" if labels.get("subresource") else ""
        )
        out[key] = out.get(key, 0.0) + float(match["value"])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def component_pids(plane: controlplane.ControlPlane, names: tuple[str, ...]) -> dict[str, int]:
    """The process (group leader) of each named component of the plane, from its pids.json."""
    groups = json.loads((plane.state_dir / controlplane.PIDS_FILE).read_text())["groups"]
    return {name: int(groups[name]) for name in names if name in groups}


def is_ready(item: dict[str, Any]) -> bool:
    for cond in (item.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return True
    return False


class ReadyWatch(threading.Thread):
    """Follows the objects of one collection by a watch: which are ready, which observed.

    One list, then one watch from its resourceVersion (re-listed if the watch ends); `changed` is
    set on every event so the caller waits on it instead of sleeping. By default the
    ModelDeployments of the bench namespace (ready: Ready=True; observed: status written).
    """

    def __init__(
        self,
        plane: controlplane.ControlPlane,
        path: str = MD_PATH,
        ready: Callable[[dict[str, Any]], bool] = is_ready,
    ) -> None:
        super().__init__(daemon=True)
        self.plane, self.path, self.is_ready = plane, path, ready
        self.ready: set[str] = set()
        self.observed: set[str] = set()
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.errors = 0
        self.last_error = ""

    def _record(self, item: dict[str, Any], deleted: bool = False) -> None:
        name = item["metadata"]["name"]
        for bucket, member in (
            (self.ready, not deleted and self.is_ready(item)),
            (self.observed, not deleted and "observedGeneration" in (item.get("status") or {})),
        ):
            if member:
                bucket.add(name)
            else:
                bucket.discard(name)
        self.changed.set()

    def _connection(self) -> http.client.HTTPSConnection:
        url = urlsplit(self.plane.server)
        context = ssl.create_default_context(cafile=str(self.plane.ca_file))
        return http.client.HTTPSConnection(
            url.hostname or "127.0.0.1", url.port, context=context, timeout=120
        )

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._follow()
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                self.errors += 1
                self.last_error = repr(exc)
                self.stopping.wait(1.0)  # a busy API server: list and watch again

    def _follow(self) -> None:
        headers = {"Authorization": f"Bearer {self.plane.admin_token}"}
        conn = self._connection()
        try:
            conn.request("GET", self.path, headers=headers)
            listing = json.loads(conn.getresponse().read())
            if listing.get("kind") == "Status":  # e.g. a CRD not yet served right after Established
                raise ValueError(listing.get("message"))
            self.ready.clear()
            self.observed.clear()
            for item in listing.get("items") or []:
                self._record(item)
            version = listing["metadata"]["resourceVersion"]
            conn.request(
                "GET",
                f"{self.path}?watch=1&resourceVersion={version}&timeoutSeconds=600",
                headers=headers,
            )
            response = conn.getresponse()
            while not self.stopping.is_set():
                line = response.readline()
                if not line:
                    return
                event = json.loads(line)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    self._record(event["object"], deleted=event["type"] == "DELETED")
                elif event.get("type") == "ERROR":
                    return
        finally:
            conn.close()


# ---- start-up -----------------------------------------------------------------------------------
def node(name: str) -> dict[str, Any]:
    """A fake kwok node with room for PODS_PER_NODE pods (kwok renews its Lease)."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }


def modeldeployments(count: int) -> list[dict[str, Any]]:
    """`count` ModelDeployments md-0000... of the bench namespace, all following the alias."""
    return [
        {
            "apiVersion": "modelpilot.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": f"md-{i:04d}", "namespace": NAMESPACE},
            "spec": {"model": {"name": MODEL, "alias": "champion"}},
        }
        for i in range(count)
    ]


def apply_list(plane: controlplane.ControlPlane, items: list[dict[str, Any]]) -> None:
    """One `kubectl apply --server-side` of `items` as a List (10 min: a busy API server)."""
    plane.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}),
        timeout=600,
    )


def register_model(tracking_uri: str) -> None:
    """Version 1 of MODEL, with the alias `champion`, in the MLflow server at `tracking_uri`."""
    client = mlflow.tracking.MlflowClient(tracking_uri, tracking_uri)
    experiment = client.create_experiment("bench")
    client.create_registered_model(MODEL)
    run_ = client.create_run(experiment)
    client.create_model_version(MODEL, f"runs:/{run_.info.run_id}/model", run_.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", "1")


def prepare(
    plane: controlplane.ControlPlane, work: Path, count: int, *, namespaces: tuple[str, ...] = ()
) -> tuple[int, Path]:
    """CRDs Established, fake nodes for 2 x `count` pods, the namespaces, the operator's identity.

    Creates OPERATOR_NAMESPACE, NAMESPACE and `namespaces`; the operator's ServiceAccount is bound
    to the ClusterRole of `modelpilot.api.rbac`. Returns the number of extra nodes and a
    kubeconfig with that account's token.
    """
    render.write(render.crd_files(), work / "crds")
    plane.kubectl("apply", "--server-side", "-f", str(work / "crds"))
    plane.wait_established(*(name.removesuffix(".yaml") for name in render.crd_files()))
    extra_nodes = math.ceil(2 * count / PODS_PER_NODE)
    names = [f"kwok-bench-{i}" for i in range(extra_nodes)]
    nodes = {"apiVersion": "v1", "kind": "List", "items": [node(n) for n in names]}
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(nodes))
    for ns in (OPERATOR_NAMESPACE, NAMESPACE, *namespaces):
        plane.kubectl("create", "namespace", ns)
    plane.kubectl("create", "serviceaccount", OPERATOR_ACCOUNT, "-n", OPERATOR_NAMESPACE)
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(rbac.build_cluster_role()))
    plane.kubectl(
        "create",
        "clusterrolebinding",
        OPERATOR_ACCOUNT,
        f"--clusterrole={OPERATOR_ACCOUNT}",
        f"--serviceaccount={OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}",
    )
    kubeconfig = plane.kubeconfig_for_token(plane.token_for(OPERATOR_ACCOUNT, OPERATOR_NAMESPACE))
    return extra_nodes, kubeconfig


# ---- the operator -------------------------------------------------------------------------------
def operator_env(
    kubeconfig: Path, tracking_uri: str, *, resync_seconds: float, resync_mode: str
) -> dict[str, str]:
    """The environment of `modelpilot operator run` as the bench's ServiceAccount, no ports."""
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "MODELPILOT_OPERATOR_MLFLOW_TRACKING_URI": tracking_uri,
        "MODELPILOT_OPERATOR_RESYNC_SECONDS": str(resync_seconds),
        "MODELPILOT_OPERATOR_RESYNC_MODE": resync_mode,
        "MODELPILOT_OPERATOR_HEALTH_PORT": "0",
        "MODELPILOT_OPERATOR_METRICS_PORT": "0",
    }


def start_operator(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`modelpilot operator run` as a subprocess, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "modelpilot.cli.main", "operator", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    processes.stop(proc, grace=30)


@contextmanager
def running_operator(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_operator(env, log)
    try:
        yield proc
    finally:
        stop(proc)
