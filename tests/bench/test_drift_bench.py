"""The drift benchmark runs end to end at a small size and its correctness checks hold."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_small_drift_benchmark_writes_the_report_shape_with_identical_psi(tmp_path: Path) -> None:
    out = tmp_path / "drift.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "drift.py"),
            "--rows",
            "20000",
            "--cols",
            "4",
            "--big-rows",
            "30000",
            "--big-cols",
            "2",
            "--repeat",
            "1",
            "--skip-evidently",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["name"] == "drift"
    for figure in data["figures"]:
        assert {"metric", "value", "unit", "baseline", "baseline_value", "ratio"} <= set(figure)
    assert data["checks"]["psi_bin_shares_identical_to_loop"] is True
    assert data["checks"]["psi_max_abs_diff_vs_loop"] <= 1e-12
    assert data["checks"]["ks_pvalue_max_abs_diff_vs_scipy"] <= 1e-9
    assert data["checks"]["bounded_path_psi_max_abs_diff_vs_exact"] <= 1e-12


@pytest.mark.slow
def test_evidently_baseline_runs_in_its_own_venv_not_the_products(tmp_path: Path) -> None:
    # The product's environment has no Evidently (it pinned pandas 2 there); the bench makes a
    # venv for it on first use (modelpilot.testing.evidently; a pip install, then cached).
    assert importlib.util.find_spec("evidently") is None
    out = tmp_path / "drift.json"
    proc = subprocess.run(
        [
            *(sys.executable, str(REPO / "bench" / "drift.py"), "--rows", "5000", "--cols", "3"),
            *("--big-rows", "6000", "--big-cols", "2", "--repeat", "1", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["params"]["evidently_methods"]["psi"] == ["psi"]
    baselines = {figure["baseline"] for figure in data["figures"]}
    assert "evidently DataDriftPreset (psi)" in baselines
