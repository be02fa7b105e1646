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

from modelpilot.modelserver import asgi, dataplane, errors, settings


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
            {"error": asgi.validation_message(exc)}, status_code=status
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

    app.add_middleware(asgi.BodyLimit, limit=config.max_body_bytes)
    return app
