"""Both example pipelines run as a user runs them (`python examples/<x>/pipeline.py --tracking-uri`)
against the real server, and leave behind runs, a registered model with its alias and reference
profile, and a model card (files on disk and artifacts on the run)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import mlflow.tracking
import pytest
import yaml

from modelpilot.cli import main as cli_main
from modelpilot.registry import profiles

pytestmark = pytest.mark.mlflow
ROOT = Path(__file__).resolve().parents[2]
CASES = {
    "iris": ("iris-classifier", "iris", 45),
    "breast_cancer": ("breast-cancer-classifier", "breast-cancer", 143),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def pipeline(
    request: pytest.FixtureRequest, uri: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    example = str(request.param)
    out = tmp_path_factory.mktemp(example) / "card"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / example / "pipeline.py"),
            "--tracking-uri",
            uri,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=540,  # generous: CI machines and shared runners can be slow
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"example": example, "out": out, "stdout": proc.stdout}


def test_the_pipeline_leaves_a_finished_run_with_params_metrics_and_datasets(
    pipeline: dict[str, object], uri: str
) -> None:
    _, experiment, n_test = CASES[str(pipeline["example"])]
    c = mlflow.tracking.MlflowClient(uri)
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None
    found = c.search_runs(
        [exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )
    run = found[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] > 0.85
    assert "seed" in run.data.params
    assert run.data.tags["mlflow.source.git.commit"]
    assert run.data.tags["modelpilot.git.dirty"] in ("true", "false")
    assert "pipeline.py" in run.data.tags["modelpilot.command"]
    contexts = {
        d.dataset.name: next(t.value for t in d.tags if t.key == "mlflow.data.context")
        for d in run.inputs.dataset_inputs
    }
    assert contexts == {"train": "training", "test": "evaluation"}
    test_profile = next(
        json.loads(d.dataset.profile) for d in run.inputs.dataset_inputs if d.dataset.name == "test"
    )
    assert test_profile["num_rows"] == n_test
    artifacts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"environment.json", "data", "model_card"} <= artifacts


def test_the_pipeline_registers_a_challenger_with_a_reference_profile(
    pipeline: dict[str, object], uri: str
) -> None:
    name, _, _ = CASES[str(pipeline["example"])]
    c = mlflow.tracking.MlflowClient(uri)
    challenger = c.get_model_version_by_alias(name, "challenger")
    reference = profiles.load_reference_profile(c, name=name, version=str(challenger.version))
    assert "diagnosis" not in reference.feature_names
    assert "species" not in reference.feature_names
    assert len(reference.feature_names) == (4 if name.startswith("iris") else 30)
    assert challenger.tags["modelpilot.model_card"].endswith("model_card/model_card.md")


def test_the_model_card_has_a_hugging_face_header_metrics_with_intervals_and_plots(
    pipeline: dict[str, object],
) -> None:
    out = Path(str(pipeline["out"]))
    markdown = (out / "model_card.md").read_text()
    assert markdown.startswith("---\n")
    header = yaml.safe_load(markdown.split("---\n")[1])
    assert header["library_name"] == "sklearn"
    results = header["model-index"][0]["results"][0]["metrics"]
    assert {m["type"] for m in results} == {"accuracy", "precision", "recall", "f1"}
    card = json.loads((out / "model_card.json").read_text())
    for name, m in card["evaluation"]["metrics"].items():
        assert m["ci_low"] <= m["value"] <= m["ci_high"], name
        assert m["ci_high"] - m["ci_low"] > 0, name
    # the Markdown and its JSON twin agree
    accuracy = card["evaluation"]["metrics"]["accuracy"]
    assert f"| accuracy | {accuracy['value']:.4f} |" in markdown
    assert len(card["evaluation"]["per_class_f1"]) == (3 if pipeline["example"] == "iris" else 2)
    for plot in ("confusion_matrix.png", "feature_importance.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for section in (
        "## Intended use",
        "## Training data",
        "## Limitations",
        "## Ethical considerations",
    ):
        assert section in markdown


def test_the_registered_challenger_passes_the_gate_shipped_with_its_example(
    pipeline: dict[str, object], uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = str(pipeline["example"])
    name, _, _ = CASES[example]
    c = mlflow.tracking.MlflowClient(uri)
    run_id = c.get_model_version_by_alias(name, "challenger").run_id
    test_csv = c.download_artifacts(run_id, "data/test.csv", str(tmp_path))
    junit = tmp_path / "gate.xml"
    try:
        cli_main.main(
            [
                "validate",
                "--model",
                f"models:/{name}@challenger",
                "--data",
                test_csv,
                "--config",
                str(ROOT / "examples" / example / "validation.yaml"),
                "--junit",
                str(junit),
                "--tracking-uri",
                uri,
            ]
        )
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "0 failed" in out.out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0"
