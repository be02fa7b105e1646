"""The CI gate against the real server: a good model passes, a weak one fails naming the threshold,
a regression against the champion fails, and the JUnit file parses."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from modelpilot.cli import main as cli_main
from modelpilot.lifecycle import registration
from modelpilot.registry import client as registry_client
from modelpilot.registry import models

from .conftest import TARGET, iris_split, log_iris_model

pytestmark = pytest.mark.mlflow
NAME = "gate-iris"
CONFIG = """\
target: species
thresholds: {min_accuracy: 0.85, min_precision: 0.8, min_recall: 0.8, min_f1: 0.8,
             max_latency_p99_ms: 500}
regression: {against: champion, metric: f1, tolerance: 0.02}
latency: {samples: 30}
"""


@pytest.fixture(scope="module")
def registered(uri: str) -> dict[str, str]:
    good = log_iris_model(uri=uri, experiment="gate", model=LogisticRegression(max_iter=300))
    weak = log_iris_model(
        uri=uri, experiment="gate", model=DummyClassifier(strategy="most_frequent")
    )
    g = registration.register(
        tracking_uri=uri, name=NAME, run_id=good, alias="challenger", reason="good"
    ).version.version
    w = registration.register(
        tracking_uri=uri, name=NAME, run_id=weak, alias="weak", reason="weak"
    ).version.version
    return {"good": g, "weak": w}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    _, test = iris_split()
    data = tmp_path / "test.csv"
    test.to_csv(data, index=False)
    config = tmp_path / "validation.yaml"
    config.write_text(CONFIG)
    return data, config


def gate(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        cli_main.main(["validate", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_good_model_passes_the_gate_and_the_junit_file_has_no_failures(
    uri: str,
    registered: dict[str, str],
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, config = files
    junit = tmp_path / "gate.xml"
    code, out, err = gate(
        [
            "--model",
            f"models:/{NAME}@challenger",
            "--data",
            str(data),
            "--config",
            str(config),
            "--junit",
            str(junit),
            "--tracking-uri",
            uri,
        ],
        capsys,
    )
    assert code == 0, err
    assert "min_accuracy" in out
    assert "FAIL" not in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0"
    names = {case.get("name") for case in suite.iter("testcase")}
    assert {"min_accuracy", "min_f1", "max_latency_p99_ms", "no_regression_f1"} <= names
    # no champion yet: the regression check is reported as skipped, not silently passed
    regression = next(c for c in suite.iter("testcase") if c.get("name") == "no_regression_f1")
    assert regression.find("skipped") is not None


def test_a_weak_model_fails_the_gate_naming_the_failed_thresholds(
    uri: str,
    registered: dict[str, str],
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, config = files
    junit = tmp_path / "gate.xml"
    code, _, err = gate(
        [
            "--model",
            f"models:/{NAME}@weak",
            "--data",
            str(data),
            "--config",
            str(config),
            "--junit",
            str(junit),
            "--tracking-uri",
            uri,
        ],
        capsys,
    )
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "min_accuracy" in err
    assert "min_f1" in err
    assert "latency" not in err
    # a majority-class predictor on three balanced classes scores one third
    assert "observed 0.3333" in err
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"min_accuracy", "min_precision", "min_recall", "min_f1"}


def test_a_candidate_worse_than_the_champion_beyond_the_tolerance_fails_the_regression_check(
    uri: str,
    registered: dict[str, str],
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, config = files
    lenient = config.with_name("lenient.yaml")
    lenient.write_text(
        f"target: {TARGET}\nregression: {{against: champion, metric: accuracy, tolerance: 0.05}}\n"
    )
    c = registry_client.make_client(uri)
    if models.alias_holder(c, name=NAME, alias="champion") != registered["good"]:
        models.promote(c, name=NAME, version=registered["good"], reason="test: champion")
    code, out, err = gate(
        [
            "--model",
            f"models:/{NAME}/{registered['weak']}",
            "--data",
            str(data),
            "--config",
            str(lenient),
            "--tracking-uri",
            uri,
        ],
        capsys,
    )
    assert code == 1
    assert "no_regression_accuracy" in err
    code, out, err = gate(
        [
            "--model",
            f"models:/{NAME}/{registered['good']}",
            "--data",
            str(data),
            "--config",
            str(lenient),
            "--tracking-uri",
            uri,
        ],
        capsys,
    )
    assert code == 0, err
    assert "no_regression_accuracy  PASS" in out


def test_in_the_ci_order_an_unregistered_run_is_gated_against_the_champion_by_name(
    uri: str,
    registered: dict[str, str],
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # CI trains with MODELPILOT_RUN_ID_FILE set, gates runs:/<id>/model, and only then registers.
    data, _ = files
    id_file = tmp_path / "run_id"
    monkeypatch.setenv("MODELPILOT_RUN_ID_FILE", str(id_file))
    log_iris_model(
        uri=uri, experiment="gate", model=DummyClassifier(strategy="stratified", random_state=0)
    )
    run_id = id_file.read_text().strip()
    config = tmp_path / "regression.yaml"
    config.write_text(f"target: {TARGET}\nregression: {{metric: f1, tolerance: 0.05}}\n")
    c = registry_client.make_client(uri)
    if models.alias_holder(c, name=NAME, alias="champion") != registered["good"]:
        models.promote(c, name=NAME, version=registered["good"], reason="test: champion")
    args = [
        "--model",
        f"runs:/{run_id}/model",
        "--data",
        str(data),
        "--config",
        str(config),
        "--tracking-uri",
        uri,
    ]
    code, _, err = gate([*args, "--name", NAME], capsys)
    assert code == 1
    assert "no_regression_f1" in err
    # without --name there is no champion to compare with: the check is skipped, not failed
    code, out, _ = gate(args, capsys)
    assert code == 0
    assert "no_regression_f1  SKIP" in out
