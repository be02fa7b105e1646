"""Adaptive batching: requests that queue up behind a model call share the next one.

The design decision: no timer, no thread, and no guessing whether there is a queue; the model
runs on the event loop, as with batching off (a worker thread would contend with the loop for
the GIL: p99 168-184 ms against 48-51 ms at 8 connections, issue 16), and the queue is read from
the servers themselves. uvicorn keeps the task of every request it has read and not yet answered
(`server_state.tasks`, made as soon as a request's head is parsed, before any of them runs), and
the gRPC server's calls are tracked the same way (`grpcserver`); each is given to `track`. A
model call blocks the loop, so the requests that arrive meanwhile wait in the sockets, are read
together in the poll right after the call, and have their tasks before the first of them runs.
Hence:

- No queue, no batcher. A request that is the only one in flight, with nothing pending, makes its
  model call itself (`DataPlane._predict`): the code path of batching off, with no future, task,
  callback, lock or count added, only the `alone()` check (issue 16: p99 at 1 connection with
  batching on no worse than with it off, equal by construction, not by measurement).
- A queue is batched. A request that finds other requests in flight (or a batch pending) joins
  the pending batch; the batch runs one turn of the loop later, when every request read in the
  same poll has joined it, bounded by `max_requests` requests and `max_rows` rows (the rest go in
  the next call, the turn after).

This is what continuous (dynamic) batchers with zero delay do; MLServer's adaptive batcher waits
instead up to `max_batch_time` after the first request of every batch, the lone ones included.
When a batched call fails, its requests are retried one by one, so one bad request fails alone.
Models whose output for a row depends on the other rows of the batch must turn batching off
(`MODELPILOT_SERVER_BATCHING=false`). Served by an ASGI server that is not given to `track`
(an in-process test client, say), every request is alone: batching on then behaves as off.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np

Columns = dict[str, Any]  # column name -> a list or a 1-D numpy array of its values
Outputs = dict[str, Any]  # output name -> a numpy array, one element (or row) per input row
Predict = Callable[[Columns, int], Outputs]


@dataclass
class _Item:
    columns: Columns
    rows: int
    future: asyncio.Future[Outputs]


@dataclass
class Stats:
    """What the batcher did, for tests and benchmarks (the metrics count requests and rows). A
    request that was alone never reaches the batcher, so it is not counted here."""

    calls: int = 0  # model calls made by the batcher
    requests: int = 0  # requests answered or failed by those calls
    largest: int = 0  # most requests in one call


class Batcher:
    def __init__(self, predict: Predict, *, max_requests: int, max_rows: int) -> None:
        self.predict = predict
        self.max_requests = max_requests
        self.max_rows = max_rows
        self.stats = Stats()
        self._pending: deque[_Item] = deque()
        self._flush: asyncio.Handle | None = None
        self._requests: tuple[Sized, ...] = ()  # each server's requests in flight

    def track(self, requests: Sized) -> None:
        """Count `requests` (a server's requests in flight, one element each, kept by the server:
        uvicorn's `server_state.tasks`) as the queue. Called once per server, before it serves."""
        self._requests = (*self._requests, requests)

    def in_flight(self) -> int:
        """Requests read and not yet answered, by every tracked server."""
        return sum(len(requests) for requests in self._requests)

    def alone(self) -> bool:
        """True when the calling request is the only one in flight and no batch is pending: it
        calls the model itself, as with batching off (no queue to batch)."""
        if self._pending:
            return False
        count = 0
        for requests in self._requests:
            count += len(requests)
        return count <= 1

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing pending: the next request to arrive will be alone."""
        return not self._pending and self.in_flight() == 0

    async def stop(self) -> None:
        """Requests still pending get CancelledError."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        while self._pending:
            self._pending.popleft().future.cancel()

    async def submit(self, columns: Columns, rows: int) -> Outputs:
        """Join the pending batch (the caller is not `alone()`); its share of the outputs."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outputs] = loop.create_future()
        self._pending.append(_Item(columns=columns, rows=rows, future=future))
        if self._flush is None:
            self._flush = loop.call_soon(self._run_pending)
        return await future

    # ---- model calls ---------------------------------------------------------------------------
    def _run_pending(self) -> None:
        self._flush = None
        items: list[_Item] = []
        rows = 0
        while self._pending and len(items) < self.max_requests:
            item = self._pending[0]
            if item.future.done():  # cancelled: its client went away
                self._pending.popleft()
                continue
            if items and rows + item.rows > self.max_rows:
                break
            items.append(self._pending.popleft())
            rows += item.rows
        if items:
            self._serve(items, rows)
        if self._pending:  # more than one call's worth: the next call, next turn
            self._flush = asyncio.get_running_loop().call_soon(self._run_pending)

    def _serve(self, items: list[_Item], rows: int) -> None:
        self._count(len(items))
        if len(items) == 1:
            merged = items[0].columns
        else:
            merged = {
                name: np.concatenate([np.asarray(item.columns[name]) for item in items])
                for name in items[0].columns
            }
        try:
            out = self.predict(merged, rows)
        except Exception as exc:
            if len(items) == 1:
                items[0].future.set_exception(exc)
                return
            self.stats.requests -= len(items)  # counted again by the calls below
            for item in items:  # isolate the request that broke the batch
                self._serve([item], item.rows)
            return
        start = 0
        for item in items:
            end = start + item.rows
            item.future.set_result({k: v[start:end] for k, v in out.items()})
            start = end

    def _count(self, requests: int) -> None:
        self.stats.calls += 1
        self.stats.requests += requests
        self.stats.largest = max(self.stats.largest, requests)
