"""A real MLflow tracking server (SQLite store, served artifacts) on a loopback port.

Used by the test fixtures and by the demo. It is the real `mlflow server`, not a mock: the registry,
aliases and artifact proxying behave as in production. The server's log is kept in the state
directory so a failing test can show it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelpilot.testing import ports


class MlflowServerError(RuntimeError):
    """The MLflow server did not start; the message carries the tail of its log."""


@dataclass(frozen=True)
class MlflowServer:
    tracking_uri: str
    state_dir: Path
    log_path: Path
    pid: int

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise MlflowServerError(f"mlflow server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise MlflowServerError(f"mlflow server not healthy after {timeout:.0f}s:\n{tail}")


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
        _wait_healthy(url, proc, log_path, timeout)
        yield MlflowServer(tracking_uri=url, state_dir=state_dir, log_path=log_path, pid=proc.pid)
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group of `proc` (started with start_new_session), SIGKILL after
    `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
