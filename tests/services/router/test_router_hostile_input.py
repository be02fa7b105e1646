"""The router against hostile input over real sockets: broken routes documents, huge headers, and
what its error answers and `GET /routes` tell a client about the backends.

No model server is needed here: the routes name backends that nothing listens on, which is all a
routes document, a header limit or a 502 needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelpilot.testing import ports
from tests.services import conftest as svc


def _write(router: svc.RouterProc, data: bytes) -> None:
    tmp = router.routes_file.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, router.routes_file)


@pytest.fixture
def router(tmp_path: Path) -> Iterator[svc.RouterProc]:
    doc = svc.routes_doc(svc.dead_url(), svc.dead_url())
    with svc.router_process(
        doc,
        tmp_path,
        MODELPILOT_ROUTER_ROUTES_INVALID_UNREADY_SECONDS="1",
        MODELPILOT_ROUTER_MAX_HEADER_BYTES="16384",
    ) as proc:
        yield proc


BAD_DOCUMENTS = {
    "10,000 nested brackets": b"[" * 10_000 + b"]" * 10_000,
    "stable is a list": json.dumps(
        {**svc.routes_doc("http://a:1", "http://b:1"), "stable": []}
    ).encode(),
    "variants hold a list": json.dumps(
        {**svc.routes_doc("http://a:1", "http://b:1"), "variants": [[]]}
    ).encode(),
    "binary garbage": bytes(range(256)) * 64,
    "huge": b'{"deployment": "' + b"x" * (8 << 20) + b'"}',
}


@pytest.mark.parametrize("bad", list(BAD_DOCUMENTS), ids=list(BAD_DOCUMENTS))
def test_a_broken_routes_file_keeps_the_last_routes_is_counted_and_later_valid_routes_apply(
    router: svc.RouterProc, bad: str
) -> None:
    before = httpx.get(router.admin + "/routes").json()
    rejected = router.routes_rejected()
    _write(router, BAD_DOCUMENTS[bad])
    svc.wait_until(lambda: router.routes_rejected() > rejected, "the rejection counted")
    assert httpx.get(router.admin + "/routes").json() == before
    assert router.proc.poll() is None
    good = svc.routes_doc(svc.dead_url(), svc.dead_url(), weights=(10, 90))
    _write(router, json.dumps(good).encode())
    svc.wait_until(
        lambda: httpx.get(router.admin + "/routes").json()["version"] > before["version"],
        "the next valid routes applied",
    )
    weights = [v["weight"] for v in httpx.get(router.admin + "/routes").json()["variants"]]
    assert weights == [10, 90]


def test_routes_that_stay_invalid_make_the_router_unready_with_the_reason_until_fixed(
    router: svc.RouterProc,
) -> None:
    assert httpx.get(router.url + "/readyz").status_code == 200
    _write(router, b"[" * 10_000)
    svc.wait_until(lambda: httpx.get(router.url + "/readyz").status_code == 503, "unready")
    reason = httpx.get(router.url + "/readyz").json()
    assert reason["ready"] is False
    assert "routes" in reason["reason"]
    # The last good routes still serve while unready (a request is answered, here with a 502).
    assert httpx.post(router.url + "/predict", json={"instances": [[1]]}).status_code == 502
    _write(router, json.dumps(svc.routes_doc(svc.dead_url(), svc.dead_url())).encode())
    svc.wait_until(lambda: httpx.get(router.url + "/readyz").status_code == 200, "ready again")


def test_a_routes_file_rejected_once_is_logged_once(router: svc.RouterProc, tmp_path: Path) -> None:
    rejected = router.routes_rejected()
    _write(router, b"{not json")
    svc.wait_until(lambda: router.routes_rejected() > rejected, "the rejection counted")
    _write(
        router,
        json.dumps(svc.routes_doc(svc.dead_url(), svc.dead_url(), weights=(30, 70))).encode(),
    )
    svc.wait_until(
        lambda: httpx.get(router.url + "/readyz").status_code == 200, "the next routes applied"
    )
    assert router.routes_rejected() == rejected + 1
    log = next(tmp_path.glob("router-*.log")).read_text()
    assert log.count("routes file") == 1, log


def _raw_request(url: str, head: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The router may answer and close before reading everything: then read its answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("path", ["/predict", "/stats"])
def test_a_header_larger_than_the_limit_is_refused_with_431(
    router: svc.RouterProc, path: str
) -> None:
    huge = b"x" * (4 << 20)
    method = b"POST" if path == "/predict" else b"GET"
    answer = _raw_request(
        router.url if path == "/predict" else router.admin,
        method + b" " + path.encode() + b" HTTP/1.1\r\nhost: r\r\nx-big: " + huge
        + b"\r\ncontent-length: 2\r\n\r\n{}",
    )  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    many = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
    answer = _raw_request(router.admin, b"GET /stats HTTP/1.1\r\nhost: r\r\n" + many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    ok = httpx.get(router.admin + "/stats", headers={"x-small": "v" * 1000})
    assert ok.status_code == 200
    assert router.proc.poll() is None


def test_a_502_names_the_variant_but_no_backend_address(tmp_path: Path) -> None:
    port = ports.free_port()
    dead = f"http://127.0.0.1:{port}"
    with svc.router_process(svc.routes_doc(dead, dead, weights=(100, 0)), tmp_path) as router:
        answer = httpx.post(router.url + "/predict", json={"instances": [[1]]})
        assert answer.status_code == 502
        error = answer.json()["error"]
        assert "stable" in error
        assert str(port) not in error
        assert "127.0.0.1" not in error


def test_get_routes_shows_no_backend_address(router: svc.RouterProc) -> None:
    doc = httpx.get(router.admin + "/routes").json()
    assert [v["name"] for v in doc["variants"]] == ["stable", "challenger"]
    assert all("url" not in v for v in doc["variants"])
    assert "127.0.0.1" not in json.dumps(doc)


def test_the_413_of_feedback_names_the_routers_own_setting(router: svc.RouterProc) -> None:
    answer = httpx.post(
        router.url + "/feedback",
        content=b'{"request_id": "' + b"x" * (2 << 20) + b'", "reward": 1}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert "MODELPILOT_ROUTER_MAX_BODY_BYTES" in answer.json()["error"]
