"""Process supervision for the harnesses: the servers (MLflow, Prometheus, Pushgateway), the
control plane's and the real node's components, the demo's children.

Each process runs in a session of its own (`start_new_session=True`), so one signal reaches it and
every worker it forked; readiness is a poll of one HTTP URL with a deadline, failing early (with
the log's tail) when the process has already exited. The binaries a harness runs come from a
build script that prints their directory last (`hack/build-binaries.sh`, `hack/node-binaries.sh`).
Written once here (issue 14: "process-group supervision exists three times").
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
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


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM `proc` itself (for a process that shares our group), SIGKILL after `grace`
    seconds; reaped either way. A process that has exited already is only reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (a zombie counts until its parent reaps it;
    a group we may not signal exists, so it counts as alive)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to the whole group; a group that is gone (or not ours) is left alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def binaries_dir(
    script: Path,
    names: Sequence[str],
    *,
    override: str | None,
    error: type[Exception],
    what: str = "binaries",
) -> Path:
    """The directory holding `names`: `override` when set, else the last line `bash script
    --print-dir` prints (the script builds or finds them; its progress on stderr is left attached
    to the caller's terminal). Raises `error` naming what is missing."""
    if override:
        directory = Path(override)
    else:
        if not script.is_file():
            raise error(f"build script not found at {script}")
        proc = subprocess.run(
            ["bash", str(script), "--print-dir"],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise error(f"{script} failed with exit code {proc.returncode}")
        directory = Path(proc.stdout.strip().splitlines()[-1])
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise error(f"{what} directory {directory} lacks {', '.join(missing)}")
    return directory
