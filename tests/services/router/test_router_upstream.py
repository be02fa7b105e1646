"""The router's backend client (`upstream.Pool`) against real sockets.

Each backend here is a raw asyncio TCP server that writes exactly the bytes a case needs (a
chunked body, a body framed by closing the connection, a stale keep-alive connection, an interim
100 answer, garbage), because a well-behaved HTTP server cannot be made to misbehave on cue. The
pool is also checked end to end against uvicorn-served apps in test_router.py.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelpilot.router import proxy, routes, settings, upstream
from modelpilot.testing import ports

OK = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n"
    b'{"predictions":1}'
)


@dataclass
class Backend:
    """A TCP server whose per-request answer is written by `respond(request_number, writer)`."""

    respond: Callable[[int, asyncio.StreamWriter], Awaitable[bool]]
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                if not await self.respond(len(self.requests), writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


Serve = Callable[..., Awaitable[Backend]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Backend]]]:
    servers: list[asyncio.Server] = []

    async def start(
        respond: Callable[[int, asyncio.StreamWriter], Awaitable[bool]],
        tls: ssl.SSLContext | None = None,
    ) -> Backend:
        backend = Backend(respond)
        server = await asyncio.start_server(backend.handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        backend.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        return backend

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _pool(**overrides: object) -> upstream.Pool:
    options: dict[str, object] = {
        "max_connections": 10,
        "connect_timeout": 1.0,
        "timeout": 2.0,
        "idle_seconds": 30.0,
    }
    options.update(overrides)
    return upstream.Pool(**options)  # type: ignore[arg-type]


async def _post(pool: upstream.Pool, url: str, path: str = "/predict") -> upstream.Response:
    return await pool.request(
        pool.origin(url), path, body=b'{"instances": [1]}', headers={"x-request-id": "r-1"}
    )


def always(
    answer: bytes, *, keep: bool = True
) -> Callable[[int, asyncio.StreamWriter], Awaitable[bool]]:
    async def respond(_: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer)
        await writer.drain()
        return keep

    return respond


async def test_a_keep_alive_connection_is_reused_and_the_request_is_sent_whole(
    serve: Serve,
) -> None:
    backend = await serve(always(OK))
    pool = _pool()
    answers = [await _post(pool, backend.url) for _ in range(3)]
    await pool.close()
    assert [(a.status, a.content_type, a.body) for a in answers] == [
        (200, "application/json", b'{"predictions":1}')
    ] * 3
    assert backend.connections == 1
    first = backend.requests[0]
    assert first.startswith(b"POST /predict HTTP/1.1\r\n")
    assert b"\r\nx-request-id: r-1\r\n" in first
    assert b"\r\ncontent-length: 18\r\n" in first
    assert first.endswith(b'\r\n\r\n{"instances": [1]}')


async def test_a_chunked_body_is_reassembled(serve: Serve) -> None:
    backend = await serve(
        always(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
    )
    pool = _pool()
    answer = await _post(pool, backend.url)
    again = await _post(pool, backend.url)
    await pool.close()
    assert (answer.status, answer.content_type, answer.body) == (200, "text/plain", b"hello world")
    assert again.body == b"hello world"
    assert backend.connections == 1


async def test_a_body_framed_by_closing_the_connection_is_complete_and_not_reused(
    serve: Serve,
) -> None:
    backend = await serve(always(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", keep=False))
    pool = _pool()
    answers = [await _post(pool, backend.url) for _ in range(2)]
    await pool.close()
    assert [a.body for a in answers] == [b"until the end"] * 2
    assert backend.connections == 2


async def test_connection_close_is_honoured(serve: Serve) -> None:
    backend = await serve(
        always(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", keep=False)
    )
    pool = _pool()
    for _ in range(3):
        assert (await _post(pool, backend.url)).body == b"ok"
    await pool.close()
    assert backend.connections == 3


async def test_a_connection_the_backend_closed_while_idle_is_not_used(serve: Serve) -> None:
    # The backend answers as if it kept the connection, then closes it while it is idle.
    backend = await serve(always(OK, keep=False))
    pool = _pool()
    await _post(pool, backend.url)
    await asyncio.sleep(0.05)  # the close reaches the pool's idle connection
    answer = await _post(pool, backend.url)
    await pool.close()
    assert answer.status == 200
    assert backend.connections == 2
    assert len(backend.requests) == 2


async def test_a_reused_connection_closed_before_any_answer_is_retried_once_on_a_new_one(
    serve: Serve,
) -> None:
    # The race a pool cannot avoid: the backend drops a kept-alive connection just as the next
    # request is written on it. Each connection here answers its first request only.
    served: dict[int, int] = {}

    async def first_only(_: int, writer: asyncio.StreamWriter) -> bool:
        key = id(writer)
        served[key] = served.get(key, 0) + 1
        if served[key] > 1:
            return False  # close without a byte of answer
        writer.write(OK)
        await writer.drain()
        return True

    backend = await serve(first_only)
    pool = _pool()
    assert (await _post(pool, backend.url)).status == 200
    assert (await _post(pool, backend.url)).status == 200
    await pool.close()
    assert backend.connections == 2
    assert len(backend.requests) == 3  # the dropped request, then its retry


async def test_a_new_connection_closed_before_any_answer_is_not_retried(serve: Serve) -> None:
    backend = await serve(always(b"", keep=False))
    pool = _pool()
    with pytest.raises(upstream.ProtocolError, match="closed before the answer"):
        await _post(pool, backend.url)
    await pool.close()
    assert len(backend.requests) == 1


async def test_a_connection_closed_in_the_middle_of_the_answer_fails(serve: Serve) -> None:
    backend = await serve(always(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", keep=False))
    pool = _pool()
    with pytest.raises(upstream.ProtocolError, match="middle of the answer"):
        await _post(pool, backend.url)
    await pool.close()


async def test_an_interim_100_answer_is_skipped(serve: Serve) -> None:
    backend = await serve(always(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))
    pool = _pool()
    answer = await _post(pool, backend.url)
    await pool.close()
    assert (answer.status, answer.body) == (200, b'{"predictions":1}')


async def test_statuses_and_error_bodies_are_passed_back(serve: Serve) -> None:
    backend = await serve(
        always(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
    )
    pool = _pool()
    answer = await _post(pool, backend.url)
    await pool.close()
    assert (answer.status, answer.body) == (503, b"busy")


async def test_garbage_is_a_protocol_error(serve: Serve) -> None:
    backend = await serve(always(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    pool = _pool()
    with pytest.raises(upstream.ProtocolError, match="invalid HTTP answer"):
        await _post(pool, backend.url)
    await pool.close()


async def test_a_refused_connection_is_a_connect_error() -> None:
    pool = _pool()
    with pytest.raises(upstream.ConnectError, match=r"connect to 127\.0\.0\.1"):
        await _post(pool, f"http://127.0.0.1:{ports.free_port()}")
    await pool.close()


async def test_a_silent_backend_times_out_and_its_connection_is_dropped(serve: Serve) -> None:
    async def silent(number: int, writer: asyncio.StreamWriter) -> bool:
        if number == 1:
            await asyncio.sleep(5)
        writer.write(OK)
        await writer.drain()
        return True

    backend = await serve(silent)
    pool = _pool(timeout=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(upstream.UpstreamTimeoutError, match=r"in 0\.3 s"):
        await _post(pool, backend.url)
    assert loop.time() - start < 2.0
    # The late answer must never be read as the next request's: a new connection is used.
    assert (await _post(pool, backend.url)).status == 200
    await pool.close()
    assert backend.connections == 2


async def test_the_pool_never_opens_more_than_its_bound(serve: Serve) -> None:
    release = asyncio.Event()

    async def held(_: int, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        writer.write(OK)
        await writer.drain()
        return True

    backend = await serve(held)
    pool = _pool(max_connections=2)
    tasks = [asyncio.create_task(_post(pool, backend.url)) for _ in range(5)]
    for _ in range(100):
        if len(backend.requests) == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(backend.requests) == 2  # the other three wait for a connection
    release.set()
    answers = await asyncio.gather(*tasks)
    await pool.close()
    assert [a.status for a in answers] == [200] * 5
    assert backend.most_open == 2


async def test_idle_connections_expire(serve: Serve) -> None:
    backend = await serve(always(OK))
    pool = _pool(idle_seconds=0.05)
    await _post(pool, backend.url)
    await asyncio.sleep(0.1)
    await _post(pool, backend.url)
    await pool.close()
    assert backend.connections == 2


@pytest.mark.parametrize(
    ("path", "headers", "message"),
    [
        ("/predict x", {}, "path: not a valid URL path"),
        ("predict", {}, "path: not a valid URL path"),
        ("/pr\u00e9dict", {}, "non-ASCII"),
        ("/predict", {"x-request-id": "a\r\nx-evil: 1"}, "header x-request-id: holds a line break"),
    ],
)
async def test_what_cannot_be_sent_safely_is_refused_before_sending(
    serve: Serve, path: str, headers: dict[str, str], message: str
) -> None:
    backend = await serve(always(OK))
    pool = _pool()
    with pytest.raises(upstream.TargetError, match=message):
        await pool.request(pool.origin(backend.url), path, body=b"{}", headers=headers)
    await pool.close()
    assert backend.requests == []


def test_backend_urls_are_parsed_with_their_prefix_and_default_ports() -> None:
    plain = upstream.Origin.parse("http://model.ns.svc:8080/serving/")
    assert (plain.host, plain.port, plain.tls, plain.prefix, plain.host_header) == (
        "model.ns.svc",
        8080,
        False,
        b"/serving",
        b"model.ns.svc:8080",
    )
    secure = upstream.Origin.parse("https://user:secret@model.example")
    assert (secure.port, secure.tls, secure.prefix, secure.host_header) == (
        443,
        True,
        b"",
        b"model.example",
    )
    for bad in ("ftp://model", "http://", "http://model:99999"):
        with pytest.raises(upstream.TargetError, match="url"):
            upstream.Origin.parse(bad)


async def test_the_prefix_of_a_backend_url_is_kept(serve: Serve) -> None:
    backend = await serve(always(OK))
    pool = _pool()
    await _post(pool, backend.url + "/serving", "/v2/models/iris/infer")
    await pool.close()
    assert backend.requests[0].startswith(b"POST /serving/v2/models/iris/infer HTTP/1.1\r\n")


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_an_https_backend_is_verified_and_answers(serve: Serve, tmp_path: Path) -> None:
    server_tls, client_tls = _self_signed(tmp_path)
    backend = await serve(always(OK), tls=server_tls)
    trusted = _pool(tls=client_tls)
    assert (await _post(trusted, backend.url)).status == 200
    await trusted.close()
    untrusted = _pool()  # the system trust store does not know the self-signed certificate
    with pytest.raises(upstream.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await _post(untrusted, backend.url)
    await untrusted.close()


async def test_the_router_sends_the_request_id_and_trace_context_and_no_other_client_header(
    serve: Serve,
) -> None:
    backend = await serve(always(OK))
    router = proxy.Router(settings.RouterSettings(deployment="iris", seed=1))
    router.open()
    router.set_routes(
        routes.parse_routes(
            {
                "deployment": "iris",
                "stable": "stable",
                "policy": {"type": "fixed", "epsilon": 0.1, "stickyHeader": None},
                "variants": [
                    {
                        "name": "stable",
                        "url": backend.url,
                        "weight": 100,
                        "modelVersion": "1",
                        "posterior": {"alpha": 1, "beta": 1},
                    }
                ],
            }
        )
    )
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    answer = await router.forward(
        "/predict",
        b"{}",
        {
            "content-type": "application/json",
            "x-request-id": "abc",
            "traceparent": trace,
            "tracestate": "vendor=1",
            "authorization": "Bearer secret",
            "cookie": "session=1",
        },
    )
    await router.close()
    assert (answer.status, answer.variant) == (200, "stable")
    # The client's id is passed on for correlation only; the answer carries the router's own.
    assert answer.request_id != "abc"
    assert router.signer is not None
    assert router.signer.verify(answer.request_id, now_ms=0, ttl_ms=1).variant == "stable"
    head = backend.requests[0].split(b"\r\n\r\n")[0].decode().lower().split("\r\n")[1:]
    assert sorted(line.split(": ")[0] for line in head) == [
        "content-length",
        "content-type",
        "host",
        "traceparent",
        "tracestate",
        "x-request-id",
    ]
    assert f"traceparent: {trace}" in head
