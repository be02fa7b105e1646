"""The router's HTTP apps: inference endpoints forwarded to a variant and feedback on the inference
port; `/stats`, `/routes` and `/metrics` on the admin port (issue 15: a NetworkPolicy works on
ports, so the operator's and Prometheus' reads get a port of their own; clients get 404 there).

Endpoints only translate HTTP to `proxy.Router` calls; errors become `{"error": ...}` with their
status. The inference endpoints take the raw body (no parsing in the router: the model server
validates it), which keeps the per-request overhead to the variant draw and the forward.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import fastapi
import fastapi.exceptions
import fastapi.responses
import pydantic

from modelpilot.httpserver import asgi, launch
from modelpilot.router import proxy, settings, sources, tokens

_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class Feedback(pydantic.BaseModel):
    """A delayed reward for one earlier request (its `X-Request-Id`).

    `reward` is taken as sent (a JSON number) and checked against the experiment's declared
    reward by `proxy.Router.feedback`: no coercion of `"1"` or `true`.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    request_id: str = pydantic.Field(min_length=1, max_length=tokens.MAX_TOKEN_CHARS)
    reward: pydantic.JsonValue


class _BodyLimit(asgi.BodyLimit):
    """The shared body limit, whose 413 names the router's own setting."""

    async def _reject(self, send: Any, size: int) -> None:
        await _send_json(
            send,
            413,
            {
                "error": f"request body: {size} bytes or more, at most {self.limit} allowed "
                "(MODELPILOT_ROUTER_MAX_BODY_BYTES)"
            },
        )


def _source(config: settings.RouterSettings, router: proxy.Router) -> Any:
    if config.routes_file:
        return sources.FileSource(
            config.routes_file,
            poll_seconds=config.poll_seconds,
            on_routes=router.set_routes,
            on_rejected=router.routes_rejected,
        )
    if config.configmap and config.namespace:
        return sources.ConfigMapSource(
            namespace=config.namespace,
            name=config.configmap,
            key=config.configmap_key,
            on_routes=router.set_routes,
            on_rejected=router.routes_rejected,
        )
    from modelpilot import errors

    raise errors.InputError(
        "routes: set MODELPILOT_ROUTER_ROUTES_FILE, or MODELPILOT_ROUTER_NAMESPACE and "
        "MODELPILOT_ROUTER_CONFIGMAP"
    )


def _is_inference(path: str) -> bool:
    return path == "/predict" or (path.startswith("/v2/models/") and path.endswith("/infer"))


class FastPath:
    """Serve the inference routes in plain ASGI, in front of the whole FastAPI application.

    The per-request path of a router is what its users pay for: it reads the body (bounded),
    calls `proxy.Router.forward` and writes the answer, nothing else. It wraps the FastAPI app
    from outside (not as a middleware), so an inference request never enters FastAPI's call,
    its telemetry check or Starlette's middleware stack (measured: about a tenth of the router's
    CPU per request). Every other route, the lifespan, and the OpenAPI description of these two
    are FastAPI's.
    """

    def __init__(self, app: Any, *, router: proxy.Router, limit: int) -> None:
        self.app = app
        self.router = router
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith("/v2"):
            await self._read_stable(scope, send)
            return
        if scope["type"] != "http" or scope["method"] != "POST" or not _is_inference(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = await asgi.read_body(receive, self.limit)
        if body is None:  # the client went away
            return
        if isinstance(body, int):
            await _send_json(
                send,
                413,
                {
                    "error": f"request body: more than {self.limit} bytes "
                    "(MODELPILOT_ROUTER_MAX_BODY_BYTES)"
                },
            )
            return
        try:
            # The raw (still percent-encoded) path: forwarded as received, never re-decoded.
            raw = scope.get("raw_path")
            path = raw.decode("latin-1") if raw else scope["path"]
            if scope.get("query_string"):
                path += "?" + scope["query_string"].decode("latin-1")
            answer = await self.router.forward(path, body, headers)
        except proxy.RouterError as exc:
            await _send_json(send, exc.status, {"error": exc.message})
            return
        await _send(
            send,
            answer.status,
            answer.content_type.encode("latin-1"),
            answer.body,
            [
                (b"x-request-id", answer.request_id.encode("latin-1")),
                (b"x-modelpilot-variant", answer.variant.encode("latin-1")),
                *answer.extra,
            ],
        )

    async def _read_stable(self, scope: Any, send: Any) -> None:
        """The Open Inference Protocol's GET routes (health, server and model metadata, model
        readiness) as the stable variant answers them, so the protocol's clients work through
        the router (issue 16)."""
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else scope["path"]
        try:
            answer = await self.router.read_stable(path)
        except proxy.RouterError as exc:
            await _send_json(send, exc.status, {"error": exc.message})
            return
        await _send(send, answer.status, answer.content_type.encode("latin-1"), answer.body)


async def _send(
    send: Any,
    status: int,
    content_type: bytes,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """One whole ASGI answer: status, content type and length, any extra headers, the body."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    await _send(send, status, b"application/json", json.dumps(payload).encode())


def create_app(config: settings.RouterSettings) -> fastapi.FastAPI:
    router = proxy.Router(config)
    source = _source(config, router)

    @contextlib.asynccontextmanager
    async def lifespan(_: fastapi.FastAPI) -> AsyncIterator[None]:
        router.open()
        source.start()
        yield
        await source.stop()
        await router.close()

    app = fastapi.FastAPI(title="modelpilot router", version="0.1.0", lifespan=lifespan)
    app.state.router = router

    # Router errors, unknown routes (404) and methods (405) as `{"error": ...}`, the shape of
    # every other answer of the router.
    asgi.json_errors(app, proxy.RouterError, describe=_describe)

    async def _forward(request: fastapi.Request, path: str) -> fastapi.responses.Response:
        answer = await router.forward(path, await request.body(), request.headers)
        return fastapi.responses.Response(
            content=answer.body,
            status_code=answer.status,
            media_type=answer.content_type,
            headers={
                "X-Request-Id": answer.request_id,
                "X-Modelpilot-Variant": answer.variant,
                **{k.decode("latin-1"): v.decode("latin-1") for k, v in answer.extra},
            },
        )

    responses: dict[int | str, dict[str, Any]] = {
        502: {"description": "The stable variant failed"},
        503: {"description": "No routes yet"},
    }

    @app.post("/predict", openapi_extra=_INFER_BODY, responses=responses)
    async def predict(request: fastapi.Request) -> fastapi.responses.Response:
        return await _forward(request, "/predict")

    @app.post("/v2/models/{name}/infer", openapi_extra=_INFER_BODY, responses=responses)
    async def infer(name: str, request: fastapi.Request) -> fastapi.responses.Response:
        return await _forward(request, f"/v2/models/{name}/infer")

    @app.post(
        "/feedback",
        responses={
            404: {"description": "Not a request id of this deployment's routers, or expired"},
            409: {"description": "The request was not answered successfully"},
            422: {"description": "The reward is not of the experiment's declared type"},
            503: {"description": "Not ready, or the feedback store did not answer: retry"},
        },
    )
    async def feedback(body: Feedback) -> dict[str, Any]:
        return await router.feedback(body.request_id, body.reward)

    @app.get("/healthz")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get(
        "/readyz",
        responses={503: {"description": "No routes yet, no key yet, or routes invalid too long"}},
    )
    async def ready() -> fastapi.responses.Response:
        reason = router.readiness()
        if reason is None:
            return fastapi.responses.JSONResponse({"ready": True})
        return fastapi.responses.JSONResponse({"ready": False, "reason": reason}, status_code=503)

    app.add_middleware(_BodyLimit, limit=config.max_body_bytes)
    return app


def create_admin_app(router: proxy.Router) -> fastapi.FastAPI:
    """The admin port's app: what the operator (`/stats`), people (`/routes`) and Prometheus
    (`/metrics`) read, over the serving app's `proxy.Router`; it has no lifespan of its own."""
    app = fastapi.FastAPI(
        title="modelpilot router (admin)", version="0.1.0", docs_url=None, redoc_url=None
    )
    asgi.json_errors(app, proxy.RouterError, describe=_describe, validation=False)

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return router.stats()

    @app.get("/routes", responses={503: {"description": "No routes yet"}})
    async def current_routes() -> dict[str, Any]:
        return router.routes_document()

    asgi.metrics_route(app, router.metrics.exposition)
    return app


def _describe(exc: proxy.RouterError) -> tuple[int, str]:
    return exc.status, exc.message


def create_asgi(config: settings.RouterSettings) -> launch.Apps:
    """The router as served: the FastAPI app behind the inference fast path on the inference
    port, the admin app over the same `proxy.Router` on the admin port."""
    application = create_app(config)
    router: proxy.Router = application.state.router
    return launch.Apps(
        serving=FastPath(application, router=router, limit=config.max_body_bytes),
        admin=create_admin_app(router),
    )
