"""Adaptive batching: concurrent requests share one model call (as MLServer's adaptive batching).

A request's decoded columns are queued; one worker takes everything queued (up to `max_rows`),
calls the model once in a worker thread, and hands each request its slice. Design decision: no
timer. The batch is whatever arrived while the previous call ran, so a lone request is never held
back (latency at low load is one call), while under load the cost of the call, the DataFrame and
the drift-window update is shared by every request in the batch. Models whose output for a row
depends on the other rows of the batch must turn batching off (`MODELPILOT_SERVER_BATCHING=false`).
When a batched call fails, its requests are retried one by one, so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Columns = dict[str, list[Any]]
Predict = Callable[[Columns, int], Columns]


@dataclass
class _Item:
    columns: Columns
    rows: int
    future: asyncio.Future[Columns]


class Batcher:
    def __init__(self, predict: Predict, *, max_rows: int) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.calls = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, columns: Columns, rows: int) -> Columns:
        future: asyncio.Future[Columns] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(columns=columns, rows=rows, future=future))
        return await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            items = [first]
            rows = first.rows
            while not self._queue.empty() and rows < self.max_rows:
                item = self._queue.get_nowait()
                items.append(item)
                rows += item.rows
            await self._serve(items, rows)

    async def _serve(self, items: list[_Item], rows: int) -> None:
        self.calls += 1
        if len(items) == 1:
            merged = items[0].columns
        else:
            merged = {name: [] for name in items[0].columns}
            for item in items:
                for name, values in item.columns.items():
                    merged[name].extend(values)
        try:
            out = await asyncio.to_thread(self.predict, merged, rows)
        except Exception as exc:
            if len(items) == 1:
                if not items[0].future.done():
                    items[0].future.set_exception(exc)
                return
            for item in items:  # isolate the request that broke the batch
                await self._serve([item], item.rows)
            return
        start = 0
        for item in items:
            end = start + item.rows
            if not item.future.done():  # the client may have gone away
                item.future.set_result({k: v[start:end] for k, v in out.items()})
            start = end
