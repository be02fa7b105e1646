"""Fixtures for the lifecycle tests: the real MLflow server's URI at module scope, and a helper that
trains and logs a small iris model through modelpilot's own tracking helpers (a real run with real
datasets and a real model artifact; only the model is kept small so the suite stays quick).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from modelpilot.lifecycle import tracking
from modelpilot.registry import client as registry_client
from modelpilot.testing import mlflow_server as mlflow_harness

TARGET = "species"


@pytest.fixture(scope="module")
def uri(mlflow_server: mlflow_harness.MlflowServer) -> Iterator[str]:
    """The server URI, set for the in-process MLflow client (for module-scoped fixtures)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
        registry_client.configure(mlflow_server.tracking_uri)
        yield mlflow_server.tracking_uri


def iris_split(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    frame = frame.rename(columns={"target": TARGET})
    train, test = train_test_split(frame, test_size=0.3, stratify=frame[TARGET], random_state=seed)
    return train, test


def log_iris_model(*, uri: str, experiment: str, model: Any, seed: int = 3) -> str:
    """Fit `model` on the iris training split, log it with both splits; return the run id."""
    train, test = iris_split(seed)
    with tracking.run(experiment=experiment, tracking_uri=uri) as run:
        run.log_params({"estimator": type(model).__name__})
        run.log_dataset(train, name="train", context="training", targets=TARGET)
        run.log_dataset(test, name="test", context="evaluation", targets=TARGET)
        model.fit(train.drop(columns=[TARGET]), train[TARGET])
        run.log_model(model, input_example=train.drop(columns=[TARGET]))
    return run.run_id
