"""The Open Inference Protocol's inference request and response, shared by REST and gRPC.

One typed contract (as MLServer's `types/dataplane.py` and KServe's `v2_datamodels.py`): the
REST transport (`rest.py`, JSON and the binary tensor data extension) and the gRPC transport
(`grpcserver.py`) both decode into `InferRequest` and encode from `InferResponse`, and the data
plane only ever sees these. Pure: no FastAPI, no grpc, no MLflow. The design decision: a tensor's
`data` is either the JSON list as sent or a numpy array already typed by its datatype (binary
extension, gRPC raw contents), so the codec validates JSON values and trusts typed arrays.

The datatypes and their numpy types follow the protocol's tensor data types table; BYTES
elements travel as 4-byte little-endian lengths followed by the bytes (binary extension and gRPC
raw contents alike).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelpilot.modelserver import errors

# The protocol's datatypes -> numpy dtypes (fixed-size ones; BYTES is variable-length).
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
DATATYPES = frozenset({*DTYPES, "BYTES"})


@dataclass
class Tensor:
    """An input tensor: `data` is the JSON list (possibly nested) or a typed numpy array."""

    name: str
    shape: list[int]
    datatype: str
    data: Any
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    inputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None


@dataclass
class OutputTensor:
    """An output: a 1-D or 2-D numpy array; `binary` when the client asked for raw bytes."""

    name: str
    datatype: str
    data: np.ndarray[Any, Any]
    binary: bool = False

    @property
    def shape(self) -> list[int]:
        return list(self.data.shape)


@dataclass
class InferResponse:
    model_name: str
    model_version: str
    outputs: list[OutputTensor]
    id: str | None = None


def datatype_of(array: np.ndarray[Any, Any]) -> str:
    """The protocol datatype of a numpy array (object and string arrays are BYTES)."""
    for name, dtype in DTYPES.items():
        if array.dtype == dtype:
            return name
    return "BYTES"


def from_bytes(
    raw: bytes | memoryview, *, datatype: str, size: int, where: str
) -> np.ndarray[Any, Any]:
    """A typed 1-D array of `size` elements from raw little-endian bytes; BYTES elements are
    length-prefixed. An `InvalidInputError` naming `where` when the length does not fit."""
    if datatype == "BYTES":
        items: list[bytes] = []
        view = memoryview(raw)
        offset = 0
        while offset < len(view):
            if offset + 4 > len(view):
                raise errors.InvalidInputError(f"{where}: BYTES element {len(items)} is truncated")
            (length,) = struct.unpack_from("<I", view, offset)
            offset += 4
            if offset + length > len(view):
                raise errors.InvalidInputError(f"{where}: BYTES element {len(items)} is truncated")
            items.append(bytes(view[offset : offset + length]))
            offset += length
        if len(items) != size:
            raise errors.InvalidInputError(
                f"{where}: the shape needs {size} BYTES elements, the data holds {len(items)}"
            )
        out = np.empty(size, dtype=object)
        out[:] = items
        return out
    dtype = DTYPES[datatype].newbyteorder("<")
    if len(raw) != size * dtype.itemsize:
        raise errors.InvalidInputError(
            f"{where}: the shape needs {size * dtype.itemsize} bytes of {datatype}, got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype)


def to_bytes(array: np.ndarray[Any, Any]) -> bytes:
    """The raw little-endian bytes of an output array, row-major; BYTES length-prefixed."""
    if datatype_of(array) != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    parts: list[bytes] = []
    for item in array.ravel().tolist():
        data = item if isinstance(item, bytes) else str(item).encode()
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)
