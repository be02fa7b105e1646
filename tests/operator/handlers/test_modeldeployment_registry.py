"""The operator's registry lookups share no MLflow state between threads (issue 18).

mlflow's tracking URI is process-wide: with `mlflow.set_tracking_uri` per lookup, a thread
resolving against a dead server reported the healthy server another thread had just set.
"""

from __future__ import annotations

import threading

import pytest

from modelpilot.operator import main as operator_main
from modelpilot.registry import client, resolve
from modelpilot.testing import ports
from tests.operator import conftest as op

pytestmark = [pytest.mark.mlflow]

ROUNDS = 30


def test_concurrent_lookups_on_two_registries_each_name_their_own_server(
    tracking_uri: str,
    registered_model: op.RegisteredModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in operator_main.MLFLOW_ENV.items():
        monkeypatch.setenv(key, value)
    dead = f"http://127.0.0.1:{ports.free_port()}"
    reference = {"name": registered_model.name, "alias": "champion"}
    messages: list[str] = []
    versions: list[str] = []
    start = threading.Barrier(2)

    def against_dead() -> None:
        start.wait()
        for _ in range(ROUNDS):
            try:
                resolve.resolve(reference, tracking_uri=dead)
            except client.RegistryUnavailable as exc:
                messages.append(str(exc))

    def against_healthy() -> None:
        start.wait()
        for _ in range(ROUNDS):
            versions.append(resolve.resolve(reference, tracking_uri=tracking_uri)["version"])

    threads = [threading.Thread(target=against_dead), threading.Thread(target=against_healthy)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert versions == ["1"] * ROUNDS
    assert len(messages) == ROUNDS
    wrong = [m for m in messages if dead not in m]
    assert wrong == []
