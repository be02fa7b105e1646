"""The model server's drift window: a mergeable `WindowSketch` of recent inputs over the profile.

Design decision: "recent" is two sketches rotated every `window_seconds` (the current one and the
one before it), served merged; so the drift job always sees between one and two periods of traffic,
the memory stays bounded (counts plus a bottom-k sample per column) and no request pays for
eviction. Each process seeds its sketch differently (pid and time), as the sketch requires for
merging pods, and stamps its window with a `source` (`driftjob.windows.WindowSource`): the pod, a
random epoch drawn at start and a sequence number, so the drift job counts one process's window
once however many times and ways it reads it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelpilot import errors
from modelpilot.stats import profile as profile_mod

log = logging.getLogger("modelpilot.modelserver")


class DriftWindow:
    def __init__(
        self,
        reference: profile_mod.ReferenceProfile,
        *,
        window_seconds: float = 3600.0,
        reservoir_size: int = 2000,
        seed: int | None = None,
    ) -> None:
        self.reference = reference
        self.features = reference.feature_names
        self.window_seconds = window_seconds
        self.reservoir_size = reservoir_size
        self._seed = seed if seed is not None else (os.getpid() << 20) ^ time.time_ns() % (1 << 40)
        # Kubernetes sets the hostname to the pod's name.
        self.pod = os.environ.get("POD_NAME") or socket.gethostname() or "unknown"
        self.epoch = uuid.uuid4().hex[:16]
        self.sequence = 0
        self._rotations = 0
        self.current = self._new()
        self.previous: profile_mod.WindowSketch | None = None
        self.started = time.monotonic()
        self.disabled: str | None = None
        # Updates run in the batching worker thread, reads on the event loop.
        self._lock = threading.Lock()

    def _new(self) -> profile_mod.WindowSketch:
        self._rotations += 1
        return profile_mod.WindowSketch.empty(
            self.reference, reservoir_size=self.reservoir_size, seed=self._seed + self._rotations
        )

    def update(self, columns: Mapping[str, list[Any]]) -> None:
        if self.disabled is not None:
            return
        now = time.monotonic()
        if now - self.started > self.window_seconds:
            with self._lock:
                self.previous, self.current, self.started = self.current, self._new(), now
        batch: dict[str, Any] = {}
        for name in self.features:
            values = columns.get(name)
            if values is None:
                self.disabled = f"the model's inputs lack the profiled column {name!r}"
                log.warning("drift window off: %s", self.disabled)
                return
            batch[name] = np.asarray(values, dtype=object if None in values else None)
        try:
            with self._lock:
                self.current.update(batch)
        except errors.InputError as exc:
            self.disabled = str(exc)
            log.warning("drift window off: %s", exc)

    def sketch(self) -> profile_mod.WindowSketch:
        if self.previous is None:
            return self.current
        return self.previous.merge(self.current)

    def source(self, *, flushed_at: float | None = None) -> dict[str, Any]:
        return {
            "pod": self.pod[:253],
            "epoch": self.epoch,
            "sequence": self.sequence,
            "flushed_at": flushed_at,
            "window_seconds": self.window_seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {**self.sketch().to_dict(), "source": self.source()}
