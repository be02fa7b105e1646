"""Train the demo's two models, log them with their training data, and register them.

The champion is a logistic regression (about 72% accurate on the demo's data), the challenger a
random forest (about 91%): a real difference, measured on a held-out set and logged as a metric.
Each run, a `modelpilot.lifecycle.tracking` run, logs its training data (`data/train.csv`, which
registration turns into the version's reference profile) and the model with its signature; the
versions are registered with `modelpilot models register`, the same command a user runs. The one
design decision: a second demo run reuses the versions a first run registered (found by the
`modelpilot.demo.role` tag on the tracking server under `.demo/`), so it skips training.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import dataclass

import mlflow.tracking
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from modelpilot.demo import dataset
from modelpilot.lifecycle import tracking
from modelpilot.registry import client as registry_client

ROLE_TAG = "modelpilot.demo.role"
EXPERIMENT = "modelpilot-demo"


@dataclass(frozen=True)
class Registered:
    role: str  # champion | challenger
    version: str
    run_id: str
    accuracy: float
    reused: bool


def _frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=list(dataset.FEATURES))


def find_existing(tracking_uri: str, model_name: str) -> dict[str, Registered]:
    """Versions of `model_name` a previous demo run registered, by role."""
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found: dict[str, Registered] = {}
    with registry_client.mapped_errors(f"model {model_name}"):
        try:
            versions = client.search_model_versions(f"name='{model_name}'")
        except mlflow.exceptions.MlflowException:
            return {}
        for mv in versions:
            role = (mv.tags or {}).get(ROLE_TAG)
            if role in ("champion", "challenger") and role not in found:
                run = client.get_run(str(mv.run_id))
                found[role] = Registered(
                    role=role,
                    version=str(mv.version),
                    run_id=str(mv.run_id),
                    accuracy=float(run.data.metrics.get("test_accuracy", float("nan"))),
                    reused=True,
                )
    return found


def train_and_log(*, tracking_uri: str, seed: int) -> dict[str, tuple[str, float]]:
    """Train both models and log them in two runs; returns role -> (run id, test accuracy)."""
    rng = np.random.default_rng(seed)
    x_train, y_train = dataset.sample(rng, 4000)
    x_test, y_test = dataset.sample(rng, 4000)
    train = _frame(x_train).assign(label=y_train)
    candidates = {
        "champion": LogisticRegression(max_iter=500),
        "challenger": RandomForestClassifier(
            n_estimators=60, min_samples_leaf=3, n_jobs=1, random_state=seed
        ),
    }
    out: dict[str, tuple[str, float]] = {}
    for role, model in candidates.items():
        with tracking.run(
            experiment=EXPERIMENT, tracking_uri=tracking_uri, run_name=f"demo-{role}"
        ) as run:
            model.fit(_frame(x_train), y_train)
            accuracy = float((model.predict(_frame(x_test)) == y_test).mean())
            run.log_params({"model": type(model).__name__, "seed": seed, "role": role})
            run.log_metrics({"test_accuracy": accuracy})
            with warnings.catch_warnings():
                # MLflow hints, once for the dataset's `label` column and once for the model's
                # output, that an integer column (the 0/1 class) cannot hold missing values; true
                # and irrelevant here (labels are never missing), and it would scroll through the
                # live view.
                warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
                run.log_dataset(train, name="train", context="training", targets="label")
                run.log_model(model, input_example=_frame(x_train[:50]))
        out[role] = (run.run_id, accuracy)
    return out


def register(*, tracking_uri: str, model_name: str, run_id: str, role: str) -> str:
    """`modelpilot models register` for one run; tags the version with its demo role."""
    cmd = [
        sys.executable,
        "-m",
        "modelpilot.cli.main",
        "models",
        "register",
        "--tracking-uri",
        tracking_uri,
        "--run",
        run_id,
        "--name",
        model_name,
        "--alias",
        role,
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed: {done.stderr.strip()[-800:]}")
    answer = json.loads(done.stdout)
    version = str(answer["version"])
    if not answer.get("profile"):
        raise RuntimeError(f"version {version} was registered without a reference profile")
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with registry_client.mapped_errors(f"model {model_name}"):
        client.set_model_version_tag(model_name, version, ROLE_TAG, role)
    return version
