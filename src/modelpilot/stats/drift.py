"""Drift statistics: PSI, two-sample KS, Jensen-Shannon, chi-square, null rates, and the comparison.

`compare(profile, sketch)` is what the drift CronJob runs: a stored reference profile against the
merged window sketches of the model-server pods. `compare_frames(reference, current)` does the
same on whole data (the CLI and the benchmark).

Conventions (DESIGN.md, "Statistics conventions"):

- PSI = sum_i (c_i - r_i) * ln(c_i / r_i) over the profile's bins, where r_i and c_i are the
  reference and current shares with each share floored at 1e-4 so an empty bin stays finite
  (Siddiqi, "Credit Risk Scorecards", 2006). Bands: < 0.1 none, 0.1 to < 0.2 moderate, >= 0.2
  significant (the alert default).
- KS: the two-sample statistic sup |F1 - F2| computed from sorted samples, with the
  same floating-point operations as `scipy.stats.ks_2samp`; the p-value follows scipy's method
  selection ("auto": exact when both samples have at most 10,000 values, where we call
  `scipy.stats.ks_2samp` since its exact distribution is not public; otherwise Smirnov's
  asymptotic `kstwo.sf(d, round(n1*n2/(n1+n2)))`, through scipy's own branches, except that the
  branch scipy evaluates as 2 * smirnov(n, d) (drifted columns, n > 140) uses a vectorised
  Birnbaum-Tingey sum, `smirnov_sf`, ~20x faster at n = 1e5 and equal within 1e-10 relative).
- Jensen-Shannon distance (natural log, as `scipy.spatial.distance.jensenshannon`) between the
  unfloored bin shares.
- Categorical columns: chi-square test of homogeneity on the 2 x k table of reference and current
  counts (= `scipy.stats.chi2_contingency(correction=False)`), PSI and JS over the categories.
- Null rate: a change of at least `null_rate_threshold` (absolute) marks the column as drifted.
- The KS / chi-square p-values of all columns are adjusted together by Benjamini-Hochberg (the false
  discovery rate, = statsmodels `multipletests(method="fdr_bh")`); a test flags drift when its
  adjusted p-value is below `ks_pvalue`.

The one design decision: all numeric work goes through **sorted** arrays. Sorting once gives the
bin counts (searchsorted of the edges), the deciles and the KS statistic (a linear merge), so exact
KS over whole columns costs about two sorts per column plus scipy's p-value.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.special
import scipy.stats

from modelpilot import errors
from modelpilot.stats import profile as profiles

FloatArray = npt.NDArray[np.float64]
PSI_FLOOR = 1e-4
KS_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp's MAX_AUTO_N
METHODS = ("psi", "ks", "js", "chi2")
Band = Literal["none", "moderate", "significant"]


# ---- the statistics ------------------------------------------------------------------------


def psi(ref_props: Any, cur_props: Any, *, floor: float = PSI_FLOOR) -> Any:
    """Population stability index over the last axis (a float for 1-D input)."""
    r = np.maximum(np.asarray(ref_props, dtype=np.float64), floor)
    c = np.maximum(np.asarray(cur_props, dtype=np.float64), floor)
    if r.shape != c.shape:
        raise errors.InputError(f"psi: shapes differ ({r.shape} vs {c.shape})")
    out = np.sum((c - r) * np.log(c / r), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def psi_band(value: float) -> Band:
    if value >= 0.2:
        return "significant"
    if value >= 0.1:
        return "moderate"
    return "none"


def js_distance(p: Any, q: Any) -> Any:
    """Jensen-Shannon distance (natural log) over the last axis; = scipy's jensenshannon."""
    p_arr = np.asarray(p, dtype=np.float64)
    q_arr = np.asarray(q, dtype=np.float64)
    p_arr = p_arr / np.sum(p_arr, axis=-1, keepdims=True)
    q_arr = q_arr / np.sum(q_arr, axis=-1, keepdims=True)
    m = (p_arr + q_arr) / 2.0
    js = (
        np.sum(scipy.special.rel_entr(p_arr, m), axis=-1)
        + np.sum(scipy.special.rel_entr(q_arr, m), axis=-1)
    ) / 2.0
    out = np.sqrt(np.maximum(js, 0.0))
    return float(out) if np.ndim(out) == 0 else out


@dataclasses.dataclass(frozen=True)
class KsResult:
    statistic: float
    pvalue: float


def ks_statistic_sorted(x: FloatArray, y: FloatArray) -> float:
    """sup |F_x - F_y| for two sorted, non-empty, NaN-free samples.

    F_x - F_y rises only at points of x, so its maximum is at some x_i, where it is
    (i + 1)/n1 - #{y <= x_i}/n2 for the last x_i of a run of ties (earlier copies give less).
    Its minimum is on some interval [x_{j-1}, x_j), where F_x = j/n1 and F_y is at most
    #{y < x_j}/n2 (and 0 after the last x). Both come from searching x in y: once ("right") when
    no value of x occurs in y, twice ("left" too) when some do. The integers are those scipy's
    ks_2samp divides at the same points, so the extremes are the same floating-point numbers.
    """
    n1, n2 = x.shape[0], y.shape[0]
    right = np.searchsorted(y, x, side="right")  # #{y <= x_i}
    hit = right > 0
    cross_ties = bool(np.any(y[right[hit] - 1] == x[hit]))
    left = np.searchsorted(y, x, side="left") if cross_ties else right  # #{y < x_j}
    ranks = np.arange(n1 + 1) / n1
    max_s = float((ranks[1:] - right / n2).max())
    min_s = min(max(-float((ranks[:-1] - left / n2).min()), 0.0), 1.0)
    return max(max_s, min_s)


def smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x), the one-sided one-sample Smirnov tail, by the Birnbaum-Tingey (1951) sum

        x * sum_{j=0}^{floor(n(1-x))} C(n, j) (1 - x - j/n)^(n-j) (x + j/n)^(j-1),

    evaluated as one vectorised log-sum-exp. It is the quantity `scipy.special.smirnov(n, x)`
    computes term by term in C, which takes 0.5-2 s at n = 1e5-5e5; this takes ~1/20 of that and
    agrees within 1e-10 relative (tests/stats/test_drift.py checks it against scipy).
    """
    if x <= 0:
        return 1.0
    if x >= 1:
        return 0.0
    j = np.arange(0, math.floor(n * (1.0 - x)) + 1, dtype=np.float64)
    a = 1.0 - x - j / n
    b = x + j / n
    log_binom = scipy.special.gammaln(n + 1.0) - scipy.special.gammaln(j + 1.0)
    log_binom -= scipy.special.gammaln(n - j + 1.0)
    # The last term's 1 - x - j/n is 0 in exact arithmetic, and rounds to 0 or to a tiny negative
    # (log gives -inf or NaN): that term is dropped by the mask, so neither is worth a warning.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = log_binom + (n - j) * np.log(a) + (j - 1.0) * np.log(b)
    log_terms = np.where(a > 0, log_terms, -np.inf)
    top = float(log_terms.max())
    return float(x * math.exp(top) * np.exp(log_terms - top).sum())


def _kstwo_sf(d: float, n: int) -> float:
    """scipy.stats.kstwo.sf(d, n), taking scipy's own branches (scipy.stats._ksstats._kolmogn).

    Only the branch where scipy evaluates 2 * smirnov(n, d) for n > 140 (a drifted column: the
    p-value is below about 0.03) goes through `smirnov_sf`; every other case is scipy's call.
    """
    t = n * d
    if n > 140 and 1.0 < t < n - 1 and 0.0 < d < 1.0:
        nx2 = t * d
        if d >= 0.5 or 2.2 <= nx2 < 370.0:
            return min(max(2.0 * smirnov_sf(n, d), 0.0), 1.0)
        if nx2 >= 370.0:
            return 0.0
    return float(scipy.stats.kstwo.sf(d, n))


def ks_pvalues_asymptotic(d: Any, n1: Any, n2: Any) -> FloatArray:
    """Smirnov's two-sided asymptotic p-values, as scipy's ks_2samp(method="asymp").

    scipy uses kstwo.sf(d, round(n1*n2/(n1+n2))); so do we, column by column.
    """
    d_arr = np.atleast_1d(np.asarray(d, dtype=np.float64))
    n1f = np.atleast_1d(np.asarray(n1, dtype=np.float64))
    n2f = np.atleast_1d(np.asarray(n2, dtype=np.float64))
    en = np.round(n1f * n2f / (n1f + n2f))
    out: FloatArray = np.array(
        [_kstwo_sf(float(di), int(ni)) for di, ni in zip(d_arr, en, strict=True)], dtype=np.float64
    )
    return out


def _drop_nan(values: Any, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise errors.InputError(f"{name}: expected a 1-D sample")
    return arr[~np.isnan(arr)]


def ks_2samp(a: Any, b: Any) -> KsResult:
    """Two-sided two-sample KS test; statistic and p-value equal scipy.stats.ks_2samp's."""
    x = np.sort(_drop_nan(a, "ks_2samp first sample"))
    y = np.sort(_drop_nan(b, "ks_2samp second sample"))
    return _ks_sorted(x, y)


def _ks_sorted(x: FloatArray, y: FloatArray) -> KsResult:
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise errors.InputError("ks_2samp: both samples need at least one non-null value")
    d = ks_statistic_sorted(x, y)
    if max(x.shape[0], y.shape[0]) <= KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            # For some sizes scipy's exact method fails and it falls back to "asymp" with a
            # RuntimeWarning; the value is scipy's either way, so the warning is only noise here.
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
            pvalue = float(scipy.stats.ks_2samp(x, y).pvalue)
        return KsResult(statistic=d, pvalue=pvalue)
    return KsResult(statistic=d, pvalue=float(ks_pvalues_asymptotic(d, x.shape[0], y.shape[0])[0]))


@dataclasses.dataclass(frozen=True)
class Chi2Result:
    statistic: float
    pvalue: float
    dof: int


def chi2_homogeneity(ref_counts: Any, cur_counts: Any) -> Chi2Result:
    """Chi-square test that two count vectors come from one distribution (no continuity correction).

    Categories empty in both are dropped (they carry no information and would divide by zero).
    """
    table = np.vstack([np.asarray(ref_counts, np.float64), np.asarray(cur_counts, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return Chi2Result(statistic=0.0, pvalue=1.0, dof=0)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return Chi2Result(statistic=stat, pvalue=float(scipy.stats.chi2.sf(stat, dof)), dof=dof)


def benjamini_hochberg(pvalues: Any) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (step-up FDR), = statsmodels fdr_bh pvals_corrected."""
    p = np.asarray(pvalues, dtype=np.float64)
    n = p.shape[0]
    if n == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


# ---- the report ----------------------------------------------------------------------------


@dataclasses.dataclass
class FeatureDrift:
    name: str
    kind: profiles.Kind
    psi: float
    psi_band: Band
    js_distance: float
    null_rate_reference: float
    null_rate_current: float
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    ks_pvalue_adjusted: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    chi2_pvalue_adjusted: float | None = None
    drifted: bool = False
    reasons: list[str] = dataclasses.field(default_factory=list)
    bins: list[str] = dataclasses.field(default_factory=list)
    reference_proportions: list[float] = dataclasses.field(default_factory=list)
    current_proportions: list[float] = dataclasses.field(default_factory=list)

    @property
    def null_rate_delta(self) -> float:
        return self.null_rate_current - self.null_rate_reference

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["null_rate_delta"] = self.null_rate_delta
        return out


@dataclasses.dataclass
class DriftReport:
    features: list[FeatureDrift]
    methods: tuple[str, ...]
    psi_threshold: float
    ks_pvalue: float
    null_rate_threshold: float
    reference_rows: int
    current_rows: int
    ks_sample: str  # "exact" (whole columns) or "bounded" (profile sample vs window sample)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features), default=0.0)

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": list(self.methods),
            "psi_threshold": self.psi_threshold,
            "ks_pvalue": self.ks_pvalue,
            "null_rate_threshold": self.null_rate_threshold,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "ks_sample": self.ks_sample,
            "max_psi": self.max_psi,
            "drifted_features": self.drifted_features,
            "features": [f.to_dict() for f in self.features],
        }


def _check_settings(methods: Sequence[str], psi_threshold: float, ks_pvalue: float) -> None:
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise errors.InputError(
            f"methods: {', '.join(bad) or '(none)'} not allowed; choose from {', '.join(METHODS)}"
        )
    if not psi_threshold > 0:
        raise errors.InputError(f"psi_threshold must be > 0, got {psi_threshold}")
    if not 0 < ks_pvalue < 1:
        raise errors.InputError(f"ks_pvalue must be in (0, 1), got {ks_pvalue}")


def _bin_labels(col: profiles.ColumnProfile) -> list[str]:
    if col.kind == "categorical":
        return [*col.categories, profiles.OTHER]
    e = col.edges.tolist()
    lows = ["-inf", *[f"{v:.4g}" for v in e]]
    highs = [*[f"{v:.4g}" for v in e], "inf"]
    return [f"[{lo}, {hi})" for lo, hi in zip(lows, highs, strict=True)]


def _props(counts: FloatArray) -> FloatArray:
    total = counts.sum()
    return counts / total if total else np.zeros(counts.shape[0])


@dataclasses.dataclass
class _KsTests:
    """The KS tests of one comparison: statistics as the columns are read, p-values at the end.

    Small samples get scipy's exact p-value at once; the asymptotic ones are computed together,
    vectorised, by `pvalues`.
    """

    stats: dict[str, tuple[float, int, int]] = dataclasses.field(default_factory=dict)
    exact: dict[str, float] = dataclasses.field(default_factory=dict)

    def add(self, name: str, x: FloatArray, y: FloatArray) -> None:
        """Test column `name` on its sorted, non-empty reference (`x`) and current (`y`) values."""
        if max(x.shape[0], y.shape[0]) <= KS_EXACT_MAX_N:
            res = _ks_sorted(x, y)
            self.exact[name] = res.pvalue
            self.stats[name] = (res.statistic, x.shape[0], y.shape[0])
        else:
            self.stats[name] = (ks_statistic_sorted(x, y), x.shape[0], y.shape[0])

    def pvalues(self) -> dict[str, float]:
        asym = [n for n in self.stats if n not in self.exact]
        if not asym:
            return dict(self.exact)
        d, n1, n2 = (np.array([self.stats[n][i] for n in asym]) for i in range(3))
        pv = ks_pvalues_asymptotic(d, n1, n2)
        return {**self.exact, **dict(zip(asym, pv.tolist(), strict=True))}


def _report(
    feats: list[FeatureDrift],
    ks: _KsTests,
    *,
    methods: Sequence[str],
    psi_threshold: float,
    ks_pvalue: float,
    js_threshold: float,
    null_rate_threshold: float,
    reference_rows: int,
    current_rows: int,
    ks_sample: str,
) -> DriftReport:
    """Fill KS p-values, BH adjustment and the drift decision into `feats`; the report of them."""
    pvalues = ks.pvalues()
    for f in feats:
        if f.name in ks.stats:
            f.ks_statistic = ks.stats[f.name][0]
            f.ks_pvalue = pvalues[f.name]
    tested = [f for f in feats if f.ks_pvalue is not None or f.chi2_pvalue is not None]
    raw = [f.ks_pvalue if f.ks_pvalue is not None else f.chi2_pvalue for f in tested]
    adjusted = benjamini_hochberg(np.array(raw, dtype=np.float64))
    for f, adj in zip(tested, adjusted.tolist(), strict=True):
        if f.ks_pvalue is not None:
            f.ks_pvalue_adjusted = adj
        else:
            f.chi2_pvalue_adjusted = adj
    for f in feats:
        reasons = []
        if "psi" in methods and f.psi >= psi_threshold:
            reasons.append(f"psi {f.psi:.3f} >= {psi_threshold}")
        if (
            "ks" in methods
            and f.ks_pvalue_adjusted is not None
            and f.ks_pvalue_adjusted < ks_pvalue
        ):
            reasons.append(f"ks adjusted p {f.ks_pvalue_adjusted:.3g} < {ks_pvalue}")
        if (
            ("chi2" in methods or "ks" in methods)
            and f.chi2_pvalue_adjusted is not None
            and f.chi2_pvalue_adjusted < ks_pvalue
        ):
            reasons.append(f"chi2 adjusted p {f.chi2_pvalue_adjusted:.3g} < {ks_pvalue}")
        if "js" in methods and f.js_distance >= js_threshold:
            reasons.append(f"js {f.js_distance:.3f} >= {js_threshold}")
        if abs(f.null_rate_delta) >= null_rate_threshold:
            reasons.append(f"null rate {f.null_rate_reference:.3f} -> {f.null_rate_current:.3f}")
        f.reasons = reasons
        f.drifted = bool(reasons)
    return DriftReport(
        features=feats,
        methods=tuple(methods),
        psi_threshold=psi_threshold,
        ks_pvalue=ks_pvalue,
        null_rate_threshold=null_rate_threshold,
        reference_rows=reference_rows,
        current_rows=current_rows,
        ks_sample=ks_sample,
    )


def _feature(
    col: profiles.ColumnProfile,
    *,
    cur_counts: FloatArray,
    null_rate_current: float,
) -> FeatureDrift:
    ref_p = col.proportions
    cur_p = _props(cur_counts)
    value = float(psi(ref_p, cur_p))
    has_current = bool(cur_counts.sum() > 0)
    f = FeatureDrift(
        name=col.name,
        kind=col.kind,
        psi=value,
        psi_band=psi_band(value),
        js_distance=float(js_distance(ref_p, cur_p)) if has_current else 0.0,
        null_rate_reference=col.null_rate,
        null_rate_current=null_rate_current,
        bins=_bin_labels(col),
        reference_proportions=ref_p.tolist(),
        current_proportions=cur_p.tolist(),
    )
    if col.kind == "categorical":
        chi = chi2_homogeneity(col.counts, cur_counts)
        f.chi2_statistic, f.chi2_pvalue = chi.statistic, chi.pvalue
    return f


def compare(
    profile: profiles.ReferenceProfile,
    sketch: profiles.WindowSketch,
    *,
    psi_threshold: float = 0.2,
    ks_pvalue: float = 0.01,
    methods: Sequence[str] = ("psi", "ks"),
    js_threshold: float = 0.1,
    null_rate_threshold: float = 0.05,
) -> DriftReport:
    """Compare a window sketch with the reference profile it was made over.

    KS uses the profile's bounded reference sample against the sketch's bounded window sample.
    """
    _check_settings(methods, psi_threshold, ks_pvalue)
    if sketch.fingerprint != profile.fingerprint():
        raise errors.InputError("drift: the window sketch was made over a different profile")
    if sketch.row_count == 0:
        raise errors.InputError("drift: the window is empty (no rows since the last run)")
    feats: list[FeatureDrift] = []
    ks = _KsTests()
    for name, col in profile.columns.items():
        cur_counts = sketch.counts(name).astype(np.float64)
        feats.append(_feature(col, cur_counts=cur_counts, null_rate_current=sketch.null_rate(name)))
        if col.kind == "numeric":
            x = col.sample
            y = np.sort(sketch.sample(name))
            if x.shape[0] and y.shape[0]:
                ks.add(name, x, y)
    return _report(
        feats,
        ks,
        methods=methods,
        psi_threshold=psi_threshold,
        ks_pvalue=ks_pvalue,
        js_threshold=js_threshold,
        null_rate_threshold=null_rate_threshold,
        reference_rows=max((c.row_count for c in profile.columns.values()), default=0),
        current_rows=sketch.row_count,
        ks_sample="bounded",
    )


def _sorted_numeric(name: str, values: Any, side: str) -> tuple[FloatArray, int]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise errors.InputError(f"column {name!r}: expected a 1-D array in the {side} data")
    if arr.dtype.kind not in "iuf":
        raise errors.InputError(
            f"column {name!r}: numeric in the reference but not in the {side} data"
        )
    x = np.sort(arr.astype(np.float64, copy=False))
    # NaN sorts last, so the non-null values are a prefix of the sorted array.
    n_null = int(np.count_nonzero(np.isnan(x[-1:]))) and int(np.count_nonzero(np.isnan(x)))
    return (x[: x.shape[0] - n_null] if n_null else x), n_null


def _counts_from_sorted(x: FloatArray, edges: FloatArray) -> FloatArray:
    """Bin counts with bins [e_{i-1}, e_i), from a sorted sample: two searchsorteds of the edges."""
    cuts = np.concatenate([[0], np.searchsorted(x, edges, side="left"), [x.shape[0]]])
    return np.diff(cuts).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class _NumericColumn:
    """One numeric column of `compare_frames`, computed apart from the others."""

    profile: profiles.ColumnProfile
    current_counts: FloatArray
    current_nulls: int
    samples: tuple[FloatArray, FloatArray] | None
    """Both sorted samples, when they are small enough for scipy's exact KS p-value."""
    ks: tuple[float, int, int] | None
    """(statistic, n1, n2) otherwise; neither when every current value is null."""


def _numeric_column(name: str, ref_arr: Any, cur_arr: Any, *, bins: int) -> _NumericColumn:
    x, x_null = _sorted_numeric(name, ref_arr, "reference")
    y, y_null = _sorted_numeric(name, cur_arr, "current")
    if x.shape[0] == 0:
        raise errors.InputError(f"column {name!r}: every reference value is null")
    edges = profiles.quantile_edges(x, bins)
    small = max(x.shape[0], y.shape[0]) <= KS_EXACT_MAX_N
    return _NumericColumn(
        profile=profiles.ColumnProfile(
            name=name,
            kind="numeric",
            counts=_counts_from_sorted(x, edges).astype(np.int64),
            null_count=x_null,
            row_count=int(ref_arr.shape[0]),
            edges=edges,
        ),
        current_counts=_counts_from_sorted(y, edges),
        current_nulls=y_null,
        samples=(x, y) if y.shape[0] and small else None,
        ks=(ks_statistic_sorted(x, y), x.shape[0], y.shape[0])
        if y.shape[0] and not small
        else None,
    )


def compare_frames(
    reference_columns: Mapping[str, Any],
    current_columns: Mapping[str, Any],
    *,
    bins: int = 10,
    psi_threshold: float = 0.2,
    ks_pvalue: float = 0.01,
    methods: Sequence[str] = ("psi", "ks"),
    js_threshold: float = 0.1,
    null_rate_threshold: float = 0.05,
    max_categories: int = profiles.DEFAULT_MAX_CATEGORIES,
) -> DriftReport:
    """Compare whole current data with whole reference data, column by column.

    Bins are the reference deciles (or `bins` quantiles), exactly as `build_profile` makes them; KS
    is exact over the whole columns (no sampling). Columns are those of the reference; each must
    be present in the current data. Numeric columns are sorted and searched on one thread per
    core (numpy releases the GIL there); the report is the same as column by column.
    """
    _check_settings(methods, psi_threshold, ks_pvalue)
    if bins < 2:
        raise errors.InputError(f"bins must be at least 2, got {bins}")
    if not reference_columns:
        raise errors.InputError("no columns to compare")
    missing = [n for n in reference_columns if n not in current_columns]
    if missing:
        raise errors.InputError(f"current data: missing column(s) {', '.join(missing)}")
    feats: list[FeatureDrift] = []
    ks = _KsTests()
    ref_rows = cur_rows = 0
    arrays = {
        n: (np.asarray(r), np.asarray(current_columns[n])) for n, r in reference_columns.items()
    }
    for name, (ref_arr, cur_arr) in arrays.items():
        ref_rows, cur_rows = max(ref_rows, ref_arr.shape[0]), max(cur_rows, cur_arr.shape[0])
        if ref_arr.shape[0] == 0 or cur_arr.shape[0] == 0:
            side = "reference" if ref_arr.shape[0] == 0 else "current"
            raise errors.InputError(f"column {name!r}: the {side} data has no rows")
    numeric = [n for n, (r, _) in arrays.items() if profiles.column_kind(r) == "numeric"]
    # The numeric columns' sorts and searches (nearly all of the time) release the GIL: prepare
    # them on every core. map() yields in column order, so the first bad column raises first.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(len(numeric), cores or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        prepared = dict(
            zip(
                numeric,
                pool.map(lambda n: _numeric_column(n, *arrays[n], bins=bins), numeric),
                strict=True,
            )
        )
    for name, (ref_arr, cur_arr) in arrays.items():
        if name in prepared:
            c = prepared[name]
            f = _feature(
                c.profile,
                cur_counts=c.current_counts,
                null_rate_current=c.current_nulls / cur_arr.shape[0],
            )
            if c.samples is not None:
                ks.add(name, *c.samples)
            elif c.ks is not None:
                ks.stats[name] = c.ks
        else:
            prof = profiles.build_profile(
                {name: ref_arr},
                bins=bins,
                sample_size=1,
                rng=np.random.default_rng(0),
                max_categories=max_categories,
            )
            col = prof.columns[name]
            cur_counts, cur_null, _ = profiles.bin_categorical(cur_arr, col.categories)
            f = _feature(
                col,
                cur_counts=cur_counts.astype(np.float64),
                null_rate_current=cur_null / cur_arr.shape[0],
            )
        feats.append(f)
    return _report(
        feats,
        ks,
        methods=methods,
        psi_threshold=psi_threshold,
        ks_pvalue=ks_pvalue,
        js_threshold=js_threshold,
        null_rate_threshold=null_rate_threshold,
        reference_rows=ref_rows,
        current_rows=cur_rows,
        ks_sample="exact",
    )
