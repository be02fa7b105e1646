"""The tracking run context on the real server: provenance tags, environment, datasets, a FAILED end
on error, and scikit-learn autologging when asked for."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.lifecycle import tracking
from modelpilot.registry import runs

from .conftest import TARGET, iris_split

pytestmark = pytest.mark.mlflow


def test_a_run_records_provenance_environment_and_dataset_digests(uri: str) -> None:
    train, _ = iris_split()
    with tracking.run(experiment="tracking", tracking_uri=uri, tags={"team": "ml"}) as run:
        info = run.log_dataset(train, name="train", context="training", targets=TARGET)
        run.log_params({"C": 0.5})
        run.log_metrics({"loss": 0.25}, step=1)
    logged = runs.get_run(run.run_id)
    assert logged.status == "FINISHED"
    assert logged.tags["team"] == "ml"
    assert len(logged.tags["mlflow.source.git.commit"]) == 40
    assert logged.tags["modelpilot.git.dirty"] in ("true", "false")
    assert logged.params == {"C": "0.5"}
    assert logged.metrics == {"loss": 0.25}
    assert info["rows"] == 105
    assert logged.dataset_inputs[0]["digest"] == info["digest"]
    assert runs.read_json_artifact(run.run_id, "environment.json")["libraries"]["mlflow"]
    back = runs.read_csv_artifact(run.run_id, "data/train.csv")
    assert back.shape == train.shape


def test_a_run_that_raises_ends_failed(uri: str) -> None:
    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), tracking.run(experiment="tracking", tracking_uri=uri) as run:
        raise BoomError
    assert runs.get_run(run.run_id).status == "FAILED"


def test_autologging_records_estimator_parameters_and_training_metrics(uri: str) -> None:
    train, _ = iris_split()
    with tracking.run(experiment="tracking", tracking_uri=uri, autolog=True) as run:
        LogisticRegression(C=0.3, max_iter=300).fit(train.drop(columns=[TARGET]), train[TARGET])
    logged = runs.get_run(run.run_id)
    assert logged.params["C"] == "0.3"
    assert 0.8 < logged.metrics["training_accuracy_score"] <= 1.0
    # autologging is off again after the block
    with tracking.run(experiment="tracking", tracking_uri=uri) as plain:
        LogisticRegression(max_iter=300).fit(train.drop(columns=[TARGET]), train[TARGET])
    assert runs.get_run(plain.run_id).params == {}
