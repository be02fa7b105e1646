"""A run context for training code: params, metrics, provenance tags, datasets, environment,
artifacts.

    with tracking.run(experiment="iris", tracking_uri=uri) as run:
        run.log_params({"C": 1.0})
        run.log_dataset(train_df, name="train", context="training", targets="species")
        run.log_metrics({"accuracy": 0.97})
        run.log_model(model, input_example=x_train)

Design decision: provenance is recorded without the user asking. On entry the run is tagged with the
git commit, whether the tree was dirty, the command line, and the Python environment (interpreter,
platform, versions of the libraries that decide a model's behaviour), and an `environment.json`
artifact; a run that raises is ended FAILED, not left RUNNING. All MLflow calls go through
`modelpilot.registry.runs`.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot.registry import client as registry_client
from modelpilot.registry import runs

_LIBRARIES = ("modelpilot", "mlflow", "scikit-learn", "numpy", "scipy", "pandas", "optuna")


def git_state(cwd: Path | None = None) -> dict[str, str]:
    """Commit, dirty flag and branch of the repository holding `cwd`; empty outside a repository."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "mlflow.source.git.commit": commit,
        "modelpilot.git.dirty": "true" if status else "false",
        "modelpilot.git.branch": git("rev-parse", "--abbrev-ref", "HEAD") or "",
    }


def environment() -> dict[str, Any]:
    versions: dict[str, str] = {}
    for lib in _LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libraries": versions,
    }


@dataclass
class Run:
    """The active run. Methods log to it; `datasets` keeps what was logged for the model card."""

    run_id: str
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def log_params(self, params: Mapping[str, Any]) -> None:
        runs.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        runs.log_metrics(metrics, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        runs.set_tags(tags)

    def log_dataset(
        self, df: pd.DataFrame, *, name: str, context: str, targets: str | None = None
    ) -> dict[str, Any]:
        """Digest, shape and schema through mlflow.data, plus a CSV copy under `data/<name>.csv`."""
        info = runs.log_dataframe(df, name=name, context=context, targets=targets)
        self.datasets[name] = info
        runs.log_dict({"datasets": self.datasets, "target": targets}, "data/datasets.json")
        return info

    def log_dict(self, data: Any, artifact_file: str) -> None:
        runs.log_dict(data, artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        runs.log_artifact(path, artifact_path)

    def log_model(self, model: Any, *, input_example: pd.DataFrame, name: str = "model") -> str:
        return runs.log_sklearn_model(model, input_example=input_example, name=name)


@contextmanager
def run(
    *,
    experiment: str,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    autolog: bool = False,
) -> Iterator[Run]:
    """Start a tracked run on `tracking_uri` (default: MLFLOW_TRACKING_URI) in `experiment`.

    `autolog=True` switches on scikit-learn autologging inside the block: every estimator's
    parameters and training metrics are logged without naming them (useful for pipelines of many
    steps); the model itself is still logged explicitly with `Run.log_model`.
    """
    registry_client.configure(tracking_uri)
    provenance = {
        **git_state(),
        "modelpilot.command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])[:5000],
        "modelpilot.python": platform.python_version(),
        **(tags or {}),
    }
    with runs.start_run(experiment=experiment, run_name=run_name, tags=provenance) as run_id:
        runs.log_dict(environment(), "environment.json")
        # CI reads the run id from this file to gate and register the model it just trained.
        id_file = os.environ.get("MODELPILOT_RUN_ID_FILE")
        if id_file:
            Path(id_file).write_text(run_id + "\n")
        if autolog:
            with runs.sklearn_autolog():
                yield Run(run_id=run_id)
        else:
            yield Run(run_id=run_id)
