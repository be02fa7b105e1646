"""Reference profiles stored in MLflow: one JSON artifact on the run of a registered model version.

`log_reference_profile` is called at registration (`modelpilot models register`); the model server
and the drift job read it back with `load_reference_profile`. Design decision: the profile is an
artifact of the version's *run* (`reference_profile.json`) and the version carries a tag pointing at
it (`modelpilot.reference_profile`), so a reader needs only the name and version, and the profile
travels with the run's other artifacts (its training data is the run's, not the version's).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow.exceptions
import mlflow.tracking

from modelpilot import errors
from modelpilot.registry import client as registry_client
from modelpilot.stats import profile as profile_mod

ARTIFACT = "reference_profile.json"
TAG = "modelpilot.reference_profile"


class ProfileNotFound(errors.InputError):
    """The model version has no reference profile (it was registered without one)."""


def _run_id(client: mlflow.tracking.MlflowClient, *, name: str, version: str) -> Any:
    with registry_client.mapped_errors(f"model {name} version {version}"):
        mv = client.get_model_version(name, str(version))
    if not mv.run_id:
        raise errors.InputError(
            f"model {name} version {version}: has no run; a reference profile needs one"
        )
    return mv


def log_reference_profile(
    client: mlflow.tracking.MlflowClient,
    *,
    name: str,
    version: str,
    profile: profile_mod.ReferenceProfile,
) -> str:
    """Store `profile` as `reference_profile.json` of the version's run; return its URI."""
    mv = _run_id(client, name=name, version=version)
    text = json.dumps(profile.to_dict(), separators=(",", ":"))
    with registry_client.mapped_errors(f"run {mv.run_id}"):
        client.log_text(mv.run_id, text, ARTIFACT)
    with registry_client.mapped_errors(f"model {name} version {version}"):
        client.set_model_version_tag(name, str(version), TAG, ARTIFACT)
    return f"runs:/{mv.run_id}/{ARTIFACT}"


def find_reference_profile(
    client: mlflow.tracking.MlflowClient, *, name: str, version: str
) -> profile_mod.ReferenceProfile | None:
    """The version's profile, or None when it was registered without one."""
    try:
        return load_reference_profile(client, name=name, version=version)
    except ProfileNotFound:
        return None


def load_reference_profile(
    client: mlflow.tracking.MlflowClient, *, name: str, version: str
) -> profile_mod.ReferenceProfile:
    """Read the version's profile; `ProfileNotFound` (an InputError) when there is none."""
    mv = _run_id(client, name=name, version=version)
    artifact = (mv.tags or {}).get(TAG, ARTIFACT)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with registry_client.mapped_errors(f"run {mv.run_id}"):
                path = client.download_artifacts(mv.run_id, artifact, tmp)
        except errors.InputError as exc:
            raise ProfileNotFound(
                f"model {name} version {version}: no reference profile ({artifact}) on run "
                f"{mv.run_id}; register it with `modelpilot models register`"
            ) from exc
        except mlflow.exceptions.MlflowException as exc:
            raise ProfileNotFound(
                f"model {name} version {version}: no reference profile ({artifact}) on run "
                f"{mv.run_id}"
            ) from exc
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise errors.InputError(
                f"model {name} version {version}: {artifact} is not valid JSON ({exc})"
            ) from exc
    return profile_mod.ReferenceProfile.from_dict(data)
