"""Read CSV and Parquet files into columns of numpy arrays, with errors that name file and column.

Used by `modelpilot drift compute` and anything else that takes a user's data file. A column is
numeric when its values parse as numbers (empty cells are nulls); a column of words is categorical.
A column that is mostly numbers but holds some text is an error, not a silent categorical column:
the message names the file, the column, the row and the offending value, because a typo in one
cell should not turn a feature's drift check into a category count.

The one design decision: pandas reads the file (robust CSV dialect handling, Parquet through
pyarrow) but the result handed on is plain `{column: numpy array}`, float64 for numeric columns and
object for categorical ones, which is what `modelpilot.stats` takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelpilot import errors

Columns = dict[str, npt.NDArray[np.generic]]
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _first_line(exc: BaseException) -> str:
    """Library messages can span lines; the CLI prints one."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise errors.InputError(f"file {path}: not found")
    if path.is_dir():
        raise errors.InputError(f"file {path}: is a directory, expected a CSV or Parquet file")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise errors.InputError(f"file {path}: is empty")
    if suffix in PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise errors.InputError(
                f"file {path}: not a readable Parquet file ({_first_line(exc)})"
            ) from exc
    if suffix in CSV_SUFFIXES:
        try:
            # Everything as text first, so a stray word in a numeric column can be reported.
            return pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=True
            )
        except pd.errors.EmptyDataError as exc:
            raise errors.InputError(f"file {path}: is empty (no header row)") from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise errors.InputError(
                f"file {path}: not a readable CSV file ({_first_line(exc)})"
            ) from exc
    raise errors.InputError(
        f"file {path}: unknown format {suffix or '(no extension)'}; use .csv, .tsv or .parquet"
    )


def _column_from_text(path: Path, name: str, text: pd.Series) -> npt.NDArray[np.generic]:
    present = text.notna()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = present & parsed.isna()
    n_present, n_bad = int(present.sum()), int(bad.sum())
    if n_bad == 0 and n_present > 0:
        return parsed.to_numpy(dtype=np.float64)
    if n_present and n_bad < n_present / 2:
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = text.iloc[row]
        raise errors.InputError(
            f"file {path}: column {name!r} is numeric but row {row + 2} holds text {value!r}"
        )
    return text.to_numpy(dtype=object)


def _column_from_frame(series: pd.Series) -> npt.NDArray[np.generic]:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(object).to_numpy()
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.astype(object).where(series.notna(), None).to_numpy(dtype=object)


def read_columns(path: str | Path, *, columns: Sequence[str] | None = None) -> Columns:
    """The file's columns (or only `columns`, in that order) as numpy arrays."""
    p = Path(path)
    frame = _read_frame(p)
    if frame.shape[0] == 0:
        raise errors.InputError(f"file {p}: has a header but no rows")
    names = [str(c) for c in frame.columns]
    wanted = list(columns) if columns else names
    missing = [c for c in wanted if c not in names]
    if missing:
        raise errors.InputError(
            f"file {p}: no column {', '.join(repr(m) for m in missing)} (it has {', '.join(names)})"
        )
    is_csv = p.suffix.lower() in CSV_SUFFIXES
    out: Columns = {}
    for name in wanted:
        series = frame[name]
        out[name] = _column_from_text(p, name, series) if is_csv else _column_from_frame(series)
    return out


def require_numeric_like(
    path: str | Path, name: str, values: npt.NDArray[np.generic], *, reference: str | Path
) -> None:
    """A column numeric in the reference file must be numeric in this file too."""
    if values.dtype.kind == "O":
        present = [v for v in values.tolist() if v is not None and v == v]
        sample = present[0] if present else None
        raise errors.InputError(
            f"file {path}: column {name!r} holds text (e.g. {sample!r}) "
            f"but is numeric in {reference}"
        )
