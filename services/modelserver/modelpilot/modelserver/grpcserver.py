"""The Open Inference Protocol's gRPC transport: `inference.GRPCInferenceService` on its own port.

Translates protobuf messages to `oip.InferRequest` and `oip.InferResponse` back, and delegates
everything to the same `dataplane.DataPlane` as the REST app, so both transports share the
model, the batcher, the metrics and the errors. The design decision: the gRPC server (grpc.aio)
runs on the HTTP server's event loop, started and stopped by the app's lifespan, not in a second
process or thread, so a gRPC request and a REST request can share one batched model call.

Errors: the data plane's HTTP statuses map to gRPC codes (400 INVALID_ARGUMENT, 404 NOT_FOUND,
413 RESOURCE_EXHAUSTED, 503 UNAVAILABLE) with the same one-line message, and are counted in
`modelpilot_model_errors_total` under the HTTP status, as over REST. Outputs are always sent as
`raw_output_contents` (what Triton does and what the protocol's clients read first).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import numpy as np

from modelpilot.modelserver import dataplane, errors, oip
from modelpilot.modelserver.proto import predict_v2_pb2 as pb
from modelpilot.modelserver.proto import predict_v2_pb2_grpc as pb_grpc

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
# The repeated field of `InferTensorContents` that holds each datatype.
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _parameters(params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, choice) if choice else None
    return out


def decode_request(request: pb.ModelInferRequest) -> oip.InferRequest:
    """The protocol request of a `ModelInferRequest` (raw contents or typed contents)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise errors.InvalidInputError(
            f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs"
        )
    tensors = []
    for i, t in enumerate(request.inputs):
        where = f"inputs[{i}]"
        shape = [int(d) for d in t.shape]
        if t.datatype not in oip.DATATYPES:
            raise errors.InvalidInputError(
                f"{where}.datatype: expected one of {', '.join(sorted(oip.DATATYPES))}"
            )
        if any(d < 0 for d in shape) or not shape:
            raise errors.InvalidInputError(
                f"{where}.shape: expected a non-empty list of non-negative integers"
            )
        data: Any
        if raw:
            data = oip.from_bytes(
                raw[i], datatype=t.datatype, size=math.prod(shape), where=f"raw_input_contents[{i}]"
            )
        elif t.datatype == "FP16":
            raise errors.InvalidInputError(f"{where}: FP16 needs raw_input_contents")
        elif t.datatype == "BYTES":
            data = np.empty(len(t.contents.bytes_contents), dtype=object)
            data[:] = list(t.contents.bytes_contents)
        else:
            values = getattr(t.contents, _CONTENTS[t.datatype])
            try:
                data = np.array(values, dtype=oip.DTYPES[t.datatype])
            except OverflowError as exc:
                raise errors.InvalidInputError(
                    f"{where}.contents: a value is out of the range of {t.datatype}"
                ) from exc
        tensors.append(
            oip.Tensor(
                name=t.name,
                shape=shape,
                datatype=t.datatype,
                data=data,
                parameters=_parameters(t.parameters),
            )
        )
    outputs = (
        [
            oip.RequestedOutput(name=o.name, parameters=_parameters(o.parameters))
            for o in request.outputs
        ]
        if request.outputs
        else None
    )
    return oip.InferRequest(
        inputs=tensors,
        id=request.id or None,
        parameters=_parameters(request.parameters),
        outputs=outputs,
    )


def encode_response(response: oip.InferResponse) -> pb.ModelInferResponse:
    return pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name=o.name, datatype=o.datatype, shape=o.shape)
            for o in response.outputs
        ],
        raw_output_contents=[oip.to_bytes(o.data) for o in response.outputs],
    )


def _metadata(meta: dict[str, Any]) -> pb.ModelMetadataResponse:
    def tensors(items: list[dict[str, Any]]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
        return [
            pb.ModelMetadataResponse.TensorMetadata(
                name=t["name"], datatype=t["datatype"], shape=t["shape"]
            )
            for t in items
        ]

    return pb.ModelMetadataResponse(
        name=meta["name"],
        versions=meta["versions"],
        platform=meta["platform"],
        inputs=tensors(meta["inputs"]),
        outputs=tensors(meta["outputs"]),
    )


class Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """Each RPC is one data-plane call; a `ServerError` ends the call with its mapped code."""

    def __init__(self, plane: dataplane.DataPlane) -> None:
        self.plane = plane

    async def _fail(
        self, context: grpc.aio.ServicerContext[Any, Any], exc: errors.ServerError
    ) -> None:
        status = 400 if exc.status_code == 422 else exc.status_code
        self.plane.count_error(status)
        await context.abort(_CODES.get(status, grpc.StatusCode.INTERNAL), exc.message)

    async def ServerLive(  # noqa: N802 (the protocol's RPC names)
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(  # noqa: N802
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.plane.ready)

    async def ModelReady(  # noqa: N802
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelReadyResponse:
        try:
            return pb.ModelReadyResponse(
                ready=self.plane.model_ready(request.name, request.version or None)
            )
        except errors.ServerError as exc:
            await self._fail(context, exc)
            raise  # not reached: abort raises

    async def ServerMetadata(  # noqa: N802
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerMetadataResponse:
        meta = self.plane.server_metadata()
        return pb.ServerMetadataResponse(
            name=meta["name"], version=meta["version"], extensions=meta["extensions"]
        )

    async def ModelMetadata(  # noqa: N802
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelMetadataResponse:
        try:
            return _metadata(self.plane.model_metadata(request.name, request.version or None))
        except errors.ServerError as exc:
            await self._fail(context, exc)
            raise

    async def ModelInfer(  # noqa: N802
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelInferResponse:
        try:
            response = await self.plane.infer(
                request.model_name,
                request.model_version or None,
                decode_request(request),
                protocol="grpc",
            )
        except errors.ServerError as exc:
            await self._fail(context, exc)
            raise
        return encode_response(response)


class InFlight(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpcio: no stubs
    """Keeps the task of every call in flight, as uvicorn keeps its requests' (`tasks`), for the
    batcher (`batching`): grpc.aio runs each call in its own task and calls the interceptors
    first, before the request message is read. Installed with batching on and off alike, so
    that both do the same work per call."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        task = asyncio.current_task()
        if task is not None and task not in self.tasks:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await continuation(handler_call_details)


async def start(plane: dataplane.DataPlane, *, host: str, port: int) -> grpc.aio.Server:
    """A started gRPC server on `host:port`, serving `plane` on the running event loop."""
    limit = plane.settings.max_body_bytes
    in_flight = InFlight()
    plane.track(in_flight.tasks)
    server = grpc.aio.server(
        interceptors=[in_flight],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", max(limit, 4 * 1024 * 1024)),
        ],
    )
    # The generated registration function is untyped (grpcio-tools writes no stubs for it).
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        Servicer(plane), server
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"gRPC: cannot listen on {address}")
    await server.start()
    return server
