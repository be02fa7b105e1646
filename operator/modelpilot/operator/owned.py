"""The objects a ModelDeployment owns, as the operator's watch cache sees them: pure comparisons.

    desired (builders)  --differences-->  what the cache holds  -->  apply only what differs
    cache entries not desired (and controlled by the ModelDeployment)  -->  prune

Design decision: a desired object is "in sync" when every field it sets is present with the same
value in the stored object (a subset test): the API server adds defaults (clusterIP, probe
timeouts, annotations of controllers) that the builders never set, and server-side apply owns
only the fields we send. Where the server normalises a value we send (a quantity "0.5" stored as
"500m"), the subset test reports a difference once; the caller then applies, and remembers the
digest of what it applied with the resourceVersion the server answered (`Applied`), so the same
object at the same resourceVersion is never applied twice. Nothing here does input/output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MODELDEPLOYMENT_API_GROUP = "modelpilot.io"

Key = tuple[str, str]  # (kind, name) inside one namespace


def controller_owner(obj: Mapping[str, Any], *, kind: str = "ModelDeployment") -> str | None:
    """Name of the `kind` (of modelpilot.io) that controls `obj`, or None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if (
            ref.get("controller")
            and ref.get("kind") == kind
            and str(ref.get("apiVersion", "")).split("/")[0] == MODELDEPLOYMENT_API_GROUP
        ):
            name = ref.get("name")
            return str(name) if name else None
    return None


def trim(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without `managedFields` (the largest part of a stored object, never compared)."""
    out = dict(obj)
    metadata = dict(out.get("metadata") or {})
    metadata.pop("managedFields", None)
    out["metadata"] = metadata
    return out


def key_of(obj: Mapping[str, Any]) -> Key:
    return str(obj["kind"]), str(obj["metadata"]["name"])


def digest(obj: Mapping[str, Any]) -> str:
    """A stable fingerprint of a desired object (what was applied, for `Applied`)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def differences(desired: Any, actual: Any, path: str = "") -> list[str]:
    """The paths where `desired` is not contained in `actual` (empty: in sync).

    Mappings: every key of `desired` must match in `actual` (extra keys are defaults, ignored).
    Lists: same length, element by element (an added or removed entry is a difference).
    Scalars: equal, or equal as text (the API server stores `"80"` and `80` alike in places).
    """
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return [path or "."]
        out: list[str] = []
        for name, value in desired.items():
            where = f"{path}.{name}"
            if name not in actual:
                if value in (None, {}, []):
                    continue  # an empty value the server drops is not a difference
                out.append(where)
            else:
                out.extend(differences(value, actual[name], where))
        return out
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return [path or "."]
        out = []
        for index, (mine, theirs) in enumerate(zip(desired, actual, strict=True)):
            out.extend(differences(mine, theirs, f"{path}[{index}]"))
        return out
    if desired == actual:
        return []
    scalar = int | float | str
    if (
        isinstance(desired, scalar)
        and not isinstance(desired, bool)
        and isinstance(actual, scalar)
        and str(desired) == str(actual)
    ):
        return []
    return [path or "."]


@dataclass(frozen=True)
class Applied:
    """What the operator last applied to one object: the desired digest and the answer's rv."""

    digest: str
    resource_version: str


def in_sync(
    desired: Mapping[str, Any], actual: Mapping[str, Any] | None, applied: Applied | None
) -> bool:
    """True when `actual` (from the cache) needs no apply of `desired`."""
    if actual is None:
        return False
    if (
        applied is not None
        and applied.resource_version == str(actual["metadata"].get("resourceVersion", ""))
        and applied.digest == digest(desired)
    ):
        return True  # we applied exactly this, and nobody changed the object since
    return not differences(desired, actual)


def extras(
    *,
    desired: Iterable[Mapping[str, Any]],
    owned: Sequence[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """Objects in the cache that the ModelDeployment controls but no longer wants (to prune)."""
    wanted = {key_of(obj) for obj in desired}
    return [obj for obj in owned if key_of(obj) not in wanted]
