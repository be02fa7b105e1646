"""bench/serving.py: the cells and rounds options, and the statistics that judge batching on
against off (issue 16, item 3), against scipy's binomial distribution."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import scipy.stats

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def serving() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_serving", REPO / "bench" / "serving.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serving"] = module
    spec.loader.exec_module(module)
    return module


# ---- options -------------------------------------------------------------------------------------
def test_cells_are_parsed_in_order_without_repeats(serving: ModuleType) -> None:
    assert serving.parse_cells("rows1_c1, rows64_c8,rows1_c1") == [(1, 1), (64, 8)]


@pytest.mark.parametrize(
    ("text", "named"),
    [("", "rows1_c1"), ("rows1", "'rows1'"), ("rows0_c1", "rows must be"), ("rows1_c0", "conn")],
)
def test_a_bad_cell_is_refused_naming_the_option_and_the_item(
    serving: ModuleType, text: str, named: str
) -> None:
    with pytest.raises(ValueError, match="--cells") as info:
        serving.parse_cells(text)
    assert named in str(info.value)


def test_batching_only_defaults_to_the_two_one_connection_cells_in_many_short_rounds(
    serving: ModuleType,
) -> None:
    args = serving.parse_args(serving.build_parser(), ["--batching-only"])
    assert args.cells == [(1, 1), (64, 1)]
    assert (args.rounds, args.seconds) == (serving.BATCHING_ROUNDS, serving.BATCHING_SECONDS)
    args = serving.parse_args(
        serving.build_parser(),
        ["--batching-only", "--cells", "rows1_c1", "--rounds", "40", "--seconds", "2"],
    )
    assert (args.cells, args.rounds, args.seconds) == ([(1, 1)], 40, 2)


def test_mlserver_only_runs_every_cell_unless_cells_are_given(serving: ModuleType) -> None:
    assert serving.parse_args(serving.build_parser(), ["--mlserver-only"]).cells is None
    args = serving.parse_args(serving.build_parser(), ["--mlserver-only", "--cells", "rows64_c8"])
    assert args.cells == [(64, 8)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cells", "rows1_c1"], "--cells: only with"),
        (["--batching-only", "--rounds", "0"], "--rounds: expected 1 or more"),
        (["--batching-only", "--cells", "rows1_x"], "--cells: 'rows1_x' is not a cell"),
        (["--batching-only", "--mlserver-only"], "choose one"),
    ],
)
def test_bad_options_exit_2_with_a_message_naming_the_option(
    serving: ModuleType, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        serving.parse_args(serving.build_parser(), argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def _rows1_c1(off: tuple[float, float], on: tuple[float, float]) -> dict[str, dict[str, float]]:
    """The runs of the rows1_c1 cell: ours (req/s, p99 ms) with batching off and on, against a
    fixed MLServer."""

    def run(rps: float, p99: float) -> dict[str, float]:
        return {"rps": rps, "p99_ms": p99, "load_1m": 1.0}

    return {
        "ours_rows1_c1_batching_off": run(*off),
        "mlserver_rows1_c1_batching_off": run(340, 4.5),
        "ours_rows1_c1_batching_on": run(*on),
        "mlserver_rows1_c1_batching_on": run(225, 8.2),
    }


def test_the_mlserver_tables_hold_only_the_cells_that_were_run(serving: ModuleType) -> None:
    runs = _rows1_c1(off=(700, 1.96), on=(800, 1.99))
    cells = serving.mlserver_cells(runs)
    assert [c["cell"] for c in cells] == [
        "rows1_c1_batching_off",
        "rows1_c1_batching_on",
        "rows1_c1 batching on vs off (ours)",
    ]
    metrics = [f["metric"] for f in serving.mlserver_figures(runs)]
    assert "oip_p99_ms_rows1_c1_batching_on" in metrics
    assert not any("rows64" in m or "_c8_" in m for m in metrics)


def test_the_matrix_reports_batching_at_1_connection_but_leaves_the_verdict_to_the_rounds(
    serving: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Session 5's last matrix: one p99 per side, 2.3 vs 2.3 ms, printed "NOT MET" beside a
    # 30-round comparison that resolved no difference. The matrix judges MLServer's cells only.
    runs = _rows1_c1(off=(700, 2.3), on=(800, 2.4))
    cells = serving.mlserver_cells(runs)
    batching = cells[-1]
    assert batching["goal_met"] is None
    assert batching["judged_by"].startswith("make bench-serving-batching")
    assert batching["p99_ratio"] == round(2.3 / 2.4, 3)
    assert [c["goal_met"] for c in cells[:-1]] == [True, True]
    serving.print_cells(cells)
    out = capsys.readouterr().out
    assert "not judged here: make bench-serving-batching" in out
    assert "goal met in every cell against MLServer (2)" in out
    assert "NOT MET" not in out
    # An MLServer cell that misses still fails the run.
    out_cells = serving.mlserver_cells(_rows1_c1(off=(300, 2.3), on=(800, 2.4)))
    serving.print_cells(out_cells)
    assert "goal NOT met in 1 of 2: rows1_c1_batching_off" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ("", "--mlserver-only --seconds 5 --out"),
        ("BENCH_CELLS=rows1_c1 BENCH_ROUNDS=6", "--mlserver-rounds 6 --cells rows1_c1 --out"),
    ],
)
def test_make_passes_cells_and_rounds_to_the_mlserver_comparison(
    variables: str, expected: str
) -> None:
    command = _make_line("bench-serving-mlserver", variables)
    assert " ".join(command.split()).endswith(f"{expected} bench/out/serving.json")


def test_make_passes_cells_rounds_and_seconds_to_the_batching_comparison() -> None:
    command = _make_line(
        "bench-serving-batching", "BENCH_CELLS=rows1_c1 BENCH_ROUNDS=40 BENCH_SECONDS=2"
    )
    assert " ".join(command.split()).endswith(
        "--batching-only --seconds 2 --rounds 40 --cells rows1_c1 --out bench/out/serving.json"
    )


def _make_line(target: str, variables: str) -> str:
    """The command `make -n` would run for `target` (its prerequisites left out)."""
    out = subprocess.run(
        ["make", "-n", "-o", "venv", target, *variables.split()],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line for line in out.splitlines() if "bench/serving.py" in line)


# ---- statistics ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "diffs",
    [[0.1] * 14 + [-0.1] * 6, [0.02, -0.01, 0.0, 0.03, 0.01, -0.02, 0.0, 0.04], [1.0] * 9, [0.0]],
)
def test_the_sign_test_is_scipys_two_sided_binomial_test_on_the_nonzero_differences(
    serving: ModuleType, diffs: list[float]
) -> None:
    positive = sum(d > 0 for d in diffs)
    n = positive + sum(d < 0 for d in diffs)
    expected = 1.0 if n == 0 else scipy.stats.binomtest(positive, n, 0.5).pvalue
    assert serving.sign_test(diffs) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [6, 9, 20, 30, 41])
def test_the_median_interval_is_the_order_statistics_of_the_binomial_quantile(
    serving: ModuleType, n: int
) -> None:
    values = [float(v) for v in range(n, 0, -1)]  # n..1: the k-th smallest is k
    low, high, coverage = serving.median_interval(values, 0.95)
    # Oracle: r = the largest rank with binom.cdf(r - 1, n, 1/2) <= 0.025.
    r = max(k for k in range(1, n + 1) if scipy.stats.binom.cdf(k - 1, n, 0.5) <= 0.025)
    assert (low, high) == (r, n + 1 - r)
    assert coverage == pytest.approx(1 - 2 * scipy.stats.binom.cdf(r - 1, n, 0.5))
    assert coverage >= 0.95
    if n == 20:
        assert (low, high) == (6, 15)  # the textbook pair for n = 20


def test_with_too_few_values_the_interval_is_their_range_and_says_its_coverage(
    serving: ModuleType,
) -> None:
    assert serving.median_interval([3.0, 1.0, 2.0], 0.95) == (1.0, 3.0, 0.75)


def test_batching_on_is_judged_worse_only_when_the_whole_interval_is_above_zero(
    serving: ModuleType,
) -> None:
    off = [2.0] * 20
    worse = serving.judge([2.03 + 0.001 * i for i in range(20)], off)
    assert (worse["verdict"], worse["goal_met"]) == ("worse", False)
    assert worse["diff_ms_median"] == pytest.approx(0.0395)
    noise = [0.05, -0.04, 0.02, -0.03, 0.01, -0.01, 0.0, 0.03, -0.02, 0.04] * 2
    equal = serving.judge([2.0 + d for d in noise], off)
    assert (equal["verdict"], equal["goal_met"]) == ("no difference resolved", True)
    assert equal["diff_ms_interval"][0] <= 0 <= equal["diff_ms_interval"][1]
    assert equal["resolves_ms"] == serving.RESOLVE_MS  # +-0.02 ms: a 0.03 ms gap would show
    better = serving.judge([1.9] * 20, off)
    assert (better["verdict"], better["goal_met"]) == ("better", True)
    few = serving.judge([2.1, 2.1, 2.1], [2.0, 2.0, 2.0])
    assert few["goal_met"] is None
    assert few["verdict"].startswith("too few rounds")


def test_the_batching_figures_are_in_the_report_shape(serving: ModuleType) -> None:
    spec = importlib.util.spec_from_file_location("bench_report", REPO / "bench" / "report.py")
    assert spec is not None
    assert spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = report
    spec.loader.exec_module(report)
    got = serving.judge([1.99, 2.01] * 10, [2.0] * 20)
    doc = {"name": "serving_batching", "figures": serving.batching_figures({"rows1_c1": got})}
    bench = report.parse_bench(doc, source="serving_batching.json")
    assert [f.metric for f in bench.figures] == [
        "oip_p99_ms_rows1_c1_batching_on",
        "oip_p99_ms_rows1_c1_batching_on_minus_off",
    ]
    assert all(f.ratio_check == "" for f in bench.figures)
