"""The drift window document: what a model server answers on `/drift/window` and flushes to MLflow.

One typed model in the contract package (it moved here from the drift job, issue 14), imported by
both sides: the model server's window (`modelserver.window`) writes it, the drift job (`collect`,
`persisted`) validates every document it reads with it, so a window with `"row_count": -5`, NaN
counts, a sample longer than its reservoir, counts that do not add up to the rows, or columns that
do not match the binning is refused with a message naming the field, before it can reach a
statistic.

Design decision: every window carries its `source`, the pod, the *epoch* (a random id drawn when
the server process started) and a flush `sequence`. A process's window is cumulative for that
process, so the newest document per (pod, epoch) holds everything the older ones did: the drift job
keeps exactly one document per epoch (live beats persisted, a higher sequence beats a lower one),
which makes the same pod listed twice, reached through two addresses, or seen both live and
flushed, count once. Windows without a source (older servers) are identified by their sketch seed,
which is drawn per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic

from modelpilot.stats import profile as profile_mod

MAX_FEATURES = 10_000
MAX_RESERVOIR = 1_000_000

Count = Annotated[int, pydantic.Field(strict=True, ge=0)]
Finite = Annotated[float, pydantic.Field(allow_inf_nan=False)]
Key = Annotated[float, pydantic.Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
Name = Annotated[str, pydantic.Field(min_length=1, max_length=253)]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)


class ColumnBinning(_Strict):
    """How one column is counted: the reference profile's bins (edges) or categories."""

    name: Name
    kind: Literal["numeric", "categorical"]
    edges: list[Finite] = pydantic.Field(default_factory=list, max_length=100_000)
    categories: list[str] = pydantic.Field(default_factory=list, max_length=100_000)

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.categories) + 1


class ColumnCounts(_Strict):
    """One column of a window: counts per bin, nulls, and the bottom-k sample with its keys."""

    counts: list[Count] = pydantic.Field(max_length=100_001)
    null_count: Count
    sample: list[Finite] = pydantic.Field(max_length=MAX_RESERVOIR)
    keys: list[Key] = pydantic.Field(max_length=MAX_RESERVOIR)


class WindowSource(_Strict):
    """Who made the window: the pod, its process epoch, and the flush sequence number."""

    pod: Name
    epoch: Annotated[str, pydantic.Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    sequence: Count
    flushed_at: Finite | None = None
    """Unix time the document was written (None on a live answer)."""
    window_seconds: Annotated[float, pydantic.Field(gt=0, allow_inf_nan=False)] | None = None
    """The server's rotation period: the window covers one to two of these."""


class Window(_Strict):
    """A `WindowSketch` in JSON (`profile.WindowSketch.to_dict`), checked for consistency."""

    version: Literal[1] = 1
    fingerprint: Annotated[str, pydantic.Field(min_length=1, max_length=64)]
    reservoir_size: Annotated[int, pydantic.Field(strict=True, ge=1, le=MAX_RESERVOIR)]
    seed: Annotated[int, pydantic.Field(strict=True)]
    row_count: Count
    binning: list[ColumnBinning] = pydantic.Field(min_length=1, max_length=MAX_FEATURES)
    columns: dict[str, ColumnCounts] = pydantic.Field(max_length=MAX_FEATURES)
    source: WindowSource | None = None

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Window:
        names = [b.name for b in self.binning]
        if len(set(names)) != len(names):
            raise ValueError("binning: a column is listed twice")
        missing = sorted(set(names) - set(self.columns))
        extra = sorted(set(self.columns) - set(names))
        if missing or extra:
            raise ValueError(
                "columns do not match the binning"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}" if extra else "")
            )
        for b in self.binning:
            col = self.columns[b.name]
            where = f"columns.{b.name}"
            if len(col.counts) != b.n_bins:
                raise ValueError(
                    f"{where}.counts: {len(col.counts)} bins, the binning has {b.n_bins}"
                )
            if sum(col.counts) + col.null_count != self.row_count:
                raise ValueError(
                    f"{where}: counts ({sum(col.counts)}) plus nulls ({col.null_count}) are not "
                    f"row_count ({self.row_count})"
                )
            if len(col.sample) != len(col.keys):
                raise ValueError(f"{where}: {len(col.sample)} samples but {len(col.keys)} keys")
            if len(col.sample) > min(self.reservoir_size, self.row_count - col.null_count):
                raise ValueError(
                    f"{where}.sample: {len(col.sample)} values, more than the reservoir "
                    f"({self.reservoir_size}) or the non-null rows"
                )
        fingerprint = profile_mod.binning_fingerprint(
            [
                {"name": b.name, "kind": b.kind, "edges": b.edges, "categories": b.categories}
                for b in self.binning
            ]
        )
        if fingerprint != self.fingerprint:
            raise ValueError("fingerprint: does not match the binning")
        return self

    def to_sketch(self) -> profile_mod.WindowSketch:
        return profile_mod.WindowSketch.from_dict(self.model_dump(exclude={"source"}))

    def identity(self) -> tuple[str, str]:
        """What makes two documents the same process's window (see the module docstring)."""
        if self.source is not None:
            return self.source.pod, self.source.epoch
        return "seed", str(self.seed)

    def newness(self) -> tuple[int, int]:
        """Order of documents of one identity: a live answer, then the highest sequence."""
        if self.source is None:
            return 1, self.row_count
        return (1 if self.source.flushed_at is None else 0), self.source.sequence


class ModelRef(_Strict):
    name: Name
    version: Annotated[str, pydantic.Field(min_length=1, max_length=32)]

    @pydantic.field_validator("version", mode="before")
    @classmethod
    def _int_version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class WindowDocument(_Strict):
    """The whole answer of `GET /drift/window` (and of a flushed window)."""

    deployment: Annotated[str, pydantic.Field(max_length=253)] = ""
    variant: Annotated[str, pydantic.Field(max_length=253)] = ""
    model: ModelRef
    window: Window


class InvalidWindowError(ValueError):
    """A window document that does not validate; the message names the field."""


def describe(error: pydantic.ValidationError) -> str:
    """The first problem of a validation error as `field.path: what is wrong`."""
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(document)"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = error.error_count() - 1
    return f"{loc}: {message}" + (f" (and {more} more)" if more > 0 else "")


def parse(raw: bytes | str) -> WindowDocument:
    """Validate a JSON window document; `InvalidWindowError` names the field otherwise.

    pydantic-core parses the JSON itself (in Rust, with a nesting limit), so a document of 10,000
    nested brackets is a validation error, not a `RecursionError`; NaN and Infinity are refused.
    """
    try:
        return WindowDocument.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise InvalidWindowError(describe(exc)) from exc


def build_document(
    *,
    deployment: str,
    variant: str,
    model: Mapping[str, str],
    window: Mapping[str, Any],
) -> dict[str, Any]:
    """The plain-JSON document (what `/drift/window` answers); `parse` reads it back."""
    return {
        "deployment": deployment,
        "variant": variant,
        "model": dict(model),
        "window": dict(window),
    }
