"""Reference profiles and window sketches: binning, serialisation, merging, uniform samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelpilot import errors
from modelpilot.stats import profile


def _data(rng: np.random.Generator, n: int = 20_000) -> dict[str, np.ndarray]:
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    colours = rng.choice(np.array(["red", "green", "blue", "cyan"], dtype=object), size=n)
    colours[rng.random(n) < 0.02] = None
    return {"x": x, "ints": rng.integers(0, 1000, size=n), "colour": colours}


def test_numeric_columns_get_decile_edges_counts_null_rate_and_a_bounded_sorted_sample() -> None:
    rng = np.random.default_rng(0)
    data = _data(rng)
    prof = profile.build_profile(data, sample_size=1000, rng=rng)
    col = prof.columns["x"]
    present = data["x"][~np.isnan(data["x"])]
    assert col.kind == "numeric"
    np.testing.assert_array_equal(col.edges, np.percentile(present, np.arange(10, 100, 10)))
    hist, _ = np.histogram(present, np.concatenate([[-np.inf], col.edges, [np.inf]]))
    np.testing.assert_array_equal(col.counts, hist)
    assert col.proportions == pytest.approx(np.full(10, 0.1), abs=1e-3)
    assert col.null_rate == pytest.approx(np.isnan(data["x"]).mean())
    assert col.sample.shape == (1000,)
    assert np.all(np.diff(col.sample) >= 0)
    assert np.isin(col.sample, present).all()


def test_configurable_bins_and_duplicate_quantiles_collapse() -> None:
    rng = np.random.default_rng(1)
    prof = profile.build_profile(
        {"u": rng.random(5000), "few": rng.integers(0, 3, size=5000)}, bins=20, rng=rng
    )
    assert prof.columns["u"].n_bins == 20
    few = prof.columns["few"]
    # 20 quantiles of {0, 1, 2} are the edges 0, 1, 2: bins (-inf, 0), [0, 1), [1, 2), [2, inf).
    assert few.edges.tolist() == [0.0, 1.0, 2.0]
    assert few.n_bins == 4
    assert few.counts[0] == 0


def test_categorical_columns_keep_the_most_frequent_categories_and_an_other_bin() -> None:
    rng = np.random.default_rng(2)
    prof = profile.build_profile(_data(rng), rng=rng, max_categories=3)
    col = prof.columns["colour"]
    assert col.kind == "categorical"
    assert len(col.categories) == 3
    assert col.n_bins == 4
    assert col.null_rate == pytest.approx(0.02, abs=0.005)
    assert col.counts.sum() + col.null_count == col.row_count


def test_profile_round_trips_through_json() -> None:
    rng = np.random.default_rng(3)
    prof = profile.build_profile(_data(rng), rng=rng)
    again = profile.ReferenceProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert again.feature_names == prof.feature_names == ("x", "ints", "colour")
    for name in prof.feature_names:
        a, b = prof.columns[name], again.columns[name]
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_array_equal(a.edges, b.edges)
        np.testing.assert_array_equal(a.sample, b.sample)
        assert a.categories == b.categories
    assert again.fingerprint() == prof.fingerprint()


def test_window_counts_equal_numpy_histograms_over_the_reference_bins() -> None:
    rng = np.random.default_rng(4)
    prof = profile.build_profile(_data(rng), rng=rng)
    current = _data(rng, 7000)
    current["x"] = current["x"] * 2 + 0.5
    sketch = profile.WindowSketch.empty(prof, reservoir_size=300, seed=1)
    sketch.update(current)
    edges = np.concatenate([[-np.inf], prof.columns["x"].edges, [np.inf]])
    hist, _ = np.histogram(current["x"][~np.isnan(current["x"])], edges)
    np.testing.assert_array_equal(sketch.counts("x"), hist)
    assert sketch.null_count("x") == int(np.isnan(current["x"]).sum())
    assert sketch.row_count == 7000
    cats = prof.columns["colour"].categories
    expected = [int(np.sum(current["colour"] == c)) for c in cats]
    assert sketch.counts("colour")[: len(cats)].tolist() == expected
    assert sketch.sample("x").shape == (300,)


def test_updates_in_chunks_count_like_one_update_and_rows_like_columns() -> None:
    rng = np.random.default_rng(5)
    prof = profile.build_profile(
        {"a": rng.normal(size=3000), "b": rng.exponential(size=3000)}, rng=rng
    )
    batch = {"a": rng.normal(size=1000), "b": rng.exponential(size=1000)}
    whole = profile.WindowSketch.empty(prof, reservoir_size=50, seed=0)
    whole.update(batch)
    chunked = profile.WindowSketch.empty(prof, reservoir_size=50, seed=0)
    for start in range(0, 1000, 128):
        chunked.update_rows(np.column_stack([batch["a"], batch["b"]])[start : start + 128])
    for name in ("a", "b"):
        np.testing.assert_array_equal(whole.counts(name), chunked.counts(name))
    assert chunked.row_count == 1000


def test_merged_sample_is_uniform_over_both_windows_whatever_their_sizes() -> None:
    # Pod A saw 1,000 rows, pod B 9,000: a uniform sample of the union holds ~10% from A.
    prof = profile.build_profile({"v": np.arange(100.0)}, rng=np.random.default_rng(0))
    shares = []
    for seed in range(200):
        a = profile.WindowSketch.empty(prof, reservoir_size=200, seed=2 * seed)
        b = profile.WindowSketch.empty(prof, reservoir_size=200, seed=2 * seed + 1)
        a.update({"v": np.full(1000, -1.0)})
        b.update({"v": np.full(9000, 1.0)})
        merged = a.merge(b)
        assert merged.row_count == 10_000
        shares.append(float(np.mean(merged.sample("v") < 0)))
    # Hypergeometric: sd of one share ~ sqrt(0.1*0.9/200) = 0.021; of the mean of 200 ~ 0.0015.
    assert np.mean(shares) == pytest.approx(0.1, abs=0.006)


def test_merge_adds_counts_and_is_order_independent() -> None:
    rng = np.random.default_rng(6)
    prof = profile.build_profile(_data(rng), rng=rng)
    pods = []
    for seed in range(3):
        s = profile.WindowSketch.empty(prof, reservoir_size=100, seed=seed)
        s.update(_data(rng, 500 + 100 * seed))
        pods.append(s)
    ab_c = pods[0].merge(pods[1]).merge(pods[2])
    c_ba = pods[2].merge(pods[1].merge(pods[0]))
    for name in prof.feature_names:
        np.testing.assert_array_equal(ab_c.counts(name), sum(p.counts(name) for p in pods))
        np.testing.assert_array_equal(ab_c.counts(name), c_ba.counts(name))
    assert sorted(ab_c.sample("x").tolist()) == sorted(c_ba.sample("x").tolist())


def test_sketch_round_trips_through_json_and_keeps_counting() -> None:
    rng = np.random.default_rng(7)
    prof = profile.build_profile(_data(rng), rng=rng)
    sketch = profile.WindowSketch.empty(prof, reservoir_size=64, seed=9)
    sketch.update(_data(rng, 300))
    again = profile.WindowSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert again.to_dict() == sketch.to_dict()
    more = _data(rng, 200)
    sketch.update(more)
    again.update(more)
    assert again.to_dict() == sketch.to_dict()


def test_update_with_a_missing_column_names_it() -> None:
    rng = np.random.default_rng(8)
    prof = profile.build_profile({"a": rng.normal(size=100), "b": rng.normal(size=100)}, rng=rng)
    sketch = profile.WindowSketch.empty(prof, reservoir_size=10, seed=0)
    with pytest.raises(errors.InputError, match="missing column"):
        sketch.update({"a": np.zeros(3)})
    with pytest.raises(errors.InputError, match="expected rows of 2 values"):
        sketch.update_rows(np.zeros((3, 3)))


def test_sketches_over_different_profiles_do_not_merge() -> None:
    rng = np.random.default_rng(9)
    p1 = profile.build_profile({"a": rng.normal(size=100)}, rng=rng)
    p2 = profile.build_profile({"a": rng.normal(size=100)}, rng=rng)
    s1 = profile.WindowSketch.empty(p1, reservoir_size=10, seed=0)
    s2 = profile.WindowSketch.empty(p2, reservoir_size=10, seed=0)
    with pytest.raises(errors.InputError, match="different profiles"):
        s1.merge(s2)


def test_an_all_null_reference_column_is_a_clear_error() -> None:
    with pytest.raises(errors.InputError, match="column 'a': every reference value is null"):
        profile.build_profile({"a": np.full(10, np.nan)}, rng=np.random.default_rng(0))
