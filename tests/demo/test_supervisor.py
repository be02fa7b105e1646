"""The demo's supervisor: every child, and every child's children, stopped whatever happens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelpilot.demo import supervisor

pytestmark = pytest.mark.slow


def _poll(condition, *, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def _grandchild_pid(pidfile: Path) -> int:
    _poll(
        lambda: pidfile.exists() and pidfile.read_text().strip() != "",
        timeout=10,
        what="grandchild pid written",
    )
    return int(pidfile.read_text().strip())


def test_stop_all_ends_each_child_and_the_grandchildren_it_spawned(tmp_path: Path) -> None:
    sup = supervisor.Supervisor(tmp_path, grace=2.0)
    pidfile = tmp_path / "grandchild.pid"
    # The child spawns a grandchild in its own group and ignores SIGTERM, so the supervisor has to
    # signal the group and escalate to SIGKILL.
    script = f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"
    child = sup.start("stubborn", ["bash", "-c", script])
    grandchild = _grandchild_pid(pidfile)
    assert supervisor.pid_alive(grandchild)
    sup.stop_all()
    assert not child.alive()
    assert not supervisor.group_alive(child.pgid)
    assert not supervisor.pid_alive(grandchild)


def test_children_run_in_their_own_process_groups_and_are_listed(tmp_path: Path) -> None:
    with supervisor.Supervisor(tmp_path, grace=2.0) as sup:
        a = sup.start("a", ["sleep", "300"])
        b = sup.start("b", ["sleep", "300"])
        assert {a.pgid, b.pgid}.isdisjoint({os.getpgrp()})
        assert a.pgid != b.pgid
        listed = json.loads((tmp_path / "processes.json").read_text())["children"]
        assert [c["name"] for c in listed] == ["a", "b"]
    assert not supervisor.group_alive(a.pgid)
    assert not supervisor.group_alive(b.pgid)


def test_check_reports_a_child_that_exited_with_its_log_tail(tmp_path: Path) -> None:
    with supervisor.Supervisor(tmp_path, grace=2.0) as sup:
        child = sup.start("crasher", ["bash", "-c", "echo 'it broke here'; exit 3"])
        _poll(lambda: not child.alive(), timeout=10, what="child exited")
        with pytest.raises(supervisor.ChildExitedError, match="crasher exited with code 3") as exc:
            sup.check()
        assert "it broke here" in str(exc.value)


def test_an_adopted_process_group_is_swept_when_its_own_harness_did_not_stop_it(
    tmp_path: Path,
) -> None:
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        with supervisor.Supervisor(tmp_path, grace=2.0) as sup:
            adopted = sup.adopt("foreign", other.pid)
            assert adopted.pgid == other.pid
        # The supervisor reaped it (it is our child through this Popen): the group is empty.
        assert not supervisor.group_alive(other.pid)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_sigterm_unwinds_like_ctrl_c_and_the_cleanup_still_runs(tmp_path: Path) -> None:
    """A separate Python process: supervisor + signals_as_exceptions, then SIGTERM from outside."""
    program = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from modelpilot.demo import supervisor
        state = Path({str(tmp_path)!r})
        try:
            with supervisor.signals_as_exceptions(), supervisor.Supervisor(state, grace=2.0) as sup:
                sup.start("sleeper", ["sleep", "300"])
                (state / "ready").write_text("1")
                while True:
                    time.sleep(0.1)
        except KeyboardInterrupt as exc:
            (state / "interrupted").write_text(type(exc).__name__)
            sys.exit(130)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", program], start_new_session=True)
    try:
        _poll(lambda: (tmp_path / "ready").exists(), timeout=30, what="supervised child started")
        sleeper = json.loads((tmp_path / "processes.json").read_text())["children"][0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "interrupted").read_text() == "Interrupted"
    assert not supervisor.group_alive(sleeper["pgid"])


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_second_run_stops_what_a_killed_first_run_left_behind(tmp_path: Path) -> None:
    first = supervisor.Supervisor(tmp_path, grace=2.0)
    orphan = first.start("orphan", ["sleep", "300"])
    # The first run was SIGKILLed: its registry names a supervisor that no longer exists.
    registry = json.loads((tmp_path / "processes.json").read_text())
    registry["supervisor"] = _dead_pid()
    (tmp_path / "processes.json").write_text(json.dumps(registry))
    assert supervisor.sweep_stale(tmp_path, grace=2.0) == ["orphan"]
    _poll(
        lambda: orphan.popen is not None and orphan.popen.poll() is not None,
        timeout=10,
        what="orphan reaped",
    )
    assert not supervisor.group_alive(orphan.pgid)


def test_the_stale_sweep_leaves_alone_a_pid_now_running_something_else(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        entry = {
            "name": "old",
            "pid": other.pid,
            "pgid": other.pid,
            "adopted": False,
            "cmdline": "python -m something-that-was-here-before",
        }
        registry = {"supervisor": _dead_pid(), "children": [entry]}
        (tmp_path / "processes.json").write_text(json.dumps(registry))
        assert supervisor.sweep_stale(tmp_path, grace=2.0) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
