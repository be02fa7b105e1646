"""The Grafana dashboards (dashboards/*.json): they parse, follow Grafana's dashboard schema, show
what the issue asks for, and query only metrics the code exports.

The schema: Grafana's own, as generated from its CUE kinds into the `grafana-foundation-sdk` Python
models (`models.dashboard.Dashboard`, panel options and field configs per panel plugin, the
Prometheus data query). Grafana publishes the same schema as JSON Schema only in that SDK's
repository, not in a package, so the check walks the generated models instead: decode with
`from_json`, then (1) every key of the file must survive the round trip `from_json -> to_json` (a
key the schema does not know is dropped, which catches typos such as `gridpos`), and (2) every
decoded value must match its model's type annotation (ints, enums and literals, nested models).
Panel types and data sources the SDK does not know are errors too.

Metric names are read with a real PromQL parser (`promql-parser`) from every target and templating
query, after replacing Grafana's `$__rate_interval` with a duration.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from grafana_foundation_sdk.cog import encoder as cog_encoder
from grafana_foundation_sdk.cog import plugins as cog_plugins
from grafana_foundation_sdk.cog import runtime as cog_runtime
from grafana_foundation_sdk.cog import variants as cog_variants
from grafana_foundation_sdk.models import dashboard as gdashboard

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))

cog_plugins.register_default_plugins()


# ---- schema check against the foundation SDK's generated models --------------------------------


def _is_model(value: object) -> bool:
    return callable(getattr(value, "to_json", None)) and callable(
        getattr(type(value), "from_json", None)
    )


def _type_errors(value: Any, hint: Any, path: str) -> list[str]:
    """Errors where `value` (as decoded by from_json) does not match `hint`."""
    if hint is Any or hint is object:
        return [] if not isinstance(value, cog_runtime.UnknownDataquery) else [f"{path}: unknown"]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        attempts = [_type_errors(value, arg, path) for arg in args if arg is not type(None)]
        return [] if any(not a for a in attempts) else min(attempts, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [
            e for i, item in enumerate(value) for e in _type_errors(item, args[0], f"{path}[{i}]")
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        return [e for k, item in value.items() for e in _type_errors(item, args[1], f"{path}.{k}")]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [member.value for member in hint]
        ok = isinstance(value, hint) or value in allowed
        return [] if ok else [f"{path}: {value!r} is not one of {allowed}"]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean, got {value!r}"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected an integer, got {value!r}"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r}"]
    if isinstance(hint, type) and issubclass(hint, cog_variants.Dataquery):
        if isinstance(value, cog_runtime.UnknownDataquery):
            return [f"{path}: a query of a data source type the schema does not know"]
        return _model_errors(value, path) if _is_model(value) else [f"{path}: not a data query"]
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return [f"{path}: expected {hint.__name__}, got {type(value).__name__}"]
        return _model_errors(value, path) if _is_model(value) else []
    return []


def _model_errors(model: Any, path: str) -> list[str]:
    hints = typing.get_type_hints(type(model))
    errors: list[str] = []
    for attribute, hint in hints.items():
        value = getattr(model, attribute, None)
        errors += _type_errors(value, hint, f"{path}.{attribute}")
    return errors


def _lost_keys(original: Any, encoded: Any, path: str) -> list[str]:
    """Paths present in `original` that the schema's round trip dropped or changed."""
    if isinstance(original, dict):
        if not isinstance(encoded, dict):
            return [f"{path}: became {type(encoded).__name__}"]
        lost = []
        for key, value in original.items():
            if key not in encoded:
                lost.append(f"{path}.{key}: not a field of the schema")
            else:
                lost += _lost_keys(value, encoded[key], f"{path}.{key}")
        return lost
    if isinstance(original, list):
        if not isinstance(encoded, list) or len(encoded) != len(original):
            return [f"{path}: list changed in the round trip"]
        return [
            e
            for i, (a, b) in enumerate(zip(original, encoded, strict=True))
            for e in _lost_keys(a, b, f"{path}[{i}]")
        ]
    return [] if original == encoded else [f"{path}: {original!r} became {encoded!r}"]


def schema_errors(data: dict[str, Any]) -> list[str]:
    """Why `data` is not a dashboard of Grafana's schema (empty when it is)."""
    model = gdashboard.Dashboard.from_json(data)
    errors = _model_errors(model, "$")
    for panel in _all_panels(data):
        if panel["type"] != "row" and cog_runtime.panelcfg_config(panel["type"]) is None:
            errors.append(f"panel {panel.get('title')!r}: unknown panel type {panel['type']!r}")
    encoded = json.loads(json.dumps(model, cls=cog_encoder.JSONEncoder))
    return errors + _lost_keys(data, encoded, "$")


# ---- reading the dashboards ---------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _all_panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in data.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def _queries(data: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets and `label_values(<selector>, label)` variables."""
    exprs = [t["expr"] for p in _all_panels(data) for t in p.get("targets", []) if "expr" in t]
    for variable in data.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and isinstance(text, str):
            match = re.fullmatch(r"\s*label_values\((.+),\s*\w+\)\s*", text)
            assert match, f"variable {variable['name']}: unsupported query {text!r}"
            exprs.append(match.group(1))
    return exprs


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects, from the parsed PromQL."""
    ast = promql_parser.parse(expr.replace("$__rate_interval", "5m").replace("$__interval", "1m"))
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                found.add(node.name)
            else:  # {__name__="..."}
                found.update(m.value for m in node.matchers.matchers if m.name == "__name__")
            return
        for child in ("expr", "lhs", "rhs", "vector_selector", "param"):
            value = getattr(node, child, None)
            if value is not None and not isinstance(value, str | int | float):
                visit(value)
        for arg in getattr(node, "args", None) or []:
            visit(arg)

    visit(ast)
    return found


# ---- the tests ----------------------------------------------------------------------------------


def test_there_are_serving_experiments_and_drift_dashboards() -> None:
    assert sorted(p.stem for p in DASHBOARDS) == ["drift", "experiments", "serving"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_follows_grafanas_dashboard_schema(path: Path) -> None:
    data = _load(path)
    assert schema_errors(data) == []
    panels = [p for p in _all_panels(data) if p["type"] != "row"]
    assert panels, "a dashboard without panels"
    ids = [p["id"] for p in _all_panels(data)]
    assert len(ids) == len(set(ids)), "panel ids must be unique within a dashboard"
    assert all(t["datasource"]["uid"] == "${datasource}" for p in panels for t in p["targets"])


def test_schema_check_rejects_unknown_keys_wrong_types_and_unknown_panels() -> None:
    # The check is only worth something if it can fail: three kinds of broken dashboard.
    data = _load(REPO / "dashboards" / "serving.json")
    panel = next(p for p in data["panels"] if p["type"] == "timeseries")
    panel["gridpos"] = panel.pop("gridPos")
    data["graphTooltip"] = "shared"
    data["panels"].append({**panel, "id": 999, "type": "no-such-panel"})
    errors = "\n".join(schema_errors(data))
    assert "gridpos: not a field of the schema" in errors
    assert "graph_tooltip" in errors
    assert "unknown panel type 'no-such-panel'" in errors


def test_promql_reader_finds_every_selected_metric() -> None:
    expr = (
        'sum by (variant) (rate(a_total{x="1"}[$__rate_interval])) / ignoring(class) group_left '
        "histogram_quantile(0.9, sum by (le) (rate(b_bucket[5m]))) or on() vector(0) + c"
    )
    assert metric_names(expr) == {"a_total", "b_bucket", "c"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_queries_only_metrics_the_code_exports(
    path: Path, exported_metrics: frozenset[str]
) -> None:
    used = {name for expr in _queries(_load(path)) for name in metric_names(expr)}
    assert used, "no metric found in the dashboard's queries"
    assert sorted(used - exported_metrics) == []


def test_every_exported_metric_is_on_some_dashboard(exported_families: dict[str, str]) -> None:
    used = {name for p in DASHBOARDS for e in _queries(_load(p)) for name in metric_names(e)}
    # The series that stands for a family: a counter's `_total`, a histogram's `_bucket`.
    suffix = {"counter": "_total", "histogram": "_bucket"}
    shown = {name + suffix.get(kind, "") for name, kind in exported_families.items()}
    assert sorted(shown - used) == []


def _titles(name: str) -> str:
    return "\n".join(p["title"] for p in _all_panels(_load(REPO / "dashboards" / f"{name}.json")))


def _exprs(name: str) -> str:
    return "\n".join(_queries(_load(REPO / "dashboards" / f"{name}.json")))


def test_serving_dashboard_shows_rate_percentiles_and_errors_by_variant() -> None:
    exprs = _exprs("serving")
    assert "rate(modelpilot_router_requests_total" in exprs
    for q in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({q}, sum by (deployment, variant, le) "
            "(rate(modelpilot_router_latency_seconds_bucket" in exprs
        )
    assert "modelpilot_router_errors_total" in exprs
    assert "modelpilot_model_errors_total" in exprs


def test_experiments_dashboard_shows_weights_posteriors_best_rewards_and_srm() -> None:
    exprs = _exprs("experiments")
    for metric in (
        "modelpilot_experiment_weight",
        "modelpilot_experiment_posterior_mean",
        "modelpilot_experiment_probability_to_be_best",
        "modelpilot_experiment_rewards",
        "modelpilot_experiment_srm_pvalue",
    ):
        assert metric in exprs
    assert "Traffic weight over time" in _titles("experiments")


def test_drift_dashboard_shows_psi_and_ks_per_feature_and_drifted_features() -> None:
    exprs = _exprs("drift")
    assert "max by (deployment, feature) (modelpilot_drift_psi" in exprs
    assert "max by (deployment, feature) (modelpilot_drift_ks_statistic" in exprs
    assert "modelpilot_drift_drifted_features" in exprs
