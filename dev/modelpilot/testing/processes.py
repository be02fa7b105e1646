"""Helpers for the test harnesses' server processes (MLflow, Prometheus, Pushgateway).

Each server runs in a session of its own (`start_new_session=True`), so one signal reaches it and
every worker it forked; readiness is a poll of one HTTP URL with a deadline, failing early (with
the log's tail) when the process has already exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_http_ok(
    url: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    *,
    what: str,
    timeout: float,
    error: type[Exception],
    interval: float = 0.05,
) -> None:
    """Return once GET `url` answers 200; raise `error` (with the log's tail) when `proc` exits
    first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise error(f"{what} exited with {proc.returncode}:\n{log_tail(log_path)}")
        # Not listening yet is an OSError (URLError is one): poll again.
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(interval)
    raise error(f"{what} not ready after {timeout:.0f}s:\n{log_tail(log_path)}")


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
