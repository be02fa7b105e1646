"""Spec defaults and bounds are written once: the CRD renders them, the parser checks them."""

from __future__ import annotations

from typing import Any

import pytest

from modelpilot import errors
from modelpilot.api import experiment as crd
from modelpilot.operator.experiment import spec as spec_mod

SPEC: dict[str, Any] = {
    "deploymentRef": "iris",
    "variants": [{"name": "challenger", "model": {"name": "iris-classifier", "version": "4"}}],
}

# (section, key, bound, integer): every numeric spec field the parser reads.
FIELDS = [
    ("policy", "minWeight", crd.MIN_WEIGHT, True),
    ("policy", "maxWeight", crd.MAX_WEIGHT, True),
    ("policy", "epsilon", crd.EPSILON, False),
    ("stopping", "minSamplesPerVariant", crd.MIN_SAMPLES_PER_VARIANT, True),
    ("stopping", "probabilityToBeBest", crd.PROBABILITY_TO_BE_BEST, False),
    ("guardrails", "maxErrorRate", crd.MAX_ERROR_RATE, False),
    ("guardrails", "maxLatencyP99Ms", crd.MAX_LATENCY_P99_MS, False),
]


def _schema(section: str, key: str) -> dict[str, Any]:
    root = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[index]
    props: dict[str, Any] = root["properties"]["spec"]["properties"][section]["properties"]
    return props[key]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("section", "key", "bound", "integer"), FIELDS)
def test_the_crd_schema_and_the_parser_share_the_default_and_the_bounds(
    section: str, key: str, bound: crd.Bound, integer: bool
) -> None:
    schema = _schema(section, key)
    assert (schema.get("default"), schema["minimum"], schema["maximum"]) == (
        bound.default,
        bound.minimum,
        bound.maximum,
    )
    assert schema.get("exclusiveMaximum", False) == bound.exclusive_maximum
    parsed = spec_mod.parse_spec({**SPEC, "policy": {"minWeight": 5, "maxWeight": 90}})
    defaults = {
        "minWeight": parsed.min_weight,
        "maxWeight": parsed.max_weight,
        "epsilon": parsed.epsilon,
        "minSamplesPerVariant": parsed.min_samples_per_variant,
        "probabilityToBeBest": parsed.probability_to_be_best,
        "maxErrorRate": parsed.max_error_rate,
        "maxLatencyP99Ms": parsed.max_latency_p99_ms,
    }
    assert defaults[key] == bound.default


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        # Above the CRD's maximum: the API server refuses these; the parser used to accept them.
        ("stopping", "minSamplesPerVariant", 2_000_000_000),
        ("guardrails", "maxLatencyP99Ms", 700_000),
        ("guardrails", "maxLatencyP99Ms", 0),  # the CRD's minimum is exclusive
        ("stopping", "probabilityToBeBest", 1.0),
    ],
)
def test_the_parser_refuses_what_the_crd_refuses_naming_the_field(
    section: str, key: str, value: float
) -> None:
    with pytest.raises(errors.InputError) as info:
        spec_mod.parse_spec({**SPEC, section: {key: value}})
    assert str(info.value).startswith(f"spec.{section}.{key}: must be in ")
