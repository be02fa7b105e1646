"""The model server's HTTP app: Open Inference Protocol v2 REST, `/predict`, drift window, metrics.

Endpoints only translate HTTP to `dataplane.DataPlane` calls. Errors are rendered in one place:
`errors.ServerError` carries its status, FastAPI's request validation becomes a 422 naming the
field, and a size-limit middleware answers 413 before a body is parsed. Every failure a
client causes is a 4xx with `{"error": "..."}`; a 5xx means a bug.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import fastapi
import fastapi.exceptions
import fastapi.responses
import pydantic
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelpilot.modelserver import dataplane, errors, settings


class Tensor(pydantic.BaseModel):
    """One v2 input tensor."""

    name: str = pydantic.Field(min_length=1)
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferenceRequest(pydantic.BaseModel):
    """A v2 inference request (Open Inference Protocol, REST)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[Tensor] = pydantic.Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None


class PredictRequest(pydantic.BaseModel):
    """`{"instances": [...]}`: rows as objects keyed by column, or as lists in signature order."""

    instances: list[dict[str, Any] | list[Any]] = pydantic.Field(min_length=1)


class BodyLimit:
    """Answer 413 for bodies over `limit` bytes, before the app parses them (ASGI middleware)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._reject(send, declared)
                    return
        # Read the body here (bounded) and replay it: also catches chunked bodies without a length.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, size: int) -> None:
        payload = (
            f'{{"error": "request body: {size} bytes or more, at most {self.limit} allowed '
            f'(MODELPILOT_SERVER_MAX_BODY_BYTES)"}}'
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def validation_message(exc: fastapi.exceptions.RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{loc}: {first.get('msg', 'invalid')}"


def create_app(
    config: settings.ServerSettings, *, plane: dataplane.DataPlane | None = None
) -> fastapi.FastAPI:
    plane = plane or dataplane.DataPlane(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: fastapi.FastAPI) -> AsyncIterator[None]:
        if plane.model is None:
            plane.start()
        yield
        await plane.stop()

    app = fastapi.FastAPI(
        title="modelpilot model server",
        version="0.1.0",
        lifespan=lifespan,
        responses={
            400: {"description": "Malformed body"},
            404: {"description": "Unknown model, or no drift window"},
            413: {"description": "Body or batch too large"},
            422: {"description": "Inputs do not match the model's signature"},
            503: {"description": "The model is still loading"},
        },
    )
    app.state.plane = plane

    @app.exception_handler(errors.ServerError)
    async def server_error(
        _: fastapi.Request, exc: errors.ServerError
    ) -> fastapi.responses.Response:
        plane.count_error(exc.status_code)
        return fastapi.responses.JSONResponse({"error": exc.message}, status_code=exc.status_code)

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def invalid_request(
        _: fastapi.Request, exc: fastapi.exceptions.RequestValidationError
    ) -> fastapi.responses.Response:
        status = 400 if any(e.get("type") == "json_invalid" for e in exc.errors()) else 422
        plane.count_error(status)
        return fastapi.responses.JSONResponse(
            {"error": validation_message(exc)}, status_code=status
        )

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", responses={503: {"description": "Still loading"}})
    async def ready() -> fastapi.responses.Response:
        return fastapi.responses.JSONResponse(
            {"ready": plane.ready}, status_code=200 if plane.ready else 503
        )

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return plane.server_metadata()

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> dict[str, Any]:
        return plane.model_metadata(name)

    @app.get("/v2/models/{name}/ready", responses={503: {"description": "Still loading"}})
    async def model_ready(name: str) -> fastapi.responses.Response:
        ok = plane.model_ready(name)
        return fastapi.responses.JSONResponse(
            {"name": name, "ready": ok}, status_code=200 if ok else 503
        )

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: InferenceRequest) -> dict[str, Any]:
        payload = request.model_dump(exclude_none=True)
        return await plane.infer_v2(name, payload)

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict[str, Any]:
        return await plane.predict(request.instances)

    @app.get("/drift/window")
    async def drift_window() -> dict[str, Any]:
        return plane.drift_window()

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> fastapi.responses.Response:
        return fastapi.responses.Response(
            plane.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    return app
