"""Two operator replicas with kopf peering: one active, the other paused until the first dies.

Real `modelpilot operator run` subprocesses (so one can be SIGKILLed) with the operator's
ServiceAccount token, a real KopfPeering object, the real MLflow server.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modelpilot.testing import controlplane
from tests.operator import conftest as op

pytestmark = [pytest.mark.k8s, pytest.mark.mlflow]

LIFETIME = 10


def _paused(log: str) -> bool:
    """Whether a replica's log leaves it paused by peering.

    kopf starts a replica with mandatory peering paused and logs only transitions: a standby that
    joins after the leader never logs "Pausing"; one that joined first logs "Resuming", then
    "Pausing" once it sees the leader. Paused = no "Resuming" after the last "Pausing".
    """
    resumed = log.rfind("Resuming operations after the pause")
    return resumed == -1 or log.rfind("Pausing operations in favour of") > resumed


def _ready(plane: controlplane.ControlPlane, namespace: str, name: str) -> Any:
    md = op.get(plane, op.md_path(namespace, name))
    cond = op.condition(md, "Ready")
    return md if cond is not None and cond["status"] == "True" else None


def test_two_peered_replicas_elect_one_active_and_the_other_takes_over_when_it_dies(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tracking_uri: str,
    registered_model: op.RegisteredModel,
    tmp_path: Path,
) -> None:
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "modelpilot"},
    }
    op.apply_yaml(control_plane, peering, "-n", namespace)
    base = op.operator_env(
        operator_kubeconfig,
        tracking_uri,
        namespace,
        MODELPILOT_OPERATOR_PEERING_NAME="modelpilot",
        MODELPILOT_OPERATOR_PEERING_LIFETIME_SECONDS=str(LIFETIME),
        PYTHONUNBUFFERED="1",  # the test reads the logs while the replicas run
    )
    command = list(op.OPERATOR_COMMAND)
    logs = {name: tmp_path / f"{name}.log" for name in ("leader", "standby")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, priority in (("leader", "200"), ("standby", "100")):
            with logs[name].open("wb") as log:
                procs[name] = subprocess.Popen(
                    command,
                    env={**base, "MODELPILOT_OPERATOR_PEERING_PRIORITY": priority},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        path = f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings/modelpilot"
        op.wait_for(
            "both replicas in the peering",
            lambda: len((op.get(control_plane, path) or {}).get("status") or {}) == 2,
            timeout=120,
        )
        op.apply_yaml(
            control_plane, op.modeldeployment("first", registered_model.name), "-n", namespace
        )
        first = op.wait_for(
            "first Ready", lambda: _ready(control_plane, namespace, "first"), timeout=60
        )
        # The leader did the work; the standby stayed paused throughout.
        standby_so_far = logs["standby"].read_text()
        assert _paused(standby_so_far), standby_so_far[-1500:]
        assert "first" not in standby_so_far
        procs["leader"].send_signal(signal.SIGKILL)
        procs["leader"].wait(timeout=10)
        op.apply_yaml(
            control_plane, op.modeldeployment("second", registered_model.name), "-n", namespace
        )
        second = op.wait_for(
            "second Ready, served by the standby",
            lambda: _ready(control_plane, namespace, "second"),
            timeout=LIFETIME + 60,
        )
        standby_log = logs["standby"].read_text()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert first["status"]["model"]["version"] == "1"
    assert second["status"]["model"]["version"] == "1"
    assert "Resuming operations after the pause" in standby_log
    assert "second" in standby_log  # the standby, not the dead leader, handled it
