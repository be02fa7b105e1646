"""Classification metrics for model cards and the gate, with percentile-bootstrap confidence
intervals.

Design decision: the metrics are computed from a bincount confusion matrix (fast enough to score a
thousand resamples) and agree with scikit-learn's `accuracy_score` and macro precision/recall/F1
with zero_division=0 (the tests use scikit-learn as the oracle); the intervals are a seeded
percentile bootstrap over test rows (Efron & Tibshirani 1993, ch. 13), resampling indices once and
scoring every metric on the same resamples. Pure: numpy and scikit-learn only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm

Metric = Callable[[npt.NDArray[Any], npt.NDArray[Any]], float]


def _counts(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Confusion matrix over the union of labels, by bincount (fast enough to bootstrap)."""
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k = len(labels)
    t, p = codes[: len(y_true)], codes[len(y_true) :]
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _macro(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> tuple[float, float, float]:
    # Macro averages over the labels present in either array, zero where undefined: the same as
    # scikit-learn's average="macro", zero_division=0 (tested against it).
    cm = _counts(y_true, y_pred).astype(float)
    tp = np.diag(cm)
    pred = cm.sum(axis=0)
    true = cm.sum(axis=1)
    prec = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    rec = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = pred + true
    f = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(prec.mean()), float(rec.mean()), float(f.mean())


def accuracy(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def precision(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> float:
    return _macro(np.asarray(y_true), np.asarray(y_pred))[0]


def recall(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> float:
    return _macro(np.asarray(y_true), np.asarray(y_pred))[1]


def f1(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> float:
    return _macro(np.asarray(y_true), np.asarray(y_pred))[2]


METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
}


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


def bootstrap(
    y_true: Sequence[Any] | npt.NDArray[Any],
    y_pred: Sequence[Any] | npt.NDArray[Any],
    *,
    metrics: dict[str, Metric] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Point estimate and percentile-bootstrap interval of each metric."""
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    if yt.shape != yp.shape or yt.ndim != 1 or len(yt) == 0:
        raise ValueError("y_true and y_pred must be non-empty 1-d arrays of the same length")
    chosen = metrics or METRICS
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(yt), size=(n_resamples, len(yt)))
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for name, fn in chosen.items():
        draws = np.array([fn(yt[i], yp[i]) for i in idx])
        low, high = np.quantile(draws, [alpha, 1.0 - alpha])
        out[name] = Estimate(value=fn(yt, yp), low=float(low), high=float(high))
    return out


def per_class_f1(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> dict[str, float]:
    labels = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    scores = skm.f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {str(label): float(s) for label, s in zip(labels, scores, strict=True)}


def confusion(
    y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]
) -> tuple[list[str], list[list[int]]]:
    labels = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    return [str(v) for v in labels], [[int(x) for x in row] for row in matrix]


def permutation_importance(
    predict: Callable[[Any], npt.NDArray[Any]],
    x: Any,
    y: npt.NDArray[Any],
    *,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Mean drop in accuracy when one column of the DataFrame `x` is shuffled (Breiman 2001).

    Model-agnostic (works through a pyfunc's predict), so a card can be written for any registered
    classifier, not only tree ensembles.
    """
    rng = np.random.default_rng(seed)
    base = accuracy(y, np.asarray(predict(x)))
    out = {}
    for col in x.columns:
        drops = []
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[col] = rng.permutation(shuffled[col].to_numpy())
            drops.append(base - accuracy(y, np.asarray(predict(shuffled))))
        out[str(col)] = float(np.mean(drops))
    return out
