"""bench/report.py: the benchmark JSON shape is checked, ratios recomputed, RESULTS.md rendered."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", REPO / "bench" / "report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _doc(**figure: object) -> dict[str, object]:
    base = {
        "metric": "seconds",
        "value": 0.5,
        "unit": "s",
        "baseline": "loop",
        "baseline_value": 2.0,
        "ratio": 4.0,
    }
    return {"name": "drift", "figures": [{**base, **figure}]}


def test_a_consistent_ratio_is_kept_and_rendered_beside_its_baseline(
    bench_report: ModuleType,
) -> None:
    bench = bench_report.parse_bench(_doc(), source="bench/out/drift.json")
    text = bench_report.render(
        [bench], machine={"CPU": "test"}, versions={"Python": "3"}, runs=[], generated="now"
    )
    assert "| seconds | 0.5 | s | loop | 2 | 4x |" in text
    assert "(!)" not in text


def test_higher_is_better_figures_divide_the_other_way(bench_report: ModuleType) -> None:
    doc = _doc(
        metric="rps", value=300.0, unit="1/s", baseline_value=100.0, ratio=3.0, better="higher"
    )
    fig = bench_report.parse_bench(doc, source="x").figures[0]
    assert fig.ratio_check == ""
    assert bench_report.expected_ratio(300.0, 100.0, "higher") == pytest.approx(3.0)


def test_a_ratio_that_disagrees_with_its_own_numbers_is_flagged(bench_report: ModuleType) -> None:
    bench = bench_report.parse_bench(_doc(ratio=10.0), source="x")
    assert bench.figures[0].ratio_check == "stated ratio 10 but value/baseline give 4"
    text = bench_report.render([bench], machine={}, versions={}, runs=[], generated="now")
    assert "10x (!)" in text
    assert "- seconds: stated ratio 10 but value/baseline give 4" in text


def test_a_missing_ratio_is_computed_from_value_and_baseline(bench_report: ModuleType) -> None:
    fig = bench_report.parse_bench(_doc(ratio=None), source="x").figures[0]
    assert fig.ratio == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "x: expected a JSON object"),
        ({"figures": []}, "x: 'name' must be a non-empty string"),
        ({"name": "a", "figures": {}}, "x: 'figures' must be a list"),
        (
            {"name": "a", "figures": [{"metric": "m", "unit": "s", "value": "fast"}]},
            "x: figures[0].value: expected a finite number, got 'fast'",
        ),
        (
            {"name": "a", "figures": [{"metric": "m", "unit": "s", "value": 1, "better": "more"}]},
            "x: figures[0].better: must be 'lower' or 'higher', got 'more'",
        ),
    ],
)
def test_malformed_output_is_refused_with_the_field_named(
    bench_report: ModuleType, doc: object, message: str
) -> None:
    with pytest.raises(bench_report.BenchFileError) as exc:
        bench_report.parse_bench(doc, source="x")
    assert str(exc.value) == message


def test_the_report_lists_failed_runs_and_unreadable_files_and_exits_1(
    bench_report: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "good.json").write_text(json.dumps(_doc()))
    (out / "bad.json").write_text("{not json")
    results = tmp_path / "RESULTS.md"
    code = bench_report.main(["--out-dir", str(out), "--results", str(results)])
    text = results.read_text()
    assert code == 1
    assert "## drift" in text
    assert "bad.json: not JSON" in text
    assert "- cores (usable by this process): " in text
    assert "- numpy: " in text


def test_every_bench_target_of_the_makefile_is_found(bench_report: ModuleType) -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = bench_report.bench_targets(REPO / "Makefile")
    assert targets, "no bench-* target in the Makefile"
    for target in targets:
        assert f"\n{target}:" in makefile
    assert "bench" not in targets  # the aggregate target does not run itself
