"""Where routes come from: the ConfigMap through a Kubernetes watch, or a file re-read on change.

Both hand each new, validated `Routes` to a callback on the event loop; an invalid document is
logged and skipped (the last good routes stay in force). Design decision: the ConfigMap is watched
with the synchronous kubernetes client in a daemon thread (list, then watch from the list's
resourceVersion, relist on 410 Gone or any error), because the async client is not a dependency and
one watch per router does not need it; a change reaches the router in one watch event, well within
a second, and no pod restart or volume refresh (which takes up to a minute) is involved.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelpilot import errors
from modelpilot.router import routes as routes_mod

log = logging.getLogger("modelpilot.router")

OnRoutes = Callable[[routes_mod.Routes], None]


class FileSource:
    """Poll a routes file's (mtime, size, inode) and re-read it when any changes."""

    def __init__(self, path: str, *, poll_seconds: float, on_routes: OnRoutes) -> None:
        self.path = Path(path)
        self.poll_seconds = poll_seconds
        self.on_routes = on_routes
        self._seen: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._seen is not None:
                log.warning(
                    "routes file %s unreadable (%s); keeping the last routes", self.path, exc
                )
            self._seen = None
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            routes = routes_mod.load_routes(self.path.read_bytes())
        except (OSError, errors.InputError) as exc:
            log.warning("routes file %s rejected: %s", self.path, exc)
            return
        self.on_routes(routes)

    async def _run(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        self.check()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ConfigMapSource:
    """Watch one ConfigMap through the Kubernetes API; apply every ADDED/MODIFIED version."""

    def __init__(self, *, namespace: str, name: str, key: str, on_routes: OnRoutes) -> None:
        self.namespace = namespace
        self.name = name
        self.key = key
        self.on_routes = on_routes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _apply(self, configmap: Any) -> None:
        data = (configmap.data or {}) if not isinstance(configmap, dict) else configmap.get("data")
        text = (data or {}).get(self.key)
        if text is None:
            log.warning("configmap %s/%s has no key %s", self.namespace, self.name, self.key)
            return
        try:
            routes = routes_mod.load_routes(text)
        except errors.InputError as exc:
            log.warning("configmap %s/%s rejected: %s", self.namespace, self.name, exc)
            return
        assert self._loop is not None  # set in start(), before the thread runs
        self._loop.call_soon_threadsafe(self.on_routes, routes)

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
