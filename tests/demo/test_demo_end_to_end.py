"""`modelpilot demo` for real: the whole loop to the end, and Ctrl-C in the middle of it.

Each test runs the real command in a subprocess (its own session, so the test can signal it as a
terminal would) against a real MLflow server, the local control plane and the real operator, model
servers and router the demo starts. No test here shares state with another: each has its own
state folder, and afterwards no process that mentions it may remain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from modelpilot.demo import supervisor
from modelpilot.demo import timeline as tl
from modelpilot.testing import controlplane

pytestmark = [pytest.mark.slow, pytest.mark.k8s, pytest.mark.mlflow]


@pytest.fixture(scope="module")
def demo_env() -> dict[str, str]:
    # Built (or found) once, outside the demo, so the demo never starts a build of its own.
    # Without MLFLOW_*: mlflow.set_tracking_uri/set_registry_uri in this pytest process export
    # them, and a demo that inherited MLFLOW_REGISTRY_URI asked another test's server for its
    # registered versions (the second run then retrained instead of reusing).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MODELPILOT_K8S_BINARIES": str(controlplane.ensure_binaries())}


def _start(state: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "modelpilot.cli.main", "demo", "--state-dir", str(state),
             "--plain"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def _poll(condition: Callable[[], bool], *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"{what}: not within {timeout:.0f}s; demo output:\n{tail}")


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (the state folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if text in cmdline and "\nState:\tZ" not in status:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def _recorded_groups(state: Path) -> dict[str, int]:
    groups = {}
    registry = state / "processes.json"
    if registry.exists():
        for child in json.loads(registry.read_text())["children"]:
            groups[child["name"]] = child["pgid"] or child["pid"]
    pids = state / "cluster" / "pids.json"
    if pids.exists():
        for name, pgid in json.loads(pids.read_text()).get("groups", {}).items():
            groups[f"cluster-{name}"] = int(pgid)
    return groups


def _visible_steps(record: tl.Timeline) -> list[float]:
    """The challenger's weight after each change of at least 3 points before the decision."""
    steps: list[float] = []
    last: float | None = None
    for snap in record.snapshots:
        if snap.phase in tl.TERMINAL_PHASES:
            break
        weight = next((v.weight for v in snap.variants if v.name == "challenger"), None)
        if weight is None:
            continue
        if last is not None and abs(weight - last) >= 3:
            steps.append(weight)
        last = weight
    return steps


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_ctrl_c_in_the_middle_of_the_demo_leaves_no_process_running(
    tmp_path: Path, demo_env: dict[str, str]
) -> None:
    state, log = tmp_path / "state", tmp_path / "demo.log"
    proc = _start(state, demo_env, log)
    try:
        # Mid-run: MLflow, the control plane, the operator and a model server are all up.
        def serving_started() -> bool:
            return "demo-stable" in _recorded_groups(state)

        _poll(serving_started, timeout=400, what="the stable model server started", log=log)
        groups = _recorded_groups(state)
        assert {"mlflow", "operator", "cluster-kube-apiserver", "cluster-etcd"} <= set(groups)
        assert all(supervisor.group_alive(g) for g in groups.values())
        # What a terminal does on Ctrl-C: SIGINT to the foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        _stop(proc)
    survivors = {name: g for name, g in groups.items() if supervisor.group_alive(g)}
    assert survivors == {}
    assert _processes_mentioning(str(state)) == []
    assert (state / "report.html").exists()
    record = tl.load(state / "timeline.json")
    assert any(s.status == "failed" and s.detail == "interrupted" for s in record.steps)


def test_the_demo_promotes_the_challenger_flags_the_drift_and_a_second_run_reuses_the_setup(
    tmp_path: Path, demo_env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    for run in ("first", "second"):
        log = tmp_path / f"{run}.log"
        proc = _start(state, demo_env, log)
        try:
            code = proc.wait(timeout=900)
        finally:
            _stop(proc)
        output = log.read_text(errors="replace")
        assert code == 0, output[-4000:]
        record = tl.load(state / "timeline.json")
        assert all(step.status == "done" for step in record.steps), output[-4000:]
        assert record.final_phase == "Promoted"
        assert sorted(d.feature for d in record.drift if d.drifted) == ["f0", "f2"]
        assert record.facts["promoted version"] == record.facts[
            "challenger accuracy (held-out)"
        ].split("version ")[1].rstrip(")")
        html = (state / "report.html").read_text()
        assert html.count("data:image/png;base64,") == 3
        # Not one user request failed, the promotion's model-server swap included.
        assert record.client_errors == 0, (record.clients, record.facts)
        assert {c.variant for c in record.clients} >= {"stable", "challenger"}
        # The split visibly moved before the decision: at least three changes of 3+ points.
        assert len(_visible_steps(record)) >= 3, _visible_steps(record)
        # The outcome in words: what serves now, and that the old champion is not "the loser".
        assert record.outcome is not None
        assert record.outcome.serving_version == record.facts["promoted version"]
        assert "Now serving: demo-classifier version" in output
        # After the decision no line shows the stale P(best) beside the promoted split.
        assert not [
            line for line in output.splitlines() if "phase=Promoted" in line and "p_best" in line
        ]
        # No third-party warning reaches the user's terminal.
        assert not [line for line in output.splitlines() if "Warning" in line], output[-4000:]
        assert _processes_mentioning(str(state)) == []
        models = record.step("models").detail
        mlflow = record.step("mlflow").detail
        if run == "first":
            assert models.startswith("trained and registered")
            assert "new store" in mlflow
        else:
            assert models.startswith("reused from a previous run")
            assert "reused store" in mlflow
