"""The API server refuses invalid ModelDeployments and Experiments with a message naming the field.

Server-side dry runs against the real kube-apiserver with our CRDs installed: OpenAPI bounds and
enums for single fields, CEL `x-kubernetes-validations` for the cross-field rules. No operator runs.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from modelpilot.testing import controlplane

pytestmark = pytest.mark.k8s

MD: dict[str, Any] = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris"},
    "spec": {
        "model": {"name": "iris-classifier", "alias": "champion"},
        "serving": {"replicas": 2},
        "drift": {"schedule": "*/30 * * * *", "methods": ["psi", "ks"], "psiThreshold": 0.2},
    },
}
EXP: dict[str, Any] = {
    "apiVersion": "modelpilot.io/v1alpha1",
    "kind": "Experiment",
    "metadata": {"name": "iris-ab"},
    "spec": {
        "deploymentRef": "iris",
        "variants": [{"name": "challenger", "model": {"name": "iris-classifier", "version": "4"}}],
        "policy": {"type": "thompson", "minWeight": 5, "maxWeight": 90},
    },
}


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()

# (what, object, field the message must name, text the message must contain)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "both alias and version",
        _set(MD, "spec.model.version", "3"),
        "spec.model",
        "exactly one of alias or version",
    ),
    (
        "neither alias nor version",
        _set(MD, "spec.model.alias", _DELETE),
        "spec.model",
        "exactly one of alias or version",
    ),
    (
        "negative replicas",
        _set(MD, "spec.serving.replicas", -1),
        "spec.serving.replicas",
        "greater than or equal to 0",
    ),
    (
        "a bad cron expression",
        _set(MD, "spec.drift.schedule", "every 5 minutes"),
        "spec.drift.schedule",
        "cron expression of five fields",
    ),
    (
        "a PSI threshold of 0",
        _set(MD, "spec.drift.psiThreshold", 0),
        "spec.drift.psiThreshold",
        "greater than 0",
    ),
    (
        "a KS p-value of 1.5",
        _set(MD, "spec.drift.ksPValue", 1.5),
        "spec.drift.ksPValue",
        "less than 1",
    ),
    (
        "an unknown drift method",
        _set(MD, "spec.drift.methods", ["psi", "chi2"]),
        "spec.drift.methods[1]",
        "Unsupported value",
    ),
    (
        "a version that is not a number",
        _set(MD, "spec.model", {"name": "m", "version": "latest"}),
        "spec.model.version",
        "should match",
    ),
    (
        "a missing model name",
        _set(MD, "spec.model", {"alias": "champion"}),
        "spec.model.name",
        "Required value",
    ),
    (
        "a tracking URI that is not http(s)",
        _set(MD, "spec.registry", {"trackingUri": "mlflow:5000"}),
        "spec.registry.trackingUri",
        "should match",
    ),
    (
        "a name longer than 40 characters",
        _set(MD, "metadata.name", "m" * 41),
        "metadata.name",
        "at most 40 characters",
    ),
    (
        "minWeight above maxWeight",
        _set(EXP, "spec.policy.minWeight", 95),
        "spec.policy.minWeight",
        "minWeight must be less than or equal to maxWeight",
    ),
    (
        "fixed weights not summing to 100",
        _set(
            _set(EXP, "spec.policy", {"type": "fixed", "stableWeight": 70}),
            "spec.variants.0.weight",
            20,
        ),
        "spec.policy",
        "must sum to 100",
    ),
    (
        "duplicate variant names",
        _set(EXP, "spec.variants", [EXP["spec"]["variants"][0], EXP["spec"]["variants"][0]]),
        "spec.variants",
        "variant names must be unique",
    ),
    (
        "an unknown policy type",
        _set(EXP, "spec.policy.type", "random"),
        "spec.policy.type",
        "Unsupported value",
    ),
    (
        "a missing deploymentRef",
        _set(EXP, "spec.deploymentRef", _DELETE),
        "spec.deploymentRef",
        "Required value",
    ),
    (
        "a variant name that is not DNS-1123",
        _set(EXP, "spec.variants.0.name", "Chall_1"),
        "spec.variants[0].name",
        "should match",
    ),
    (
        "a variant named stable",
        _set(EXP, "spec.variants.0.name", "stable"),
        "spec.variants",
        "reserved",
    ),
    (
        "an error-rate guardrail above 1",
        _set(EXP, "spec.guardrails", {"maxErrorRate": 1.5}),
        "spec.guardrails.maxErrorRate",
        "less than or equal to 1",
    ),
    (
        "a variant model with alias and version",
        _set(EXP, "spec.variants.0.model", {"name": "m", "alias": "a", "version": "2"}),
        "spec.variants[0].model",
        "exactly one of alias or version",
    ),
]


def test_the_valid_examples_are_accepted(
    control_plane: controlplane.ControlPlane, crds: None, namespace: str
) -> None:
    for body in (MD, EXP):
        result = control_plane.kubectl(
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(body),
            check=False,
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("what", "body", "field", "text"), INVALID, ids=[i[0] for i in INVALID])
def test_an_invalid_spec_is_refused_with_a_message_naming_the_field(
    control_plane: controlplane.ControlPlane,
    crds: None,
    namespace: str,
    what: str,
    body: dict[str, Any],
    field: str,
    text: str,
) -> None:
    result = control_plane.kubectl(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(body),
        check=False,
    )
    assert result.returncode != 0, f"{what} was accepted"
    assert f"{field}:" in result.stderr, result.stderr
    assert text in result.stderr, result.stderr


def test_at_least_twelve_kinds_of_invalid_spec_are_covered() -> None:
    assert len({field for _, _, field, _ in INVALID}) >= 12
