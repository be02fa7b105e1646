"""Adaptive batching over real sockets: no queue runs as batching off does, a queue shares one
model call.

The server runs in this process (uvicorn on a free loopback port, in a thread, with the loop it
uses in production, wired as `launch.serve` wires it: the batcher tracks uvicorn's requests in
flight) so the test can read what the batcher did, trace what a request executes and hold one
model call in flight. The model is the real registered one; the only stand-in is `Gate`, a
wrapper around its predict function that records each call's rows and holds the call that sees a
marked row until the test releases it: a slow model call, made deterministic. Requests are
written with http.client on connections opened beforehand, so every queued request is in the
server's socket buffers before the held call ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import gc
import http.client
import json
import socket
import struct
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
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


class Traced:
    """ASGI wrapper: when armed, records every function the next POST executes, in order, from
    the server's reading of it to its answer (`sys.setprofile` in the request's own task: Python
    functions by module and name, C functions by name, the event loop's included). With the
    garbage collector paused meanwhile, so that no finaliser of an unrelated object lands in it.

    Left out: calls made inside `Batcher.alone` (the check of batching on: the one thing it adds
    to a request that finds no queue), and inside `TimerHandle.__lt__` (asyncio's loop orders its
    timers in a heap: how many comparisons the keep-alive timer's push makes depends on the other
    timers in it, uvicorn's own among them)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.armed = False
        self.calls: list[str] = []
        self.done = threading.Event()  # set once `calls` holds the armed request's trace

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.armed or scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        self.armed = False
        self.done.clear()
        calls: list[str] = []
        left_out = {batching.Batcher.alone.__code__, asyncio.events.TimerHandle.__lt__.__code__}

        def profile(frame: types.FrameType, event: str, arg: Any) -> None:
            if frame.f_code in left_out:
                return
            if event == "call":
                calls.append(f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}")
            elif event == "c_call":
                calls.append(f"C {getattr(arg, '__qualname__', getattr(arg, '__name__', arg))}")

        gc.disable()
        sys.setprofile(profile)
        try:
            await self.app(scope, receive, send)
        finally:
            sys.setprofile(None)
            gc.enable()
            self.calls = calls
            self.done.set()  # after the answer is written: the client may read it before this


@dataclasses.dataclass
class Server:
    url: str
    plane: dataplane.DataPlane
    gate: Gate
    traced: Traced

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
    apps = app.create_asgi(config)
    assert isinstance(apps.serving, rest.FastPath)
    assert apps.track is not None
    plane = apps.serving.plane
    traced = Traced(apps.serving)
    server = uvicorn.Server(
        uvicorn.Config(
            traced,
            host="127.0.0.1",
            port=port,
            loop=loop,  # type: ignore[arg-type]
            log_level="warning",
            access_log=False,
        )
    )
    apps.track(server.server_state.tasks)  # as `launch.serve` does
    thread = threading.Thread(target=server.run, name="model-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        svc.wait_ready(url, _ThreadProc(thread), _NO_LOG, path="/v2/health/ready")  # type: ignore[arg-type]
        assert plane.model is not None
        gate = Gate(plane.model.predict or plane.model.pyfunc.predict)
        plane.model = dataclasses.replace(plane.model, predict=gate)
        yield Server(url=url, plane=plane, gate=gate, traced=traced)
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
    """uvloop is what uvicorn runs in production; asyncio's loop orders its turns differently
    (it reads the sockets at the start of a turn, uvloop after the callbacks), so both are
    shown."""
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


def _post_in_one_write(server: Server, name: str, body: bytes) -> int:
    """An infer request whose head and body leave in one write (http.client writes them in two,
    so the server may read the head alone and wait a turn for the body); its status."""
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST /v2/models/{name}/infer HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        return response.status


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
        largest=after.largest,
    )


def _wait_idle(server: Server) -> None:
    """Until the server has finished with every request (uvicorn drops a request's task one
    turn of its loop after the answer is written)."""
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


def test_requests_sent_one_at_a_time_each_call_the_model_alone_without_the_batcher(
    iris_model: svc.RegisteredModel, batching_server: Server
) -> None:
    x = iris_model.features.iloc[::15]
    expected = _expected(iris_model, x)
    server = batching_server
    _wait_idle(server)
    server.gate.rows.clear()
    before = _stats(server)
    conn = server.connection()
    try:
        answers = []
        for i in range(len(x)):  # one connection, each request sent as soon as the last answer
            _send(conn, server, iris_model.name, _body(x.iloc[i : i + 1]))
            answers.append(_answer(conn))
    finally:
        conn.close()
    assert [status for status, _ in answers] == [200] * len(x)
    assert [body["outputs"][0]["data"][0] for _, body in answers] == expected
    # One model call per request, and the batcher never saw one: each found nothing else in
    # flight and called the model in its own task, as with batching off, with no wait between
    # an answer and the next request (the earlier batcher counted turns after every call and
    # batched a request sent within them).
    assert server.gate.rows == [1] * len(x)
    done = _delta(before, _stats(server))
    assert (done.calls, done.requests) == (0, 0)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_request_that_finds_no_queue_executes_exactly_what_it_does_with_batching_off(
    iris_model: svc.RegisteredModel, loop: str
) -> None:
    """Issue 16: p99 at 1 connection with batching on no worse than off, by construction: the
    same functions, the event loop's calls included (no future, task, callback, timer, executor
    hop or lock more), in the same order; only the check `Batcher.alone` is added."""
    x = iris_model.features.iloc[[3]]
    traces: dict[bool, list[str]] = {}
    for on in (False, True):
        with in_process_server(iris_model, loop=loop, batching=on, max_batch_size=4) as server:
            conn = server.connection()
            try:
                for _ in range(5):  # warm: first-call caches of pandas, numpy, the codec
                    _send(conn, server, iris_model.name, _body(x))
                    assert _answer(conn)[0] == 200
                _wait_idle(server)
                server.traced.armed = True
                assert _post_in_one_write(server, iris_model.name, _body(x)) == 200
                assert server.traced.done.wait(30)
                traces[on] = server.traced.calls
            finally:
                conn.close()
    off, on_ = traces[False], traces[True]
    assert "modelpilot.modelserver.dataplane.DataPlane._predict_columns" in off
    loop_calls = {"call_soon", "call_later", "call_at", "create_future", "create_task"}
    assert [c for c in on_ if c.split(".")[-1] in loop_calls] == [
        c for c in off if c.split(".")[-1] in loop_calls
    ]
    diff = "\n".join(difflib.unified_diff(off, on_, "batching off", "batching on", lineterm=""))
    assert on_ == off, f"batching on executes more than off for a lone request:\n{diff[:6000]}"


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
    # The eight warm-up requests (one per connection, one at a time) and the held one were
    # alone; the seven that arrived during the held call found each other in flight.
    assert _delta(before, _stats(server)) == batching.Stats(calls=2, requests=len(x), largest=4)


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


def test_a_grpc_call_in_flight_counts_as_a_queue_as_a_rest_request_does(
    iris_model: svc.RegisteredModel,
) -> None:
    """The gRPC server's calls are tracked (`grpcserver.InFlight`) like uvicorn's requests: a
    call held in the model is in flight, so a request arriving meanwhile would join a batch."""
    from modelpilot.modelserver.proto import predict_v2_pb2 as pb
    from modelpilot.modelserver.proto import predict_v2_pb2_grpc as pb_grpc

    def request(rows: pd.DataFrame) -> pb.ModelInferRequest:
        return pb.ModelInferRequest(
            model_name=iris_model.name,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name=c,
                    datatype="FP64",
                    shape=[len(rows)],
                    contents=pb.InferTensorContents(fp64_contents=rows[c].tolist()),
                )
                for c in rows.columns
            ],
        )

    grpc_port = ports.free_port()
    x = iris_model.features.head(1)
    with (
        in_process_server(iris_model, batching=True, grpc_port=grpc_port) as server,
        grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        assert stub.ModelInfer(request(x), timeout=60).outputs
        _wait_idle(server)  # the interceptor's done callback dropped the finished call
        server.gate.started.clear()
        server.gate.release.clear()
        held = stub.ModelInfer.future(request(x.assign(sepal_length=MARK)), timeout=60)
        try:
            assert server.gate.started.wait(60), "the marked call never reached the model"
            # The server's loop is blocked in the held call: the call is the one in flight.
            assert server.plane.batcher.in_flight() == 1
        finally:
            server.gate.release.set()
        assert held.result().outputs
        _wait_idle(server)
