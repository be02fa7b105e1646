"""Adaptive batching: requests that queue up behind a model call share the next one.

The design decision: no timer and no thread; the model runs on the event loop, as with batching
off (a worker thread would contend with the loop for the GIL: p99 168-184 ms against 48-51 ms at
8 connections, issue 16). A model call blocks the loop, so the requests that arrive while it runs
wait in the sockets; the loop reads them in the turns right after the call. Hence:

- No queue, no wait. A request that finds no call just ended and nothing pending is run at once,
  in its own task, exactly as with batching off: one model call, no future, no turn of the loop.
- A queue is batched. For a turn or two of the loop after each call (`gather_turns`: until the
  bytes that arrived during the call have been read and their requests decoded), a request joins
  the pending batch instead; the batch runs one turn later, when every request decoded in that
  turn has joined it, bounded by `max_requests` requests and `max_rows` rows (the rest go in the
  next call, the turn after).

This is what continuous (dynamic) batchers with zero delay do; MLServer's adaptive batcher waits
instead up to `max_batch_time` after the first request of every batch, the lone ones included.
When a batched call fails, its requests are retried one by one, so one bad request fails alone.
Models whose output for a row depends on the other rows of the batch must turn batching off
(`MODELPILOT_SERVER_BATCHING=false`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Columns = dict[str, Any]  # column name -> a list or a 1-D numpy array of its values
Outputs = dict[str, Any]  # output name -> a numpy array, one element (or row) per input row
Predict = Callable[[Columns, int], Outputs]


def gather_turns(loop: asyncio.AbstractEventLoop) -> int:
    """Turns of the loop after a model call during which a decoded request joins a batch: until
    the requests whose bytes arrived during the call have been decoded, and no longer, so that
    a client's next request after its answer runs at once.

    uvloop (what uvicorn runs, and so production) reads the sockets in the same iteration as the
    call, after it (libuv's poll phase follows the ready callbacks), and writes the answers at the
    end of that iteration; the request tasks it created run in the next turn, before the batch
    window is closed by the callback counting the second. A client's next request can be read in
    that next turn at the earliest, so its task runs in the second, when the window is closed.
    asyncio's own loop reads the sockets at the start of the next iteration instead, so its
    request tasks run one turn later and the window needs one more turn."""
    return 2 if type(loop).__module__.startswith("uvloop") else 3


@dataclass
class _Item:
    columns: Columns
    rows: int
    future: asyncio.Future[Outputs]


@dataclass
class Stats:
    """What the batcher did, for tests and benchmarks (the metrics count requests and rows)."""

    calls: int = 0  # model calls made
    requests: int = 0  # requests answered or failed by those calls
    queued: int = 0  # requests that waited for a later call (the others ran at once)
    largest: int = 0  # most requests in one call


class Batcher:
    def __init__(self, predict: Predict, *, max_requests: int, max_rows: int) -> None:
        self.predict = predict
        self.max_requests = max_requests
        self.max_rows = max_rows
        self.stats = Stats()
        self._pending: deque[_Item] = deque()
        self._flush: asyncio.Handle | None = None
        self._turns: asyncio.Handle | None = None  # counts the turns since the last call
        self._window = 3  # turns of the batch window (set for the running loop on first use)
        self._quiet = self._window  # turns since the last call, capped

    async def stop(self) -> None:
        """Stop counting turns; requests still pending get CancelledError."""
        for handle in (self._flush, self._turns):
            if handle is not None:
                handle.cancel()
        self._flush = self._turns = None
        while self._pending:
            self._pending.popleft().future.cancel()

    @property
    def idle(self) -> bool:
        """No call just ran and no request waits: the next request runs at once."""
        return self._quiet >= self._window and not self._pending

    async def submit(self, columns: Columns, rows: int) -> Outputs:
        if self.idle:
            # No call just ran and nobody waits: run now, in this request's task.
            return self._call_alone(columns, rows)
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(columns=columns, rows=rows, future=future))
        self.stats.queued += 1
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self._run_pending)
        return await future

    # ---- model calls ---------------------------------------------------------------------------
    def _call_alone(self, columns: Columns, rows: int) -> Outputs:
        self._count(1)
        try:
            return self.predict(columns, rows)
        finally:
            self._called()

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
        finally:
            self._called()
        start = 0
        for item in items:
            end = start + item.rows
            item.future.set_result({k: v[start:end] for k, v in out.items()})
            start = end

    def _count(self, requests: int) -> None:
        self.stats.calls += 1
        self.stats.requests += requests
        self.stats.largest = max(self.stats.largest, requests)

    # ---- turns of the loop since the last call -------------------------------------------------
    def _called(self) -> None:
        self._quiet = 0
        if self._turns is None:
            loop = asyncio.get_running_loop()
            self._window = gather_turns(loop)
            self._turns = loop.call_soon(self._turn)

    def _turn(self) -> None:
        self._quiet += 1
        self._turns = None
        if self._quiet < self._window:
            self._turns = asyncio.get_running_loop().call_soon(self._turn)
