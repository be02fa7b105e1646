"""Collect the model servers' drift windows: find the pods through the API, fetch `/drift/window`.

Design decision: a pod is never trusted and never fatal. Each answer is read with a byte cap and an
overall deadline (a slow drip cannot hold the job), validated as a `windows.WindowDocument`, and
checked against the served version and the reference profile; a pod that fails any of these is
skipped with a warning naming the pod and the field, counted by reason (the
`modelpilot_drift_windows_skipped` gauge), and the job goes on with the rest. The job fails only
when no window at all could be collected, because drift on the pods that answered is still the
truth about the traffic they served. The same window is counted once: URLs are de-duplicated before
fetching, and documents by the process that made them (`windows.Window.identity`).

Skip reasons (the gauge's bounded `reason` label):

    unreachable    connection refused, DNS, TLS, a reset
    timeout        no complete answer within the deadline
    http_status    an answer other than 200
    too_large      a body over the byte cap
    invalid        not JSON, too deeply nested, or a window that does not validate
    other_version  the pod serves another model version (a rollout in progress)
    other_profile  the window was counted over another reference profile
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from modelpilot import errors
from modelpilot.api import constants, windows
from modelpilot.stats import profile as profile_mod

log = logging.getLogger("modelpilot.driftjob")

POD_PORT = constants.ADMIN_PORT
"""The model server's admin port, where `/drift/window` is served (issue 15), when a pod does not
name it (`constants.ADMIN_PORT_NAME`)."""
MAX_WINDOW_BYTES = 64 * 1024 * 1024
"""A window is counts plus a bounded sample per column: 2,000 values and keys for each of 100
features is about 8 MB of JSON. 64 MiB leaves room, and caps what a hostile pod can make us hold."""

SKIP_REASONS = (
    "unreachable",
    "timeout",
    "http_status",
    "too_large",
    "invalid",
    "other_version",
    "other_profile",
)


class Skip(Exception):  # noqa: N818 (an outcome for one pod, not a fault of the job)
    """One source is skipped: `reason` is one of SKIP_REASONS, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Accepted:
    source: str  # the URL (or the artifact path, for a persisted window)
    document: windows.WindowDocument
    live: bool = True


@dataclass
class Collected:
    accepted: list[Accepted] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    duplicates: dict[str, str] = field(default_factory=dict)  # source -> the one it duplicates

    def skip(self, source: str, exc: Skip) -> None:
        self.skipped[source] = f"{exc.reason}: {exc}"
        self.reasons[exc.reason] += 1
        log.warning("skipped drift window %s: %s: %s", source, exc.reason, exc)

    @property
    def persisted(self) -> int:
        return sum(1 for a in self.accepted if not a.live)

    @property
    def sources(self) -> list[str]:
        return [a.source for a in self.accepted]

    @property
    def sketches(self) -> list[profile_mod.WindowSketch]:
        return [a.document.window.to_sketch() for a in self.accepted]


def check_url(url: str) -> str:
    """A `--window-url` as the job will use it: an http(s) base URL, no trailing slash."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError as exc:
        raise errors.InputError(f"--window-url: {url!r} is not a URL ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise errors.InputError(
            f"--window-url: {url!r} is not an http(s) base URL "
            "(e.g. http://10.0.0.5:8082, a model server's admin port)"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise errors.InputError(f"--window-url: {url!r} has an invalid port") from exc
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host  # IPv6 keeps its brackets (RFC 3986)
    netloc = host + (f":{port}" if port is not None else "")
    return urllib.parse.urlunsplit(
        (parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, "")
    )


def unique_urls(urls: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The URLs once each (as first listed), and which listed URL repeated which (normalised:
    scheme and host case, a trailing slash)."""
    seen: dict[str, str] = {}
    repeated: dict[str, str] = {}
    for url in urls:
        normal = check_url(url)
        if normal in seen:
            repeated[url] = seen[normal]
            continue
        seen[normal] = url
    return list(seen.values()), repeated


def pod_urls(*, namespace: str, deployment: str, variant: str = constants.STABLE) -> list[str]:
    """Base URLs of the deployment's ready model-server pods (labels from docs/architecture.md)."""
    from modelpilot.kube import apply as kube_apply

    selector = (
        f"{constants.LABEL_COMPONENT}={constants.COMPONENT_MODEL_SERVER},"
        f"{constants.LABEL_DEPLOYMENT}={deployment},{constants.LABEL_VARIANT}={variant}"
    )
    pods = kube_apply.list_objects("v1", "Pod", namespace=namespace, selector=selector)
    return [url for url in map(pod_url, pods) if url is not None]


def pod_url(pod: Mapping[str, Any]) -> str | None:
    """The window base URL of one model-server pod: its IP and the port it names `admin` (where
    `/drift/window` is served, issue 15; `POD_PORT` when unnamed); None until it is Ready."""
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    ip = status.get("podIP")
    if not ready or not ip:
        return None
    port = POD_PORT
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == constants.ADMIN_PORT_NAME and p.get("containerPort"):
                port = int(p["containerPort"])
    host = f"[{ip}]" if ":" in ip else ip  # an IPv6 pod address (RFC 3986 brackets)
    return f"http://{host}:{port}"


def _printable(text: str, limit: int = 200) -> str:
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def fetch_window(
    client: httpx.Client, url: str, *, max_bytes: int, deadline_seconds: float
) -> bytes:
    """The body of `GET {url}/drift/window`, or `Skip` with the reason."""
    start = time.monotonic()
    try:
        with client.stream("GET", url + "/drift/window") as response:
            if response.status_code != 200:
                head = b""
                for chunk in response.iter_bytes():
                    head += chunk
                    if len(head) >= 200 or time.monotonic() - start > deadline_seconds:
                        break
                text = _printable(head.decode("utf-8", "replace"))
                raise Skip("http_status", f"HTTP {response.status_code}: {text}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise Skip("too_large", f"body of {declared} bytes, the cap is {max_bytes}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise Skip("too_large", f"body over the cap of {max_bytes} bytes")
                if time.monotonic() - start > deadline_seconds:
                    raise Skip("timeout", f"answer not complete within {deadline_seconds:g}s")
            return bytes(body)
    except httpx.TimeoutException as exc:
        raise Skip("timeout", f"{type(exc).__name__} after {deadline_seconds:g}s") from exc
    except httpx.HTTPError as exc:
        raise Skip("unreachable", f"{type(exc).__name__}: {_printable(str(exc))}") from exc


def check_document(
    document: windows.WindowDocument, *, fingerprint: str, model_version: str
) -> windows.WindowDocument:
    if document.model.version != model_version:
        raise Skip("other_version", f"serves version {document.model.version}, not {model_version}")
    if document.window.fingerprint != fingerprint:
        raise Skip("other_profile", "window made over another reference profile")
    return document


def add_unique(collected: Collected, candidate: Accepted) -> None:
    """Keep one document per process (`identity`); the newer one wins (`newness`)."""
    identity = candidate.document.window.identity()
    for i, have in enumerate(collected.accepted):
        if have.document.window.identity() != identity:
            continue
        if candidate.document.window.newness() > have.document.window.newness():
            collected.accepted[i] = candidate
            collected.duplicates[have.source] = candidate.source
        else:
            collected.duplicates[candidate.source] = have.source
        log.info(
            "drift window %s and %s are the same process's; counted once",
            have.source,
            candidate.source,
        )
        return
    collected.accepted.append(candidate)


def collect_windows(
    urls: Sequence[str],
    *,
    profile: profile_mod.ReferenceProfile,
    model_version: str,
    timeout: float = 10.0,
    max_bytes: int = MAX_WINDOW_BYTES,
    collected: Collected | None = None,
) -> Collected:
    """Fetch, validate and de-duplicate the live windows at `urls` (into `collected`, if given)."""
    out = collected if collected is not None else Collected()
    fingerprint = profile.fingerprint()
    unique, repeated = unique_urls(urls)
    for url, first in repeated.items():
        out.duplicates[url] = first
        log.warning("drift window URL %s is listed twice; counted once", url)
    with httpx.Client(timeout=timeout) as client:
        for url in unique:
            try:
                raw = fetch_window(
                    client, check_url(url), max_bytes=max_bytes, deadline_seconds=timeout
                )
                try:
                    document = windows.parse(raw)
                except windows.InvalidWindowError as exc:
                    raise Skip("invalid", str(exc)) from exc
                check_document(document, fingerprint=fingerprint, model_version=model_version)
            except Skip as exc:
                out.skip(url, exc)
                continue
            add_unique(out, Accepted(source=url, document=document, live=True))
    return out
