"""Runs on the tracking server: start (nested) runs, log
params/metrics/tags/datasets/artifacts/models.

Design decision: these are thin wrappers over MLflow's fluent API, keyed by explicit run ids where a
caller needs one, so the lifecycle modules (tracking, sweeps, model cards) never import mlflow and
every call goes through `client.mapped_errors`.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import mlflow.data.pandas_dataset
import mlflow.models
import mlflow.pyfunc
import mlflow.sklearn
import pandas as pd

from modelpilot.registry import client as registry_client


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifact_uri: str
    dataset_inputs: list[dict[str, Any]]


def ensure_experiment(name: str) -> str:
    with registry_client.mapped_errors(f"experiment {name}"):
        experiment = mlflow.set_experiment(name)
    return str(experiment.experiment_id)


@contextmanager
def start_run(
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    run_id: str | None = None,
    nested: bool = False,
    tags: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Start (or resume, with `run_id`) a run; yield its id; end it FINISHED, or FAILED on error."""
    if experiment is not None and run_id is None:
        ensure_experiment(experiment)
    with registry_client.mapped_errors(f"run {run_id or run_name or '(new)'}"):
        active = mlflow.start_run(
            run_id=run_id, run_name=run_name, nested=nested, tags=dict(tags or {})
        )
    try:
        yield str(active.info.run_id)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        mlflow.end_run(status=status)
        raise
    else:
        mlflow.end_run(status="FINISHED")


def log_params(params: Mapping[str, Any]) -> None:
    with registry_client.mapped_errors("run params"):
        mlflow.log_params({k: _short(v) for k, v in params.items()})


def log_metrics(metrics: Mapping[str, float], *, step: int | None = None) -> None:
    with registry_client.mapped_errors("run metrics"):
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, Any], *, run_id: str | None = None) -> None:
    with registry_client.mapped_errors(f"run {run_id or '(active)'}"):
        if run_id is None:
            mlflow.set_tags({k: str(v) for k, v in tags.items()})
        else:
            c = mlflow.tracking.MlflowClient()
            for key, value in tags.items():
                c.set_tag(run_id, key, str(value))


def delete_tag(run_id: str, key: str) -> None:
    with registry_client.mapped_errors(f"run {run_id}"):
        mlflow.tracking.MlflowClient().delete_tag(run_id, key)


def log_dict(data: Any, artifact_file: str, *, run_id: str | None = None) -> None:
    with registry_client.mapped_errors("artifact " + artifact_file):
        if run_id is None:
            mlflow.log_dict(data, artifact_file)
        else:
            mlflow.tracking.MlflowClient().log_dict(run_id, data, artifact_file)


def log_text(text: str, artifact_file: str, *, run_id: str | None = None) -> None:
    with registry_client.mapped_errors("artifact " + artifact_file):
        if run_id is None:
            mlflow.log_text(text, artifact_file)
        else:
            mlflow.tracking.MlflowClient().log_text(run_id, text, artifact_file)


def log_artifact(
    path: Path, artifact_path: str | None = None, *, run_id: str | None = None
) -> None:
    with registry_client.mapped_errors("artifact " + path.name):
        if run_id is None:
            mlflow.log_artifact(str(path), artifact_path)
        else:
            mlflow.tracking.MlflowClient().log_artifact(run_id, str(path), artifact_path)


def log_dataframe(
    df: pd.DataFrame, *, name: str, context: str, targets: str | None = None
) -> dict[str, Any]:
    """Log `df` as a run input (mlflow.data: digest, schema, shape) and as a CSV artifact.

    The CSV copy under `data/<name>.csv` is what registration (reference profile), model cards and
    the gate read back; the dataset input is what the MLflow UI shows. Returns digest and shape.
    """
    with warnings.catch_warnings():
        # The integer-column hint is about model signatures; a dataset's label column is fine.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        dataset = mlflow.data.pandas_dataset.from_pandas(df, targets=targets, name=name)
    with registry_client.mapped_errors(f"dataset {name}"):
        mlflow.log_input(dataset, context=context)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.csv"
            df.to_csv(path, index=False)
            mlflow.log_artifact(str(path), "data")
    return {
        "name": name,
        "digest": dataset.digest,
        "rows": int(df.shape[0]),
        "columns": int(df.shape[1]),
        "context": context,
    }


def log_sklearn_model(model: Any, *, input_example: pd.DataFrame, name: str = "model") -> str:
    """Log a scikit-learn model with its signature; return the `runs:/<id>/<name>` URI."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_sklearn_model needs an active run (use tracking.run)")
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values; class labels never do.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = mlflow.models.infer_signature(input_example, model.predict(input_example))
    # Pinned requirements instead of MLflow's inference, which imports the model in a subprocess
    # (about ten seconds per model) and can pick up unrelated packages of the environment.
    requirements = [
        f"{lib}=={importlib.metadata.version(lib)}"
        for lib in ("mlflow", "scikit-learn", "numpy", "scipy", "pandas")
    ]
    with registry_client.mapped_errors("model " + name), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        mlflow.sklearn.log_model(
            model,
            name=name,
            signature=signature,
            input_example=input_example.head(5),
            pip_requirements=requirements,
            skops_trusted_types=_trusted_types(model),
        )
    return f"runs:/{run.info.run_id}/{name}"


def _trusted_types(model: Any) -> list[str]:
    """The scikit-learn/numpy types skops must be told to trust for a model we just trained.

    MLflow 3 saves scikit-learn models with skops, which refuses to load types outside its default
    allow-list (tree node storage, for one). The model was built in this process, so its own
    scikit-learn and numpy types are trusted; anything else in it still blocks the save.
    """
    import skops.io  # type: ignore[import-untyped]  # MLflow's dependency; no type hints

    untrusted: list[str] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return [t for t in untrusted if t.split(".")[0] in ("sklearn", "numpy")]


@contextmanager
def sklearn_autolog() -> Iterator[None]:
    """scikit-learn autologging (estimator params, training metrics) for the duration of a block.

    Models and datasets are not autologged: the tracking helpers log them explicitly, once, with a
    signature and pinned requirements. `silent=True` keeps MLflow's own warnings out of the user's
    output (and out of pytest's warnings-as-errors).
    """
    mlflow.sklearn.autolog(
        log_models=False, log_datasets=False, log_input_examples=False, silent=True
    )
    try:
        yield
    finally:
        mlflow.sklearn.autolog(disable=True, silent=True)


def get_run(run_id: str) -> RunInfo:
    with registry_client.mapped_errors(f"run {run_id}"):
        run = mlflow.tracking.MlflowClient().get_run(run_id)
    inputs = []
    if run.inputs is not None:
        for d in run.inputs.dataset_inputs:
            inputs.append(
                {
                    "name": d.dataset.name,
                    "digest": d.dataset.digest,
                    "profile": d.dataset.profile,
                    "context": next(
                        (t.value for t in d.tags if t.key == "mlflow.data.context"), ""
                    ),
                }
            )
    return RunInfo(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        status=run.info.status,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        artifact_uri=run.info.artifact_uri,
        dataset_inputs=inputs,
    )


def read_csv_artifact(run_id: str, artifact_file: str) -> pd.DataFrame:
    with registry_client.mapped_errors(f"run {run_id}"), tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_file, dst_path=tmp
        )
        return pd.read_csv(local)


def read_json_artifact(run_id: str, artifact_file: str) -> Any:
    with registry_client.mapped_errors(f"run {run_id}"), tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_file, dst_path=tmp
        )
        return json.loads(Path(local).read_text())


def child_runs(experiment_id: str, parent_run_id: str) -> list[RunInfo]:
    with registry_client.mapped_errors(f"run {parent_run_id}"):
        runs = mlflow.tracking.MlflowClient().search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
            max_results=5000,
        )
    return [get_run(r.info.run_id) for r in runs]


def load_pyfunc(model_uri: str) -> Any:
    with registry_client.mapped_errors(f"model {model_uri}"):
        return mlflow.pyfunc.load_model(model_uri)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
