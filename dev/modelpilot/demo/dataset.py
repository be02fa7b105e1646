"""The demo's data: a seeded labelled tabular problem where a stronger model is truly better.

Four numeric features; the label depends on one linear term, one interaction and one square, so a
linear model (the champion) tops out near 72% accuracy while a random forest (the challenger)
reaches about 91%: the challenger's reward rate (reward = a correct prediction) is really higher,
and Thompson sampling has something real to find. The drifted stream shifts and rescales two of
the four features (`DRIFTED_FEATURES`), so a correct drift run must flag exactly those two.

Pure: numpy only, every function takes its generator.
"""

from __future__ import annotations

import numpy as np

FEATURES: tuple[str, ...] = ("f0", "f1", "f2", "f3")
DRIFTED_FEATURES: tuple[str, ...] = ("f0", "f2")


def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` rows of features (n x 4, standard normal) and their 0/1 labels."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    x = rng.normal(size=(n, len(FEATURES)))
    noise = 0.3 * rng.normal(size=n)
    score = 1.2 * x[:, 0] + 1.5 * x[:, 1] * x[:, 2] - 0.8 * (x[:, 3] ** 2 - 1.0) + noise
    return x, (score > 0).astype(np.int64)


def drift(x: np.ndarray) -> np.ndarray:
    """The drifted inputs: f0 shifted by 1.5 standard deviations, f2 spread twice as wide."""
    out = x.copy()
    out[:, FEATURES.index("f0")] += 1.5
    out[:, FEATURES.index("f2")] *= 2.0
    return out


def instances(x: np.ndarray) -> list[dict[str, float]]:
    """Rows as `{"f0": ..., ...}` objects, the `/predict` body's `instances`."""
    return [{name: float(v) for name, v in zip(FEATURES, row, strict=True)} for row in x]
