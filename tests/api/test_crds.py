"""The CRDs: committed YAML equals the rendering, and the schemas keep their promises."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelpilot.api import experiment, modeldeployment, render

ROOT = Path(__file__).resolve().parents[2]


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        out.extend(_walk(child, f"{path}.{name}"))
    if isinstance(node.get("items"), dict):
        out.extend(_walk(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        out.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return out


CRDS = [modeldeployment.build_crd(), experiment.build_crd()]


def test_committed_crd_yaml_equals_the_rendering() -> None:
    for name, text in render.crd_files().items():
        committed = ROOT / "manifests" / "crds" / name
        assert committed.read_text() == text, f"{committed} is stale: run `make manifests`"


def test_committed_rbac_yaml_equals_the_rendering() -> None:
    for name, text in render.rbac_files().items():
        committed = ROOT / "manifests" / "rbac" / name
        assert committed.read_text() == text, f"{committed} is stale: run `make manifests`"


@pytest.mark.parametrize("crd", CRDS, ids=lambda c: c["spec"]["names"]["kind"])
def test_every_field_has_a_description_and_a_type(crd: dict[str, Any]) -> None:
    for path, node in _walk(_schema(crd)):
        if path.startswith(".metadata"):
            continue  # the API server allows only name rules on metadata
        assert node.get("description"), f"{path} has no description"
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"


@pytest.mark.parametrize("crd", CRDS, ids=lambda c: c["spec"]["names"]["kind"])
def test_every_list_and_string_is_bounded_for_cel_cost(crd: dict[str, Any]) -> None:
    for path, node in _walk(_schema(crd)):
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path} has no maxItems"


@pytest.mark.parametrize("crd", CRDS, ids=lambda c: c["spec"]["names"]["kind"])
def test_the_crd_has_status_printer_columns_short_names_and_the_category(
    crd: dict[str, Any],
) -> None:
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Ready"
    assert columns[-1] == "Age"
    assert crd["spec"]["names"]["categories"] == ["modelpilot"]
    assert crd["spec"]["names"]["shortNames"]


def test_modeldeployment_columns_show_model_version_and_traffic() -> None:
    version = modeldeployment.build_crd()["spec"]["versions"][0]
    paths = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert paths == {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Model": ".status.model.name",
        "Version": ".status.model.version",
        "Traffic": ".status.traffic",
        "Age": ".metadata.creationTimestamp",
    }


def _validator(crd: dict[str, Any]) -> jsonschema.Draft4Validator:
    # OpenAPI v3.0 bounds (boolean exclusiveMinimum) are JSON Schema draft 4; x-kubernetes-* and
    # CEL rules are ignored here and exercised against the real API server in
    # tests/operator/handlers.
    return jsonschema.Draft4Validator(_schema(crd))


MD_VALID: dict[str, Any] = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris"},
    "spec": {
        "model": {"name": "iris-classifier", "alias": "champion"},
        "serving": {"replicas": 2, "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
        "drift": {"schedule": "*/30 * * * *", "methods": ["psi", "ks"], "psiThreshold": 0.2},
    },
}


def test_a_valid_modeldeployment_passes_the_openapi_schema() -> None:
    errors = list(_validator(modeldeployment.build_crd()).iter_errors(MD_VALID))
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("spec", "serving", "replicas"), -1, "replicas"),
        (("spec", "drift", "psiThreshold"), 0, "psiThreshold"),
        (("spec", "drift", "ksPValue"), 1.0, "ksPValue"),
        (("spec", "drift", "methods"), ["psi", "chi"], "methods"),
        (("spec", "model", "version"), "v3", "version"),
        (("spec", "registry", "trackingUri"), "ftp://x", "trackingUri"),
    ],
)
def test_single_field_mistakes_are_refused_by_the_openapi_schema(
    path: tuple[str, ...], value: object, field: str
) -> None:
    body = copy.deepcopy(MD_VALID)
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    errors = list(_validator(modeldeployment.build_crd()).iter_errors(body))
    assert errors, f"{'.'.join(path)}={value!r} was accepted"
    assert any(field in "/".join(str(p) for p in e.absolute_path) for e in errors)


@pytest.mark.parametrize(
    "schedule", ["*/30 * * * *", "0 3 * * 1-5", "15,45 */2 1 JAN-JUN MON", "@hourly", "0 0 1 */3 *"]
)
def test_the_cron_rule_accepts_cron_expressions(schedule: str) -> None:
    assert re.fullmatch(modeldeployment.CRON_REGEX, schedule)


@pytest.mark.parametrize(
    "schedule", ["every 5 minutes", "* * * *", "* * * * * *", "*/x * * * *", "@sometimes", ""]
)
def test_the_cron_rule_refuses_what_is_not_five_fields(schedule: str) -> None:
    assert re.fullmatch(modeldeployment.CRON_REGEX, schedule) is None


def _rules(node: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in node.get("x-kubernetes-validations", [])]


def test_cross_field_rules_are_cel_on_the_right_objects() -> None:
    md_spec = _schema(modeldeployment.build_crd())["properties"]["spec"]
    assert "has(self.alias) != has(self.version)" in _rules(md_spec["properties"]["model"])
    exp_spec = _schema(experiment.build_crd())["properties"]["spec"]
    assert "self.minWeight <= self.maxWeight" in _rules(exp_spec["properties"]["policy"])
    variant_rules = _rules(exp_spec["properties"]["variants"])
    assert any("exists_one" in r for r in variant_rules)
    assert any(".sum() == 100" in r for r in _rules(exp_spec))
    variant_model = exp_spec["properties"]["variants"]["items"]["properties"]["model"]
    assert "has(self.alias) != has(self.version)" in _rules(variant_model)


def test_defaults_satisfy_their_own_schema() -> None:
    for crd in CRDS:
        for path, node in _walk(_schema(crd)):
            if "default" in node and node.get("type") in ("string", "integer", "number", "boolean"):
                errors = list(jsonschema.Draft4Validator(node).iter_errors(node["default"]))
                assert errors == [], f"default of {path} violates its schema"


def test_rendered_yaml_has_no_aliases_and_round_trips() -> None:
    for text in render.crd_files().values():
        assert "&id" not in text
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
