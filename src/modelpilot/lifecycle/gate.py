"""The CI validation gate: a candidate model must clear thresholds before it may be a challenger.

    target: species
    thresholds: {min_accuracy: 0.9, min_f1: 0.85, max_latency_p99_ms: 50}
    regression: {against: champion, metric: f1, tolerance: 0.02}
    latency: {samples: 200}

Design decision: the decision (`build_checks`) is a pure function of measured numbers and the parsed
config; measuring (loading the candidate and the champion through `modelpilot.registry`, scoring
them on the same rows, timing single-row predictions for the p99) is separate, so the thresholds are
tested without a server and the gate reports every failed threshold at once, not the first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot import errors
from modelpilot.lifecycle import checks, metrics, yamlio
from modelpilot.registry import client as registry_client
from modelpilot.registry import runs

_MIN_KEYS = ("min_accuracy", "min_precision", "min_recall", "min_f1")
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class GateConfig:
    target: str
    minimums: dict[str, float]  # metric name (accuracy, precision, recall, f1) -> minimum
    max_latency_p99_ms: float | None
    regression_against: str | None
    regression_metric: str
    regression_tolerance: float
    latency_samples: int


def parse_config(data: Mapping[str, Any]) -> GateConfig:
    yamlio.only_keys(dict(data), {"target", "thresholds", "regression", "latency"}, where="config")
    target = data.get("target")
    if not isinstance(target, str) or not target:
        raise errors.InputError("config.target: must name the label column of the data")
    thresholds = data.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        raise errors.InputError("config.thresholds: must be a mapping")
    yamlio.only_keys(thresholds, {*_MIN_KEYS, "max_latency_p99_ms"}, where="config.thresholds")
    minimums = {
        key.removeprefix("min_"): yamlio.number(
            thresholds[key], field=f"thresholds.{key}", low=0.0, high=1.0
        )
        for key in _MIN_KEYS
        if thresholds.get(key) is not None
    }
    latency = thresholds.get("max_latency_p99_ms")
    max_p99 = (
        None
        if latency is None
        else yamlio.number(latency, field="thresholds.max_latency_p99_ms", low=0.0)
    )
    regression = data.get("regression") or {}
    if not isinstance(regression, dict):
        raise errors.InputError("config.regression: must be a mapping")
    yamlio.only_keys(regression, {"against", "metric", "tolerance"}, where="config.regression")
    metric = regression.get("metric", "f1")
    if metric not in metrics.METRICS:
        raise errors.InputError(
            f"regression.metric: {metric!r} is not one of {', '.join(metrics.METRICS)}"
        )
    against = regression.get("against", "champion" if regression else None)
    lat = data.get("latency") or {}
    if not isinstance(lat, dict):
        raise errors.InputError("config.latency: must be a mapping")
    yamlio.only_keys(lat, {"samples"}, where="config.latency")
    samples = int(
        yamlio.number(lat.get("samples", 200), field="latency.samples", low=1, high=100_000)
    )
    return GateConfig(
        target=target,
        minimums=minimums,
        max_latency_p99_ms=max_p99,
        regression_against=None if against is None else str(against),
        regression_metric=metric,
        regression_tolerance=yamlio.number(
            regression.get("tolerance", 0.0), field="regression.tolerance", low=0.0, high=1.0
        ),
        latency_samples=samples,
    )


def build_checks(
    *,
    config: GateConfig,
    observed: Mapping[str, float],
    latency_p99_ms: float | None,
    champion: Mapping[str, float] | None,
    champion_label: str = "champion",
) -> list[checks.Check]:
    """Compare measured numbers with the thresholds; one Check per threshold."""
    out = [
        checks.Check(
            f"min_{name}", observed[name] >= minimum, f"{observed[name]:.4f}", f">= {minimum:g}"
        )
        for name, minimum in config.minimums.items()
    ]
    if config.max_latency_p99_ms is not None and latency_p99_ms is not None:
        out.append(
            checks.Check(
                "max_latency_p99_ms",
                latency_p99_ms <= config.max_latency_p99_ms,
                f"{latency_p99_ms:.2f}",
                f"<= {config.max_latency_p99_ms:g}",
            )
        )
    if config.regression_against is not None:
        name = f"no_regression_{config.regression_metric}"
        if champion is None:
            out.append(
                checks.Check(
                    name,
                    True,
                    "n/a",
                    "n/a",
                    skipped=True,
                    message=f"no {champion_label} to compare with",
                )
            )
        else:
            floor = champion[config.regression_metric] - config.regression_tolerance
            value = observed[config.regression_metric]
            out.append(
                checks.Check(
                    name,
                    value >= floor,
                    f"{value:.4f}",
                    f">= {floor:.4f} ({champion_label} {champion[config.regression_metric]:.4f} "
                    f"- {config.regression_tolerance:g})",
                )
            )
    return out


def score(model: Any, x: pd.DataFrame, y: np.ndarray[Any, Any]) -> dict[str, float]:
    predicted = np.asarray(model.predict(x)).ravel()
    return {name: fn(y, predicted) for name, fn in metrics.METRICS.items()}


def p99_latency_ms(model: Any, x: pd.DataFrame, *, samples: int) -> float:
    """p99 of single-row predict latency: what one online request costs, not a batch average."""
    rows = [x.iloc[[i % len(x)]] for i in range(samples)]
    for row in rows[:5]:
        model.predict(row)  # warm caches and lazy imports before timing
    times = []
    for row in rows:
        start = time.perf_counter()
        model.predict(row)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.quantile(times, 0.99))


def read_data(path: Path, *, target: str) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise errors.InputError(f"--data: cannot read {path} as CSV: {exc}") from exc
    if target not in df.columns:
        raise errors.InputError(
            f"config.target: column {target!r} is not in {path}; columns: {', '.join(df.columns)}"
        )
    if df.empty:
        raise errors.InputError(f"--data: {path} has no rows")
    return df.drop(columns=[target]), df[target].to_numpy()


def run(
    *,
    model_uri: str,
    data: Path,
    config: GateConfig,
    tracking_uri: str | None,
    registered_name: str | None = None,
) -> tuple[list[checks.Check], dict[str, Any]]:
    """Measure the candidate (and its champion) and return the checks plus the measurements.

    The champion is looked up under the candidate's registered name, or `registered_name` when the
    candidate is a `runs:/` URI not registered yet (the CI order: gate first, then register).
    """
    match = _MODEL_URI.match(model_uri)
    if match is None and not model_uri.startswith("runs:/"):
        raise errors.InputError(
            f"--model: {model_uri!r} must be models:/NAME@ALIAS, models:/NAME/VERSION "
            "or runs:/ID/PATH"
        )
    registry_client.configure(tracking_uri)
    x, y = read_data(data, target=config.target)
    candidate = runs.load_pyfunc(model_uri)
    observed = score(candidate, x, y)
    p99 = (
        p99_latency_ms(candidate, x, samples=config.latency_samples)
        if config.max_latency_p99_ms is not None
        else None
    )
    champion_scores = None
    label = "champion"
    name = match["name"] if match is not None else registered_name
    if config.regression_against is not None and name:
        champion_uri = f"models:/{name}@{config.regression_against}"
        label = config.regression_against
        try:
            champion_model = runs.load_pyfunc(champion_uri)
        except registry_client.ModelNotFound:
            champion_model = None  # the first model of a name has nothing to regress against
        if champion_model is not None:
            champion_scores = score(champion_model, x, y)
    found = build_checks(
        config=config,
        observed=observed,
        latency_p99_ms=p99,
        champion=champion_scores,
        champion_label=label,
    )
    return found, {"observed": observed, "latency_p99_ms": p99, "champion": champion_scores}
