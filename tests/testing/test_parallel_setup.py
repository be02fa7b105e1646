"""hack/parallel.sh: the chains `make test` sets itself up with run side by side, and stop together.

Each test drives the script with a Makefile of its own in a temporary directory (real make, real
processes); concurrency is shown by a chain that waits for a file only the other chain writes, not
by timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests import polling

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "parallel.sh"


def _makefile(tmp_path: Path, body: str) -> Path:
    (tmp_path / "Makefile").write_text(textwrap.dedent(body).replace("    ", "\t"))
    return tmp_path


def _run(cwd: Path, *chains: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *chains], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _sleeper(target: str) -> str:
    """A make rule that writes its pid to `<target>.pid` and sleeps (its pid is the sleep's)."""
    return f"{target}:\n    @echo $$$$ > {target}.pid; exec sleep 600\n"


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return False
    return True


def test_chains_run_at_once_each_in_order_with_prefixed_lines(tmp_path: Path) -> None:
    # `waiter` can only finish once `writer` (the other chain) has written its file: run one after
    # the other, the script would hang until the timeout.
    cwd = _makefile(
        tmp_path,
        """
        waiter:
            @echo waiting; while [ ! -f written ]; do sleep 0.05; done; echo saw it
        then:
            @echo after waiter
        writer:
            @echo writing; touch written
        """,
    )
    result = _run(cwd, "a=waiter then", "longer=writer", timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.index("a      | saw it") < lines.index("a      | after waiter")
    assert "longer | writing" in lines
    assert "[parallel] all done in" in result.stderr


def test_a_failing_chain_stops_the_others_and_names_itself(tmp_path: Path) -> None:
    cwd = _makefile(
        tmp_path,
        _sleeper("slow")
        + "fail:\n    @while [ ! -f slow.pid ]; do sleep 0.05; done; echo broken; exit 3\n",
    )
    result = _run(cwd, "s=slow", "f=fail")
    assert result.returncode == 1
    assert "f | broken" in result.stdout
    assert "[parallel] f (fail) failed" in result.stderr
    assert "rerun alone with: make fail" in result.stderr
    polling.wait_for("the slow chain stopped", lambda: not _alive(cwd / "slow.pid"), timeout=10)


def test_an_interrupt_stops_every_chain(tmp_path: Path) -> None:
    cwd = _makefile(tmp_path, _sleeper("one") + _sleeper("two"))
    # Its own session, as a terminal's foreground job would be: Ctrl-C reaches the whole group.
    # SIGINT back to its default first: a test run started in the background (`make test &`, CI)
    # ignores it, and a shell cannot trap a signal ignored when it started (POSIX).
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), "one=one", "two=two"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        polling.wait_for(
            "both chains started",
            lambda: (cwd / "one.pid").exists() and (cwd / "two.pid").exists(),
            timeout=20,
        )
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        polling.wait_for(
            "both chains stopped",
            lambda: not _alive(cwd / "one.pid") and not _alive(cwd / "two.pid"),
            timeout=10,
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("arg", ["images", "=images", "go="])
def test_a_malformed_chain_is_refused_with_the_form_expected(tmp_path: Path, arg: str) -> None:
    result = _run(_makefile(tmp_path, "x:\n    @true\n"), arg)
    assert result.returncode == 2
    assert f"'{arg}' is not NAME='TARGET...'" in result.stderr


def test_make_test_builds_the_go_binaries_beside_the_images() -> None:
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "setup"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MAKEFLAGS": ""},
    )
    assert "bash hack/parallel.sh go='k8s-binaries node-binaries' images=images" in dry.stdout
    rules = subprocess.run(
        ["make", "-pn", "test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "MAKEFLAGS": ""},
    ).stdout
    assert any(line.startswith("test: setup") for line in rules.splitlines())
