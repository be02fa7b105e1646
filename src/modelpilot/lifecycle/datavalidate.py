"""Data validation: a DataFrame against a YAML schema (types, missing rates, ranges, categories,
rows).

    rows: {min: 100, max: 1000000}
    allow_extra_columns: false
    columns:
      sepal_length: {type: float, min: 0.0, max: 10.0, max_missing: 0.0}
      species: {type: int, categories: [0, 1, 2]}

Design decision: the schema is parsed once into frozen records (`parse_schema`, which raises
`InputError` naming the bad field) and checking is a pure function returning `Check`s, so the same
result drives the table, the JUnit file and the exit code. Pure: pandas only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from modelpilot import errors
from modelpilot.lifecycle import checks, yamlio
from modelpilot.stats import profile as profile_mod

TYPES = ("int", "float", "string", "bool", "category")
_COLUMN_KEYS = {"type", "min", "max", "max_missing", "categories", "required"}


@dataclass(frozen=True)
class ColumnRule:
    name: str
    type: str | None
    min: float | None
    max: float | None
    max_missing: float
    categories: tuple[Any, ...] | None
    required: bool


@dataclass(frozen=True)
class Schema:
    columns: tuple[ColumnRule, ...]
    min_rows: int | None
    max_rows: int | None
    allow_extra_columns: bool


def parse_schema(data: Mapping[str, Any]) -> Schema:
    yamlio.only_keys(dict(data), {"rows", "columns", "allow_extra_columns"}, where="schema")
    cols = data.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise errors.InputError(
            "schema.columns: must be a non-empty mapping of column name to rules"
        )
    rules = []
    for name, raw in cols.items():
        raw = raw or {}
        where = f"schema.columns.{name}"
        if not isinstance(raw, dict):
            raise errors.InputError(f"{where}: must be a mapping of rules")
        yamlio.only_keys(raw, _COLUMN_KEYS, where=where)
        kind = raw.get("type")
        if kind is not None and kind not in TYPES:
            raise errors.InputError(f"{where}.type: {kind!r} is not one of {', '.join(TYPES)}")
        low = None if raw.get("min") is None else yamlio.number(raw["min"], field=f"{where}.min")
        high = None if raw.get("max") is None else yamlio.number(raw["max"], field=f"{where}.max")
        if low is not None and high is not None and low > high:
            raise errors.InputError(f"{where}: min {low:g} is greater than max {high:g}")
        cats = raw.get("categories")
        if cats is not None and not isinstance(cats, list):
            raise errors.InputError(f"{where}.categories: must be a list of allowed values")
        rules.append(
            ColumnRule(
                name=str(name),
                type=kind,
                min=low,
                max=high,
                max_missing=yamlio.number(
                    raw.get("max_missing", 0.0), field=f"{where}.max_missing", low=0.0, high=1.0
                ),
                categories=None if cats is None else tuple(cats),
                required=bool(raw.get("required", True)),
            )
        )
    rows = data.get("rows") or {}
    if not isinstance(rows, dict):
        raise errors.InputError("schema.rows: must be a mapping with min and/or max")
    yamlio.only_keys(rows, {"min", "max"}, where="schema.rows")
    min_rows = rows.get("min")
    max_rows = rows.get("max")
    for key, val in (("min", min_rows), ("max", max_rows)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 0):
            raise errors.InputError(
                f"schema.rows.{key}: must be a non-negative integer, got {val!r}"
            )
    return Schema(
        columns=tuple(rules),
        min_rows=min_rows,
        max_rows=max_rows,
        allow_extra_columns=bool(data.get("allow_extra_columns", True)),
    )


def _type_ok(series: pd.Series, kind: str) -> bool:
    s = series.dropna()
    if kind == "float":
        return bool(
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        )
    if kind == "int":
        if pd.api.types.is_integer_dtype(series):
            return True
        # A nullable integer column read from CSV comes back as float: integral values pass.
        return bool(pd.api.types.is_float_dtype(series) and (s == s.round()).all())
    if kind == "bool":
        return bool(pd.api.types.is_bool_dtype(series) or s.isin([0, 1, True, False]).all())
    # string / category: anything non-numeric, or numbers when categories say so
    return bool(
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
        or kind == "category"
    )


def validate(df: pd.DataFrame, schema: Schema) -> list[checks.Check]:
    out: list[checks.Check] = []
    n = len(df)
    if schema.min_rows is not None:
        out.append(checks.Check("rows.min", n >= schema.min_rows, str(n), f">= {schema.min_rows}"))
    if schema.max_rows is not None:
        out.append(checks.Check("rows.max", n <= schema.max_rows, str(n), f"<= {schema.max_rows}"))
    known = {r.name for r in schema.columns}
    if not schema.allow_extra_columns:
        extra = [c for c in df.columns if c not in known]
        out.append(
            checks.Check("columns.extra", not extra, ", ".join(map(str, extra)) or "none", "none")
        )
    for rule in schema.columns:
        base = f"{rule.name}"
        if rule.name not in df.columns:
            out.append(
                checks.Check(
                    f"{base}.present",
                    not rule.required,
                    "missing",
                    "present" if rule.required else "optional",
                )
            )
            continue
        col = df[rule.name]
        missing = float(col.isna().mean()) if n else 0.0
        out.append(
            checks.Check(
                f"{base}.missing",
                missing <= rule.max_missing,
                f"{missing:.4f}",
                f"<= {rule.max_missing:g}",
            )
        )
        if rule.type is not None:
            out.append(
                checks.Check(f"{base}.type", _type_ok(col, rule.type), str(col.dtype), rule.type)
            )
        present = col.dropna()
        numeric = pd.api.types.is_numeric_dtype(col)
        if rule.min is not None:
            low = float(present.min()) if numeric and len(present) else None
            ok = numeric and (low is None or low >= rule.min)
            out.append(
                checks.Check(
                    f"{base}.min", ok, "n/a" if low is None else f"{low:g}", f">= {rule.min:g}"
                )
            )
        if rule.max is not None:
            high = float(present.max()) if numeric and len(present) else None
            ok = numeric and (high is None or high <= rule.max)
            out.append(
                checks.Check(
                    f"{base}.max", ok, "n/a" if high is None else f"{high:g}", f"<= {rule.max:g}"
                )
            )
        if rule.categories is not None:
            allowed = set(rule.categories) | {str(c) for c in rule.categories}
            unexpected = sorted({str(v) for v in present.unique() if v not in allowed})
            out.append(
                checks.Check(
                    f"{base}.categories",
                    not unexpected,
                    ("unexpected " + ", ".join(unexpected[:5])) if unexpected else "all allowed",
                    "in " + ", ".join(map(str, rule.categories)),
                )
            )
    return out


def validate_against_profile(
    df: pd.DataFrame,
    reference: profile_mod.ReferenceProfile,
    *,
    missing_tolerance: float = 0.05,
    outside_tolerance: float = 0.02,
    min_rows: int | None = None,
) -> list[checks.Check]:
    """Check `df` against the reference profile of a registered model.

    Per profiled column: present; kind (numeric stays numeric); missing rate at most the
    reference's plus `missing_tolerance`; for numeric columns, the share of values outside the
    reference sample's range at most `outside_tolerance` plus 2/(n+1), the chance that a new value
    from the same distribution falls outside the range of n exchangeable reference values (order
    statistics), so a small reference does not fail data that came from it; for categorical
    columns, the share of categories never seen in the reference at most `outside_tolerance`.
    Distribution shift itself is the drift job's business (PSI/KS), not this gate's.
    """
    out: list[checks.Check] = []
    if min_rows is not None:
        out.append(checks.Check("rows.min", len(df) >= min_rows, str(len(df)), f">= {min_rows}"))
    for name, col in reference.columns.items():
        if name not in df.columns:
            out.append(checks.Check(f"{name}.present", False, "missing", "present"))
            continue
        series = df[name]
        missing = float(series.isna().mean()) if len(series) else 0.0
        allowed = col.null_rate + missing_tolerance
        out.append(
            checks.Check(
                f"{name}.missing",
                missing <= allowed,
                f"{missing:.4f}",
                f"<= {allowed:.4f} (reference {col.null_rate:.4f})",
            )
        )
        present = series.dropna()
        if col.kind == "numeric":
            numeric = bool(pd.api.types.is_numeric_dtype(series))
            out.append(checks.Check(f"{name}.type", numeric, str(series.dtype), "numeric"))
            if numeric and len(col.sample) and len(present):
                low, high = float(col.sample[0]), float(col.sample[-1])
                share = float(((present < low) | (present > high)).mean())
                allowed_out = outside_tolerance + 2.0 / (len(col.sample) + 1)
                out.append(
                    checks.Check(
                        f"{name}.range",
                        share <= allowed_out,
                        f"{share:.4f} outside",
                        f"<= {allowed_out:.4f} outside [{low:g}, {high:g}]",
                    )
                )
        else:
            known = list(col.categories)
            unseen = ~present.astype(str).isin(known)
            share = float(unseen.mean()) if len(present) else 0.0
            out.append(
                checks.Check(
                    f"{name}.categories",
                    share <= outside_tolerance,
                    f"{share:.4f} unseen",
                    f"<= {outside_tolerance:g} unseen",
                )
            )
    return out
