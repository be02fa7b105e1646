"""The chart's files, without rendering: its copies of the CRDs, RBAC rules, dashboards and alert
rules are equal to their sources (`make chart-sync` copies them), every value is commented, and
values.schema.json accepts the defaults and every ci/ values file but rejects typos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelpilot.api import render as api_render

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def _same_files(source: Path, copy: Path, pattern: str) -> None:
    sources = {p.name: p.read_bytes() for p in source.glob(pattern)}
    copies = {p.name: p.read_bytes() for p in copy.glob(pattern)}
    assert sources, f"nothing matches {pattern} in {source}"
    assert sorted(copies) == sorted(sources), "run `make chart-sync`"
    stale = [name for name in sources if sources[name] != copies[name]]
    assert stale == [], f"{stale} differ from {source}: run `make chart-sync`"


def test_chart_crds_equal_manifests_crds() -> None:
    _same_files(REPO / "manifests" / "crds", CHART / "files" / "crds", "*.yaml")


def test_manifests_crds_equal_a_fresh_rendering_of_the_python_api() -> None:
    # manifests/crds is itself generated (`python -m modelpilot.api render`): the chain from the
    # Python schemas to the chart is complete only if that copy is current as well.
    committed = {p.name: p.read_text() for p in (REPO / "manifests" / "crds").glob("*.yaml")}
    assert committed == api_render.crd_files()


def test_chart_rbac_files_equal_manifests_rbac() -> None:
    _same_files(REPO / "manifests" / "rbac", CHART / "files" / "rbac", "*.yaml")


def test_chart_dashboards_equal_dashboards_directory() -> None:
    _same_files(REPO / "dashboards", CHART / "files" / "dashboards", "*.json")


def test_chart_alert_rules_equal_alerts_directory() -> None:
    _same_files(REPO / "alerts", CHART / "files" / "alerts", "*.yaml")


def _leaf_keys(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [k for key, value in node.items() for k in _leaf_keys(value, f"{path}.{key}")]
    return [path.lstrip(".")]


def _commented_keys(text: str) -> set[str]:
    """Dotted keys of values.yaml that have a comment line right above them."""
    commented: set[str] = set()
    stack: list[tuple[int, str]] = []
    previous_is_comment = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            previous_is_comment = False
            continue
        if stripped.startswith("#"):
            previous_is_comment = True
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("- ") or ":" not in stripped:
            previous_is_comment = False
            continue
        key = stripped.split(":", 1)[0].strip().strip('"')
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        if previous_is_comment:
            commented.add(dotted)
        previous_is_comment = False
    return commented


def test_every_value_is_commented() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    commented = _commented_keys(text)
    # A leaf is documented by its own comment or, inside a free-form block such as `resources`,
    # by the comment of the nearest ancestor.
    undocumented = [
        leaf
        for leaf in _leaf_keys(values)
        if not any(
            ".".join(leaf.split(".")[:n]) in commented for n in range(len(leaf.split(".")), 0, -1)
        )
    ]
    assert undocumented == []
    # And every structured block has its own comment or only commented children.
    assert "operator.image.repository" in commented
    assert "mlflow.backendStore.uri" in commented


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def _merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merged(base[key], value) if key in base else value
        return out
    return override


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_schema_accepts_defaults_merged_with_each_ci_values_file(values_file: Path) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    override = yaml.safe_load(values_file.read_text()) or {}
    jsonschema.validate(_merged(defaults, override), _schema())


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"operator": {"replica": 2}}, "replica"),
        ({"operator": {"scope": "everywhere"}}, "everywhere"),
        ({"mlflow": {"persistence": {"size": "lots"}}}, "lots"),
        ({"crds": {"enabled": "yes"}}, "yes"),
        ({"metrics": {"podMonitor": {"interval": "often"}}}, "often"),
        ({"unknownTopLevel": True}, "unknownTopLevel"),
    ],
)
def test_schema_rejects_typos_and_bad_values(override: dict[str, Any], field: str) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(_merged(defaults, override), _schema())
    assert field in str(caught.value.message)


def test_structured_blocks_of_the_schema_reject_unknown_keys() -> None:
    def closed(node: dict[str, Any], path: str) -> list[str]:
        problems = []
        if node.get("type") == "object" and "properties" in node:
            if node.get("additionalProperties") is not False:
                problems.append(path or "(root)")
            for key, child in node["properties"].items():
                problems += closed(child, f"{path}.{key}")
        return problems

    assert closed(_schema(), "") == []
