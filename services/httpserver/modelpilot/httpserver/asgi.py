"""ASGI pieces shared by the model server and the router: the body-size limit, validation errors.

Kept free of the data plane (and so of MLflow) so the router can use them without importing the
model server's dependencies. Design decision: the body limit reads the body itself, bounded, and
replays it, so a chunked body without a Content-Length is limited as surely as a declared one.
"""

from __future__ import annotations

from collections.abc import Callable

import fastapi.exceptions
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
