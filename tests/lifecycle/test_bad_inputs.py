"""Bad input gives one line on stderr naming what to fix, and exit code 2, never a traceback.

Two cases run the real `modelpilot` executable in a subprocess, because "no traceback" is a claim
about what a user sees; the others call the same entry point in-process (`cli.main.main`), where an
unhandled exception would fail the test just the same, to spare an interpreter start per case. The
server is the real MLflow server of the fixtures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot.cli import main as cli_main
from modelpilot.lifecycle import tracking
from modelpilot.testing import ports

pytestmark = pytest.mark.mlflow


def modelpilot(*args: str, uri: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelpilot.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "MLFLOW_TRACKING_URI": uri, "HOME": str(Path.home())},
    )


class Result:
    """What a user sees: the exit code and stderr."""

    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr


def in_process(*args: str, uri: str, capsys: pytest.CaptureFixture[str]) -> Result:
    capsys.readouterr()
    try:
        cli_main.main([*args, "--tracking-uri", uri])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return Result(code, capsys.readouterr().err)


def assert_one_line_error(proc: subprocess.CompletedProcess[str] | Result, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("modelpilot: error:")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_registering_a_run_that_does_not_exist_is_a_one_line_error(uri: str) -> None:
    proc = modelpilot(
        "models",
        "register",
        "--run",
        "0123456789abcdef0123456789abcdef",
        "--name",
        "nobody",
        uri=uri,
    )
    assert_one_line_error(proc, "run 0123456789abcdef0123456789abcdef", "not found")


def test_gating_an_unknown_model_is_a_one_line_error(
    uri: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "test.csv"
    data.write_text("a,species\n1.0,0\n")
    config = tmp_path / "validation.yaml"
    config.write_text("target: species\nthresholds: {min_accuracy: 0.9}\n")
    proc = in_process(
        "validate",
        "--model",
        "models:/no-such-model@challenger",
        "--data",
        str(data),
        "--config",
        str(config),
        uri=uri,
        capsys=capsys,
    )
    assert_one_line_error(proc, "no-such-model", "not found")


def test_history_of_an_unknown_model_is_a_one_line_error(
    uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = in_process("models", "history", "--name", "no-such-model", uri=uri, capsys=capsys)
    assert_one_line_error(proc, "no-such-model")


def test_malformed_yaml_names_the_file_and_the_line(
    uri: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text("name: broken\nparameters:\n  alpha: {min: 1, max: [\n")
    proc = in_process("sweep", "--config", str(config), uri=uri, capsys=capsys)
    assert_one_line_error(proc, "--config", str(config), "line")


def test_a_threshold_outside_zero_to_one_is_rejected_before_any_model_is_loaded(
    uri: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "validation.yaml"
    config.write_text("target: species\nthresholds: {min_accuracy: 1.5}\n")
    data = tmp_path / "test.csv"
    data.write_text("a,species\n1.0,0\n")
    proc = in_process(
        "validate",
        "--model",
        "models:/x@challenger",
        "--data",
        str(data),
        "--config",
        str(config),
        uri=uri,
        capsys=capsys,
    )
    assert_one_line_error(proc, "thresholds.min_accuracy", "1.5", "[0, 1]")


def test_an_unreachable_tracking_server_is_a_one_line_error_within_seconds(
    tmp_path: Path,
) -> None:
    dead = f"http://127.0.0.1:{ports.free_port()}"
    proc = modelpilot("models", "list", uri=dead)
    # An outage is transient, not bad input: EX_TEMPFAIL (75), not 2, and it says to try again.
    assert proc.returncode == 75, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in ("modelpilot: error:", "registry unavailable", dead, "try again"):
        assert needle in lines[0]


def test_a_schema_with_an_unknown_type_is_a_one_line_error(
    uri: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text("columns:\n  a: {type: decimal}\n")
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    proc = in_process(
        "data", "validate", "--data", str(data), "--schema", str(schema), uri=uri, capsys=capsys
    )
    assert_one_line_error(proc, "schema.columns.a.type", "decimal")


def test_registering_a_run_without_that_model_names_what_the_run_has(
    uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with tracking.run(experiment="bad-inputs", tracking_uri=uri) as run:
        run.log_params({"note": "no model logged"})
    proc = in_process(
        "models", "register", "--run", run.run_id, "--name", "nothing-here", uri=uri, capsys=capsys
    )
    assert_one_line_error(proc, "--artifact-path", "no logged model named 'model'", "has: none")
