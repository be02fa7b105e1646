"""A real Prometheus for the demo: scrape config and file-based targets for the local processes.

The operator's experiment loop can read per-variant counts from the Prometheus HTTP API (its
production path). On the local plane the pods have no reachable IPs, so the demo runs Prometheus
(Debian's package) itself and points it, through a `file_sd` targets file, at the local router and
model servers, with the `namespace`/`pod` labels Kubernetes service discovery would have added.
The one design decision: targets are a file Prometheus watches, so the demo rewrites it as processes
come and go and Prometheus follows without a reload.

Pure builders; the flow writes the files and starts the binary.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCRAPE_INTERVAL = "1s"


def build_config(targets_file: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": "modelpilot-demo",
                "metrics_path": "/metrics",
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "5s"}],
            }
        ],
    }


def build_targets(
    processes: Iterable[tuple[str, str, str, int]], *, namespace: str
) -> list[dict[str, Any]]:
    """One target group per process: (pod-like name, component, variant, port)."""
    return [
        {
            "targets": [f"127.0.0.1:{port}"],
            "labels": {
                "namespace": namespace,
                "pod": f"{name}-local",
                "component": component,
                **({"pod_variant": variant} if variant else {}),
            },
        }
        for name, component, variant, port in processes
    ]


def argv(binary: str, *, config: Path, data: Path, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
