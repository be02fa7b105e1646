"""`modelpilot drift compute` on real CSV and Parquet files: table, JSON, HTML report, errors."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from tests.cli.conftest import run


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(
        {
            "age": rng.normal(40, 10, size=3000),
            "income": rng.lognormal(10, 0.5, size=3000),
            "plan": rng.choice(["free", "pro", "team"], size=3000),
        }
    )
    cur = pd.DataFrame(
        {
            "age": rng.normal(46, 10, size=2000),
            "income": rng.lognormal(10, 0.5, size=2000),
            "plan": rng.choice(["free", "pro", "team"], size=2000),
        }
    )
    cur.loc[:299, "income"] = np.nan
    paths = {
        "ref_csv": tmp_path / "ref.csv",
        "cur_parquet": tmp_path / "cur.parquet",
        "cur_csv": tmp_path / "cur.csv",
        "empty": tmp_path / "empty.csv",
        "header_only": tmp_path / "header.csv",
        "text": tmp_path / "text.csv",
    }
    ref.to_csv(paths["ref_csv"], index=False)
    cur.to_parquet(paths["cur_parquet"])
    cur.to_csv(paths["cur_csv"], index=False)
    paths["empty"].write_text("")
    paths["header_only"].write_text("age,income,plan\n")
    text = cur.astype({"age": object})
    text.loc[41, "age"] = "forty"
    text.to_csv(paths["text"], index=False)
    return paths


def test_json_report_flags_the_shifted_and_the_nulled_columns(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        [
            "drift",
            "compute",
            "--reference",
            str(files["ref_csv"]),
            "--current",
            str(files["cur_parquet"]),
            "--json",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    by_name = {f["name"]: f for f in data["features"]}
    assert set(by_name) == {"age", "income", "plan"}
    for key in (
        "psi",
        "ks_statistic",
        "ks_pvalue",
        "js_distance",
        "null_rate_reference",
        "null_rate_current",
        "drifted",
    ):
        assert key in by_name["age"]
    assert by_name["age"]["drifted"] is True
    assert by_name["income"]["null_rate_current"] == pytest.approx(0.15)
    assert by_name["income"]["drifted"] is True
    assert by_name["plan"]["drifted"] is False
    ref = pd.read_csv(files["ref_csv"])
    cur = pd.read_parquet(files["cur_parquet"])
    expected = scipy.stats.ks_2samp(ref["age"], cur["age"])
    assert by_name["age"]["ks_statistic"] == pytest.approx(expected.statistic, abs=1e-9)
    assert by_name["age"]["ks_pvalue"] == pytest.approx(expected.pvalue, abs=1e-9)


def test_csv_and_parquet_give_the_same_numbers(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["drift", "compute", "--reference", str(files["ref_csv"]), "--json"]
    _, from_parquet, _ = run([*base, "--current", str(files["cur_parquet"])], capsys)
    _, from_csv, _ = run([*base, "--current", str(files["cur_csv"])], capsys)
    a = {f["name"]: f["psi"] for f in json.loads(from_parquet)["features"]}
    b = {f["name"]: f["psi"] for f in json.loads(from_csv)["features"]}
    assert a == pytest.approx(b, rel=1e-9)


def test_columns_and_bins_select_what_is_compared(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        [
            "drift",
            "compute",
            "--reference",
            str(files["ref_csv"]),
            "--current",
            str(files["cur_csv"]),
            "--columns",
            "age",
            "--bins",
            "5",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert [f["name"] for f in data["features"]] == ["age"]


def test_html_report_embeds_one_plot_per_column_and_the_table(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "drift.html"
    code, out, _ = run(
        [
            "drift",
            "compute",
            "--reference",
            str(files["ref_csv"]),
            "--current",
            str(files["cur_parquet"]),
            "--report",
            str(report),
        ],
        capsys,
    )
    assert code == 0
    assert "age" in out
    page = report.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    for img in images:
        assert base64.b64decode(img).startswith(b"\x89PNG")
    assert page.count("<tr") == 4  # header + three columns
    assert 'id="plot-age"' in page


def test_fail_on_drift_exits_1(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        [
            "drift",
            "compute",
            "--reference",
            str(files["ref_csv"]),
            "--current",
            str(files["cur_csv"]),
            "--fail-on-drift",
        ],
        capsys,
    )
    assert code == 1
    assert "drift in age, income" in err


@pytest.mark.parametrize(
    ("current", "extra", "message"),
    [
        ("empty", [], "empty.csv: is empty"),
        ("header_only", [], "header.csv: has a header but no rows"),
        ("text", [], "text.csv: column 'age' is numeric but row 43 holds text 'forty'"),
        ("cur_csv", ["--columns", "age,height"], "ref.csv: no column 'height'"),
        ("cur_csv", ["--bins", "1"], "--bins: must be at least 2"),
        ("cur_csv", ["--methods", "psi,magic"], "methods: magic not allowed"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    files: dict[str, Path],
    current: str,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        [
            "drift",
            "compute",
            "--reference",
            str(files["ref_csv"]),
            "--current",
            str(files[current]),
            *extra,
        ],
        capsys,
    )
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_a_missing_column_in_the_current_file_is_named(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = tmp_path / "partial.csv"
    pd.read_csv(files["cur_csv"])[["age", "plan"]].to_csv(partial, index=False)
    code, _, err = run(
        ["drift", "compute", "--reference", str(files["ref_csv"]), "--current", str(partial)],
        capsys,
    )
    assert code == 2
    assert "partial.csv: no column 'income'" in err


def test_text_in_a_column_numeric_in_the_reference_is_named(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = tmp_path / "words.csv"
    frame = pd.read_csv(files["cur_csv"])
    frame["age"] = "old"
    frame.to_csv(words, index=False)
    code, _, err = run(
        ["drift", "compute", "--reference", str(files["ref_csv"]), "--current", str(words)],
        capsys,
    )
    assert code == 2
    assert "words.csv: column 'age' holds text (e.g. 'old') but is numeric in" in err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "ragged.csv: not a readable CSV file"),
        ("junk.parquet", b"PAR1 this is not parquet", "junk.parquet: not a readable Parquet file"),
        ("data.xlsx", b"whatever", "data.xlsx: unknown format .xlsx"),
    ],
)
def test_unreadable_files_are_one_line_errors(
    files: dict[str, Path],
    tmp_path: Path,
    name: str,
    content: bytes,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    code, _, err = run(
        ["drift", "compute", "--reference", str(files["ref_csv"]), "--current", str(bad)], capsys
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err
