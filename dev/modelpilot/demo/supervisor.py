"""A process supervisor for the demo: every child in its own process group, all stopped on exit.

The demo starts a dozen processes (MLflow, the control plane, the operator, model servers, the
router). The one design decision: **each child gets its own session** (`start_new_session=True`, so
its own process group), and the supervisor, not the terminal, is responsible for stopping it. A
terminal's Ctrl-C therefore reaches only the supervisor, which stops the children in reverse start
order, SIGTERM to the whole group first (so grandchildren such as MLflow's gunicorn workers go too),
SIGKILL after a grace period. SIGTERM and SIGHUP are turned into exceptions (`Interrupted`) so that
the same `finally` blocks run as for Ctrl-C; a second Ctrl-C during the cleanup is ignored rather
than allowed to cut it short.

Processes started by other harnesses (the MLflow server, the control plane) can be *adopted*: the
supervisor records their process group and sweeps it last, in case their own cleanup did not run.
Every child is listed in `processes.json` in the state folder, which is how the tests check that
nothing survives.

    SupervisorError
    └── ChildExitedError  a child that should be running has exited (the message has its log tail)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from modelpilot.testing import processes

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SupervisorError(RuntimeError):
    """Base of the supervisor's errors."""


class ChildExitedError(SupervisorError):
    """A supervised child exited while it was still needed."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; raised like Ctrl-C so the same cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass
class Child:
    """One process the supervisor started (or adopted)."""

    name: str
    pid: int
    pgid: int
    log_path: Path | None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    stopped: bool = False  # stopped on purpose: its exit is not a failure
    cmdline: str = ""  # as /proc showed it at start: tells a stale entry from a reused pid

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return group_alive(self.pgid) if self.pgid else pid_alive(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# The harnesses' one process-group check (modelpilot.testing.processes); named here as well
# because the demo's callers and tests ask the supervisor.
group_alive = processes.group_alive


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    """Starts children in their own process groups and stops them all, whatever happens."""

    def __init__(self, state_dir: Path, *, grace: float = 8.0) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.grace = grace
        self.children: list[Child] = []
        self.adopted: list[Child] = []

    # -- starting ------------------------------------------------------------------------------
    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start `argv` in a new session, its output appended to `logs/<name>.log`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        full_env = {**os.environ, **(env or {})}
        with log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        child = Child(
            name=name,
            pid=popen.pid,
            pgid=popen.pid,
            log_path=log_path,
            popen=popen,
            cmdline=_cmdline(popen.pid) or " ".join(argv),
        )
        self.children.append(child)
        self._write_registry()
        return child

    def adopt(self, name: str, pid: int, *, log_path: Path | None = None) -> Child:
        """Record a process another harness started, to sweep it at the end if it is still there.

        When it has a process group of its own the whole group is swept; when it shares ours (the
        harness did not start a new session) only the process itself is (pgid 0 means "no group").
        """
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = pid
        if pgid == os.getpgrp():
            pgid = 0  # never signal our own group: that would stop the supervisor itself
        child = Child(name=name, pid=pid, pgid=pgid, log_path=log_path, cmdline=_cmdline(pid))
        self.adopted.append(child)
        self._write_registry()
        return child

    # -- watching ------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ChildExitedError if a started child has exited."""
        for child in self.children:
            if child.stopped:
                continue
            if child.popen is not None and child.popen.poll() is not None:
                raise ChildExitedError(
                    f"{child.name} exited with code {child.popen.returncode}; "
                    f"log {child.log_path}:\n{child.log_tail()}"
                )

    def stop(self, child: Child) -> None:
        """Stop one child's whole process group: SIGTERM, then SIGKILL after the grace period."""
        child.stopped = True
        if child.popen is None and child.pgid == 0:
            self._stop_pid(child.pid)
            return
        processes.signal_group(child.pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            _reap(child)
            if not group_alive(child.pgid):
                break
            time.sleep(0.05)
        else:
            processes.signal_group(child.pgid, signal.SIGKILL)
        if child.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=self.grace)
        # The group leader is reaped; wait (bounded) until no member of the group is left.
        deadline = time.monotonic() + self.grace
        while group_alive(child.pgid) and time.monotonic() < deadline:
            processes.signal_group(child.pgid, signal.SIGKILL)
            _reap(child)
            time.sleep(0.05)

    def _stop_pid(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        """Stop every child, newest first, then sweep the adopted ones; no signal cuts it short."""
        in_main = _in_main_thread()
        previous: dict[int, Any] = {}
        if in_main:
            for stop_signal in _STOP_SIGNALS:
                previous[stop_signal] = signal.signal(stop_signal, signal.SIG_IGN)
        try:
            for child in reversed(self.children):
                self.stop(child)
            for child in reversed(self.adopted):
                if child.alive():
                    self.stop(child)
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)
            self._write_registry()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    # -- bookkeeping ---------------------------------------------------------------------------
    def _write_registry(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        entries = [
            {
                "name": c.name,
                "pid": c.pid,
                "pgid": c.pgid,
                "adopted": c.popen is None,
                "cmdline": c.cmdline,
            }
            for c in [*self.children, *self.adopted]
        ]
        registry = self.state_dir / "processes.json"
        tmp = registry.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"supervisor": os.getpid(), "children": entries}, indent=1))
        tmp.replace(registry)


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def sweep_stale(state_dir: Path, *, grace: float = 5.0) -> list[str]:
    """Stop what a previous run left running (it was SIGKILLed, so it could not clean up).

    Only entries of `processes.json` whose supervisor is gone and whose process still runs the
    recorded command line are stopped, so a pid reused by an unrelated process is left alone.
    Returns the names of what was stopped.
    """
    try:
        raw = json.loads((state_dir / "processes.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if pid_alive(int(raw.get("supervisor", 0) or 0)) and raw.get("supervisor") != os.getpid():
        return []  # another demo is running on this state folder; not ours to stop
    sweeper = Supervisor(state_dir, grace=grace)
    stopped = []
    for entry in raw.get("children", []):
        pid = int(entry.get("pid", 0))
        recorded = str(entry.get("cmdline", ""))
        if pid <= 0 or not recorded or _cmdline(pid) != recorded:
            continue
        pgid = int(entry.get("pgid", 0))
        child = Child(name=str(entry.get("name")), pid=pid, pgid=pgid, log_path=None)
        sweeper.stop(child)
        stopped.append(child.name)
    return stopped


def _reap(child: Child) -> None:
    """Collect the leader's exit status so that a zombie does not look alive."""
    if child.popen is not None:
        child.popen.poll()
        return
    # An adopted process may be our child through another harness's Popen; reaping it here is
    # harmless (Popen treats ECHILD as "already reaped").
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(child.pid, os.WNOHANG)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into `Interrupted` (SIGINT already raises KeyboardInterrupt)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous: dict[int, Any] = {
        s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)
    }
    # `make` or a shell may have started us with SIGINT ignored (background jobs); restore it.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
