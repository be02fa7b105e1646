"""Reference profiles and mergeable window sketches: the inputs of a drift comparison.

A `ReferenceProfile` is computed once, when a model is registered, from the training (reference)
data: per column its kind (numeric or categorical), the bin edges at the reference deciles, the
reference counts per bin or category, the null count, and a bounded sorted sample for the KS test.
A `WindowSketch` is what a model server keeps about recent inputs: counts over the *profile's* bins,
null counts, a row count, and a bounded uniform sample per column.

The one design decision: the window's sample is a **bottom-k sketch** rather than a classic
reservoir. Every row gets an independent uniform key and each column keeps the values with the k
smallest keys. That is a uniform sample without replacement of the rows seen, and two sketches merge
exactly by keeping the k smallest keys of the union, so windows from many pods combine into a
uniform sample of all their rows (the weighting a reservoir merge must otherwise get right by hand)
while counts simply add. Keys are drawn from `default_rng([seed, rows_seen])`, so a sketch carries
no generator state and its JSON form is complete; give each pod its own seed.

Binning convention (the same as `np.histogram` on `[-inf, e1, ..., e9, inf]`): the internal edges
are the reference deciles (10 bins by default) with duplicates removed, and a value x falls in bin
i when edges[i-1] <= x < edges[i]. Categorical columns keep the `max_categories` most frequent
reference categories (as strings); everything else, including categories never seen in the
reference, is counted in one trailing "other" bin.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from modelpilot import errors

Kind = Literal["numeric", "categorical"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_MAX_CATEGORIES = 50
OTHER = "__other__"


# ---- helpers -------------------------------------------------------------------------------


def _is_null_object(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """None and float NaN are nulls in an object column (what CSV/Parquet readers produce)."""
    out = np.fromiter(
        (v is None or (isinstance(v, float) and v != v) for v in values.tolist()),
        dtype=bool,
        count=values.shape[0],
    )
    return out


def column_kind(values: npt.NDArray[Any]) -> Kind:
    """Numbers (ints, floats) are numeric; anything else (strings, bools, objects) categorical."""
    if values.dtype.kind in "iuf":
        return "numeric"
    return "categorical"


def _as_1d(name: str, values: Any) -> npt.NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise errors.InputError(f"column {name!r}: expected a 1-D array, got shape {arr.shape}")
    return arr


def _numeric(name: str, values: npt.NDArray[Any]) -> FloatArray:
    if values.dtype.kind in "iuf":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind == "O":
        mask = _is_null_object(values)
        out = np.full(values.shape[0], np.nan)
        try:
            out[~mask] = values[~mask].astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise errors.InputError(
                f"column {name!r}: the reference profile says numeric, got non-numeric values"
            ) from exc
        return out
    raise errors.InputError(
        f"column {name!r}: the reference profile says numeric, got values of type {values.dtype}"
    )


def bin_numeric(values: FloatArray, edges: FloatArray) -> tuple[IntArray, int]:
    """Counts of the non-null values per bin (len(edges) + 1 bins) and the null count."""
    nulls = np.isnan(values)
    n_null = int(nulls.sum())
    # Contiguous first: a column of a row-major matrix is strided, and every pass below reads it.
    finite = values[~nulls] if n_null else np.ascontiguousarray(values)
    if edges.shape[0] <= 32:
        # A few edges: one vectorised comparison per edge beats a binary search per value (the
        # branchy searchsorted), and counts the same bins [e_{i-1}, e_i).
        below = [int(np.count_nonzero(finite < e)) for e in edges.tolist()]
        cuts = np.array([0, *below, finite.shape[0]], dtype=np.int64)
        return np.diff(cuts), n_null
    idx = np.searchsorted(edges, finite, side="right")
    counts = np.bincount(idx, minlength=edges.shape[0] + 1).astype(np.int64)
    return counts, n_null


def _category_index(categories: Sequence[str]) -> dict[str, int]:
    return {c: i for i, c in enumerate(categories)}


def bin_categorical(
    values: npt.NDArray[Any], categories: Sequence[str]
) -> tuple[IntArray, int, npt.NDArray[np.bool_]]:
    """Counts per category (plus a trailing "other" bin), the null count and the null mask."""
    nulls = (
        np.isnan(values)
        if values.dtype.kind == "f"
        else (_is_null_object(values) if values.dtype.kind == "O" else np.zeros(len(values), bool))
    )
    present = values[~nulls]
    counts = np.zeros(len(categories) + 1, dtype=np.int64)
    if present.shape[0]:
        uniq, inverse = np.unique(present.astype(str), return_inverse=True)
        index = _category_index(categories)
        other = len(categories)
        target = np.array([index.get(str(u), other) for u in uniq.tolist()], dtype=np.int64)
        counts += np.bincount(target[inverse.ravel()], minlength=len(categories) + 1)
    return counts, int(nulls.sum()), nulls


# ---- the reference profile -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ColumnProfile:
    """One reference column. `counts` has one entry per bin (numeric) or per category + other."""

    name: str
    kind: Kind
    counts: IntArray
    null_count: int
    row_count: int
    edges: FloatArray = dataclasses.field(default_factory=lambda: np.empty(0))
    categories: tuple[str, ...] = ()
    sample: FloatArray = dataclasses.field(default_factory=lambda: np.empty(0))

    @property
    def proportions(self) -> FloatArray:
        total = self.counts.sum()
        return self.counts / total if total else np.zeros(self.counts.shape[0])

    @property
    def null_rate(self) -> float:
        return self.null_count / self.row_count if self.row_count else 0.0

    @property
    def n_bins(self) -> int:
        return int(self.counts.shape[0])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "counts": self.counts.tolist(),
            "proportions": self.proportions.tolist(),
            "null_count": self.null_count,
            "row_count": self.row_count,
            "null_rate": self.null_rate,
        }
        if self.kind == "numeric":
            out["edges"] = self.edges.tolist()
            out["sample"] = self.sample.tolist()
        else:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        try:
            kind = data["kind"]
            if kind not in ("numeric", "categorical"):
                raise errors.InputError(
                    f"profile column {data.get('name')!r}: kind must be numeric or categorical"
                )
            return cls(
                name=str(data["name"]),
                kind=kind,
                counts=np.asarray(data["counts"], dtype=np.int64),
                null_count=int(data["null_count"]),
                row_count=int(data["row_count"]),
                edges=np.asarray(data.get("edges", []), dtype=np.float64),
                categories=tuple(str(c) for c in data.get("categories", [])),
                sample=np.asarray(data.get("sample", []), dtype=np.float64),
            )
        except KeyError as exc:
            raise errors.InputError(f"profile column: missing key {exc.args[0]!r}") from exc

    def binning(self) -> dict[str, Any]:
        """What a window needs to count like this column: kind, edges, categories."""
        return {
            "name": self.name,
            "kind": self.kind,
            "edges": self.edges.tolist(),
            "categories": list(self.categories),
        }


@dataclasses.dataclass(frozen=True)
class ReferenceProfile:
    """Per-column reference statistics, computed once by `build_profile`."""

    columns: Mapping[str, ColumnProfile]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "columns": [c.to_dict() for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        if not isinstance(data, Mapping) or not isinstance(data.get("columns"), list):
            raise errors.InputError("profile: expected an object with a 'columns' list")
        cols = [ColumnProfile.from_dict(c) for c in data["columns"]]
        return cls(columns={c.name: c for c in cols})

    def binning(self) -> list[dict[str, Any]]:
        return [c.binning() for c in self.columns.values()]

    def fingerprint(self) -> str:
        return binning_fingerprint(self.binning())


def binning_fingerprint(binning: Sequence[Mapping[str, Any]]) -> str:
    blob = json.dumps(list(binning), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def quantile_edges(values: FloatArray, bins: int) -> FloatArray:
    """The internal bin edges at the reference quantiles 1/bins, ..., (bins-1)/bins, deduplicated.

    Written as `np.percentile(values, np.linspace(0, 100, bins + 1))` (linear interpolation), the
    way a plain implementation computes deciles, so the edges agree with one to the last bit.
    """
    qs = np.linspace(0.0, 100.0, bins + 1)[1:-1]
    return np.unique(np.percentile(values, qs))


def build_profile(
    columns: Mapping[str, Any],
    *,
    bins: int = 10,
    sample_size: int = 5000,
    rng: np.random.Generator,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> ReferenceProfile:
    """Profile reference data given as {column name: 1-D array}.

    Numeric columns get decile edges (configurable `bins`), counts per bin and a sorted uniform
    sample of at most `sample_size` non-null values (the KS reference); categorical columns get the
    `max_categories` most frequent categories with their counts.
    """
    if bins < 2:
        raise errors.InputError(f"bins must be at least 2, got {bins}")
    if sample_size < 1:
        raise errors.InputError(f"sample_size must be at least 1, got {sample_size}")
    if not columns:
        raise errors.InputError("no columns to profile")
    out: dict[str, ColumnProfile] = {}
    for name, raw in columns.items():
        arr = _as_1d(name, raw)
        rows = int(arr.shape[0])
        if rows == 0:
            raise errors.InputError(f"column {name!r}: the reference has no rows")
        if column_kind(arr) == "numeric":
            values = arr.astype(np.float64, copy=False)
            present = values[~np.isnan(values)]
            if present.shape[0] == 0:
                raise errors.InputError(f"column {name!r}: every reference value is null")
            edges = quantile_edges(present, bins)
            counts, _ = bin_numeric(present, edges)
            if present.shape[0] > sample_size:
                sample = rng.choice(present, size=sample_size, replace=False)
            else:
                sample = present.copy()
            out[name] = ColumnProfile(
                name=name,
                kind="numeric",
                counts=counts,
                null_count=rows - int(present.shape[0]),
                row_count=rows,
                edges=edges,
                sample=np.sort(sample),
            )
        else:
            nulls = _is_null_object(arr) if arr.dtype.kind == "O" else np.zeros(rows, dtype=bool)
            present_s = arr[~nulls].astype(str)
            if present_s.shape[0] == 0:
                raise errors.InputError(f"column {name!r}: every reference value is null")
            uniq, freq = np.unique(present_s, return_counts=True)
            # Most frequent first; ties broken by the category's text so profiles are reproducible.
            order = np.lexsort((uniq, -freq))[:max_categories]
            categories = tuple(str(u) for u in uniq[order].tolist())
            counts, n_null, _ = bin_categorical(arr, categories)
            out[name] = ColumnProfile(
                name=name,
                kind="categorical",
                counts=counts,
                null_count=n_null,
                row_count=rows,
                categories=categories,
            )
    return ReferenceProfile(columns=out)


# ---- the window sketch ---------------------------------------------------------------------


@dataclasses.dataclass
class _ColumnWindow:
    counts: IntArray
    null_count: int
    sample: FloatArray  # numeric columns: values; categorical: bin indices (as floats)
    keys: FloatArray  # the bottom-k keys of the sampled values, same order as `sample`


class WindowSketch:
    """Counts over a profile's bins plus a bounded uniform sample per column; merges by addition.

    Create with `WindowSketch.empty(profile, reservoir_size=..., seed=...)`, feed with
    `update({name: array})` or `update_rows(matrix)` (columns in `feature_names` order), combine
    with `merge`, ship as `to_dict()` / `from_dict()`.
    """

    def __init__(
        self,
        *,
        binning: Sequence[Mapping[str, Any]],
        reservoir_size: int,
        seed: int,
        row_count: int = 0,
        columns: Mapping[str, _ColumnWindow] | None = None,
    ) -> None:
        if reservoir_size < 1:
            raise errors.InputError(f"reservoir_size must be at least 1, got {reservoir_size}")
        self._binning = [dict(b) for b in binning]
        self._edges = {b["name"]: np.asarray(b["edges"], dtype=np.float64) for b in binning}
        self._kinds: dict[str, Kind] = {b["name"]: b["kind"] for b in binning}
        self._categories = {b["name"]: tuple(b["categories"]) for b in binning}
        self.reservoir_size = reservoir_size
        self.seed = seed
        self.row_count = row_count
        self.fingerprint = binning_fingerprint(self._binning)
        if columns is None:
            columns = {
                name: _ColumnWindow(
                    counts=np.zeros(self._n_bins(name), dtype=np.int64),
                    null_count=0,
                    sample=np.empty(0),
                    keys=np.empty(0),
                )
                for name in self._kinds
            }
        self.columns: dict[str, _ColumnWindow] = dict(columns)

    def _n_bins(self, name: str) -> int:
        if self._kinds[name] == "numeric":
            return int(self._edges[name].shape[0]) + 1
        return len(self._categories[name]) + 1

    @classmethod
    def empty(
        cls, profile: ReferenceProfile, *, reservoir_size: int = 5000, seed: int = 0
    ) -> WindowSketch:
        return cls(binning=profile.binning(), reservoir_size=reservoir_size, seed=seed)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def kind(self, name: str) -> Kind:
        return self._kinds[name]

    def counts(self, name: str) -> IntArray:
        return self.columns[name].counts

    def null_count(self, name: str) -> int:
        return self.columns[name].null_count

    def sample(self, name: str) -> FloatArray:
        """The sampled non-null values of a numeric column (in no particular order)."""
        return self.columns[name].sample

    def null_rate(self, name: str) -> float:
        return self.columns[name].null_count / self.row_count if self.row_count else 0.0

    # -- feeding -------------------------------------------------------------------------

    def _keys(self, n: int) -> FloatArray:
        rng = np.random.default_rng([self.seed, self.row_count])
        return rng.random(n)

    def update(self, columns: Mapping[str, Any]) -> None:
        """Add a batch given as {column name: 1-D array}; every profiled column must be present."""
        missing = [n for n in self._kinds if n not in columns]
        if missing:
            raise errors.InputError(f"window update: missing column(s) {', '.join(missing)}")
        arrays = {n: _as_1d(n, columns[n]) for n in self._kinds}
        lengths = {a.shape[0] for a in arrays.values()}
        if len(lengths) != 1:
            raise errors.InputError("window update: columns have different lengths")
        (n,) = lengths
        if n == 0:
            return
        keys = self._keys(n)
        bottom = _bottom_k(keys, self.reservoir_size)
        for name, arr in arrays.items():
            self._update_column(name, arr, keys, bottom)
        self.row_count += n

    def update_rows(self, matrix: Any) -> None:
        """Add a batch of rows (2-D array or list of lists), columns in `feature_names` order."""
        arr = np.asarray(matrix)
        if arr.ndim != 2 or arr.shape[1] != len(self._kinds):
            raise errors.InputError(
                f"window update: expected rows of {len(self._kinds)} values "
                f"({', '.join(self._kinds)}), got shape {arr.shape}"
            )
        self.update({name: arr[:, i] for i, name in enumerate(self._kinds)})

    def _update_column(
        self, name: str, arr: npt.NDArray[Any], keys: FloatArray, bottom: IntArray
    ) -> None:
        col = self.columns[name]
        if self._kinds[name] == "numeric":
            values = _numeric(name, arr)
            counts, n_null = bin_numeric(values, self._edges[name])
            nulls = np.isnan(values)
            sample_values = values
        else:
            counts, n_null, nulls = bin_categorical(arr, self._categories[name])
            # Categorical samples are not needed for any test; keep the column's bin index only.
            sample_values = np.zeros(arr.shape[0])
        col.counts = col.counts + counts
        col.null_count += n_null
        if self._kinds[name] != "numeric":
            return
        # Bottom-k: the k smallest keys among the non-null rows of this batch, then of the union.
        if n_null:
            present = np.flatnonzero(~nulls)
            take = present[_bottom_k(keys[present], self.reservoir_size)]
        else:
            take = bottom
        self._merge_sample(col, sample_values[take], keys[take])

    def _merge_sample(self, col: _ColumnWindow, values: FloatArray, keys: FloatArray) -> None:
        all_keys = np.concatenate([col.keys, keys])
        all_values = np.concatenate([col.sample, values])
        if all_keys.shape[0] > self.reservoir_size:
            keep = np.argpartition(all_keys, self.reservoir_size - 1)[: self.reservoir_size]
            all_keys, all_values = all_keys[keep], all_values[keep]
        col.keys, col.sample = all_keys, all_values

    def merge(self, other: WindowSketch) -> WindowSketch:
        """A new sketch of both windows: counts add, samples keep the smallest keys of the union."""
        if other.fingerprint != self.fingerprint:
            raise errors.InputError("window merge: the sketches were made over different profiles")
        size = min(self.reservoir_size, other.reservoir_size)
        merged = WindowSketch(
            binning=self._binning,
            reservoir_size=size,
            seed=self.seed,
            row_count=self.row_count + other.row_count,
        )
        for name, mine in self.columns.items():
            theirs = other.columns[name]
            col = merged.columns[name]
            col.counts = mine.counts + theirs.counts
            col.null_count = mine.null_count + theirs.null_count
            merged._merge_sample(col, mine.sample, mine.keys)
            merged._merge_sample(col, theirs.sample, theirs.keys)
        return merged

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "fingerprint": self.fingerprint,
            "reservoir_size": self.reservoir_size,
            "seed": self.seed,
            "row_count": self.row_count,
            "binning": self._binning,
            "columns": {
                name: {
                    "counts": c.counts.tolist(),
                    "null_count": c.null_count,
                    "sample": c.sample.tolist(),
                    "keys": c.keys.tolist(),
                }
                for name, c in self.columns.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowSketch:
        try:
            sketch = cls(
                binning=data["binning"],
                reservoir_size=int(data["reservoir_size"]),
                seed=int(data["seed"]),
                row_count=int(data["row_count"]),
                columns={
                    name: _ColumnWindow(
                        counts=np.asarray(c["counts"], dtype=np.int64),
                        null_count=int(c["null_count"]),
                        sample=np.asarray(c["sample"], dtype=np.float64),
                        keys=np.asarray(c["keys"], dtype=np.float64),
                    )
                    for name, c in data["columns"].items()
                },
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise errors.InputError(f"window sketch: malformed ({exc})") from exc
        if set(sketch.columns) != set(sketch._kinds):
            raise errors.InputError("window sketch: columns do not match its binning")
        for name, col in sketch.columns.items():
            if col.counts.shape[0] != sketch._n_bins(name):
                raise errors.InputError(f"window sketch: column {name!r} has the wrong bin count")
        return sketch


def _bottom_k(keys: FloatArray, k: int) -> IntArray:
    """Indices of the k smallest keys (all of them if there are fewer), in linear time."""
    if keys.shape[0] <= k:
        return np.arange(keys.shape[0])
    out: IntArray = np.argpartition(keys, k - 1)[:k]
    return out


def merge_all(sketches: Iterable[WindowSketch]) -> WindowSketch:
    """Merge any number of sketches (for example one per model-server pod)."""
    it = iter(sketches)
    try:
        acc = next(it)
    except StopIteration:
        raise errors.InputError("no window sketches to merge") from None
    for s in it:
        acc = acc.merge(s)
    return acc
