"""ASGI pieces shared by the model server and the router: the body-size limit, the JSON errors.

Kept free of the data plane (and so of MLflow) so the router can use them without importing the
model server's dependencies. Design decision: the body limit reads the body itself, bounded, and
replays it, so a chunked body without a Content-Length is limited as surely as a declared one.
Every error either app answers has one shape, `{"error": "<what to fix>"}` (`json_errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import fastapi
import fastapi.exceptions
import fastapi.responses
import starlette.exceptions
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorT = TypeVar("ErrorT", bound=Exception)
# Prometheus' text exposition format, version 0.0.4: what both admin ports have always declared.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


async def read_body(receive: Receive, limit: int) -> bytes | int | None:
    """The whole request body, read chunk by chunk; the size read so far (an int) as soon as it
    passes `limit` bytes; None when the client disconnects first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return size
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyLimit:
    """Answer 413 for bodies over `limit` bytes, before the app parses them (ASGI middleware)."""

    def __init__(
        self, app: ASGIApp, *, limit: int, on_reject: Callable[[int], None] | None = None
    ) -> None:
        """`on_reject(413)` is called for each body refused (the model server counts them)."""
        self.app = app
        self.limit = limit
        self.on_reject = on_reject

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
        body = await read_body(receive, self.limit)
        if body is None:  # the client went away
            return
        if isinstance(body, int):
            await self._reject(send, body)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, size: int) -> None:
        if self.on_reject is not None:
            self.on_reject(413)
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


def json_errors(
    app: fastapi.FastAPI,
    service_error: type[ErrorT],
    *,
    describe: Callable[[ErrorT], tuple[int, str]],
    count: Callable[[int], None] | None = None,
    validation: bool = True,
) -> None:
    """Answer every error of `app` as `{"error": message}`: the service's own `service_error`
    (`describe(exc)` is its status and message), unknown routes (404) and methods (405) and, with
    `validation`, a body that is not JSON (400) or does not fit the route (422, naming the field).

    `count(status)` is called for each answer (the model server counts its errors; the router
    does not).
    """

    def counted(status: int) -> int:
        if count is not None:
            count(status)
        return status

    @app.exception_handler(service_error)
    async def on_service_error(_: fastapi.Request, exc: ErrorT) -> fastapi.responses.Response:
        status, message = describe(exc)
        return fastapi.responses.JSONResponse({"error": message}, status_code=counted(status))

    @app.exception_handler(starlette.exceptions.HTTPException)
    async def on_http_error(
        _: fastapi.Request, exc: starlette.exceptions.HTTPException
    ) -> fastapi.responses.Response:
        return fastapi.responses.JSONResponse(
            {"error": str(exc.detail)}, status_code=counted(exc.status_code), headers=exc.headers
        )

    if not validation:
        return

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def on_invalid_request(
        _: fastapi.Request, exc: fastapi.exceptions.RequestValidationError
    ) -> fastapi.responses.Response:
        invalid_json = any(e.get("type") == "json_invalid" for e in exc.errors())
        return fastapi.responses.JSONResponse(
            {"error": validation_message(exc)}, status_code=counted(400 if invalid_json else 422)
        )


def metrics_route(app: fastapi.FastAPI, exposition: Callable[[], bytes]) -> None:
    """`GET /metrics`: Prometheus' text exposition of the admin port, left out of the OpenAPI
    description (it is not the service's API)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> fastapi.responses.Response:
        return fastapi.responses.Response(exposition(), media_type=PROMETHEUS_TEXT)
