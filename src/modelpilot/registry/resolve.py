"""Resolve a model reference `{name, alias | version}` to what will actually be served.

    {name: iris, alias: champion}  ->  {name: iris, version: "3", runId, source, alias: champion}

Errors (from `modelpilot.registry.client`): the server unreachable -> `RegistryUnavailable` (the
operator retries with backoff); no such model, version or alias -> `ModelNotFound` (the operator
sets Degraded and builds nothing). Design decision: the result is a plain dict with the CRD's status
field names (`runId`), so the operator copies it into `status.model` without translation, and it
never contains an alias in place of a version.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NotRequired, TypedDict

from modelpilot import errors
from modelpilot.registry import client


class ResolvedModel(TypedDict):
    name: str
    version: str
    runId: str
    source: str
    alias: NotRequired[str]


def resolve(reference: Mapping[str, str], *, tracking_uri: str | None) -> ResolvedModel:
    """Look the reference up in the registry at `tracking_uri` (MLFLOW_TRACKING_URI when None)."""
    name = reference.get("name")
    alias, version = reference.get("alias"), reference.get("version")
    if not name:
        raise errors.InputError("model.name: required (the registered model name)")
    if (alias is None) == (version is None):
        raise errors.InputError("model: exactly one of alias or version must be set")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise errors.InputError("registry.trackingUri: not set and no MLFLOW_TRACKING_URI")
    # One client per URI and never mlflow.set_tracking_uri: the operator resolves for many
    # ModelDeployments (and registries) on many threads at once.
    mlflow_client = client.client_for(uri)
    if alias is not None:
        with client.mapped_errors(f"model {name}@{alias}", tracking_uri=uri):
            found = mlflow_client.get_model_version_by_alias(name, alias)
    else:
        with client.mapped_errors(f"model {name} version {version}", tracking_uri=uri):
            found = mlflow_client.get_model_version(name, str(version))
    resolved: ResolvedModel = {
        "name": str(found.name),
        "version": str(found.version),
        "runId": str(found.run_id or ""),
        "source": str(found.source or ""),
    }
    if alias is not None:
        resolved["alias"] = alias
    return resolved
