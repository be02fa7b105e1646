"""Where routes come from: the ConfigMap through a Kubernetes watch, or a file re-read on change.

Both hand each new, validated `Routes` to a callback on the event loop. A document that cannot be
used, whatever it holds (invalid JSON, 10,000 nested brackets, `"stable": []`, binary garbage, more
than `MAX_DOCUMENT_BYTES`), is logged once, reported to `on_rejected` (the router counts it in a
metric and, when it lasts, says so in `/readyz`), and skipped: the last good routes stay in force,
and neither the file poller nor the watch thread ever stops on a document. Design decision: the
ConfigMap is watched with the synchronous kubernetes client in a daemon thread (list, then watch
from the list's resourceVersion, relist on 410 Gone or any error), because the async client is not
a dependency and one watch per router does not need it; a change reaches the router in one watch
event, well within a second, and no pod restart or volume refresh (which takes up to a minute) is
involved. A relist hands back the same document again: it is recognised (same text) and neither
re-applied nor re-logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelpilot.router import routes as routes_mod

log = logging.getLogger("modelpilot.router")

OnRoutes = Callable[[routes_mod.Routes], None]
OnRejected = Callable[[str], None]

_UNSET = object()

MAX_DOCUMENT_BYTES = 4 << 20
"""Largest routes document read (a ConfigMap holds at most 1 MiB; a file could hold anything)."""


def _parse(text: str | bytes) -> routes_mod.Routes:
    """The routes of a document, or `InvalidRoutes` whatever went wrong in reading it."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise routes_mod.InvalidRoutes(
            f"routes.json: {len(text)} bytes, more than {MAX_DOCUMENT_BYTES} allowed"
        )
    try:
        return routes_mod.load_routes(text)
    except routes_mod.InvalidRoutes:
        raise
    except Exception as exc:  # a parser bug must not end the source: keep the last routes
        raise routes_mod.InvalidRoutes(f"routes.json: unreadable ({type(exc).__name__})") from exc


class FileSource:
    """Poll a routes file's (mtime, size, inode) and re-read it when any changes."""

    def __init__(
        self,
        path: str,
        *,
        poll_seconds: float,
        on_routes: OnRoutes,
        on_rejected: OnRejected | None = None,
    ) -> None:
        self.path = Path(path)
        self.poll_seconds = poll_seconds
        self.on_routes = on_routes
        self.on_rejected = on_rejected or (lambda _: None)
        self._seen: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._missing = False

    def check(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if not self._missing:  # once per disappearance, not once per poll
                log.warning(
                    "routes file %s unreadable (%s); keeping the last routes", self.path, exc
                )
                self.on_rejected(f"routes file unreadable: {exc.strerror or exc}")
            self._missing = True
            self._seen = None
            return
        self._missing = False
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            if st.st_size > MAX_DOCUMENT_BYTES:
                raise routes_mod.InvalidRoutes(
                    f"routes.json: {st.st_size} bytes, more than {MAX_DOCUMENT_BYTES} allowed"
                )
            with self.path.open("rb") as f:
                routes = _parse(f.read(MAX_DOCUMENT_BYTES + 1))
        except (OSError, routes_mod.InvalidRoutes) as exc:
            message = str(exc)[:300]
            log.warning("routes file %s rejected: %s; keeping the last routes", self.path, message)
            self.on_rejected(message)
            return
        self.on_routes(routes)

    async def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # never let the poller die: the next poll tries again
                log.exception("routes file %s: checking failed", self.path)
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        try:
            self.check()
        except Exception:
            log.exception("routes file %s: checking failed", self.path)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ConfigMapSource:
    """Watch one ConfigMap through the Kubernetes API; apply every ADDED/MODIFIED version."""

    def __init__(
        self,
        *,
        namespace: str,
        name: str,
        key: str,
        on_routes: OnRoutes,
        on_rejected: OnRejected | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.key = key
        self.on_routes = on_routes
        self.on_rejected = on_rejected or (lambda _: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last: object = _UNSET  # the last document handled (its text, None: no key)

    def _apply(self, configmap: Any) -> None:
        """Hand one version of the ConfigMap to the router; never raises."""
        loop = self._loop
        assert loop is not None  # set in start(), before the thread runs
        try:
            data = configmap.get("data") if isinstance(configmap, dict) else configmap.data
            text = (data or {}).get(self.key)
            if text == self._last:
                return  # a relist, or a change of another key: nothing new
            self._last = text
            if not isinstance(text, str):
                raise routes_mod.InvalidRoutes(f"configmap: no key {self.key}")
            routes = _parse(text)
        except Exception as exc:  # InvalidRoutes, or an object of an unexpected shape
            message = str(exc)[:300] or type(exc).__name__
            log.warning(
                "configmap %s/%s rejected: %s; keeping the last routes",
                self.namespace,
                self.name,
                message,
            )
            loop.call_soon_threadsafe(self.on_rejected, message)
            return
        loop.call_soon_threadsafe(self.on_routes, routes)

    def _watch_forever(self) -> None:
        import kubernetes.client
        import kubernetes.watch

        from modelpilot.kube import client as kube_client

        api = kubernetes.client.CoreV1Api(kube_client.api_client())
        selector = f"metadata.name={self.name}"
        backoff = 0.5
        while not self._stop.is_set():
            try:
                listed = api.list_namespaced_config_map(self.namespace, field_selector=selector)
                for item in listed.items:
                    self._apply(item)
                version = listed.metadata.resource_version if listed.metadata else None
                watcher: Any = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
                stream: Any = watcher.stream
                for event in stream(
                    api.list_namespaced_config_map,
                    self.namespace,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=30,
                ):
                    if self._stop.is_set():
                        watcher.stop()
                        break
                    kind = event["type"]
                    if kind in ("ADDED", "MODIFIED"):
                        self._apply(event["object"])
                    elif kind == "ERROR":
                        break  # typically 410 Gone: relist
                backoff = 0.5
            except Exception as exc:  # the API server went away, RBAC, network: retry, keep serving
                log.warning("watching configmap %s/%s: %s", self.namespace, self.name, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._watch_forever, name="routes-watch", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
