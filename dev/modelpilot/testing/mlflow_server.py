"""A real MLflow tracking server (SQLite store, served artifacts) on a loopback port.

Used by the test fixtures and by the demo. It is the real `mlflow server`, not a mock: the registry,
aliases and artifact proxying behave as in production. The server's log is kept in the state
directory so a failing test can show it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelpilot.testing import ports, processes


class MlflowServerError(RuntimeError):
    """The MLflow server did not start; the message carries the tail of its log."""


@dataclass(frozen=True)
class MlflowServer:
    tracking_uri: str
    state_dir: Path
    log_path: Path
    pid: int

    def log_tail(self, lines: int = 40) -> str:
        return processes.log_tail(self.log_path, lines)


@contextmanager
def running(
    state_dir: Path, *, port: int | None = None, timeout: float = 90.0
) -> Iterator[MlflowServer]:
    """Start `mlflow server` with its store under `state_dir`; stop it (and its workers) on exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or ports.free_port()
    log_path = state_dir / "mlflow-server.log"
    artifacts = state_dir / "artifacts"
    artifacts.mkdir(exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{state_dir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(artifacts),
    ]
    env = {
        **os.environ,
        "MLFLOW_HOME": str(state_dir),
        # MLflow 3 starts huey job consumers (4 processes, ~1 GB, a /dev/shm temp dir) for its
        # GenAI job feature; the registry and tracking do not need them.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    with log_path.open("ab") as log:
        # A new session so that teardown can signal the whole group (mlflow spawns workers).
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=state_dir,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_http_ok(
            f"{url}/health",
            proc,
            log_path,
            what="mlflow server",
            timeout=timeout,
            error=MlflowServerError,
            interval=0.2,
        )
        yield MlflowServer(tracking_uri=url, state_dir=state_dir, log_path=log_path, pid=proc.pid)
    finally:
        processes.stop_group(proc)
