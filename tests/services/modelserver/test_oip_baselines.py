"""Correctness before speed (issue 16, item 4): the same predictions as MLServer and as
`mlflow models serve`, on the same rows, in JSON and binary, FP32 and FP64.

Real processes all: the model server, MLServer 1.7 with its MLflow runtime (in a venv of its
own, `modelpilot.testing.mlserver`; never a dependency of the product) and `mlflow models serve`,
each loading the same registered versions from a real MLflow server. A regressor is the sharper
oracle (its float outputs show any difference in the inputs the model got: an FP32 tensor must
reach the model as the float32 values, not as the decimals of the JSON); the classifier is
compared too.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http

from modelpilot.testing import mlserver, ports, processes
from tests.services import conftest as svc

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def _register_regressor(tracking_uri: str) -> svc.RegisteredModel:
    import mlflow
    import mlflow.models
    import mlflow.sklearn
    import sklearn.datasets
    import sklearn.linear_model

    data = sklearn.datasets.load_diabetes(as_frame=True)  # shipped with scikit-learn
    x = data.data
    model = sklearn.linear_model.Ridge(alpha=0.1).fit(x, data.target)
    name = f"diabetes-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment("services-tests")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model, name="model", signature=mlflow.models.infer_signature(x, model.predict(x))
        )
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    return svc.RegisteredModel(
        name=name, version=str(mv.version), features=x, tracking_uri=tracking_uri
    )


@pytest.fixture(scope="module")
def regressor(iris_model: svc.RegisteredModel) -> svc.RegisteredModel:
    return _register_regressor(iris_model.tracking_uri)


@pytest.fixture(scope="module")
def servers(
    iris_model: svc.RegisteredModel,
    regressor: svc.RegisteredModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Ours (one process per model), one MLServer over both, `mlflow models serve` per model."""
    tmp = tmp_path_factory.mktemp("baselines")
    models = {m.name: f"models:/{m.name}/{m.version}" for m in (iris_model, regressor)}
    with (
        svc.model_server(iris_model, tmp, variant="iris") as ours_iris,
        svc.model_server(regressor, tmp, variant="regressor") as ours_reg,
        mlserver.running(
            models, tracking_uri=iris_model.tracking_uri, workdir=tmp / "mlserver"
        ) as baseline,
        _mlflow_serve(iris_model, tmp) as serve_iris,
        _mlflow_serve(regressor, tmp) as serve_reg,
    ):
        yield {
            "ours": {iris_model.name: ours_iris.url, regressor.name: ours_reg.url},
            "mlserver": baseline,
            "mlflow": {iris_model.name: serve_iris, regressor.name: serve_reg},
        }


@pytest.fixture(params=["regressor", "iris"])
def model(
    request: pytest.FixtureRequest,
    iris_model: svc.RegisteredModel,
    regressor: svc.RegisteredModel,
) -> svc.RegisteredModel:
    return regressor if request.param == "regressor" else iris_model


@contextlib.contextmanager
def _mlflow_serve(model: svc.RegisteredModel, tmp: Path) -> Iterator[str]:
    port = ports.free_port()
    log = tmp / f"mlflow-serve-{model.name}.log"
    # mlflow runs `uvicorn` from PATH: this interpreter's scripts first.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m"]
    argv += [f"models:/{model.name}/{model.version}", "--env-manager", "local"]
    argv += ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, "MLFLOW_TRACKING_URI": model.tracking_uri, "PATH": path},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_http_ok(
            url + "/ping",
            proc,
            log,
            what="mlflow models serve",
            timeout=300,
            error=RuntimeError,
            interval=0.2,
        )
        yield url
    finally:
        processes.stop_group(proc)


def _rows(model: svc.RegisteredModel, datatype: str) -> np.ndarray:
    x = model.features.iloc[::7].to_numpy()
    return x.astype(np.float32 if datatype == "FP32" else np.float64)


def _json_v2(url: str, model: svc.RegisteredModel, rows: np.ndarray, datatype: str) -> list[Any]:
    body = {
        "inputs": [
            {
                "name": c,
                "shape": [len(rows)],
                "datatype": datatype,
                # float32 values become the same float64 numbers (exactly) in JSON.
                "data": rows[:, j].astype(np.float64).tolist(),
            }
            for j, c in enumerate(model.features.columns)
        ]
    }
    r = httpx.post(f"{url}/v2/models/{model.name}/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text
    data: list[Any] = r.json()["outputs"][0]["data"]
    return data


def _binary_ours(
    url: str, model: svc.RegisteredModel, rows: np.ndarray, datatype: str
) -> list[Any]:
    client = triton_http.InferenceServerClient(url.removeprefix("http://"))
    try:
        inputs = []
        for j, c in enumerate(model.features.columns):
            tensor = triton_http.InferInput(c, [len(rows)], datatype)
            tensor.set_data_from_numpy(rows[:, j])
            inputs.append(tensor)
        out: list[Any] = client.infer(model.name, inputs).as_numpy("predict").tolist()
        return out
    finally:
        client.close()


def _grpc_raw(
    target: str, model: svc.RegisteredModel, rows: np.ndarray, datatype: str, tmp: Path
) -> list[Any]:
    spec = tmp / f"{model.name}-{datatype}.json"
    spec.write_text(
        json.dumps(
            {
                "columns": list(model.features.columns),
                "rows": rows.astype(np.float64).tolist(),
                "datatype": datatype,
            }
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.services.modelserver.oip_grpc_calls",
            "columns",
            target,
            model.name,
            model.version,
            str(spec),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data: list[Any] = json.loads(out.stdout)["data"]
    return data


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_the_model_server_predicts_what_mlserver_and_mlflow_models_serve_predict(
    servers: dict[str, Any], model: svc.RegisteredModel, datatype: str, tmp_path: Path
) -> None:
    rows = _rows(model, datatype)
    ours_url = servers["ours"][model.name]
    baseline: mlserver.MLServer = servers["mlserver"]
    ours_json = _json_v2(ours_url, model, rows, datatype)
    ours_binary = _binary_ours(ours_url, model, rows, datatype)
    mlserver_json = _json_v2(baseline.url, model, rows, datatype)
    # MLServer's REST has no binary extension; its binary path is gRPC's raw contents.
    mlserver_raw = _grpc_raw(baseline.grpc_target, model, rows, datatype, tmp_path)
    frame = {
        "dataframe_split": {
            "columns": list(model.features.columns),
            "data": rows.astype(np.float64).tolist(),
        }
    }
    r = httpx.post(servers["mlflow"][model.name] + "/invocations", json=frame, timeout=60)
    assert r.status_code == 200, r.text
    mlflow_json = r.json()["predictions"]
    assert len(ours_json) == len(rows)
    # Exactly equal, floats included: every server hands the model the same numbers.
    assert ours_json == ours_binary == mlserver_json == mlserver_raw == mlflow_json
    if model.name.startswith("diabetes"):
        assert len(set(ours_json)) > len(rows) // 2  # real regression outputs, not one constant
