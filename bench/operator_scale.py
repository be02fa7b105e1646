"""Benchmark: N ModelDeployments applied at once on the local control plane.

Measures the time from one `kubectl apply` of N ModelDeployments (all following the same alias in a
real MLflow server) until every one reports Ready=True (its model-server and router Deployments
available, pods made Ready by kwok), and the operator's peak resident memory (VmHWM of the
`modelpilot operator run` process, which authenticates with its own ServiceAccount token bound to
the ClusterRole of `modelpilot.api.rbac`). Writes bench/out/operator.json (docs/architecture.md).

    python bench/operator_scale.py [--count 1000] [--resync-mode cache|relist]
                                   [--out bench/out/operator.json]

Design decision: the operator runs as a real subprocess (not in this process) so that its memory
is measured alone, and extra fake kwok nodes are added so that 2N pods fit (110 pods per node);
kwok renews their Leases as it does the harness's own node.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import mlflow.tracking
import yaml

from modelpilot.api import rbac, render
from modelpilot.testing import controlplane, mlflow_server

PODS_PER_NODE = 110


def _node(name: str) -> dict[str, Any]:
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


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _PeakSampler(threading.Thread):
    """Reads VmHWM (the kernel's own peak RSS) until stopped, so the value survives the process."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                self.peak = max(self.peak, _peak_rss_mib(self.pid))
            except OSError:
                return


def _ready_count(plane: controlplane.ControlPlane, namespace: str) -> int:
    try:
        _, body = plane.api_get(
            f"/apis/modelpilot.io/v1alpha1/namespaces/{namespace}/modeldeployments"
        )
    except (TimeoutError, OSError):
        return 0  # a busy API server: the next poll counts
    if not isinstance(body, dict):
        return 0
    ready = 0
    for item in body.get("items", []):
        for cond in (item.get("status") or {}).get("conditions") or []:
            if cond["type"] == "Ready" and cond["status"] == "True":
                ready += 1
    return ready


def run(count: int, out: Path, *, timeout: float, resync_mode: str = "cache") -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    with mlflow_server.running(work / "mlflow") as server, controlplane.running() as plane:
        client = mlflow.tracking.MlflowClient(server.tracking_uri, server.tracking_uri)
        experiment = client.create_experiment("bench")
        client.create_registered_model("bench-model")
        run_ = client.create_run(experiment)
        client.create_model_version(
            "bench-model", f"runs:/{run_.info.run_id}/model", run_.info.run_id
        )
        client.set_registered_model_alias("bench-model", "champion", "1")

        render.write(render.crd_files(), work / "crds")
        plane.kubectl("apply", "--server-side", "-f", str(work / "crds"))
        plane.wait_established(*(name.removesuffix(".yaml") for name in render.crd_files()))
        extra_nodes = math.ceil(2 * count / PODS_PER_NODE)
        names = [f"kwok-bench-{i}" for i in range(extra_nodes)]
        nodes = {"apiVersion": "v1", "kind": "List", "items": [_node(n) for n in names]}
        plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(nodes))
        for ns in ("modelpilot-system", "bench"):
            plane.kubectl("create", "namespace", ns)
        plane.kubectl("create", "serviceaccount", "modelpilot-operator", "-n", "modelpilot-system")
        plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(rbac.build_cluster_role()))
        plane.kubectl(
            "create",
            "clusterrolebinding",
            "modelpilot-operator",
            "--clusterrole=modelpilot-operator",
            "--serviceaccount=modelpilot-system:modelpilot-operator",
        )
        kubeconfig = plane.kubeconfig_for_token(
            plane.token_for("modelpilot-operator", "modelpilot-system")
        )
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MODELPILOT_OPERATOR_MLFLOW_TRACKING_URI": server.tracking_uri,
            "MODELPILOT_OPERATOR_RESYNC_SECONDS": "300",
            "MODELPILOT_OPERATOR_RESYNC_MODE": resync_mode,
            "MODELPILOT_OPERATOR_HEALTH_PORT": "0",
            "MODELPILOT_OPERATOR_METRICS_PORT": "0",
        }
        log = (work / "operator.log").open("wb")
        operator = subprocess.Popen(
            [sys.executable, "-m", "modelpilot.cli.main", "operator", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        sampler = _PeakSampler(operator.pid)
        sampler.start()
        try:
            time.sleep(2.0)  # let the operator list and watch before the burst (not a sync point)
            items = [
                {
                    "apiVersion": "modelpilot.io/v1alpha1",
                    "kind": "ModelDeployment",
                    "metadata": {"name": f"md-{i:04d}", "namespace": "bench"},
                    "spec": {"model": {"name": "bench-model", "alias": "champion"}},
                }
                for i in range(count)
            ]
            started = time.monotonic()
            plane.kubectl(
                "apply",
                "--server-side",
                "-f",
                "-",
                input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}),
                timeout=600,
            )
            applied = time.monotonic() - started
            ready, deadline = 0, started + timeout
            while time.monotonic() < deadline:
                ready = _ready_count(plane, "bench")
                if ready == count:
                    break
                time.sleep(1.0)
            elapsed = time.monotonic() - started
            sampler.stop.set()
            sampler.join()
            peak = max(sampler.peak, _peak_rss_mib(operator.pid))
        finally:
            operator.terminate()
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait()
            log.close()
        if ready != count:
            tail = (work / "operator.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"only {ready} of {count} Ready after {timeout:.0f}s\n{tail}")
    result = {
        "name": "operator",
        "description": f"{count} ModelDeployments applied at once on the local control plane",
        "params": {
            "count": count,
            "nodes": 1 + extra_nodes,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 1),
            "resync_mode": resync_mode,
        },
        "figures": [
            {
                "metric": f"seconds_to_all_ready_{count}",
                "value": round(elapsed, 2),
                "unit": "s",
                "baseline": None,
                "baseline_value": None,
                "ratio": None,
                "better": "lower",
            },
            {
                "metric": "seconds_kubectl_apply",
                "value": round(applied, 2),
                "unit": "s",
                "baseline": None,
                "baseline_value": None,
                "ratio": None,
                "better": "lower",
            },
            {
                "metric": "operator_peak_rss_mib",
                "value": round(peak, 1),
                "unit": "MiB",
                "baseline": None,
                "baseline_value": None,
                "ratio": None,
                "better": "lower",
            },
        ],
        "notes": "Ready = model-server and router Deployments available (pods made Ready by kwok); "
        "the operator authenticates with its own ServiceAccount (ClusterRole of rbac.py).",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/operator.json"))
    parser.add_argument(
        "--resync-mode",
        choices=["cache", "relist"],
        default="cache",
        help="the operator's MODELPILOT_OPERATOR_RESYNC_MODE (relist: the former behaviour)",
    )
    args = parser.parse_args(argv)
    result = run(args.count, args.out, timeout=args.timeout, resync_mode=args.resync_mode)
    print(json.dumps(result["figures"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
