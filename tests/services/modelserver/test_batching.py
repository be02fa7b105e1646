"""Adaptive batching over real sockets: no queue runs at once, a queue shares one model call.

The server runs in this process (uvicorn on a free loopback port, in a thread, with the loop it
uses in production) so the test can read what the batcher did and hold one model call in flight.
The model is the real registered one; the only stand-in is `Gate`, a wrapper around its predict
function that records each call's rows and holds the call that sees a marked row until the test
releases it: a slow model call, made deterministic. Requests are written with http.client on
connections opened beforehand, so every queued request is in the server's socket buffers before
the held call ends.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import prometheus_client.parser
import pytest
import uvicorn

from modelpilot.modelserver import app, batching, dataplane, rest, settings
from modelpilot.testing import ports
from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow

MARK = 7.77  # a sepal_length no iris has: the model call that sees it is held


class Gate:
    """Wraps the model's predict: records the rows of every call, holds the marked call."""

    def __init__(self, predict: Callable[[Any], Any]) -> None:
        self.predict = predict
        self.rows: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, frame: pd.DataFrame) -> Any:
        self.rows.append(len(frame))
        if (frame["sepal_length"] == MARK).any():
            self.started.set()
            if not self.release.wait(60):
                raise RuntimeError("the test never released the held call")
        return self.predict(frame)


@dataclasses.dataclass
class Server:
    url: str
    plane: dataplane.DataPlane
    gate: Gate

    def connection(self) -> http.client.HTTPConnection:
        host, port = self.url.removeprefix("http://").split(":")
        return http.client.HTTPConnection(host, int(port), timeout=60)


@contextmanager
def in_process_server(
    model: svc.RegisteredModel, *, loop: str = "uvloop", **options: Any
) -> Iterator[Server]:
    port = ports.free_port()
    config = settings.ServerSettings(
        model_uri=f"models:/{model.name}/{model.version}",
        tracking_uri=model.tracking_uri,
        host="127.0.0.1",
        port=port,
        drift_window=False,
        **options,
    )
    application = app.create_app(config)
    plane: dataplane.DataPlane = application.state.plane
    served = rest.FastPath(application, plane=plane, limit=config.max_body_bytes)
    server = uvicorn.Server(
        uvicorn.Config(
            served,
            host="127.0.0.1",
            port=port,
            loop=loop,  # type: ignore[arg-type]
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, name="model-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        svc.wait_ready(url, _ThreadProc(thread), _NO_LOG, path="/v2/health/ready")  # type: ignore[arg-type]
        assert plane.model is not None
        gate = Gate(plane.model.predict or plane.model.pyfunc.predict)
        plane.model = dataclasses.replace(plane.model, predict=gate)
        yield Server(url=url, plane=plane, gate=gate)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class _ThreadProc:
    """`wait_ready` polls a process; this answers for the server thread."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.returncode = 1

    def poll(self) -> int | None:
        return None if self.thread.is_alive() else 1


class _NoLog:
    def read_text(self) -> str:
        return "(in-process server: see the captured log)"


_NO_LOG = _NoLog()


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def batching_server(
    request: pytest.FixtureRequest, iris_model: svc.RegisteredModel
) -> Iterator[Server]:
    """uvloop is what uvicorn runs in production; asyncio's loop reads sockets a turn later
    (`batching.gather_turns`), so both are shown."""
    with in_process_server(
        iris_model, loop=request.param, batching=True, max_batch_size=4
    ) as server:
        yield server


def _body(rows: pd.DataFrame) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
                for c in rows.columns
            ]
        }
    ).encode()


def _binary_body(rows: pd.DataFrame) -> tuple[bytes, dict[str, str]]:
    """The binary tensor extension: the one way to send a NaN (JSON has none)."""
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": c,
                    "shape": [len(rows)],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 8 * len(rows)},
                }
                for c in rows.columns
            ]
        }
    ).encode()
    blobs = b"".join(struct.pack(f"<{len(rows)}d", *rows[c].tolist()) for c in rows.columns)
    return head + blobs, {"Inference-Header-Content-Length": str(len(head))}


def _send(
    conn: http.client.HTTPConnection,
    server: Server,
    name: str,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    conn.request("POST", f"/v2/models/{name}/infer", body=body, headers=headers or {})


def _answer(conn: http.client.HTTPConnection) -> tuple[int, dict[str, Any]]:
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def _expected(model: svc.RegisteredModel, rows: pd.DataFrame) -> list[int]:
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model.name}/{model.version}")
    out: list[int] = np.asarray(pyfunc.predict(rows)).tolist()
    return out


def _stats(server: Server) -> batching.Stats:
    return dataclasses.replace(server.plane.batcher.stats)


def _delta(before: batching.Stats, after: batching.Stats) -> batching.Stats:
    return batching.Stats(
        calls=after.calls - before.calls,
        requests=after.requests - before.requests,
        queued=after.queued - before.queued,
        largest=after.largest,
    )


def _wait_idle(server: Server) -> None:
    deadline = time.monotonic() + 10
    while not server.plane.batcher.idle:
        assert time.monotonic() < deadline, "the batcher never went idle"
        time.sleep(0.001)  # poll interval of a deadline loop


def _errors_400(server: Server) -> float:
    families = prometheus_client.parser.text_string_to_metric_families(
        server.plane.metrics.exposition().decode()
    )
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "modelpilot_model_errors_total" and sample.labels["code"] == "400"
    )


def _hold_then_queue(
    server: Server, model: svc.RegisteredModel, queued: list[tuple[bytes, dict[str, str]]]
) -> tuple[tuple[int, dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
    """One marked request held in its model call; `queued` sent while it is held; all answers."""
    conns = [server.connection() for _ in range(len(queued) + 1)]
    try:
        for conn in conns:  # open every connection (one answered request each) before the hold
            _wait_idle(server)
            _send(conn, server, model.name, _body(model.features.head(1)))
            assert _answer(conn)[0] == 200
        _wait_idle(server)
        marked = model.features.head(1).assign(sepal_length=MARK)
        server.gate.started.clear()
        server.gate.release.clear()
        server.gate.rows.clear()
        _send(conns[0], server, model.name, _body(marked))
        assert server.gate.started.wait(60), "the marked request never reached the model"
        for conn, (body, headers) in zip(conns[1:], queued, strict=True):
            _send(conn, server, model.name, body, headers)  # in the server's socket buffers now
        server.gate.release.set()
        return _answer(conns[0]), [_answer(conn) for conn in conns[1:]]
    finally:
        for conn in conns:
            conn.close()


def test_a_request_that_finds_no_queue_calls_the_model_once_at_once(
    iris_model: svc.RegisteredModel, batching_server: Server
) -> None:
    x = iris_model.features.iloc[::15]
    expected = _expected(iris_model, x)
    server = batching_server
    server.gate.rows.clear()
    before = _stats(server)
    conn = server.connection()
    try:
        answers = []
        for i in range(len(x)):  # one connection, one request at a time: never a queue
            # After an answer the server still reads, for a few turns of its loop, what arrived
            # during the call; a request sent then would be batched (at the cost of one turn).
            # Here the client sends once that is over: the case of a lone request.
            _wait_idle(server)
            _send(conn, server, iris_model.name, _body(x.iloc[i : i + 1]))
            answers.append(_answer(conn))
    finally:
        conn.close()
    assert [status for status, _ in answers] == [200] * len(x)
    assert [body["outputs"][0]["data"][0] for _, body in answers] == expected
    done = _delta(before, _stats(server))
    # One model call per request, and none of them waited for a batch: each ran in its own task
    # as soon as it was decoded, as with batching off.
    assert server.gate.rows == [1] * len(x)
    assert (done.calls, done.requests, done.queued) == (len(x), len(x), 0)


def test_requests_that_arrive_during_a_model_call_share_the_next_calls_up_to_max_batch_size(
    iris_model: svc.RegisteredModel, batching_server: Server
) -> None:
    x = iris_model.features.iloc[::20].head(7)
    expected = _expected(iris_model, x)
    server = batching_server
    before = _stats(server)
    held, answers = _hold_then_queue(
        server, iris_model, [(_body(x.iloc[i : i + 1]), {}) for i in range(len(x))]
    )
    assert held[0] == 200
    assert [status for status, _ in answers] == [200] * len(x)
    assert [body["outputs"][0]["data"][0] for _, body in answers] == expected
    # The held call, then the seven queued requests in max_batch_size (4) + 3.
    assert server.gate.rows == [1, 4, 3]
    done = _delta(before, _stats(server))
    # Eight warm-up requests (one per connection, one at a time) ran alone, then the three calls.
    assert (done.calls, done.requests, done.queued) == (8 + 3, 8 + 1 + len(x), len(x))


def test_a_bad_request_in_a_batch_fails_alone_and_is_counted(
    iris_model: svc.RegisteredModel, batching_server: Server
) -> None:
    x = iris_model.features.iloc[[0, 60, 120]]
    expected = _expected(iris_model, x)
    bad = x.iloc[:1].assign(petal_width=float("nan"))  # the codec passes it, the model refuses
    server = batching_server
    errors_before = _errors_400(server)
    held, answers = _hold_then_queue(
        server,
        iris_model,
        [
            (_body(x.iloc[0:1]), {}),
            _binary_body(bad),
            (_body(x.iloc[1:2]), {}),
            (_body(x.iloc[2:3]), {}),
        ],
    )
    assert held[0] == 200
    statuses = [status for status, _ in answers]
    assert statuses == [200, 400, 200, 200]
    assert "the model rejected the inputs" in answers[1][1]["error"]
    good = [answers[0], answers[2], answers[3]]
    assert [body["outputs"][0]["data"][0] for _, body in good] == expected
    # The batch of four failed as one call, then each request ran alone: only the bad one failed.
    assert server.gate.rows == [1, 4, 1, 1, 1, 1]
    assert _errors_400(server) - errors_before == 1


def test_with_batching_off_queued_requests_each_get_their_own_call(
    iris_model: svc.RegisteredModel,
) -> None:
    x = iris_model.features.iloc[::30].head(3)
    with in_process_server(iris_model, batching=False) as server:
        held, answers = _hold_then_queue(
            server, iris_model, [(_body(x.iloc[i : i + 1]), {}) for i in range(len(x))]
        )
        assert [held[0], *(status for status, _ in answers)] == [200] * 4
        assert server.gate.rows == [1, 1, 1, 1]
        assert server.plane.batcher.stats.calls == 0
