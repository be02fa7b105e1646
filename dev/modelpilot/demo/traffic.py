"""Simulated users: labelled requests through the router, and delayed rewards through `/feedback`.

Each simulated user sends one row at a time to the router's `/predict`, reads which variant
answered (`X-Modelpilot-Variant`) and the request id (`X-Request-Id`), and later, after a random
delay, posts `{"request_id", "reward"}` to `/feedback` with reward 1 when the prediction matched the
row's true label, else 0. So the reward rate of a variant is its accuracy on the live stream, and
the better model earns more. The one design decision: traffic runs on its own asyncio loop in a
background thread, paced to a fixed request rate, while the flow's main thread watches the
Experiment; the main thread stops it with an event, and the thread holds no process of its own.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from modelpilot.demo import dataset


@dataclass
class Counts:
    """What the users saw for one variant (a client-side cross-check of the router's counters)."""

    requests: int = 0
    errors: int = 0
    rewards: float = 0.0
    feedback_sent: int = 0
    feedback_failed: int = 0


def prediction_of(body: Any) -> Any:
    """The first prediction of a `/predict` answer (`{"predictions": [...]}`, nesting tolerated)."""
    if isinstance(body, dict):
        for key in ("predictions", "outputs", "prediction"):
            if key in body:
                return prediction_of(body[key])
        if len(body) == 1:
            return prediction_of(next(iter(body.values())))
        raise ValueError(f"no prediction in answer {str(body)[:200]}")
    if isinstance(body, list):
        if not body:
            raise ValueError("empty predictions list")
        return prediction_of(body[0])
    return body


def is_correct(prediction: Any, label: int) -> bool:
    try:
        return round(float(prediction)) == int(label)
    except (TypeError, ValueError):
        return str(prediction) == str(label)


class Users:
    """`concurrency` users sending `rate` requests per second in total until stopped."""

    def __init__(
        self,
        *,
        router_url: str,
        seed: int,
        rate: float = 40.0,
        concurrency: int = 8,
        feedback_delay: tuple[float, float] = (0.2, 1.5),
        pool_size: int = 20_000,
    ) -> None:
        self.router_url = router_url.rstrip("/")
        self.rate = rate
        self.concurrency = concurrency
        self.feedback_delay = feedback_delay
        rng = np.random.default_rng(seed)
        x, y = dataset.sample(rng, pool_size)
        self._rows = dataset.instances(x)
        self._labels = [int(v) for v in y]
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: dict[str, Counts] = {}
        self.transport_errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control from the main thread ---------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-users", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> dict[str, Counts]:
        with self._lock:
            return {k: Counts(**vars(v)) for k, v in self.counts.items()}

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
            pending: set[asyncio.Task[None]] = set()
            users = [
                asyncio.create_task(self._user(client, pending, i)) for i in range(self.concurrency)
            ]
            await asyncio.gather(*users)
            if pending:
                await asyncio.wait(pending, timeout=max(self.feedback_delay) + 5)

    async def _user(
        self, client: httpx.AsyncClient, pending: set[asyncio.Task[None]], i: int
    ) -> None:
        pause = self.concurrency / self.rate
        loop = asyncio.get_running_loop()
        next_at = loop.time() + pause * i / self.concurrency
        while not self._stop.is_set():
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing to the request rate, not synchronisation
            next_at += pause
            k = self._random.randrange(len(self._rows))
            await self._one(client, pending, self._rows[k], self._labels[k])

    async def _one(
        self,
        client: httpx.AsyncClient,
        pending: set[asyncio.Task[None]],
        row: dict[str, float],
        label: int,
    ) -> None:
        try:
            resp = await client.post(f"{self.router_url}/predict", json={"instances": [row]})
        except httpx.HTTPError as exc:
            with self._lock:
                self.transport_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            return
        variant = resp.headers.get("x-modelpilot-variant", "?")
        with self._lock:
            counts = self.counts.setdefault(variant, Counts())
            counts.requests += 1
            if resp.status_code != 200:
                counts.errors += 1
                self.last_error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                return
        try:
            reward = 1.0 if is_correct(prediction_of(resp.json()), label) else 0.0
        except ValueError as exc:
            with self._lock:
                counts.errors += 1
                self.last_error = str(exc)
            return
        request_id = resp.headers.get("x-request-id")
        with self._lock:
            counts.rewards += reward
        if request_id:
            delay = self._random.uniform(*self.feedback_delay)
            task = asyncio.create_task(self._feedback(client, request_id, reward, variant, delay))
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def _feedback(
        self, client: httpx.AsyncClient, request_id: str, reward: float, variant: str, delay: float
    ) -> None:
        await asyncio.sleep(delay)  # the simulated delay of a real outcome, not synchronisation
        try:
            resp = await client.post(
                f"{self.router_url}/feedback", json={"request_id": request_id, "reward": reward}
            )
            ok = resp.status_code < 300
        except httpx.HTTPError:
            ok = False
        with self._lock:
            counts = self.counts.setdefault(variant, Counts())
            if ok:
                counts.feedback_sent += 1
            else:
                counts.feedback_failed += 1


def send_rows(url: str, rows: Sequence[dict[str, float]], *, batch: int = 50) -> int:
    """Send `rows` to `url`/predict in batches (the drifted stream); return how many got answers."""
    answered = 0
    with httpx.Client(timeout=30.0) as client:
        for start in range(0, len(rows), batch):
            chunk = list(rows[start : start + batch])
            resp = client.post(f"{url.rstrip('/')}/predict", json={"instances": chunk})
            if resp.status_code == 200:
                answered += len(chunk)
    return answered
