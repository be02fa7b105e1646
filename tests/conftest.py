"""Shared fixtures: the real parts the tiers run against.

- `mlflow_server` (session): a real `mlflow server` with a SQLite store and served artifacts.
  Tests that use it are marked `mlflow`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelpilot.testing import mlflow_server as mlflow_harness


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mlflow_harness.MlflowServer]:
    state = Path(tmp_path_factory.mktemp("mlflow"))
    with mlflow_harness.running(state) as server:
        yield server


@pytest.fixture
def tracking_uri(mlflow_server: mlflow_harness.MlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's URI, also set as MLFLOW_TRACKING_URI for code that reads the environment."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    return mlflow_server.tracking_uri
