"""Registered models: versions, aliases (champion/challenger), promotion, rollback and the audit
log.

Every change is recorded twice on the server. The event itself (action, alias, version, who, when,
why, previous holder) is a version tag `modelpilot.event.<epoch-ms>` on the version it concerns, so
`history` reads it back from the registry alone. The order of champions is a registered-model tag
`modelpilot.champion.lineage` (a JSON list of versions): promote pushes, rollback pops.

Design decision: aliases, not stages (MLflow deprecated stages in 2.9); rollback is a stack pop, so
it restores the champion that was replaced, not merely "version minus one".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
import os
from dataclasses import dataclass
from typing import Any

import mlflow
import mlflow.exceptions
import mlflow.tracking

from modelpilot import errors
from modelpilot.registry import client as registry_client

EVENT_PREFIX = "modelpilot.event."
LINEAGE_TAG = "modelpilot.champion.lineage"
CHAMPION = "champion"
CHALLENGER = "challenger"
_ALIAS_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    run_id: str
    source: str
    aliases: tuple[str, ...]
    description: str
    tags: dict[str, str]
    created_ms: int


def actor() -> str:
    """Who is acting: MODELPILOT_ACTOR, else the CI's user (GITHUB_ACTOR), else the login name."""
    for key in ("MODELPILOT_ACTOR", "GITHUB_ACTOR"):
        if os.environ.get(key):
            return os.environ[key]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _to_version(mv: Any) -> Version:
    return Version(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or "",
        source=mv.source or "",
        aliases=tuple(getattr(mv, "aliases", []) or []),
        description=mv.description or "",
        tags=dict(mv.tags or {}),
        created_ms=int(mv.creation_timestamp or 0),
    )


def check_alias(alias: str) -> str:
    if not alias or not set(alias) <= _ALIAS_CHARS or alias[0].isdigit() or alias == "latest":
        raise errors.InputError(
            f"--alias: {alias!r} is not a valid alias; use lower-case letters, digits, '-' or '_', "
            "not starting with a digit, and not 'latest'"
        )
    return alias


def get_version(c: mlflow.tracking.MlflowClient, *, name: str, version: str) -> Version:
    with registry_client.mapped_errors(f"model {name} version {version}"):
        return _to_version(c.get_model_version(name, version))


def get_by_alias(c: mlflow.tracking.MlflowClient, *, name: str, alias: str) -> Version:
    with registry_client.mapped_errors(f"model {name}@{alias}"):
        return _to_version(c.get_model_version_by_alias(name, alias))


def alias_holder(c: mlflow.tracking.MlflowClient, *, name: str, alias: str) -> str | None:
    """The version holding `alias`, or None when no version does (the model must exist)."""
    with registry_client.mapped_errors(f"model {name}"):
        rm = c.get_registered_model(name)
    return str(rm.aliases[alias]) if alias in (rm.aliases or {}) else None


def _record(
    c: mlflow.tracking.MlflowClient,
    *,
    name: str,
    version: str,
    event: dict[str, Any],
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    full = {
        "action": event["action"],
        "version": version,
        "who": actor(),
        "when": now.isoformat(timespec="milliseconds"),
        **event,
    }
    # Millisecond keys sort in time; a clash (two changes to one version within a millisecond)
    # takes the next free millisecond, which keeps the order.
    stamp = int(now.timestamp() * 1000)
    with registry_client.mapped_errors(f"model {name} version {version}"):
        existing = c.get_model_version(name, version).tags or {}
        while f"{EVENT_PREFIX}{stamp:015d}" in existing:
            stamp += 1
        key = f"{EVENT_PREFIX}{stamp:015d}"
        c.set_model_version_tag(name, version, key, json.dumps(full, sort_keys=True))
    return full


def register(
    c: mlflow.tracking.MlflowClient,
    *,
    name: str,
    run_id: str,
    artifact_path: str = "model",
    description: str = "",
    reason: str = "",
    alias: str | None = None,
) -> Version:
    """Register the model logged by `run_id` under `name`; optionally give it `alias`."""
    with registry_client.mapped_errors(f"run {run_id}"):
        run = c.get_run(run_id)
        # MLflow 3 logs models as LoggedModel entities linked to the run; older runs keep the
        # model as a run artifact directory. Either may be named by `artifact_path`.
        logged = c.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        names = {m.name for m in logged}
        if artifact_path not in names:
            legacy = {a.path for a in c.list_artifacts(run_id, artifact_path)}
            if f"{artifact_path}/MLmodel" in legacy:
                names.add(artifact_path)
    if artifact_path not in names:
        found = ", ".join(sorted(names)) or "none"
        raise errors.InputError(
            f"--artifact-path: run {run_id} has no logged model named {artifact_path!r} "
            f"(it has: {found})"
        )
    with registry_client.mapped_errors(f"model {name}"):
        mv = mlflow.register_model(f"runs:/{run_id}/{artifact_path}", name)
        if description:
            c.update_model_version(name, mv.version, description=description)
    version = str(mv.version)
    _record(
        c,
        name=name,
        version=version,
        event={
            "action": "register",
            "run_id": run_id,
            "why": reason or f"registered from run {run_id}",
        },
    )
    if alias:
        set_alias(c, name=name, alias=alias, version=version, reason=reason or "registered")
    return get_version(c, name=name, version=version)


def set_alias(
    c: mlflow.tracking.MlflowClient, *, name: str, alias: str, version: str, reason: str
) -> dict[str, Any]:
    """Point `alias` at `version`. Champion changes go through `promote` so the lineage is kept."""
    check_alias(alias)
    get_version(c, name=name, version=version)
    previous = alias_holder(c, name=name, alias=alias)
    with registry_client.mapped_errors(f"model {name}"):
        c.set_registered_model_alias(name, alias, version)
    return _record(
        c,
        name=name,
        version=version,
        event={"action": "alias", "alias": alias, "previous": previous, "why": reason},
    )


def remove_alias(
    c: mlflow.tracking.MlflowClient, *, name: str, alias: str, reason: str
) -> dict[str, Any]:
    check_alias(alias)
    holder = alias_holder(c, name=name, alias=alias)
    if holder is None:
        raise errors.InputError(f"--alias: model {name} has no alias {alias!r}")
    with registry_client.mapped_errors(f"model {name}"):
        c.delete_registered_model_alias(name, alias)
    return _record(
        c,
        name=name,
        version=holder,
        event={"action": "unalias", "alias": alias, "previous": holder, "why": reason},
    )


def _lineage(c: mlflow.tracking.MlflowClient, name: str) -> list[str]:
    with registry_client.mapped_errors(f"model {name}"):
        rm = c.get_registered_model(name)
    raw = (rm.tags or {}).get(LINEAGE_TAG)
    return [str(v) for v in json.loads(raw)] if raw else []


def _set_lineage(c: mlflow.tracking.MlflowClient, name: str, lineage: list[str]) -> None:
    # The tag value limit is 5000 characters; keep the newest 200 champions.
    with registry_client.mapped_errors(f"model {name}"):
        c.set_registered_model_tag(name, LINEAGE_TAG, json.dumps(lineage[-200:]))


def promote(
    c: mlflow.tracking.MlflowClient, *, name: str, version: str | None, reason: str
) -> dict[str, Any]:
    """Make `version` (default: the challenger) the champion; the challenger alias is released."""
    challenger = alias_holder(c, name=name, alias=CHALLENGER)
    target = version or challenger
    if target is None:
        raise errors.InputError(
            f"--version: model {name} has no challenger; pass --version to promote a version"
        )
    get_version(c, name=name, version=target)
    current = alias_holder(c, name=name, alias=CHAMPION)
    if current == target:
        raise errors.InputError(f"--version: version {target} of {name} is already the champion")
    lineage = _lineage(c, name)
    if current is not None and (not lineage or lineage[-1] != current):
        lineage.append(current)  # a champion set outside modelpilot: keep it restorable
    with registry_client.mapped_errors(f"model {name}"):
        c.set_registered_model_alias(name, CHAMPION, target)
        if challenger == target:
            c.delete_registered_model_alias(name, CHALLENGER)
    _set_lineage(c, name, [*lineage, target])
    return _record(
        c,
        name=name,
        version=target,
        event={"action": "promote", "alias": CHAMPION, "previous": current, "why": reason},
    )


def rollback(c: mlflow.tracking.MlflowClient, *, name: str, reason: str) -> dict[str, Any]:
    """Restore the champion that the current one replaced."""
    current = alias_holder(c, name=name, alias=CHAMPION)
    lineage = _lineage(c, name)
    if current is not None and lineage and lineage[-1] == current:
        lineage.pop()
    if not lineage:
        raise errors.InputError(f"--name: model {name} has no previous champion to roll back to")
    target = lineage[-1]
    get_version(c, name=name, version=target)
    with registry_client.mapped_errors(f"model {name}"):
        c.set_registered_model_alias(name, CHAMPION, target)
    _set_lineage(c, name, lineage)
    return _record(
        c,
        name=name,
        version=target,
        event={"action": "rollback", "alias": CHAMPION, "previous": current, "why": reason},
    )


def list_versions(c: mlflow.tracking.MlflowClient, *, name: str) -> list[Version]:
    with registry_client.mapped_errors(f"model {name}"):
        rm = c.get_registered_model(name)
        found = c.search_model_versions(f"name = '{_quote(name)}'", max_results=10000)
    # search_model_versions leaves `aliases` empty; the registered model has the mapping.
    by_version: dict[str, list[str]] = {}
    for alias, version in (rm.aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    versions = [
        dataclasses.replace(v, aliases=tuple(sorted(by_version.get(v.version, []))))
        for v in map(_to_version, found)
    ]
    return sorted(versions, key=lambda v: int(v.version))


def list_models(c: mlflow.tracking.MlflowClient) -> list[dict[str, Any]]:
    with registry_client.mapped_errors("registered models"):
        models = c.search_registered_models(max_results=1000)
    return [
        {
            "name": m.name,
            "aliases": dict(m.aliases or {}),
            "latest": max((int(v.version) for v in (m.latest_versions or [])), default=None),
        }
        for m in models
    ]


def history(c: mlflow.tracking.MlflowClient, *, name: str) -> list[dict[str, Any]]:
    """Every recorded change to `name`, oldest first, read back from the version tags."""
    events: list[tuple[str, dict[str, Any]]] = []
    for v in list_versions(c, name=name):
        for key, value in v.tags.items():
            if key.startswith(EVENT_PREFIX):
                try:
                    events.append((key, json.loads(value)))
                except json.JSONDecodeError:
                    continue  # a tag someone else wrote by hand; not ours to interpret
    return [e for _, e in sorted(events, key=lambda kv: (kv[0], kv[1].get("when", "")))]


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
