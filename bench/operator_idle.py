"""Benchmark: the operator at rest with N ModelDeployments: API requests per second and CPU.

One control plane, one MLflow server, N ModelDeployments (default 500) all Ready, then three
windows of the same length, each after the operator in it has settled:

    background  no operator: what the control plane does alone (kwok's leases, controllers)
    relist      the former resync (MODELPILOT_OPERATOR_RESYNC_MODE=relist): a kopf timer per
                object that re-resolves and re-applies everything, listing eight kinds
    cache       the watch-driven operator (the default): checks against its watch cache

Per window: the API server's `apiserver_request_total` (verb != WATCH) as requests per second,
minus the background window's (what the operator adds); the CPU of the operator and of
kube-apiserver (utime+stime from /proc) as a fraction of one core. Ratios are relist / cache.
Writes bench/out/operator_idle.json (docs/architecture.md, "Benchmark output").

    python bench/operator_idle.py [--count 500] [--window 120] [--resync 60]

Design decision: both operators run on the same objects, one after the other (the cache operator
finds them already converged, as after a restart), so the two windows differ only in the
operator; a window starts after a full resync interval has passed, so each resync the operator
does at rest falls inside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _operator_common as common  # bench/ is on sys.path when run as a script

from modelpilot.testing import controlplane, mlflow_server

_requests = common.api_requests
_cpu_seconds = common.cpu_seconds


def _apiserver_pid(plane: controlplane.ControlPlane) -> int:
    return common.component_pids(plane, ("kube-apiserver",))["kube-apiserver"]


def _window(
    plane: controlplane.ControlPlane, seconds: float, operator_pid: int | None
) -> dict[str, Any]:
    api_pid = _apiserver_pid(plane)
    before, api0 = _requests(plane), _cpu_seconds(api_pid)
    op0 = _cpu_seconds(operator_pid) if operator_pid else 0.0
    started = time.monotonic()
    time.sleep(seconds)  # a measurement window, not synchronisation
    elapsed = time.monotonic() - started
    after, api1 = _requests(plane), _cpu_seconds(api_pid)
    op1 = _cpu_seconds(operator_pid) if operator_pid else 0.0
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    return {
        "seconds": elapsed,
        "requests_per_second": sum(delta.values()) / elapsed,
        "by_request": {k: round(v / elapsed, 3) for k, v in sorted(delta.items()) if v > 0},
        "apiserver_core": (api1 - api0) / elapsed,
        "operator_core": (op1 - op0) / elapsed,
    }


def _wait_ready(plane: controlplane.ControlPlane, count: int, timeout: float, log: Path) -> float:
    """Seconds until `count` ModelDeployments of the bench namespace are Ready (one watch)."""
    started = time.monotonic()
    watch = common.ReadyWatch(plane)
    watch.start()
    try:
        while time.monotonic() - started < timeout:
            if len(watch.ready) == count:
                return time.monotonic() - started
            watch.changed.wait(timeout=1.0)
            watch.changed.clear()
    finally:
        watch.stopping.set()
    tail = log.read_text(errors="replace")[-3000:]
    raise SystemExit(f"not all {count} ModelDeployments Ready after {timeout:.0f}s\n{tail}")


def run(*, count: int, window: float, resync: float, out: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-operator-idle-"))
    log = work / "operator.log"
    with mlflow_server.running(work / "mlflow") as server, controlplane.running() as plane:
        common.register_model(server.tracking_uri)
        extra_nodes, kubeconfig = common.prepare(plane, work, count)

        def env(resync_mode: str) -> dict[str, str]:
            return common.operator_env(
                kubeconfig, server.tracking_uri, resync_seconds=resync, resync_mode=resync_mode
            )

        items = common.modeldeployments(count)
        windows: dict[str, dict[str, Any]] = {}
        with common.running_operator(env("relist"), log) as proc:
            common.apply_list(plane, items)
            ready_seconds = _wait_ready(plane, count, 1800, log)
            time.sleep(resync)  # settle: every timer has fired once since the last rollout
            windows["relist"] = _window(plane, window, proc.pid)
        time.sleep(5.0)  # let the stopped operator's connections close
        windows["background"] = _window(plane, window, None)
        with common.running_operator(env("cache"), log) as proc:
            _wait_ready(plane, count, 600, log)
            # Settle: the resume handlers and the first periodic check are done (that first pass
            # applies, once, what the server stores normalised; later passes compare at the
            # remembered resourceVersion and send nothing).
            time.sleep(2 * resync)
            windows["cache"] = _window(plane, window, proc.pid)
    background = windows["background"]["requests_per_second"]
    relist, cache = windows["relist"], windows["cache"]

    def figure(metric: str, value: float, base: float, unit: str) -> dict[str, Any]:
        return {
            "metric": metric,
            "value": round(value, 4),
            "unit": unit,
            "baseline": "relist resync (former behaviour)",
            "baseline_value": round(base, 4),
            "ratio": round(base / value, 2) if value > 0 else None,
            "better": "lower",
        }

    result = {
        "name": "operator_idle",
        "description": f"the operator at rest with {count} ModelDeployments (resync {resync:g} s)",
        "params": {
            "count": count,
            "window_seconds": window,
            "resync_seconds": resync,
            "nodes": 1 + extra_nodes,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 1),
            "seconds_to_all_ready_relist": round(ready_seconds, 1),
        },
        "figures": [
            figure(
                "operator_requests_per_second",
                max(cache["requests_per_second"] - background, 0.0),
                max(relist["requests_per_second"] - background, 0.0),
                "req/s",
            ),
            figure(
                "operator_cpu_fraction_of_core",
                cache["operator_core"],
                relist["operator_core"],
                "core",
            ),
            figure(
                "apiserver_cpu_fraction_of_core",
                cache["apiserver_core"],
                relist["apiserver_core"],
                "core",
            ),
        ],
        "windows": windows,
        "notes": "requests = apiserver_request_total without WATCH, minus the window without "
        f"an operator ({background:.2f} req/s: kwok leases, controllers); goals: under 1 "
        "req/s and under 0.02 of a core for the operator.",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--resync", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/operator_idle.json"))
    args = parser.parse_args(argv)
    result = run(count=args.count, window=args.window, resync=args.resync, out=args.out)
    for fig in result["figures"]:
        print(
            f"{fig['metric']}: {fig['value']} {fig['unit']} "
            f"(relist {fig['baseline_value']}, ratio {fig['ratio']}x)"
        )
    for name, win in result["windows"].items():
        top = sorted(win["by_request"].items(), key=lambda kv: -kv[1])[:6]
        print(f"  {name}: {win['requests_per_second']:.2f} req/s; top {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
