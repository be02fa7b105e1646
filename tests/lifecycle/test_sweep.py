"""A 20-trial sweep over two parameters on the real server: it finishes, the best trial is tagged,
an interrupted sweep resumes the same study under the same parent run, and pruning stops poor
trials early."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow.tracking
import optuna
import pytest

from modelpilot.lifecycle import sweep, yamlio
from modelpilot.registry import runs

pytestmark = pytest.mark.mlflow
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer"
EPOCHS = 10


@dataclass(frozen=True)
class Finished:
    first: sweep.SweepResult
    second: sweep.SweepResult
    study: optuna.Study


@pytest.fixture(scope="module")
def finished(uri: str, tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """Run the example sweep as 12 trials, then resume it to its run_cap of 20."""
    work = tmp_path_factory.mktemp("sweep")
    for name in ("sweep.yaml", "train.py"):
        shutil.copy(EXAMPLE / name, work / name)
    path = work / "sweep.yaml"
    config = sweep.parse_config(yamlio.load_mapping(path, option="--config"), base_dir=work)
    storage = sweep.default_storage(path)
    first = sweep.run_sweep(config=config, storage=storage, tracking_uri=uri, max_trials=12)
    second = sweep.run_sweep(config=config, storage=storage, tracking_uri=uri)
    study = optuna.load_study(study_name=config.name, storage=storage)
    return Finished(first=first, second=second, study=study)


def test_the_example_sweep_searches_two_parameters_with_tpe() -> None:
    config = sweep.parse_config(
        yamlio.load_mapping(EXAMPLE / "sweep.yaml", option="--config"), base_dir=EXAMPLE
    )
    searched = [p.name for p in config.parameters if p.distribution != "constant"]
    assert searched == ["alpha", "eta0"]
    assert config.method == "bayes"
    assert isinstance(sweep.build_sampler(config), optuna.samplers.TPESampler)
    assert config.run_cap == 20


def test_a_resumed_sweep_continues_the_same_study_to_twenty_trials(
    finished: Finished,
) -> None:
    first, second, study = finished.first, finished.second, finished.study
    assert first.ran_now == 12
    assert second.ran_now == 8
    assert [t.number for t in study.trials] == list(range(20))
    assert all(t.state.is_finished() for t in study.trials)
    assert first.parent_run_id == second.parent_run_id
    # every trial is a nested run of that one parent
    parent = runs.get_run(second.parent_run_id)
    children = runs.child_runs(parent.experiment_id, second.parent_run_id)
    assert sorted(int(r.tags["modelpilot.sweep.trial"]) for r in children) == list(range(20))


def test_the_best_trial_and_only_it_is_tagged_best(finished: dict[str, object]) -> None:
    second, study = finished.second, finished.study
    best = study.best_trial
    assert best.user_attrs["mlflow_run_id"] == second.best_run_id
    parent = runs.get_run(second.parent_run_id)
    children = runs.child_runs(parent.experiment_id, second.parent_run_id)
    tagged = [r.run_id for r in children if r.tags.get(sweep.BEST_TAG) == "true"]
    assert tagged == [second.best_run_id]
    complete = [r for r in children if r.tags.get("modelpilot.sweep.state") == "complete"]
    assert max(r.metrics["val_accuracy"] for r in complete) == pytest.approx(best.value)
    assert parent.tags["modelpilot.sweep.best_run_id"] == second.best_run_id
    assert float(parent.tags["modelpilot.sweep.best_param.alpha"]) == pytest.approx(
        best.params["alpha"], rel=1e-9
    )


def test_pruning_stops_at_least_one_poor_trial_before_its_last_epoch(
    finished: Finished,
) -> None:
    study = finished.study
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned
    client = mlflow.tracking.MlflowClient()
    for t in pruned:
        assert max(t.intermediate_values) < EPOCHS - 1
        history = client.get_metric_history(t.user_attrs["mlflow_run_id"], "val_accuracy")
        assert len(history) == len(t.intermediate_values) < EPOCHS
    # pruned trials were poor: each stopped below the best trial's value at the same step
    best = study.best_trial
    for t in pruned:
        step = max(t.intermediate_values)
        assert t.intermediate_values[step] <= best.intermediate_values[step]


PROGRAM = """\
def train(params, reporter):
    x = params["x"]
    if x > 0.8:
        raise ValueError("diverged")
    value = 0.0
    for step in range(5):
        value = x * (1 - 0.5 ** (step + 1))
        reporter.report(step, {"score": value})
    return {"score": value}
"""


def test_hyperband_prunes_and_a_crashing_trial_fails_without_stopping_the_sweep(
    uri: str, tmp_path: Path
) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    config = sweep.parse_config(
        {
            "name": "hyperband-crash",
            "program": "prog.py",
            "method": "random",
            "seed": 3,
            "metric": {"name": "score", "goal": "maximize"},
            "run_cap": 10,
            "parameters": {"x": {"min": 0.0, "max": 1.0}},
            "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
        },
        base_dir=tmp_path,
    )
    result = sweep.run_sweep(
        config=config, storage=f"sqlite:///{tmp_path / 's.db'}", tracking_uri=uri
    )
    study = optuna.load_study(study_name="hyperband-crash", storage=result.storage)
    states = [t.state for t in study.trials]
    assert len(states) == 10
    assert optuna.trial.TrialState.PRUNED in states
    crashed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert crashed
    assert all(t.params["x"] > 0.8 for t in crashed)
    failed_run = runs.get_run(crashed[0].user_attrs["mlflow_run_id"])
    assert failed_run.status == "FAILED"
    assert failed_run.tags["modelpilot.sweep.error"] == "ValueError: diverged"
    best_x = max(t.params["x"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert result.best_params["x"] == pytest.approx(best_x)
