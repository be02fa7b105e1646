"""The model server's HTTP apps: Open Inference Protocol v2 REST and `/predict` on the inference
port; `/drift/window` and `/metrics` on the admin port (issue 15: a NetworkPolicy works on ports,
so only the routers need the inference port and only the drift job and Prometheus the admin port;
the inference port answers 404 for them, in the protocol's shape).

Endpoints only translate HTTP to `dataplane.DataPlane` calls; the inference bodies are parsed
and answered by `rest` (served ahead of FastAPI by `rest.FastPath`, see `create_asgi`). Errors
are rendered in one place each: `errors.ServerError` carries its status, unknown routes and
methods (404, 405) and FastAPI's request validation keep the protocol's `{"error": "..."}` shape,
and a size-limit middleware answers 413 before a body is parsed; every one of them is counted in
`modelpilot_model_errors_total`. Every failure a client causes is a 4xx; a 5xx means a bug.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import fastapi
import fastapi.exceptions
import fastapi.responses

from modelpilot.httpserver import asgi, launch
from modelpilot.modelserver import dataplane, errors, oip, rest, settings

# The OpenAPI description of the inference bodies (they are parsed in `rest`, not by pydantic).
_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": sorted(oip.DATATYPES)},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "parameters": {"type": "object"},
                                },
                            },
                        },
                    },
                }
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
            },
        },
    }
}
_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["instances"],
                    "properties": {
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"anyOf": [{"type": "object"}, {"type": "array"}]},
                        }
                    },
                }
            }
        },
    }
}


def create_app(
    config: settings.ServerSettings, *, plane: dataplane.DataPlane | None = None
) -> fastapi.FastAPI:
    plane = plane or dataplane.DataPlane(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: fastapi.FastAPI) -> AsyncIterator[None]:
        if plane.model is None:
            plane.start()
        grpc_server = None
        if config.grpc_port is not None:
            from modelpilot.modelserver import grpcserver  # grpcio only when gRPC is on

            grpc_server = await grpcserver.start(plane, host=config.host, port=config.grpc_port)
        yield
        if grpc_server is not None:
            await grpc_server.stop(grace=5.0)
        await plane.stop()

    app = fastapi.FastAPI(
        title="modelpilot model server",
        version="0.1.0",
        lifespan=lifespan,
        # tritonclient posts without a Content-Type; FastAPI >= 0.132 refuses such bodies unless
        # told not to (the inference bodies are parsed in `rest`, whatever their type).
        strict_content_type=False,
        responses={
            400: {"description": "Malformed body"},
            404: {"description": "Unknown model, or no drift window"},
            405: {"description": "Method not allowed on this route"},
            413: {"description": "Body or batch too large"},
            422: {"description": "/predict: inputs do not match the model's signature"},
            503: {"description": "The model is still loading"},
        },
    )
    app.state.plane = plane
    # Errors, unknown routes (404) and methods (405) in the protocol's shape, counted alike.
    asgi.json_errors(app, errors.ServerError, describe=_describe, count=plane.count_error)

    def answer(result: rest.Answer) -> fastapi.responses.Response:
        status, headers, body = result
        return fastapi.responses.Response(
            body, status_code=status, headers={k.decode(): v.decode() for k, v in headers}
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

    @app.get("/v2/models/{name}/versions/{version}")
    async def model_version_metadata(name: str, version: str) -> dict[str, Any]:
        return plane.model_metadata(name, version)

    @app.get("/v2/models/{name}/ready", responses={503: {"description": "Still loading"}})
    async def model_ready(name: str) -> fastapi.responses.Response:
        ok = plane.model_ready(name)
        return fastapi.responses.JSONResponse(
            {"name": name, "ready": ok}, status_code=200 if ok else 503
        )

    @app.get(
        "/v2/models/{name}/versions/{version}/ready",
        responses={503: {"description": "Still loading"}},
    )
    async def model_version_ready(name: str, version: str) -> fastapi.responses.Response:
        ok = plane.model_ready(name, version)
        return fastapi.responses.JSONResponse(
            {"name": name, "ready": ok}, status_code=200 if ok else 503
        )

    # Served by `rest.FastPath` in the process; declared here for the OpenAPI description and
    # for callers of the bare FastAPI app, with the same code behind them.
    @app.post("/v2/models/{name}/infer", openapi_extra=_INFER_BODY)
    async def infer(name: str, request: fastapi.Request) -> fastapi.responses.Response:
        return answer(await rest.infer(plane, name, None, await request.body(), request.headers))

    @app.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=_INFER_BODY)
    async def infer_version(
        name: str, version: str, request: fastapi.Request
    ) -> fastapi.responses.Response:
        return answer(await rest.infer(plane, name, version, await request.body(), request.headers))

    @app.post("/predict", openapi_extra=_PREDICT_BODY)
    async def predict(request: fastapi.Request) -> fastapi.responses.Response:
        return answer(await rest.predict(plane, await request.body()))

    app.add_middleware(asgi.BodyLimit, limit=config.max_body_bytes, on_reject=plane.count_error)
    return app


def _describe(exc: errors.ServerError) -> tuple[int, str]:
    return exc.status_code, exc.message


def create_admin_app(plane: dataplane.DataPlane) -> fastapi.FastAPI:
    """The admin port's app: the drift job's `/drift/window` and Prometheus' `/metrics`, over the
    serving app's data plane; no lifespan of its own (the serving app's starts and stops it)."""
    app = fastapi.FastAPI(
        title="modelpilot model server (admin)", version="0.1.0", docs_url=None, redoc_url=None
    )
    asgi.json_errors(app, errors.ServerError, describe=_describe, validation=False)

    @app.get("/drift/window", responses={404: {"description": "No drift window"}})
    async def drift_window() -> dict[str, Any]:
        return plane.drift_window()

    asgi.metrics_route(app, plane.metrics.exposition)
    return app


def create_asgi(config: settings.ServerSettings) -> launch.Apps:
    """The model server as served: the FastAPI app behind the inference fast path on the inference
    port, the admin app over the same data plane on the admin port."""
    application = create_app(config)
    plane: dataplane.DataPlane = application.state.plane
    return launch.Apps(
        serving=rest.FastPath(application, plane=plane, limit=config.max_body_bytes),
        admin=create_admin_app(plane),
        track=plane.track,  # the batcher's queue: the requests uvicorn has in flight
    )
