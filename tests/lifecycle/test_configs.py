"""Pure parts of the lifecycle: sweep, gate and schema configs (and their one-line errors), the
gate's decision, data validation, the JUnit rendering and the model card. No server needed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from modelpilot import errors
from modelpilot.lifecycle import card, checks, datavalidate, gate, metrics, sweep, yamlio
from modelpilot.stats import profile as profile_mod

# ---- sweep configs -------------------------------------------------------------------------


def sweep_config(tmp_path: Path, **overrides: object) -> sweep.SweepConfig:
    (tmp_path / "train.py").write_text("def train(params, reporter):\n    return {'m': 1.0}\n")
    data: dict[str, object] = {
        "name": "s",
        "program": "train.py",
        "method": "random",
        "metric": {"name": "m", "goal": "maximize"},
        "parameters": {
            "lr": {"min": 0.001, "max": 0.1},
            "depth": {"min": 1, "max": 8},
            "loss": {"values": ["a", "b"]},
            "epochs": {"value": 3},
        },
    }
    data.update(overrides)
    return sweep.parse_config(data, base_dir=tmp_path)


def test_wandb_style_parameters_map_to_optuna_distributions(tmp_path: Path) -> None:
    config = sweep_config(tmp_path)
    kinds = {p.name: p.distribution for p in config.parameters}
    assert kinds == {
        "lr": "uniform",
        "depth": "int_uniform",
        "loss": "categorical",
        "epochs": "constant",
    }
    study = optuna.create_study(sampler=sweep.build_sampler(config))
    trial = study.ask()
    params = sweep.suggest(trial, config.parameters)
    assert 0.001 <= params["lr"] <= 0.1
    assert isinstance(params["depth"], int)
    assert params["loss"] in ("a", "b")
    assert params["epochs"] == 3


def test_a_grid_sweep_visits_every_point_once(tmp_path: Path) -> None:
    config = sweep_config(
        tmp_path,
        method="grid",
        parameters={"a": {"values": [1, 2, 3]}, "b": {"values": ["x", "y"]}},
    )
    assert config.run_cap == 6
    study = optuna.create_study(sampler=sweep.build_sampler(config))
    seen: list[dict[str, object]] = []

    def objective(trial: optuna.Trial) -> float:
        seen.append(sweep.suggest(trial, config.parameters))
        return 0.0

    study.optimize(objective, n_trials=config.run_cap)
    key = sorted((p["a"], p["b"]) for p in seen)
    assert key == sorted((p["a"], p["b"]) for p in sweep.grid_points(config))


def test_the_pruners_follow_early_terminate(tmp_path: Path) -> None:
    median = sweep_config(tmp_path, early_terminate={"type": "median", "min_iter": 2})
    hyper = sweep_config(tmp_path, early_terminate={"type": "hyperband", "min_iter": 1, "eta": 3})
    assert isinstance(sweep.build_pruner(median), optuna.pruners.MedianPruner)
    assert isinstance(sweep.build_pruner(hyper), optuna.pruners.HyperbandPruner)
    assert isinstance(sweep.build_pruner(sweep_config(tmp_path)), optuna.pruners.NopPruner)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"method": "bayesian"}, "method"),
        ({"metric": {"name": "m", "goal": "up"}}, "metric.goal"),
        ({"parameters": {"lr": {"min": 1, "max": 1}}}, "parameters.lr"),
        (
            {"parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}},
            "parameters.lr.min",
        ),
        (
            {"parameters": {"lr": {"distribution": "beta", "min": 0.1, "max": 1}}},
            "parameters.lr.distribution",
        ),
        ({"method": "grid"}, "parameters.lr"),
        ({"program": "missing.py"}, "program"),
        ({"early_terminate": {"type": "asha"}}, "early_terminate.type"),
        ({"colour": "blue"}, "sweep config"),
    ],
)
def test_bad_sweep_configs_name_the_field(
    tmp_path: Path, override: dict[str, object], field: str
) -> None:
    with pytest.raises(errors.InputError, match=f"^{field}"):
        sweep_config(tmp_path, **override)


# ---- YAML files ----------------------------------------------------------------------------


def test_malformed_yaml_is_an_input_error_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(errors.InputError, match=r"--config: .*bad.yaml is not valid YAML at line"):
        yamlio.load_mapping(path, option="--config")
    path.write_text("- just\n- a list\n")
    with pytest.raises(errors.InputError, match="must hold a YAML mapping"):
        yamlio.load_mapping(path, option="--config")
    with pytest.raises(errors.InputError, match="cannot read"):
        yamlio.load_mapping(tmp_path / "absent.yaml", option="--config")


# ---- the gate's decision -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["min_accuracy", "min_precision", "min_recall", "min_f1"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_a_threshold_outside_zero_to_one_is_rejected(key: str, value: float) -> None:
    with pytest.raises(errors.InputError, match=rf"thresholds.{key}: .* is outside \[0, 1\]"):
        gate.parse_config({"target": "y", "thresholds": {key: value}})


def test_the_gate_reports_every_failed_threshold_and_the_regression_against_the_champion() -> None:
    config = gate.parse_config(
        {
            "target": "y",
            "thresholds": {"min_accuracy": 0.9, "min_f1": 0.8, "max_latency_p99_ms": 10},
            "regression": {"metric": "f1", "tolerance": 0.01},
        }
    )
    observed = {"accuracy": 0.85, "precision": 0.9, "recall": 0.9, "f1": 0.82}
    found = gate.build_checks(
        config=config,
        observed=observed,
        latency_p99_ms=12.0,
        champion={"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.84},
    )
    status = {c.name: c.status for c in found}
    assert status == {
        "min_accuracy": "FAIL",
        "min_f1": "PASS",
        "max_latency_p99_ms": "FAIL",
        "no_regression_f1": "FAIL",
    }
    # within tolerance of the champion passes
    ok = gate.build_checks(
        config=config,
        observed={**observed, "f1": 0.831},
        latency_p99_ms=1.0,
        champion={**observed, "f1": 0.84},
    )
    assert {c.name: c.status for c in ok}["no_regression_f1"] == "PASS"


# ---- data validation -----------------------------------------------------------------------


def test_schema_validation_flags_type_range_missing_category_and_row_violations() -> None:
    schema = datavalidate.parse_schema(
        yaml.safe_load("""
        rows: {min: 5}
        allow_extra_columns: false
        columns:
          x: {type: float, min: 0, max: 10, max_missing: 0.2}
          label: {type: int, categories: [0, 1]}
          name: {type: string, required: false}
    """)
    )
    good = pd.DataFrame({"x": [0.5, 1.0, 2.0, 9.5, 3.0], "label": [0, 1, 0, 1, 1]})
    assert checks.failed(datavalidate.validate(good, schema)) == []
    bad = pd.DataFrame({"x": [0.5, None, None, 11.0], "label": [0, 1, 2, 1], "extra": 1})
    failed = {c.name for c in checks.failed(datavalidate.validate(bad, schema))}
    assert failed == {"rows.min", "columns.extra", "x.missing", "x.max", "label.categories"}


def test_profile_validation_flags_unseen_ranges_and_missing_columns() -> None:
    rng = np.random.default_rng(0)
    reference = profile_mod.build_profile(
        {"a": rng.normal(size=500), "c": np.array(["x", "y"] * 250, dtype=object)}, rng=rng
    )
    same = pd.DataFrame({"a": rng.normal(size=200) * 0.5, "c": ["x", "y"] * 100})
    assert checks.failed(datavalidate.validate_against_profile(same, reference)) == []
    shifted = pd.DataFrame({"a": rng.normal(size=200) + 10, "c": ["z"] * 200})
    failed = {
        c.name for c in checks.failed(datavalidate.validate_against_profile(shifted, reference))
    }
    assert failed == {"a.range", "c.categories"}
    missing = pd.DataFrame({"c": ["x"] * 10})
    assert [
        c.name for c in checks.failed(datavalidate.validate_against_profile(missing, reference))
    ] == ["a.present"]


# ---- renderings ----------------------------------------------------------------------------


def test_the_junit_file_parses_and_counts_failures_and_skips() -> None:
    found = [
        checks.Check("min_accuracy", True, "0.95", ">= 0.9"),
        checks.Check("min_f1", False, "0.70", ">= 0.8"),
        checks.Check("no_regression_f1", True, "n/a", "n/a", skipped=True, message="no champion"),
    ]
    root = ET.fromstring(checks.build_junit(found, suite="gate"))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    failure = root.find(".//testcase[@name='min_f1']/failure")
    assert failure is not None
    assert "observed 0.70, expected >= 0.8" in (failure.get("message") or "")
    table = checks.render_table(found)
    assert table.splitlines()[-1] == "1 passed, 1 failed, 1 skipped"


def test_the_card_markdown_and_json_say_the_same_thing() -> None:
    y = np.array([0, 1, 1, 0, 1, 1, 0, 1])
    p = np.array([0, 1, 0, 0, 1, 1, 1, 1])
    built = card.build_card(
        model={"name": "m", "version": "3", "aliases": ["champion"], "source": "models:/m-1"},
        run={"run_id": "r1", "params": {"C": "1.0"}, "git_commit": "abc", "git_dirty": "false"},
        datasets=[
            {"name": "train", "context": "training", "rows": 10, "columns": 3, "digest": "d1"},
            {"name": "test", "context": "evaluation", "rows": 8, "columns": 3, "digest": "d2"},
        ],
        estimates=metrics.bootstrap(y, p, n_resamples=200),
        per_class_f1=metrics.per_class_f1(y, p),
        confusion=metrics.confusion(y, p),
        importance={"a": 0.1, "b": 0.3},
        intended_use=card.parse_intended_use({"primary_uses": "demo", "license": "mit"}),
        confidence=0.95,
        n_test=8,
        plots=["confusion_matrix.png"],
    )
    markdown = card.render_markdown(built)
    header = yaml.safe_load(markdown.split("---\n")[1])
    assert header["license"] == "mit"
    assert header["model-index"][0]["name"] == "m v3"
    twin = json.loads(card.render_json(built))
    assert twin["evaluation"]["metrics"]["accuracy"]["value"] == pytest.approx(0.75)
    assert "| accuracy | 0.7500 |" in markdown
    assert list(twin["evaluation"]["permutation_importance"]) == ["b", "a"]
    assert "- demo" in markdown
    assert "Not documented" in markdown  # out-of-scope was not given, and the card says so


def test_an_intended_use_file_with_an_unknown_key_is_rejected() -> None:
    with pytest.raises(errors.InputError, match="--intended-use: unknown key 'audience'"):
        card.parse_intended_use({"audience": "everyone"})
