"""Decode request payloads (Open Inference Protocol v2 tensors, `{"instances": [...]}`) to columns.

Pure: no FastAPI, no MLflow. The loader turns the model's MLflow signature into a tuple of
`Column`s; this module checks each value against it and answers with an `InvalidInputError` that
names the field (`instances[3].petal_width: expected a number, got "abc"`), so a client knows what
to fix. The one design decision: validation is done here, once, in plain Python over the decoded
JSON, instead of letting pandas coerce and MLflow's schema enforcement fail later with a message
about dtypes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelpilot.modelserver import errors

# MLflow DataType names -> what JSON value is accepted.
_NUMERIC = {"double", "float"}
_INTEGRAL = {"long", "integer"}
# MLflow DataType name -> the v2 tensor datatypes accepted for it.
_V2_INTEGERS = frozenset({"INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"})
_V2_NUMBERS = _V2_INTEGERS | {"FP64", "FP32", "FP16"}
_V2_FOR_KIND = {
    "double": _V2_NUMBERS,
    "float": _V2_NUMBERS,
    "long": _V2_INTEGERS,
    "integer": _V2_INTEGERS - {"UINT64"},
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
}
V2_DATATYPES = frozenset().union(*_V2_FOR_KIND.values())


@dataclass(frozen=True)
class Column:
    """One input column of the model's signature."""

    name: str
    kind: str  # an MLflow DataType name: double, float, long, integer, boolean, string
    required: bool = True


@dataclass(frozen=True)
class Batch:
    """Decoded inputs: one list of values per column (in signature order), all of equal length."""

    columns: dict[str, list[Any]]
    rows: int


def _check_value(value: Any, column: Column, where: str) -> Any:
    if value is None:
        if column.required:
            raise errors.InvalidInputError(f"{where}: is required, got null")
        return None
    kind = column.kind
    if kind in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise errors.InvalidInputError(f"{where}: expected a number, got {_show(value)}")
        try:
            return float(value)
        except OverflowError as exc:  # an integer beyond the float range
            raise errors.InvalidInputError(f"{where}: {_show(value)} is out of range") from exc
    if kind in _INTEGRAL:
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.InvalidInputError(f"{where}: expected an integer, got {_show(value)}")
        if kind == "integer" and not -(2**31) <= value < 2**31:
            raise errors.InvalidInputError(f"{where}: {value} is outside the 32-bit integer range")
        if kind == "long" and not -(2**63) <= value < 2**63:
            raise errors.InvalidInputError(f"{where}: {value} is outside the 64-bit integer range")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise errors.InvalidInputError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise errors.InvalidInputError(f"{where}: expected a string, got {_show(value)}")
        return value
    raise errors.InvalidInputError(
        f"{where}: the model's signature has type {kind!r}, not servable"
    )


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    if isinstance(value, list | dict):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def decode_instances(instances: Any, schema: Sequence[Column] | None, *, max_rows: int) -> Batch:
    """`{"instances": [...]}`: a list of objects keyed by column, or of lists in signature order."""
    if not isinstance(instances, list):
        raise errors.InvalidInputError("instances: expected a list of rows")
    if not instances:
        raise errors.InvalidInputError("instances: expected at least one row")
    if len(instances) > max_rows:
        raise errors.PayloadTooLargeError(
            f"instances: {len(instances)} rows, at most {max_rows} allowed"
        )
    if schema is None:
        schema = _infer_schema(instances[0])
    names = [c.name for c in schema]
    out: dict[str, list[Any]] = {c.name: [] for c in schema}
    known = set(names)
    for i, row in enumerate(instances):
        if isinstance(row, dict):
            for c in schema:
                where = f"instances[{i}].{c.name}"
                if c.name not in row:
                    if c.required:
                        raise errors.InvalidInputError(
                            f"{where}: missing (required by the signature)"
                        )
                    out[c.name].append(None)
                    continue
                out[c.name].append(_check_value(row[c.name], c, where))
            if not known.issuperset(row):
                extra = sorted(str(k) for k in row if k not in known)
                raise errors.InvalidInputError(
                    f"instances[{i}].{extra[0]}: not an input of the model "
                    f"(inputs: {', '.join(names)})"
                )
        elif isinstance(row, list):
            if len(row) != len(schema):
                raise errors.InvalidInputError(
                    f"instances[{i}]: expected {len(schema)} values "
                    f"({', '.join(names)}), got {len(row)}"
                )
            for c, v in zip(schema, row, strict=True):
                out[c.name].append(_check_value(v, c, f"instances[{i}].{c.name}"))
        else:
            raise errors.InvalidInputError(
                f"instances[{i}]: expected an object or a list, got {_show(row)}"
            )
    return Batch(columns=out, rows=len(instances))


def _infer_schema(first: Any) -> list[Column]:
    # A model without a signature: accept numeric rows; names come from the first object.
    if isinstance(first, dict):
        return [Column(name=str(k), kind="double") for k in first]
    if isinstance(first, list):
        return [Column(name=str(i), kind="double") for i in range(len(first))]
    raise errors.InvalidInputError(
        f"instances[0]: expected an object or a list, got {_show(first)}"
    )


def _flatten(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise errors.InvalidInputError(f"{where}: expected a list")
    if not any(isinstance(x, list) for x in data):
        return data
    flat: list[Any] = []

    # Row-major flattening of nested lists (v2 allows either flat or nested `data`).
    def walk(node: list[Any]) -> None:
        for x in node:
            if isinstance(x, list):
                walk(x)
            else:
                flat.append(x)

    walk(data)
    return flat


def _shape_size(shape: Any, where: str) -> tuple[list[int], int]:
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise errors.InvalidInputError(
            f"{where}.shape: expected a non-empty list of non-negative integers"
        )
    return shape, math.prod(shape)


def decode_v2_inputs(inputs: Any, schema: Sequence[Column] | None, *, max_rows: int) -> Batch:
    """v2 `inputs`: one 1-D tensor per column (named as in the signature), or one [N, F] tensor."""
    if not isinstance(inputs, list) or not inputs:
        raise errors.InvalidInputError("inputs: expected a non-empty list of tensors")
    tensors: list[tuple[str, list[int], str, list[Any]]] = []
    for i, t in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(t, dict):
            raise errors.InvalidInputError(f"{where}: expected a tensor object")
        name, datatype = t.get("name"), t.get("datatype")
        if not isinstance(name, str) or not name:
            raise errors.InvalidInputError(f"{where}.name: expected a non-empty string")
        if datatype not in V2_DATATYPES:
            raise errors.InvalidInputError(
                f"{where}.datatype: expected one of {', '.join(sorted(V2_DATATYPES))}"
            )
        shape, size = _shape_size(t.get("shape"), where)
        data = _flatten(t.get("data"), f"{where}.data")
        if len(data) != size:
            raise errors.InvalidInputError(
                f"{where}.data: shape {shape} needs {size} values, got {len(data)}"
            )
        tensors.append((name, shape, str(datatype), data))

    if len(tensors) == 1 and len(tensors[0][1]) == 2:
        name, shape, datatype, data = tensors[0]
        rows, width = shape
        cols = (
            list(schema)
            if schema is not None
            else [Column(name=str(j), kind="double") for j in range(width)]
        )
        if width != len(cols):
            raise errors.InvalidInputError(
                f"inputs[0].shape: expected [N, {len(cols)}] "
                f"({', '.join(c.name for c in cols)}), got {shape}"
            )
        _check_rows(rows, max_rows)
        out: dict[str, list[Any]] = {c.name: [] for c in cols}
        for j, c in enumerate(cols):
            _check_datatype(datatype, c, "inputs[0].datatype")
            col = out[c.name]
            for r in range(rows):
                col.append(
                    _check_value(data[r * width + j], c, f"inputs[0].data[{r}][{j}] ({c.name})")
                )
        return Batch(columns=out, rows=rows)

    by_name = {
        name: (i, shape, datatype, data) for i, (name, shape, datatype, data) in enumerate(tensors)
    }
    if len(by_name) != len(tensors):
        raise errors.InvalidInputError("inputs: tensor names must be unique")
    if schema is None:
        schema = [Column(name=n, kind="double") for n in by_name]
    names = [c.name for c in schema]
    unknown = [n for n in by_name if n not in set(names)]
    if unknown:
        raise errors.InvalidInputError(
            f"inputs.{unknown[0]}: not an input of the model (inputs: {', '.join(names)})"
        )
    rows = -1
    out = {}
    for c in schema:
        if c.name not in by_name:
            raise errors.InvalidInputError(f"inputs.{c.name}: missing (required by the signature)")
        i, shape, datatype, data = by_name[c.name]
        if len(shape) != 1 and not (len(shape) == 2 and shape[1] == 1):
            raise errors.InvalidInputError(
                f"inputs[{i}].shape: expected [N] or [N, 1], got {shape}"
            )
        if rows == -1:
            rows = shape[0]
            _check_rows(rows, max_rows)
        elif shape[0] != rows:
            raise errors.InvalidInputError(
                f"inputs[{i}].shape: {c.name} has {shape[0]} rows, other inputs have {rows}"
            )
        _check_datatype(datatype, c, f"inputs[{i}].datatype")
        out[c.name] = [_check_value(v, c, f"inputs.{c.name}[{r}]") for r, v in enumerate(data)]
    return Batch(columns=out, rows=rows)


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise errors.InvalidInputError("inputs.shape: expected at least one row")
    if rows > max_rows:
        raise errors.PayloadTooLargeError(f"inputs: {rows} rows, at most {max_rows} allowed")


def _check_datatype(datatype: str, column: Column, where: str) -> None:
    allowed = _V2_FOR_KIND.get(column.kind)
    if allowed is not None and datatype not in allowed:
        raise errors.InvalidInputError(
            f"{where}: {column.name} is {column.kind}; {datatype} is not allowed "
            f"(use one of {', '.join(sorted(allowed))})"
        )


def v2_datatype(values: Sequence[Any]) -> str:
    """The v2 datatype of an output column (JSON-ready Python values)."""
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
