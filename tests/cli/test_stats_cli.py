"""`modelpilot stats ...` through the real entry point: JSON keys, oracles, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import scipy.stats
from statsmodels.stats import proportion as sm_proportion

from tests.cli.conftest import run


def test_sample_size_json_is_the_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["stats", "sample-size", "--baseline-rate", "0.10", "--mde", "0.02", "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    z_a, z_b = scipy.stats.norm.ppf(0.975), scipy.stats.norm.ppf(0.8)
    n = (z_a * (2 * 0.1 * 0.9) ** 0.5 + z_b * (0.1 * 0.9 + 0.12 * 0.88) ** 0.5) ** 2 / 0.02**2
    assert data["n_control"] == data["n_treatment"] == -(-n // 1)
    assert data["method"] == "unpooled"


def test_sample_size_table_names_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "stats",
            "sample-size",
            "--baseline-rate",
            "0.1",
            "--mde",
            "0.2",
            "--relative",
            "--method",
            "arcsine",
            "--ratio",
            "2",
        ],
        capsys,
    )
    assert code == 0
    assert "n_control" in out
    assert "arcsine" in out


def test_sample_size_pooled_method_gives_the_guides_3843(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        [
            "stats",
            "sample-size",
            "--baseline-rate",
            "0.10",
            "--mde",
            "0.02",
            "--method",
            "pooled",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert (data["n_control"], data["method"]) == (3843, "pooled")
    assert data["n_control_exact"] == pytest.approx(3842.0266, rel=1e-6)


def test_sample_size_help_says_which_method_matches_which_calculator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["stats", "sample-size", "--help"], capsys)
    assert code == 0
    for words in ("Evan Miller", "NormalIndPower", "G*Power", "pooled", "3,843"):
        assert words in out


def test_ab_test_json_has_the_documented_keys_and_statsmodels_p(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        ["stats", "ab-test", "--control", "100/1000", "--treatment", "130/1000", "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) == {
        "control_rate",
        "treatment_rate",
        "absolute_lift",
        "relative_lift",
        "z",
        "p_value",
        "ci_low",
        "ci_high",
        "significant",
    }
    _, p = sm_proportion.proportions_ztest([130, 100], [1000, 1000])
    assert data["p_value"] == pytest.approx(p, abs=1e-9)
    assert data["significant"] is True


def test_srm_json_equals_scipy_chisquare(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["stats", "srm", "--counts", "5000,5200", "--ratios", "1,1", "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    expected = scipy.stats.chisquare([5000, 5200])
    assert data["chi2"] == pytest.approx(expected.statistic)
    assert data["p_value"] == pytest.approx(expected.pvalue)
    assert data["mismatch"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["sample-size", "--baseline-rate", "1.5", "--mde", "0.02"],
            "baseline rate must be a rate strictly between 0 and 1",
        ),
        (
            ["sample-size", "--baseline-rate", "0", "--mde", "0.02"],
            "baseline rate must be a rate strictly between 0 and 1",
        ),
        (["sample-size", "--baseline-rate", "0.1", "--mde", "0"], "mde must be > 0"),
        (["sample-size", "--baseline-rate", "0.1", "--mde", "-0.01"], "mde must be > 0"),
        (["sample-size", "--baseline-rate", "abc", "--mde", "0.02"], "'abc' is not a valid float"),
        (
            ["ab-test", "--control", "100-1000", "--treatment", "130/1000"],
            "--control: expected SUCCESSES/TRIALS",
        ),
        (
            ["ab-test", "--control", "1100/1000", "--treatment", "130/1000"],
            "control: successes must be between 0",
        ),
        (["srm", "--counts", "5000,5200", "--ratios", "1,1,1"], "--ratios: 3 ratios for 2 counts"),
        (["srm", "--counts", "5000,abc"], "--counts: expected comma-separated numbers"),
        (["srm", "--counts", "5000"], "counts: need at least two variants"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["stats", *args], capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_the_installed_command_prints_no_traceback_for_bad_input() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelpilot.cli.main",
            "stats",
            "sample-size",
            "--baseline-rate",
            "2",
            "--mde",
            "0.02",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "modelpilot: error: baseline rate must be a rate strictly between 0 and 1, got 2.0"
    )
