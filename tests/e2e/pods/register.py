"""Run inside the cluster by the e2e tier (a Job of the modelpilot image): train iris models and
register them in the chart's MLflow, each with its reference profile (the drift job needs it).

Usage: python register.py NAME COUNT   -> versions 1..COUNT of NAME; alias `champion` -> 1.
Prints one JSON line: {"name": ..., "versions": [...]}.
"""

import json
import sys

import cloudpickle
import mlflow
import mlflow.models
import mlflow.sklearn
import numpy as np
import pandas as pd
import scipy
import sklearn.datasets
import sklearn.linear_model

from modelpilot.registry import client as registry_client
from modelpilot.registry import profiles
from modelpilot.stats import profile as profile_mod

name, count = sys.argv[1], int(sys.argv[2])
iris = sklearn.datasets.load_iris(as_frame=True)
x = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
client = registry_client.make_client(mlflow.get_tracking_uri())
profile = profile_mod.build_profile(
    {c: x[c].to_numpy() for c in x.columns}, rng=np.random.default_rng(0)
)
mlflow.set_experiment("e2e")
# The packages a pickled scikit-learn model needs, at the versions this image (and so the model
# server's) holds: what MLflow's inference would record.
REQUIREMENTS = [
    f"{dist}=={module.__version__}"
    for dist, module in (
        ("mlflow", mlflow),
        ("scikit-learn", sklearn),
        ("numpy", np),
        ("scipy", scipy),
        ("pandas", pd),
        ("cloudpickle", cloudpickle),
    )
]
versions = []
for i in range(count):
    # Different regularisation per version: distinct models, the same inputs and outputs.
    model = sklearn.linear_model.LogisticRegression(C=10.0 ** (i - 1), max_iter=500).fit(
        x, iris.target
    )
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=mlflow.models.infer_signature(x, model.predict(x)),
            input_example=x.head(2),
            # Stated, not inferred: inference loads the model again in a subprocess to see what
            # it imports (measured: 31-39 s per model on a busy machine against 3 s stated).
            pip_requirements=REQUIREMENTS,
        )
    version = str(mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version)
    profiles.log_reference_profile(client, name=name, version=version, profile=profile)
    versions.append(version)
client.set_registered_model_alias(name, "champion", versions[0])
print(json.dumps({"name": name, "versions": versions}), flush=True)
