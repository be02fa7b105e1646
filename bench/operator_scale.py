"""Benchmark: N ModelDeployments applied at once on the local control plane.

Measures the time from the start of one apply of N ModelDeployments (all following the same alias
in a real MLflow server) until every one reports Ready=True (its model-server and router
Deployments available, pods made Ready by kwok), the operator's peak resident memory (VmHWM of the
`modelpilot operator run` process, which authenticates with its own ServiceAccount token bound to
the ClusterRole of `modelpilot.api.rbac`), and where the work went: CPU seconds of every process of
the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok), of the
operator and of the client that applies, and the API requests per ModelDeployment by verb and
resource (`apiserver_request_total`, WATCH excluded). Prints the Ready count every few seconds.

The same measurement runs first with a named baseline (a fresh control plane each), and the
figures are printed side by side with the difference and the ratio (baseline / operator):

    floor    no operator: right after the ModelDeployments, the bench applies the objects the
             operator would create (built by the operator's own builders, with kubectl) and waits
             until every Deployment is available. What Kubernetes itself spends on N
             ModelDeployments' worth of Deployments, pods, Services and RBAC: the difference is
             what the operator costs (its own CPU, its requests, its status writes and Events).
    none     no baseline run

Writes bench/out/operator.json (docs/architecture.md).

    python bench/operator_scale.py [--count 1000] [--baseline floor|none]
                                   [--resync-mode cache|relist] [--out bench/out/operator.json]

Design decisions: the operator runs as a real subprocess (not in this process) so that its memory
and CPU are measured alone, and extra fake kwok nodes are added so that 2N pods fit (110 pods per
node); kwok renews their Leases as it does the harness's own node. Readiness is followed by one
watch (a list every second of 1,000 objects with their status costs the API server more than some
components do). The ModelDeployments are applied by `kubectl apply --server-side`, split over
`APPLY_CLIENTS` concurrent kubectl processes, as several users or a CI pipeline would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _operator_common as common  # bench/ is on sys.path when run as a script
import yaml

from modelpilot.operator import mdstatus
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import desired, routes
from modelpilot.registry import resolve
from modelpilot.testing import controlplane, mlflow_server

APPLY_CLIENTS = 4
PROGRESS_SECONDS = 5.0
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
WARMUP_NAMESPACE = "bench-warmup"

FLOOR = "floor"
BASELINES: dict[str, dict[str, str] | None] = {
    FLOOR: None,  # no operator: the bench applies the objects the operator would (below)
    "none": {},
}


# ---- measurements (the shared ones: _operator_common) -------------------------------------------
def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


def _deployment_available(item: dict[str, Any]) -> bool:
    return mdstatus.deployment_readiness(item)[0]


# ---- one run ------------------------------------------------------------------------------------
def _apply_concurrently(
    plane: controlplane.ControlPlane, items: list[dict[str, Any]], clients: int = APPLY_CLIENTS
) -> None:
    """`kubectl apply --server-side` of `items`, split over `clients` kubectl processes."""
    parts = [items[i::clients] for i in range(clients)]
    errors: list[BaseException] = []

    def one(part: list[dict[str, Any]]) -> None:
        try:
            common.apply_list(plane, part)
        except BaseException as exc:  # reported below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(part,)) for part in parts if part]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _warm_up(
    plane: controlplane.ControlPlane, operator: subprocess.Popen[bytes], log: Path
) -> None:
    """One ModelDeployment in another namespace, Ready: the operator has started and watches."""
    md = {
        **common.modeldeployments(1)[0],
        "metadata": {"name": "warmup", "namespace": WARMUP_NAMESPACE},
    }
    plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(md))
    path = f"/apis/modelpilot.io/v1alpha1/namespaces/{WARMUP_NAMESPACE}/modeldeployments/warmup"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise SystemExit(f"the operator exited\n{log.read_text(errors='replace')[-3000:]}")
        status, body = plane.api_get(path)
        if status == 200 and isinstance(body, dict) and common.is_ready(body):
            return
        time.sleep(0.5)
    raise SystemExit(f"the warm-up ModelDeployment is not Ready after 180 s\n{plane.logs_tail()}")


def _floor_objects(
    plane: controlplane.ControlPlane, tracking_uri: str, count: int
) -> list[dict[str, Any]]:
    """What the operator would create for each ModelDeployment, built by its own builders.

    The ModelDeployments are read back first: the owner references need their uids (an object
    whose owner does not exist is deleted by the garbage collector).
    """
    status, body = 0, None
    for _ in range(10):  # a busy API server may take longer than the harness client's 5 s
        try:
            status, body = plane.api_get(common.MD_PATH)
        except OSError:
            continue
        if status == 200:
            break
    if status != 200 or not isinstance(body, dict) or len(body.get("items") or []) != count:
        raise SystemExit(f"listing the {count} ModelDeployments failed ({status})")
    model = resolve.resolve({"name": common.MODEL, "alias": "champion"}, tracking_uri=tracking_uri)
    variants, policy = routes.route_variants(stable_version=model["version"], experiment=None)
    settings = settings_mod.OperatorSettings(mlflow_tracking_uri=tracking_uri)
    return [
        obj
        for md in body["items"]
        for obj in desired.build_desired(
            md, model=model, variants=variants, policy=policy, settings=settings
        )
    ]


def run_once(
    count: int,
    *,
    label: str,
    env: dict[str, str] | None,
    timeout: float,
    resync_mode: str = "cache",
) -> dict[str, Any]:
    """One control plane, N ModelDeployments applied at once, until all are Ready.

    `env` None is the floor: no operator; the bench applies, right after the ModelDeployments, the
    objects the operator would create, and waits until every Deployment is available.
    """
    work = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    floor = env is None
    print(f"[{label}] starting a control plane and MLflow ...", flush=True)
    with mlflow_server.running(work / "mlflow") as server, controlplane.running() as plane:
        common.register_model(server.tracking_uri)
        extra_nodes, kubeconfig = common.prepare(plane, work, count, namespaces=(WARMUP_NAMESPACE,))
        log_path = work / "operator.log"
        if floor:
            watch = common.ReadyWatch(
                plane,
                f"/apis/apps/v1/namespaces/{common.NAMESPACE}/deployments",
                ready=_deployment_available,
            )
            target = 2 * count  # the model server and the router of each ModelDeployment
        else:
            watch, target = common.ReadyWatch(plane), count
        watch.start()
        operator: subprocess.Popen[bytes] | None = None
        if not floor:
            operator_env = common.operator_env(
                kubeconfig, server.tracking_uri, resync_seconds=300, resync_mode=resync_mode
            )
            operator = common.start_operator({**operator_env, **(env or {})}, log_path)
        sampler = _PeakSampler(operator.pid) if operator is not None else None
        if sampler is not None:
            sampler.start()
        pids = common.component_pids(plane, COMPONENTS)
        timeline: list[tuple[float, int, int]] = []
        peak = 0.0
        try:
            if operator is not None:
                _warm_up(plane, operator, log_path)
            cpu0 = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
            op0 = common.cpu_seconds(operator.pid) if operator is not None else 0.0
            child0, self0 = _children_cpu(), _self_cpu()
            requests0 = common.api_requests(plane)
            started = time.monotonic()

            def apply_all() -> None:
                _apply_concurrently(plane, common.modeldeployments(count))
                if floor:
                    objects = _floor_objects(plane, server.tracking_uri, count)
                    _apply_concurrently(plane, objects, clients=2 * APPLY_CLIENTS)

            applier = threading.Thread(target=apply_all)
            applier.start()
            applied = None
            next_print, deadline = started + PROGRESS_SECONDS, started + timeout
            while time.monotonic() < deadline:
                watch.changed.wait(timeout=0.5)
                watch.changed.clear()
                now = time.monotonic()
                if applied is None and not applier.is_alive():
                    applied = now - started
                    print(f"[{label}] +{applied:6.1f}s  applied {count}", flush=True)
                if now >= next_print or len(watch.ready) == target:
                    timeline.append(
                        (round(now - started, 1), len(watch.observed), len(watch.ready))
                    )
                    print(
                        f"[{label}] +{now - started:6.1f}s  observed {len(watch.observed):5d}"
                        f"  ready {len(watch.ready):5d} / {target}",
                        flush=True,
                    )
                    next_print = now + PROGRESS_SECONDS
                if len(watch.ready) == target:
                    break
            elapsed = time.monotonic() - started
            ready = len(watch.ready)
            applier.join()
            if applied is None:
                applied = time.monotonic() - started
            cpu = {name: common.cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
            if operator is not None:
                cpu["operator"] = common.cpu_seconds(operator.pid) - op0
            cpu["kubectl apply"] = _children_cpu() - child0
            cpu["bench (watch)"] = _self_cpu() - self0
            requests1 = common.api_requests(plane)
            if sampler is not None and operator is not None:
                sampler.stop.set()
                sampler.join()
                peak = max(sampler.peak, _peak_rss_mib(operator.pid))
        finally:
            watch.stopping.set()
            if operator is not None:
                common.stop(operator)
        if ready != target:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            raise SystemExit(
                f"[{label}] only {ready} of {target} ready after {timeout:.0f}s\n{tail}"
            )
    requests = {
        key: requests1[key] - requests0.get(key, 0.0)
        for key in requests1
        if requests1[key] - requests0.get(key, 0.0) > 0
    }
    return {
        "label": label,
        "env": env,
        "count": count,
        "nodes": 1 + extra_nodes,
        "seconds_to_all_ready": round(elapsed, 2),
        "seconds_apply": round(applied, 2),
        "operator_peak_rss_mib": round(peak, 1),
        "cpu_seconds": {k: round(v, 2) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
        "cpu_seconds_total": round(sum(cpu.values()), 2),
        "requests_total": int(sum(requests.values())),
        "requests_per_md": {
            k: round(v / count, 2) for k, v in sorted(requests.items(), key=lambda kv: -kv[1])
        },
        "timeline": timeline,
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
    }


# ---- report -------------------------------------------------------------------------------------
def _figure(metric: str, value: float, unit: str, base: dict[str, Any] | None, key: str) -> Any:
    baseline_value = None if base is None else base[key]
    return {
        "metric": metric,
        "value": value,
        "unit": unit,
        "baseline": None if base is None else base["label"],
        "baseline_value": baseline_value,
        "ratio": round(baseline_value / value, 2) if baseline_value and value else None,
        "better": "lower",
    }


def _print_comparison(runs: list[dict[str, Any]]) -> None:
    """One column per run; with a baseline, the difference (last - first) and the ratio."""
    labels = [r["label"] for r in runs]
    header = "".join(f"{label:>12}" for label in labels)
    extra = f"{'difference':>12}{'ratio':>9}" if len(runs) > 1 else ""
    print(f"\n{'':36}{header}{extra}")

    def row(name: str, values: list[float]) -> None:
        line = f"{name:36}" + "".join(f"{v:12.2f}" for v in values)
        if len(values) > 1:
            ratio = f"{values[0] / values[-1]:8.2f}x" if values[-1] else ""
            line += f"{values[-1] - values[0]:12.2f}{ratio:>9}"
        print(line)

    row("seconds to all ready", [r["seconds_to_all_ready"] for r in runs])
    row("seconds of the apply", [r["seconds_apply"] for r in runs])
    row("operator peak RSS (MiB)", [r["operator_peak_rss_mib"] for r in runs])
    row("CPU seconds, all processes", [r["cpu_seconds_total"] for r in runs])
    comps = list(runs[-1]["cpu_seconds"])
    for comp in comps + [c for r in runs[:-1] for c in r["cpu_seconds"] if c not in comps]:
        row(f"  {comp}", [r["cpu_seconds"].get(comp, 0.0) for r in runs])
    row("API requests per ModelDeployment", [r["requests_total"] / r["count"] for r in runs])
    keys = list(runs[-1]["requests_per_md"])
    for key in keys + [k for r in runs[:-1] for k in r["requests_per_md"] if k not in keys]:
        values = [r["requests_per_md"].get(key, 0.0) for r in runs]
        if max(values) >= 0.05:
            row(f"  {key}", values)


def run(
    count: int,
    out: Path,
    *,
    timeout: float,
    resync_mode: str = "cache",
    baseline: str = FLOOR,
) -> dict[str, Any]:
    runs = []
    if baseline != "none":
        runs.append(
            run_once(
                count,
                label=baseline,
                env=BASELINES[baseline],
                timeout=timeout,
                resync_mode=resync_mode,
            )
        )
    runs.append(run_once(count, label="operator", env={}, timeout=timeout, resync_mode=resync_mode))
    candidate = runs[-1]
    base = runs[0] if len(runs) > 1 else None
    result = {
        "name": "operator",
        "description": f"{count} ModelDeployments applied at once on the local control plane",
        "params": {
            "count": count,
            "nodes": candidate["nodes"],
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_end": candidate["load_average_1m_at_end"],
            "resync_mode": resync_mode,
            "apply_clients": APPLY_CLIENTS,
        },
        "figures": [
            _figure(
                f"seconds_to_all_ready_{count}",
                candidate["seconds_to_all_ready"],
                "s",
                base,
                "seconds_to_all_ready",
            ),
            _figure("seconds_apply", candidate["seconds_apply"], "s", base, "seconds_apply"),
            _figure(
                "operator_peak_rss_mib",
                candidate["operator_peak_rss_mib"],
                "MiB",
                base,
                "operator_peak_rss_mib",
            ),
            _figure(
                "cpu_seconds_all_components",
                candidate["cpu_seconds_total"],
                "s",
                base,
                "cpu_seconds_total",
            ),
            _figure(
                "operator_cpu_seconds",
                candidate["cpu_seconds"].get("operator", 0.0),
                "s",
                None if base is None else {**base, "v": base["cpu_seconds"].get("operator", 0.0)},
                "v",
            ),
            _figure(
                "api_requests_per_modeldeployment",
                round(candidate["requests_total"] / count, 2),
                "req",
                None if base is None else {**base, "v": round(base["requests_total"] / count, 2)},
                "v",
            ),
        ],
        "runs": runs,
        "notes": "Ready = model-server and router Deployments available (pods made Ready by kwok); "
        "the operator authenticates with its own ServiceAccount (ClusterRole of rbac.py); CPU "
        "seconds from /proc/<pid>/stat between the start of the apply and all Ready; requests "
        "from apiserver_request_total (WATCH excluded) over the same span. Each run on its own "
        "fresh control plane; ratios are baseline / candidate.",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    _print_comparison(runs)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=480.0, help="per run")
    parser.add_argument("--out", type=Path, default=Path("bench/out/operator.json"))
    parser.add_argument("--baseline", choices=sorted(BASELINES), default=FLOOR)
    parser.add_argument(
        "--resync-mode",
        choices=["cache", "relist"],
        default="cache",
        help="the operator's MODELPILOT_OPERATOR_RESYNC_MODE (relist: the former behaviour)",
    )
    args = parser.parse_args(argv)
    result = run(
        args.count,
        args.out,
        timeout=args.timeout,
        resync_mode=args.resync_mode,
        baseline=args.baseline,
    )
    print(json.dumps(result["figures"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
