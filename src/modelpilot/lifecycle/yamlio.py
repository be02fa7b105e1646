"""Reading the small YAML files users write (schemas, sweep and gate configs, intended use).

Design decision: every failure (missing file, malformed YAML, a top level that is not a mapping) is
an `InputError` naming the option and the file, with the parser's line and column when it has them,
so the CLI prints one line and exits 2.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml

from modelpilot import errors


def load_mapping(path: Path, *, option: str) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise errors.InputError(f"{option}: cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise errors.InputError(f"{option}: {path} is not valid YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise errors.InputError(f"{option}: {path} must hold a YAML mapping at the top level")
    return data


def number(raw: Any, *, field: str, low: float | None = None, high: float | None = None) -> float:
    """A float within [low, high]; the error names the field and the allowed range."""
    if isinstance(raw, str):
        # YAML 1.1 reads `1e-6` (no dot) as a string; accept what Python reads as a number.
        with contextlib.suppress(ValueError):
            raw = float(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw:
        raise errors.InputError(f"{field}: must be a number, got {raw!r}")
    value = float(raw)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise errors.InputError(f"{field}: {value:g} is outside [{lo}, {hi}]")
    return value


def only_keys(data: dict[str, Any], allowed: set[str], *, where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise errors.InputError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
