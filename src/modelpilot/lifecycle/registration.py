"""Registering a trained model: the registry version, its alias, and its reference profile.

Design decision: the reference profile (what drift is measured against) is computed here, at
registration, from the training split the run logged (`data/train.csv`, label column dropped), and
stored with the version through `modelpilot.registry.profiles`, so every registered version carries
the profile of the data it was trained on, whichever tool registered it (CLI, pipeline, CI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelpilot.registry import client as registry_client
from modelpilot.registry import models, profiles, runs
from modelpilot.stats import profile as profile_mod

PROFILE_SEED = 20240607  # fixed: re-registering the same run gives the same profile


@dataclass(frozen=True)
class Registered:
    version: models.Version
    profile_uri: str | None
    profile_columns: tuple[str, ...]


def register(
    *,
    tracking_uri: str | None,
    name: str,
    run_id: str,
    alias: str | None = None,
    reason: str = "",
    description: str = "",
    artifact_path: str = "model",
) -> Registered:
    c = registry_client.make_client(tracking_uri)
    runs.get_run(run_id)  # a missing run is a one-line error before anything is written
    if alias is not None:
        models.check_alias(alias)
    version = models.register(
        c,
        name=name,
        run_id=run_id,
        artifact_path=artifact_path,
        description=description,
        reason=reason,
        alias=alias,
    )
    try:
        described = runs.read_json_artifact(run_id, "data/datasets.json")
        train = runs.read_csv_artifact(run_id, "data/train.csv")
    except (registry_client.RunNotFound, registry_client.ModelNotFound):
        # A run logged without modelpilot's tracking helpers has no training split to profile; the
        # version is still registered and the drift job reports the missing profile by name.
        return Registered(version=version, profile_uri=None, profile_columns=())
    target = described.get("target")
    features = train.drop(columns=[target]) if target in train.columns else train
    built = profile_mod.build_profile(
        {str(col): features[col].to_numpy() for col in features.columns},
        rng=np.random.default_rng(PROFILE_SEED),
    )
    uri = profiles.log_reference_profile(c, name=name, version=version.version, profile=built)
    return Registered(version=version, profile_uri=uri, profile_columns=built.feature_names)
