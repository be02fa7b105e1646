"""The model server's drift window: a mergeable `WindowSketch` of recent inputs over the profile.

Design decision: "recent" is two sketches rotated every `window_seconds` (the current one and the
one before it), served merged; so the drift job always sees between one and two periods of traffic,
the memory stays bounded (counts plus a bottom-k sample per column) and no request pays for
eviction. Each process seeds its sketch differently (pid and time), as the sketch requires for
merging pods, and stamps its window with a `source` (`api.windows.WindowSource`): the pod, a
random epoch drawn at start and a sequence number, so the drift job counts one process's window
once however many times and ways it reads it.

`WindowFlusher` makes the window survive the process (issue 15): every `window_flush_seconds` (when
traffic changed it) and at shutdown it writes the window to MLflow, on the served version's run
(`registry.windows`), where the drift job reads the flushes of processes that are gone. A SIGTERM
(a rollout, a scale-in) loses nothing; a SIGKILL or a crash loses at most the traffic since the last
flush, one flush interval.
"""

from __future__ import annotations

import json
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
from modelpilot.modelserver import loader, settings
from modelpilot.stats import profile as profile_mod

log = logging.getLogger("modelpilot.modelserver")


BUFFER_ROWS = 512
"""Rows `DriftWindow.add` gathers before one sketch update (an update costs about the same for 1
row as for 1,000, so per-request updates would charge it to every request)."""


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
        self.updates = 0  # batches seen, so a flusher can tell whether anything changed
        self.flusher: WindowFlusher | None = None
        self._pending: list[Mapping[str, list[Any]]] = []  # `add`ed, not yet folded in
        self._pending_rows = 0
        self._pending_lock = threading.Lock()
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
                self.updates += 1
        except errors.InputError as exc:
            self.disabled = str(exc)
            log.warning("drift window off: %s", exc)

    def add(self, columns: Mapping[str, list[Any]], rows: int) -> None:
        """Buffer one request's inputs; they are folded in at `BUFFER_ROWS` rows, and by every
        read and flush (`fold`), so a flush never misses rows a buffer still holds."""
        with self._pending_lock:
            self._pending.append(columns)
            self._pending_rows += rows
            if self._pending_rows < BUFFER_ROWS:
                return
            pending, self._pending, self._pending_rows = self._pending, [], 0
        self._update_all(pending)

    def fold(self) -> None:
        """Fold the buffered inputs (`add`) into the window."""
        with self._pending_lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
        self._update_all(pending)

    def _update_all(self, pending: list[Mapping[str, list[Any]]]) -> None:
        if not pending:
            return
        if len(pending) == 1:
            self.update(pending[0])
            return
        self.update({name: [v for p in pending for v in p[name]] for name in pending[0]})

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
        self.fold()
        with self._lock:
            return {**self.sketch().to_dict(), "source": self.source()}

    def persist(self, *, config: settings.ServerSettings, model: loader.LoadedModel) -> None:
        """Start flushing to the model version's run, when the settings ask for it."""
        if config.window_flush_seconds <= 0 or not model.run_id:
            return
        self.flusher = WindowFlusher(
            self,
            tracking_uri=config.tracking_uri,
            model={"name": model.name, "version": model.version},
            run_id=model.run_id,
            namespace=config.namespace,
            deployment=config.deployment,
            variant=config.variant,
            interval=config.window_flush_seconds,
        )
        self.flusher.start()
        log.info(
            "flushing the drift window every %gs to run %s",
            config.window_flush_seconds,
            model.run_id,
        )

    def close(self) -> None:
        """Flush one last time (graceful shutdown); blocking, so call it from a thread."""
        if self.flusher is not None:
            self.flusher.stop()

    def flush_dict(self, *, now: float) -> dict[str, Any]:
        """The window as persisted: the next sequence number, stamped with the flush time."""
        self.fold()
        with self._lock:
            self.sequence += 1
            return {**self.sketch().to_dict(), "source": self.source(flushed_at=now)}


class WindowFlusher:
    """Writes a `DriftWindow` to MLflow on a timer thread and at `stop()`; prunes old flushes."""

    def __init__(
        self,
        window: DriftWindow,
        *,
        tracking_uri: str | None,
        model: Mapping[str, str],
        run_id: str,
        namespace: str,
        deployment: str,
        variant: str,
        interval: float,
    ) -> None:
        self.window = window
        self.tracking_uri = tracking_uri
        self.model = dict(model)
        self.run_id = run_id
        self.namespace = namespace
        self.deployment = deployment
        self.variant = variant
        self.interval = interval
        self.flushed_updates = 0
        self.last_path: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="window-flusher", daemon=True)
        self._io = threading.Lock()  # the timer's flush and the final one never overlap

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def stop(self) -> None:
        """Stop the timer and flush one last time (what a SIGTERM's graceful shutdown calls)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self.flush()

    def flush(self) -> bool:
        """Write the window if traffic changed it since the last flush; never raises."""
        from modelpilot.api import windows as windows_doc
        from modelpilot.registry import client as registry_client
        from modelpilot.registry import windows as stored

        with self._io:
            self.window.fold()
            updates = self.window.updates
            if updates == self.flushed_updates or self.window.disabled is not None:
                return False
            now = time.time()
            window_dict = self.window.flush_dict(now=now)
            document = windows_doc.build_document(
                deployment=self.deployment,
                variant=self.variant,
                model=self.model,
                window=window_dict,
            )
            path = (
                stored.directory(namespace=self.namespace, deployment=self.deployment)
                + "/"
                + stored.file_name(
                    flushed_at=now,
                    epoch=self.window.epoch,
                    sequence=window_dict["source"]["sequence"],
                    pod=self.window.pod,
                )
            )
            try:
                client = registry_client.make_client(self.tracking_uri)
                stored.write(client, run_id=self.run_id, path=path, text=json.dumps(document))
            except Exception as exc:  # MLflow down: keep serving, the next flush retries
                log.warning("could not flush the drift window to %s: %s", path, exc)
                return False
            self.flushed_updates = updates
            previous, self.last_path = self.last_path, path
            self._prune(client, previous=previous, now=now)
            return True

    def _prune(self, client: Any, *, previous: str | None, now: float) -> None:
        """Delete this process's previous flush and anyone's flush older than the horizon."""
        from modelpilot.registry import windows as stored

        horizon = now - 2 * self.window.window_seconds - 2 * self.interval
        doomed = [previous] if previous is not None else []
        try:
            files = stored.list_files(
                client, run_id=self.run_id, namespace=self.namespace, deployment=self.deployment
            )
            doomed += [f.path for f in files if f.flushed_at < horizon and f.path != previous]
            for path in doomed:
                stored.delete(client, run_id=self.run_id, path=path)
        except Exception as exc:  # another pod pruned it first, or MLflow is down: next time
            log.info("pruning flushed drift windows: %s", exc)
