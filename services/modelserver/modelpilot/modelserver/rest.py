"""The Open Inference Protocol's REST transport: JSON and the binary tensor data extension.

Translates HTTP bodies to `oip.InferRequest` and `oip.InferResponse` back to bytes; the data plane
does the rest. The binary tensor data extension (Triton's, which KServe's and tritonclient's
`set_data_from_numpy` use by default): when the `Inference-Header-Content-Length` header is
present, the body is that many bytes of JSON followed by the raw tensors, in input order, each
`parameters.binary_data_size` bytes long; outputs go back in the same framing when a requested
output has `parameters.binary_data: true` or the request has `parameters.binary_data_output:
true`. The body's Content-Type is not consulted (tritonclient sends none).

Design decision: the inference routes are served in plain ASGI (`FastPath`) in front of the
FastAPI app, as the router's are, and the body is parsed with orjson and checked by hand, not by
pydantic: these routes are the server's hot path, while every other route (health, metadata,
metrics) stays FastAPI's. The protocol answers every error as `{"error": "..."}`; an input that
does not fit the model's signature is a 400 on the v2 routes (the protocol's status for a bad
inference request) and stays a 422 on `/predict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from modelpilot.httpserver import asgi
from modelpilot.modelserver import dataplane, errors, oip

HEADER_LENGTH = "inference-header-content-length"
_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def infer_route(path: str) -> tuple[str, str | None] | None:
    """(model name, version or None) when `path` is an infer route of the protocol."""
    match = _INFER.match(path)
    return None if match is None else (match[1], match[2])


def _load_json(raw: bytes | memoryview) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequestError(f"body: not valid JSON ({exc})") from exc


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.BadRequestError(f"{where}: expected an object")
    return value


def parse_infer(body: bytes, header_length: str | None) -> oip.InferRequest:
    """The request of a v2 infer body (JSON, or JSON then binary tensors)."""
    binary = memoryview(b"")
    raw: bytes | memoryview = body
    if header_length is not None:
        try:
            json_length = int(header_length)
        except ValueError:
            json_length = -1
        if not 0 <= json_length <= len(body):
            raise errors.BadRequestError(
                f"Inference-Header-Content-Length: {header_length!r} is not a length within the "
                f"body ({len(body)} bytes)"
            )
        view = memoryview(body)
        raw, binary = view[:json_length], view[json_length:]
    doc = _load_json(raw)
    if not isinstance(doc, dict):
        raise errors.BadRequestError("body: expected a JSON object")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise errors.InvalidInputError("inputs: expected a non-empty list of tensors")
    tensors: list[oip.Tensor] = []
    offset = 0
    for i, t in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(t, dict):
            raise errors.InvalidInputError(f"{where}: expected a tensor object")
        params = _parameters(t.get("parameters"), f"{where}.parameters")
        datatype = t.get("datatype")
        if datatype not in oip.DATATYPES:
            raise errors.InvalidInputError(
                f"{where}.datatype: expected one of {', '.join(sorted(oip.DATATYPES))}"
            )
        shape = t.get("shape")
        size = params.get("binary_data_size")
        if size is not None:
            if header_length is None:
                raise errors.BadRequestError(
                    f"{where}.parameters.binary_data_size: binary data needs the "
                    "Inference-Header-Content-Length header"
                )
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise errors.InvalidInputError(
                    f"{where}.parameters.binary_data_size: expected a non-negative integer"
                )
            if offset + size > len(binary):
                raise errors.InvalidInputError(
                    f"{where}.parameters.binary_data_size: {size} bytes from offset {offset}, "
                    f"the binary part holds {len(binary)}"
                )
            chunk = binary[offset : offset + size]
            offset += size
            count = _count(shape, where)
            data: Any = oip.from_bytes(chunk, datatype=datatype, size=count, where=where)
            params = {k: v for k, v in params.items() if k != "binary_data_size"}
        else:
            if "data" not in t:
                raise errors.InvalidInputError(
                    f"{where}.data: missing (or give parameters.binary_data_size)"
                )
            data = t["data"]
        name = t.get("name")
        tensors.append(
            oip.Tensor(
                name=name if isinstance(name, str) else "",
                shape=shape if isinstance(shape, list) else [],
                datatype=datatype,
                data=data,
                parameters=params,
            )
        )
    if offset != len(binary):
        raise errors.InvalidInputError(
            f"binary data: {len(binary) - offset} bytes after the last input's binary_data_size"
        )
    outputs = doc.get("outputs")
    requested: list[oip.RequestedOutput] | None = None
    if outputs is not None:
        if not isinstance(outputs, list):
            raise errors.InvalidInputError("outputs: expected a list of {name, parameters}")
        requested = []
        for i, o in enumerate(outputs):
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                raise errors.InvalidInputError(f"outputs[{i}].name: expected a string")
            requested.append(
                oip.RequestedOutput(
                    name=o["name"],
                    parameters=_parameters(o.get("parameters"), f"outputs[{i}].parameters"),
                )
            )
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise errors.InvalidInputError("id: expected a string")
    return oip.InferRequest(
        inputs=tensors,
        id=rid,
        parameters=_parameters(doc.get("parameters"), "parameters"),
        outputs=requested,
    )


def _count(shape: Any, where: str) -> int:
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise errors.InvalidInputError(
            f"{where}.shape: expected a non-empty list of non-negative integers"
        )
    count = 1
    for d in shape:
        count *= d
    return count


def encode_infer(response: oip.InferResponse) -> Answer:
    """The response body: JSON, or JSON then the binary outputs (with the header length)."""
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for o in response.outputs:
        tensor: dict[str, Any] = {"name": o.name, "datatype": o.datatype, "shape": o.shape}
        if o.binary:
            blob = oip.to_bytes(o.data)
            blobs.append(blob)
            tensor["parameters"] = {"binary_data_size": len(blob)}
        else:
            tensor["data"] = dataplane.jsonable(o.data.reshape(-1))
        outputs.append(tensor)
    doc: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id is not None:
        doc["id"] = response.id
    head = orjson.dumps(doc)
    if not blobs:
        return 200, [(b"content-type", b"application/json")], head
    return (
        200,
        [
            (b"content-type", b"application/octet-stream"),
            (HEADER_LENGTH.encode(), str(len(head)).encode()),
        ],
        b"".join([head, *blobs]),
    )


def error_answer(plane: dataplane.DataPlane, status: int, message: str) -> Answer:
    """`{"error": message}` with `status`, counted in the error metric."""
    plane.count_error(status)
    return status, [(b"content-type", b"application/json")], orjson.dumps({"error": message})


async def infer(
    plane: dataplane.DataPlane,
    name: str,
    version: str | None,
    body: bytes,
    headers: Mapping[str, str],
) -> Answer:
    """One v2 infer request over REST, answered (errors included)."""
    try:
        request = parse_infer(body, headers.get(HEADER_LENGTH))
        return encode_infer(await plane.infer(name, version, request))
    except errors.ServerError as exc:
        # The protocol answers a request that does not fit the model with 400 (KServe's and
        # Triton's REST servers alike); 422 stays `/predict`'s.
        status = 400 if exc.status_code == 422 else exc.status_code
        return error_answer(plane, status, exc.message)


async def predict(plane: dataplane.DataPlane, body: bytes) -> Answer:
    """`POST /predict` with `{"instances": [...]}`."""
    try:
        doc = _load_json(body)
        if not isinstance(doc, dict) or "instances" not in doc:
            raise errors.InvalidInputError("instances: field required (a list of rows)")
        answer = await plane.predict(doc["instances"])
    except errors.ServerError as exc:
        return error_answer(plane, exc.status_code, exc.message)
    return 200, [(b"content-type", b"application/json")], orjson.dumps(answer)


class FastPath:
    """Serve `POST /predict` and the v2 infer routes in plain ASGI, in front of the FastAPI app.

    Everything else (and the OpenAPI description of these routes) is the FastAPI app's."""

    def __init__(self, app: Any, *, plane: dataplane.DataPlane, limit: int) -> None:
        self.app = app
        self.plane = plane
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = None if path == "/predict" else infer_route(path)
        if route is None and path != "/predict":
            await self.app(scope, receive, send)
            return
        body = await asgi.read_body(receive, self.limit)
        if body is None:  # the client went away
            return
        if isinstance(body, int):
            answer = error_answer(
                self.plane,
                413,
                f"request body: {body} bytes or more, at most {self.limit} allowed "
                "(MODELPILOT_SERVER_MAX_BODY_BYTES)",
            )
        elif route is None:
            answer = await predict(self.plane, body)
        else:
            headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k == b"inference-header-content-length"
            }
            answer = await infer(self.plane, route[0], route[1], body, headers)
        status, headers_out, payload = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers_out, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
