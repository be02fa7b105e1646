"""Collect the model servers' drift windows: find the pods through the API, fetch `/drift/window`.

Design decision: a pod that does not answer, answers for another model version (a rollout in
progress) or over another profile is skipped and reported, not fatal; the job fails only when no
window at all could be collected, because drift on the pods that answered is still the truth about
the traffic they served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from modelpilot import errors
from modelpilot.stats import profile as profile_mod

log = logging.getLogger("modelpilot.driftjob")

POD_PORT = 8080


@dataclass
class Collected:
    sketches: list[profile_mod.WindowSketch] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def pod_urls(*, namespace: str, deployment: str, variant: str = "stable") -> list[str]:
    """Base URLs of the deployment's ready model-server pods (labels from docs/architecture.md)."""
    from modelpilot.kube import apply as kube_apply

    selector = (
        "app.kubernetes.io/component=model-server,"
        f"modelpilot.io/deployment={deployment},modelpilot.io/variant={variant}"
    )
    urls = []
    for pod in kube_apply.list_objects("v1", "Pod", namespace=namespace, selector=selector):
        status = pod.get("status", {})
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions", [])
        )
        ip = status.get("podIP")
        if not ready or not ip:
            continue
        port = POD_PORT
        for container in pod.get("spec", {}).get("containers", []):
            for p in container.get("ports", []) or []:
                if p.get("name") == "http":
                    port = int(p["containerPort"])
        urls.append(f"http://{ip}:{port}")
    return urls


def collect_windows(
    urls: list[str],
    *,
    profile: profile_mod.ReferenceProfile,
    model_version: str,
    timeout: float = 10.0,
) -> Collected:
    out = Collected()
    fingerprint = profile.fingerprint()
    with httpx.Client(timeout=timeout) as client:
        for url in urls:
            try:
                response = client.get(url.rstrip("/") + "/drift/window")
            except httpx.HTTPError as exc:
                out.skipped[url] = f"unreachable: {type(exc).__name__}"
                continue
            if response.status_code != 200:
                out.skipped[url] = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            try:
                body: dict[str, Any] = response.json()
                served = str(body["model"]["version"])
                sketch = profile_mod.WindowSketch.from_dict(body["window"])
            except (ValueError, KeyError, TypeError, errors.InputError) as exc:
                out.skipped[url] = f"malformed window: {exc}"
                continue
            if served != model_version:
                out.skipped[url] = f"serves version {served}, not {model_version}"
                continue
            if sketch.fingerprint != fingerprint:
                out.skipped[url] = "window made over another reference profile"
                continue
            out.sketches.append(sketch)
            out.sources.append(url)
    for url, why in out.skipped.items():
        log.warning("skipped %s: %s", url, why)
    return out
