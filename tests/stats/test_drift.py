"""Drift statistics against scipy/statsmodels and direct implementations; the comparisons."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
import scipy.stats
from statsmodels.stats import multitest

from modelpilot import errors
from modelpilot.stats import drift, profile


def direct_psi(ref: list[float], cur: list[float]) -> float:
    """The documented formula, one bin at a time: sum (c - r) ln(c / r), shares floored at 1e-4."""
    total = 0.0
    for r, c in zip(ref, cur, strict=True):
        r, c = max(r, 1e-4), max(c, 1e-4)
        total += (c - r) * math.log(c / r)
    return total


def test_psi_equals_the_documented_formula_on_random_shares_with_empty_bins() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        ref = rng.dirichlet(np.ones(10))
        cur = rng.dirichlet(np.ones(10))
        cur[rng.integers(0, 10)] = 0.0
        cur /= cur.sum()
        assert drift.psi(ref, cur) == pytest.approx(
            direct_psi(ref.tolist(), cur.tolist()), rel=1e-12
        )


def test_psi_is_zero_for_identical_shares_and_finite_for_an_empty_bin() -> None:
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    value = drift.psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    assert math.isfinite(value)
    assert value == pytest.approx(direct_psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0.0, "none"),
        (0.0999, "none"),
        (0.1, "moderate"),
        (0.1999, "moderate"),
        (0.2, "significant"),
    ],
)
def test_psi_bands(value: float, band: str) -> None:
    assert drift.psi_band(value) == band


@pytest.mark.parametrize(
    ("n1", "n2"),
    [(1, 1), (7, 13), (200, 200), (500, 730), (9_000, 10_000), (12_000, 10_001), (30_000, 25_000)],
)
def test_ks_statistic_and_p_value_equal_scipy_on_data_with_ties(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 * 31 + n2)
    for shift in (0, 1):
        # Rounded values: plenty of ties within and across samples.
        a = np.round(rng.normal(0, 3, size=n1))
        b = np.round(rng.normal(shift * 0.05, 3, size=n2))
        got = drift.ks_2samp(a, b)
        expected = scipy.stats.ks_2samp(a, b)
        assert got.statistic == pytest.approx(expected.statistic, abs=1e-9)
        assert got.pvalue == pytest.approx(expected.pvalue, abs=1e-9)


def test_ks_equals_scipy_on_thousands_of_small_samples_full_of_ties() -> None:
    rng = np.random.default_rng(12)
    for trial in range(2000):
        n1, n2 = (int(v) for v in rng.integers(1, 60, size=2))
        levels = int(rng.integers(1, 8))
        a = rng.integers(0, levels, size=n1).astype(float)
        b = rng.integers(0, levels, size=n2).astype(float)
        if trial % 3 == 0:
            b = b + rng.normal(0, 1, size=n2)  # some trials without cross ties
        got = drift.ks_2samp(a, b)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
            expected = scipy.stats.ks_2samp(a, b)
        assert got.statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert got.pvalue == pytest.approx(expected.pvalue, abs=1e-12)


def test_ks_ignores_nulls_like_dropping_them() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=300)
    b = rng.normal(size=400)
    a_with_nulls = np.concatenate([a, [np.nan] * 20])
    expected = scipy.stats.ks_2samp(a, b)
    got = drift.ks_2samp(a_with_nulls, b)
    assert (got.statistic, got.pvalue) == pytest.approx(
        (expected.statistic, expected.pvalue), abs=1e-12
    )


@pytest.mark.parametrize("n", [141, 1_000, 20_000, 100_000])
def test_smirnov_tail_equals_scipy_special_smirnov(n: int) -> None:
    for nx2 in (2.2, 3.0, 6.0, 20.0, 100.0):
        x = math.sqrt(nx2 / n)
        expected = scipy.special.smirnov(n, x)
        got = drift.smirnov_sf(n, x)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize(
    ("n", "x"), [(150, 0.5066666666666667), (1_000, 0.189), (100_000, 0.98729)]
)
def test_smirnov_tail_where_the_last_term_rounds_below_zero_is_scipys_without_a_warning(
    n: int, x: float
) -> None:
    # 1 - x - j/n at the last j is 0 in exact arithmetic and a tiny negative in floating point
    # here; filterwarnings = error turns a stray RuntimeWarning into a failure.
    assert 1.0 - x - math.floor(n * (1.0 - x)) / n < 0
    assert drift.smirnov_sf(n, x) == pytest.approx(
        scipy.special.smirnov(n, x), rel=1e-9, abs=1e-300
    )


@pytest.mark.parametrize("shift", [0.02, 0.03, 0.05, 0.3])
def test_ks_p_value_of_large_drifted_samples_equals_scipy(shift: float) -> None:
    # Large samples with p-values from ~1e-2 down to ~0: scipy takes its 2 * smirnov(n, d) branch.
    rng = np.random.default_rng(int(shift * 1000))
    a = rng.normal(size=60_000)
    b = rng.normal(shift, size=50_000)
    got = drift.ks_2samp(a, b)
    expected = scipy.stats.ks_2samp(a, b)
    assert got.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert got.pvalue == pytest.approx(expected.pvalue, abs=1e-9)


def test_asymptotic_ks_p_values_are_vectorised_like_scipys_asymp_method() -> None:
    rng = np.random.default_rng(2)
    d, n1, n2, expected = [], [], [], []
    for i in range(5):
        a = rng.normal(size=20_000 + i)
        b = rng.normal(0.01 * i, size=15_000)
        r = scipy.stats.ks_2samp(a, b, method="asymp")
        d.append(r.statistic)
        n1.append(a.size)
        n2.append(b.size)
        expected.append(r.pvalue)
    np.testing.assert_allclose(drift.ks_pvalues_asymptotic(d, n1, n2), expected, rtol=0, atol=1e-12)


def test_js_distance_equals_scipy_jensenshannon() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        p, q = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8))
        q[0] = 0.0
        assert drift.js_distance(p, q) == pytest.approx(
            scipy.spatial.distance.jensenshannon(p, q), rel=1e-12
        )


def test_chi_square_homogeneity_equals_scipy_chi2_contingency() -> None:
    ref, cur = [120, 80, 40, 0, 9], [100, 95, 30, 0, 14]
    got = drift.chi2_homogeneity(ref, cur)
    stat, p, dof, _ = scipy.stats.chi2_contingency(
        np.array([[120, 80, 40, 9], [100, 95, 30, 14]]), correction=False
    )
    assert (got.statistic, got.pvalue, got.dof) == pytest.approx((stat, p, dof), rel=1e-12)


def test_benjamini_hochberg_equals_statsmodels_fdr_bh() -> None:
    rng = np.random.default_rng(4)
    for n in (1, 2, 5, 40):
        p = np.concatenate([rng.random(n), rng.random(n) * 1e-3])
        rng.shuffle(p)
        expected = multitest.multipletests(p, method="fdr_bh")[1]
        np.testing.assert_allclose(drift.benjamini_hochberg(p), expected, rtol=1e-12)


def plain_loop(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> tuple[float, float, float]:
    """The per-column baseline: np.percentile deciles, np.histogram shares, scipy's ks_2samp."""
    edges = np.percentile(ref, np.linspace(0, 100, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    r = np.histogram(ref, edges)[0] / ref.size
    c = np.histogram(cur, edges)[0] / cur.size
    ks = scipy.stats.ks_2samp(ref, cur)
    return direct_psi(r.tolist(), c.tolist()), float(ks.statistic), float(ks.pvalue)


def test_compare_frames_matches_the_plain_loop_and_scipy_column_by_column() -> None:
    rng = np.random.default_rng(5)
    ref = {f"c{i}": rng.normal(size=20_000) for i in range(6)}
    cur = {f"c{i}": rng.normal(0.04 * i, 1 + 0.05 * i, size=15_000) for i in range(6)}
    report = drift.compare_frames(ref, cur)
    for name in ref:
        f = report.feature(name)
        loop_psi, loop_d, loop_p = plain_loop(ref[name], cur[name])
        assert f.psi == pytest.approx(loop_psi, rel=1e-12, abs=1e-15)
        assert f.ks_statistic == pytest.approx(loop_d, abs=1e-9)
        assert f.ks_pvalue == pytest.approx(loop_p, abs=1e-9)
    assert "c0" not in report.drifted_features
    assert "c5" in report.drifted_features
    assert report.max_psi == max(f.psi for f in report.features)


def test_a_jump_in_the_null_rate_is_drift_even_when_the_values_do_not_move() -> None:
    rng = np.random.default_rng(6)
    ref = {"a": rng.normal(size=5000)}
    cur_values = rng.normal(size=5000)
    cur_values[:1000] = np.nan
    report = drift.compare_frames(ref, {"a": cur_values})
    f = report.feature("a")
    assert f.null_rate_current == pytest.approx(0.2)
    assert f.psi < 0.1
    assert f.drifted
    assert any("null rate" in reason for reason in f.reasons)


def test_categorical_columns_use_chi_square_and_psi_over_categories() -> None:
    rng = np.random.default_rng(7)
    cats = np.array(["a", "b", "c"], dtype=object)
    ref = {"k": rng.choice(cats, size=4000, p=[0.5, 0.3, 0.2])}
    same = {"k": rng.choice(cats, size=4000, p=[0.5, 0.3, 0.2])}
    moved = {
        "k": rng.choice(
            np.array(["a", "b", "c", "new"], dtype=object), size=4000, p=[0.3, 0.3, 0.2, 0.2]
        )
    }
    quiet = drift.compare_frames(ref, same).feature("k")
    loud = drift.compare_frames(ref, moved).feature("k")
    assert quiet.kind == "categorical"
    assert quiet.ks_statistic is None
    assert not quiet.drifted
    assert loud.drifted
    assert loud.chi2_pvalue is not None
    assert loud.chi2_pvalue < 1e-10
    assert loud.bins[-1] == profile.OTHER
    assert loud.current_proportions[-1] == pytest.approx(0.2, abs=0.02)


def test_compare_uses_the_bounded_samples_and_the_sketch_counts() -> None:
    rng = np.random.default_rng(8)
    ref = {f"c{i}": rng.normal(size=30_000) for i in range(4)}
    cur = {f"c{i}": rng.normal(0.1 * i, size=12_000) for i in range(4)}
    prof = profile.build_profile(ref, sample_size=2000, rng=rng)
    sketch = profile.WindowSketch.empty(prof, reservoir_size=3000, seed=1)
    for start in range(0, 12_000, 4000):
        sketch.update({k: v[start : start + 4000] for k, v in cur.items()})
    report = drift.compare(prof, sketch)
    whole = drift.compare_frames(ref, cur)
    for name in ref:
        f = report.feature(name)
        # PSI is over every current row (the counts), on the same bins as the whole-data path.
        assert f.psi == pytest.approx(whole.feature(name).psi, rel=1e-12)
        expected = scipy.stats.ks_2samp(prof.columns[name].sample, sketch.sample(name))
        assert f.ks_statistic == pytest.approx(expected.statistic, abs=1e-9)
        assert f.ks_pvalue == pytest.approx(expected.pvalue, abs=1e-9)
    assert report.ks_sample == "bounded"
    assert report.drifted_features == ["c1", "c2", "c3"]


def test_no_drift_rarely_flags_any_of_ten_columns_thanks_to_benjamini_hochberg() -> None:
    rng = np.random.default_rng(9)
    runs, flagged = 200, 0
    for _ in range(runs):
        ref = {f"c{i}": rng.normal(size=400) for i in range(10)}
        cur = {f"c{i}": rng.normal(size=400) for i in range(10)}
        report = drift.compare_frames(ref, cur, methods=("ks",))
        flagged += bool(report.drifted_features)
    # BH at 0.01 controls the chance of any false flag under the global null at about 0.01.
    assert flagged / runs <= 0.03


def test_compare_rejects_a_sketch_of_another_profile_and_an_empty_window() -> None:
    rng = np.random.default_rng(10)
    prof = profile.build_profile({"a": rng.normal(size=100)}, rng=rng)
    other = profile.build_profile({"a": rng.normal(size=100)}, rng=rng)
    with pytest.raises(errors.InputError, match="different profile"):
        drift.compare(prof, profile.WindowSketch.empty(other, reservoir_size=5, seed=0))
    with pytest.raises(errors.InputError, match="window is empty"):
        drift.compare(prof, profile.WindowSketch.empty(prof, reservoir_size=5, seed=0))


def test_unknown_methods_and_missing_columns_are_named() -> None:
    with pytest.raises(errors.InputError, match="methods: wasserstein not allowed"):
        drift.compare_frames({"a": np.zeros(3)}, {"a": np.zeros(3)}, methods=("wasserstein",))
    with pytest.raises(errors.InputError, match="current data: missing column"):
        drift.compare_frames({"a": np.zeros(3), "b": np.zeros(3)}, {"a": np.zeros(3)})
