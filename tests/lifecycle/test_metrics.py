"""Metrics for cards and the gate: scikit-learn as the oracle for the point estimates, the normal
approximation for a binomial proportion as the oracle for the bootstrap interval of accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from modelpilot.lifecycle import metrics


@pytest.mark.parametrize("seed", range(6))
def test_macro_precision_recall_f1_and_accuracy_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    y_true = rng.integers(0, k, size=200)
    # a noisy predictor that sometimes predicts a class absent from y_true
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, k + 1, size=200))
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for ours, average in (
        (metrics.precision, skm.precision_score),
        (metrics.recall, skm.recall_score),
        (metrics.f1, skm.f1_score),
    ):
        expected = average(y_true, y_pred, average="macro", zero_division=0)
        assert ours(y_true, y_pred) == pytest.approx(expected, abs=1e-12)


def test_string_labels_are_scored_like_integers() -> None:
    y_true = np.array(["a", "b", "b", "c", "a"])
    y_pred = np.array(["a", "b", "c", "c", "b"])
    assert metrics.f1(y_true, y_pred) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0)
    )


def test_the_bootstrap_interval_of_accuracy_matches_the_normal_approximation() -> None:
    # For accuracy (a mean of n Bernoulli outcomes) the bootstrap distribution is approximately
    # normal with standard error sqrt(p(1-p)/n): the 95% interval should agree to within ~0.01.
    rng = np.random.default_rng(11)
    n, p = 2000, 0.8
    y_true = np.zeros(n, dtype=int)
    y_pred = (rng.random(n) > p).astype(int)  # correct where 0
    est = metrics.bootstrap(
        y_true, y_pred, metrics={"accuracy": metrics.accuracy}, n_resamples=2000, seed=1
    )["accuracy"]
    acc = float(np.mean(y_true == y_pred))
    half = stats.norm.ppf(0.975) * np.sqrt(acc * (1 - acc) / n)
    assert est.value == pytest.approx(acc)
    assert est.low == pytest.approx(acc - half, abs=0.004)
    assert est.high == pytest.approx(acc + half, abs=0.004)


def test_bootstrap_intervals_contain_the_estimate_narrow_with_n_and_are_reproducible() -> None:
    rng = np.random.default_rng(5)
    widths = []
    for n in (100, 1600):
        y_true = rng.integers(0, 3, size=n)
        y_pred = np.where(rng.random(n) < 0.75, y_true, rng.integers(0, 3, size=n))
        est = metrics.bootstrap(y_true, y_pred, n_resamples=400, seed=2)
        again = metrics.bootstrap(y_true, y_pred, n_resamples=400, seed=2)
        assert est == again
        for e in est.values():
            assert e.low <= e.value <= e.high
        widths.append(est["f1"].high - est["f1"].low)
    # the width shrinks like 1/sqrt(n): 16 times the rows, about a quarter of the width
    assert widths[1] / widths[0] == pytest.approx(0.25, abs=0.08)


def test_per_class_f1_and_the_confusion_matrix_equal_scikit_learn() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    per_class = metrics.per_class_f1(y_true, y_pred)
    assert list(per_class.values()) == pytest.approx(
        list(skm.f1_score(y_true, y_pred, average=None))
    )
    labels, matrix = metrics.confusion(y_true, y_pred)
    assert labels == ["0", "1", "2"]
    assert matrix == skm.confusion_matrix(y_true, y_pred).tolist()


def test_permutation_importance_finds_the_only_informative_feature() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"signal": rng.normal(size=500), "noise": rng.normal(size=500)})
    y = (x["signal"] > 0).astype(int).to_numpy()

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return (frame["signal"] > 0).astype(int).to_numpy()

    importance = metrics.permutation_importance(predict, x, y, repeats=3)
    assert importance["noise"] == 0.0
    # shuffling the signal leaves a coin flip: accuracy drops from 1 to about 0.5
    assert importance["signal"] == pytest.approx(0.5, abs=0.06)
