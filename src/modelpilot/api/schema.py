"""Small constructors for structural OpenAPI v3 schemas, so every field carries a description.

Design decision: each constructor takes the description as its first, mandatory argument. A field
without a description cannot be written, which is how the CRDs keep the "description on every
field" rule without a separate lint.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

DNS1123_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""A DNS-1123 label (RFC 1123): lower-case alphanumerics and '-', alphanumeric at both ends."""

DURATION = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
"""A Go-style duration such as `30s`, `5m`, `1h30m` (no days: Go durations stop at hours)."""


def _with(schema: Schema, extra: dict[str, Any]) -> Schema:
    for key, value in extra.items():
        if value is not None:
            schema[key] = value
    return schema


def string(
    description: str,
    *,
    default: str | None = None,
    enum: list[str] | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = 253,
    fmt: str | None = None,
) -> Schema:
    return _with(
        {"type": "string", "description": description},
        {
            "default": default,
            "enum": enum,
            "pattern": pattern,
            "minLength": min_length,
            "maxLength": max_length,
            "format": fmt,
        },
    )


def integer(
    description: str,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Schema:
    return _with(
        {"type": "integer", "format": "int32", "description": description},
        {"default": default, "minimum": minimum, "maximum": maximum},
    )


def number(
    description: str,
    *,
    default: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool | None = None,
    exclusive_maximum: bool | None = None,
) -> Schema:
    return _with(
        {"type": "number", "description": description},
        {
            "default": default,
            "minimum": minimum,
            "maximum": maximum,
            "exclusiveMinimum": exclusive_minimum,
            "exclusiveMaximum": exclusive_maximum,
        },
    )


def timestamp(description: str) -> Schema:
    """A point in time: an RFC 3339 `date-time` string, as metav1.Time is written."""
    return string(description, fmt="date-time", max_length=64)


def boolean(description: str, *, default: bool | None = None) -> Schema:
    return _with({"type": "boolean", "description": description}, {"default": default})


def obj(
    description: str,
    properties: dict[str, Schema],
    *,
    required: list[str] | None = None,
    default: dict[str, Any] | None = None,
    rules: list[dict[str, str]] | None = None,
) -> Schema:
    """An object with known properties; `rules` are CEL `x-kubernetes-validations`."""
    return _with(
        {"type": "object", "description": description, "properties": properties},
        {"required": required, "default": default, "x-kubernetes-validations": rules},
    )


def array(
    description: str,
    items: Schema,
    *,
    max_items: int,
    min_items: int | None = None,
    list_type: str | None = None,
    map_keys: list[str] | None = None,
    rules: list[dict[str, str]] | None = None,
) -> Schema:
    """A bounded list (CEL cost estimation needs `maxItems`)."""
    return _with(
        {"type": "array", "description": description, "items": items, "maxItems": max_items},
        {
            "minItems": min_items,
            "x-kubernetes-list-type": list_type,
            "x-kubernetes-list-map-keys": map_keys,
            "x-kubernetes-validations": rules,
        },
    )


def string_map(description: str, values: Schema, *, max_properties: int = 64) -> Schema:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": values,
        "maxProperties": max_properties,
    }


def quantity(description: str) -> Schema:
    """A resource quantity (`500m`, `1Gi`, `2`): int-or-string as in core/v1."""
    return {
        "description": description,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": (
            "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
            "([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$"
        ),
        "x-kubernetes-int-or-string": True,
    }


def rule(expression: str, message: str, *, field_path: str | None = None) -> dict[str, str]:
    """One CEL validation; `field_path` (e.g. `.alias`) makes the error name that field."""
    out = {"rule": expression, "message": message}
    if field_path is not None:
        out["fieldPath"] = field_path
    return out
