"""The drift windows the model servers flushed to MLflow (`registry.windows`), as live ones.

Design decision: a flushed window is read exactly like a live one (the same byte cap, the same
`windows.WindowDocument` validation, the same version and profile checks, the same skip reasons)
and then competes with the live windows in `collect.add_unique`: one document per model-server
process, the live answer beating any flush of the same process, a later flush beating an earlier
one. So a pod that is still up is counted from its live window, and a pod that is gone (restart,
rollout, eviction) from its last flush; nothing twice. Flushes older than twice the window period
they report are left out, as they would have rotated out of a live window.
"""

from __future__ import annotations

import logging
from typing import Any

from modelpilot import errors
from modelpilot.api import windows
from modelpilot.driftjob import collect
from modelpilot.registry import windows as stored

log = logging.getLogger("modelpilot.driftjob")

DEFAULT_WINDOW_SECONDS = 3600.0


def collect_persisted(
    client: Any,
    *,
    name: str,
    version: str,
    namespace: str,
    deployment: str,
    fingerprint: str,
    collected: collect.Collected,
    now: float,
    max_bytes: int,
) -> int:
    """Add the deployment's recent flushed windows to `collected`; return how many were read."""
    try:
        run_id = stored.run_id_of(client, name=name, version=version)
        files = stored.list_files(client, run_id=run_id, namespace=namespace, deployment=deployment)
    except (errors.InputError, errors.Unavailable) as exc:
        log.warning("persisted drift windows not read: %s", exc)
        return 0
    newest: dict[str, stored.WindowFile] = {}
    for f in files:
        if f.epoch not in newest or f.sequence > newest[f.epoch].sequence:
            newest[f.epoch] = f
    read = 0
    for f in newest.values():
        source = f"mlflow:{f.path}"
        try:
            if f.size is not None and f.size > max_bytes:
                raise collect.Skip("too_large", f"{f.size} bytes, the cap is {max_bytes}")
            try:
                raw = stored.read(client, run_id=run_id, path=f.path)
            except (errors.InputError, errors.Unavailable) as exc:
                raise collect.Skip("unreachable", str(exc)) from exc
            try:
                document = windows.parse(raw)
            except windows.InvalidWindowError as exc:
                raise collect.Skip("invalid", str(exc)) from exc
            src = document.window.source
            if src is None or src.flushed_at is None:
                raise collect.Skip("invalid", "window.source: a flushed window must say when")
            collect.check_document(document, fingerprint=fingerprint, model_version=version)
        except collect.Skip as exc:
            collected.skip(source, exc)
            continue
        horizon = 2 * (src.window_seconds or DEFAULT_WINDOW_SECONDS)
        if now - src.flushed_at > horizon:
            log.info("flushed window %s is older than %gs; left out", source, horizon)
            continue
        read += 1
        collect.add_unique(
            collected, collect.Accepted(source=source, document=document, live=False)
        )
    return read
