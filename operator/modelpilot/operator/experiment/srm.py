"""Sample-ratio mismatch of one update interval, robust to the split changing during it.

Under Thompson sampling the split changes at every update, and routers pick up a new routes
ConfigMap with some lag (a watch, or the kubelet's ConfigMap volume sync), so an interval's
requests come from a *mixture* of the split in force before and after the last change, in an
unknown proportion. Testing against the newest split alone raises false alarms at every change.
The design decision: the null hypothesis is composite, "the requests follow some mixture of the
candidate splits" (the convex hull of the splits in force at the previous and at this update), and
the test statistic is Pearson's chi-square minimised over that hull, referred to chi-square with
k - 1 degrees of freedom. Minimising over the nuisance mixture can only lower the statistic, so the
test stays conservative (no more false alarms than the plain test), and when the candidates are
equal it is exactly the plain test (`scipy.stats.chisquare`, Fabijan et al., KDD 2019).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as sps

MIN_EXPECTED = 5.0
"""No test when an expected count is below this (Cochran's rule for the chi-square)."""

GRID = 50
"""Mixture weights are searched on a grid of step 1/GRID over the simplex of candidates."""


def _chi_square(observed: np.ndarray, shares: np.ndarray) -> float:
    expected = observed.sum() * shares / shares.sum()
    return float(np.sum((observed - expected) ** 2 / expected))


def _mixtures(count: int) -> list[np.ndarray]:
    if count == 1:
        return [np.array([1.0])]
    if count == 2:
        return [np.array([i / GRID, 1 - i / GRID]) for i in range(GRID + 1)]
    out = []
    for i in range(GRID + 1):
        for j in range(GRID + 1 - i):
            out.append(np.array([i / GRID, j / GRID, (GRID - i - j) / GRID]))
    return out


def p_value(
    requests: Mapping[str, int],
    candidates: Sequence[Mapping[str, float]],
    *,
    min_requests: int,
) -> float | None:
    """p-value of `requests` against mixtures of `candidates` (at most 3); None if untestable.

    Variants with no share in any candidate are left out (nothing was meant to reach them).
    """
    names = sorted(
        {n for c in candidates for n, w in c.items() if w > 0 and n in requests},
    )
    if len(names) < 2 or not candidates or len(candidates) > 3:
        return None
    observed = np.array([float(requests[n]) for n in names])
    if observed.sum() < min_requests:
        return None
    vertices = []
    for c in candidates:
        v = np.array([max(0.0, float(c.get(n, 0.0))) for n in names])
        if v.sum() > 0:
            vertices.append(v / v.sum())
    if not vertices:
        return None
    best: float | None = None
    for weights in _mixtures(len(vertices)):
        shares = sum(w * v for w, v in zip(weights, vertices, strict=True))
        assert isinstance(shares, np.ndarray)
        if np.any(shares <= 0) or np.min(observed.sum() * shares) < MIN_EXPECTED:
            continue
        stat = _chi_square(observed, shares)
        best = stat if best is None else min(best, stat)
    if best is None:
        return None
    return float(sps.chi2.sf(best, len(names) - 1))
