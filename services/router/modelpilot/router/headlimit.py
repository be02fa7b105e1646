"""A bound on the request head (request line and headers): 431 before a huge head is held in memory.

uvicorn bounds the head only under its pure-Python h11 parser (`h11_max_incomplete_event_size`);
under httptools (llhttp, the fast parser the router runs on) a 40 MB header was read whole (+75 MiB
RSS). This is uvicorn's httptools protocol with the head counted as it arrives, in two ways whose
larger value is compared with the limit: the sizes of the URL and headers the parser reports, and
every chunk that arrives wholly inside one request's head (the parser accumulates a header value
across chunks before it reports it, so that is what bounds one giant header). Past the limit the
connection gets `431 Request Header Fields Too Large` (RFC 6585 section 5) and is closed; memory
stays within the limit plus one read. Design decision: a subclass of uvicorn's protocol, passed to
uvicorn as its `http` class, rather than a parser of our own: the hot path is unchanged apart from
two additions per header.
"""

from __future__ import annotations

from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadTooLargeError(Exception):
    """The request head passed MAX_HEADER_BYTES: answered 431 and the connection closed."""


def protocol(max_head_bytes: int, *, setting: str) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol bounded to `max_head_bytes`; the 431 names `setting`."""
    body = (
        f'{{"error": "request head (request line and headers): more than {max_head_bytes} '
        f'bytes ({setting})"}}'
    ).encode()
    answer = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )

    class BoundedHeadProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head = 0  # URL + header bytes the parser reported for this request
            self._head_chunks = 0  # bytes of chunks wholly inside this request's head
            self._in_head = True
            self._messages = 0
            self._refused = False

        def _count(self, size: int) -> None:
            self._head += size
            if self._head > max_head_bytes:
                raise _HeadTooLargeError

        def on_message_begin(self) -> None:
            self._head = self._head_chunks = 0
            self._in_head = True
            self._messages += 1
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def _refuse(self) -> None:
            self._refused = True
            self.transport.write(answer)
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            # uvicorn's data_received, plus the two counts.
            if self._refused:
                return
            self._unset_keepalive_if_required()
            in_head, messages = self._in_head, self._messages
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, _HeadTooLargeError):
                    self._refuse()
                    return
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            if in_head and self._in_head and messages == self._messages:
                self._head_chunks += len(data)
                if self._head_chunks > max_head_bytes:
                    self._refuse()

    return BoundedHeadProtocol
