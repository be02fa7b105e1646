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

import numpy as np
import numpy.typing as npt

from modelpilot.modelserver import errors, oip

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
V2_DATATYPES = oip.DATATYPES


@dataclass(frozen=True)
class Column:
    """One input column of the model's signature."""

    name: str
    kind: str  # an MLflow DataType name: double, float, long, integer, boolean, string
    required: bool = True
    shape: tuple[int, ...] = (-1,)  # as in the signature; -1 is the batch (a variable size)


@dataclass(frozen=True)
class Batch:
    """Decoded inputs: the values of each column (in signature order), all of equal length: a
    list per column from `{"instances": ...}`, a numpy array of the column's type from v2."""

    columns: dict[str, Any]
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


# The JSON value types a tensor of each datatype holds (`type(v) in ...`, so a bool is no number).
_JSON_TYPES: dict[str, frozenset[type]] = {
    **{d: frozenset({int}) for d in _V2_INTEGERS},
    **{d: frozenset({int, float}) for d in ("FP16", "FP32", "FP64")},
    "BOOL": frozenset({bool}),
    "BYTES": frozenset({str}),
}
_JSON_NAMES = {"BOOL": "true or false", "BYTES": "a string"}
# MLflow DataType name -> the numpy dtype of its column (what MLflow's schema enforcement expects).
_KIND_DTYPES: dict[str, Any] = {
    "double": np.float64,
    "float": np.float32,
    "long": np.int64,
    "integer": np.int32,
    "boolean": np.bool_,
}


def _tensor_array(t: oip.Tensor, where: str) -> tuple[list[int], npt.NDArray[Any]]:
    """The tensor's shape and its elements as a flat array of its datatype (JSON values are
    checked against the datatype; an `object` array keeps nulls for optional columns)."""
    if not isinstance(t.name, str) or not t.name:
        raise errors.InvalidInputError(f"{where}.name: expected a non-empty string")
    if t.datatype not in V2_DATATYPES:
        raise errors.InvalidInputError(
            f"{where}.datatype: expected one of {', '.join(sorted(V2_DATATYPES))}"
        )
    shape, size = _shape_size(t.shape, where)
    if isinstance(t.data, np.ndarray):
        if t.data.size != size:
            raise errors.InvalidInputError(
                f"{where}: shape {shape} needs {size} values, got {t.data.size}"
            )
        return shape, t.data.reshape(-1)
    data = _flatten(t.data, f"{where}.data")
    if len(data) != size:
        raise errors.InvalidInputError(
            f"{where}.data: shape {shape} needs {size} values, got {len(data)}"
        )
    allowed = _JSON_TYPES[t.datatype]
    found = set(map(type, data))
    if not found <= allowed:
        if found - allowed != {type(None)}:
            i, bad = next(
                (i, v) for i, v in enumerate(data) if v is not None and type(v) not in allowed
            )
            expected = _JSON_NAMES.get(t.datatype) or (
                "an integer" if allowed == {int} else "a number"
            )
            raise errors.InvalidInputError(
                f"{where}.data[{i}]: expected {expected} ({t.datatype}), got {_show(bad)}"
            )
        return shape, np.array(data, dtype=object)  # nulls: allowed only for optional columns
    if t.datatype == "BYTES":
        out = np.empty(len(data), dtype=object)
        out[:] = data
        return shape, out
    try:
        return shape, np.array(data, dtype=oip.DTYPES[t.datatype])
    except OverflowError as exc:  # an integer beyond the datatype (or beyond any float)
        dtype = oip.DTYPES[t.datatype]
        # Python numbers: comparing a huge int with a numpy scalar would overflow again.
        low, high = (
            (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
            if dtype.kind in "iu"
            else (-float(np.finfo(dtype).max), float(np.finfo(dtype).max))
        )
        i = next((i for i, v in enumerate(data) if not low <= v <= high), 0)
        raise errors.InvalidInputError(
            f"{where}.data[{i}]: {_show(data[i])} is out of the range of {t.datatype}"
        ) from exc


def _as_column(
    values: npt.NDArray[Any], datatype: str, column: Column, where: str
) -> npt.NDArray[Any]:
    """One column's values converted to the numpy type of its signature kind."""
    _check_datatype(datatype, column, f"{where}.datatype")
    if (values.dtype == object and datatype != "BYTES") or column.kind == "string":
        for r, v in enumerate(values):
            if v is None and column.required:
                raise errors.InvalidInputError(
                    f"{where}.data[{r}] ({column.name}): is required, got null"
                )
        if column.kind == "string":
            out = np.empty(len(values), dtype=object)
            out[:] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
            return out
        return values
    dtype = _KIND_DTYPES.get(column.kind)
    if dtype is None:
        raise errors.InvalidInputError(
            f"{where}: the model's signature has type {column.kind!r}, not servable"
        )
    if values.dtype.kind in "iu" and np.dtype(dtype).kind in "iu" and len(values):
        info = np.iinfo(dtype)
        low, high = int(values.min()), int(values.max())
        if low < info.min or high > info.max:
            raise errors.InvalidInputError(
                f"{where} ({column.name}): {high if high > info.max else low} is outside the "
                f"{column.kind} range"
            )
    return values.astype(dtype, copy=False)


def decode_v2_inputs(
    inputs: Sequence[oip.Tensor], schema: Sequence[Column] | None, *, max_rows: int
) -> Batch:
    """v2 `inputs`: one 1-D tensor per column (named as in the signature), or one [N, F] tensor.

    Each column becomes a numpy array of its signature type; a tensor's declared datatype is
    honoured first (FP32 values are float32 before they become a double column), as MLServer's
    codecs do, so both servers hand the model the same numbers."""
    if not inputs:
        raise errors.InvalidInputError("inputs: expected a non-empty list of tensors")
    tensors = [(t, *_tensor_array(t, f"inputs[{i}]")) for i, t in enumerate(inputs)]

    if len(tensors) == 1 and len(tensors[0][1]) == 2:
        t, shape, flat = tensors[0]
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
        matrix = flat.reshape(rows, width)
        return Batch(
            columns={
                c.name: _as_column(matrix[:, j], t.datatype, c, "inputs[0]")
                for j, c in enumerate(cols)
            },
            rows=rows,
        )

    by_name = {t.name: (i, t, shape, flat) for i, (t, shape, flat) in enumerate(tensors)}
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
    out: dict[str, Any] = {}
    for c in schema:
        if c.name not in by_name:
            if c.required:
                raise errors.InvalidInputError(
                    f"inputs.{c.name}: missing (required by the signature)"
                )
            continue  # an optional input left out: nulls, as `/predict` and MLflow allow
        i, t, shape, flat = by_name[c.name]
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
        out[c.name] = _as_column(flat, t.datatype, c, f"inputs[{i}]")
    if len(out) < len(schema):  # optional inputs left out; at least one input came, so rows > 0
        out = {
            c.name: out[c.name] if c.name in out else np.full(rows, None, dtype=object)
            for c in schema
        }
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
