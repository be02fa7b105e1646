"""The model server over real sockets, against a model trained and registered in the test."""

from __future__ import annotations

import json
import time

import httpx
import mlflow.pyfunc
import numpy as np
import prometheus_client.parser
import pytest

from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow


def _in_process_predictions(model: svc.RegisteredModel, rows: int) -> list[int]:
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model.name}/{model.version}")
    out: list[int] = np.asarray(pyfunc.predict(model.features.head(rows))).tolist()
    return out


def test_predict_answers_the_same_as_pyfunc_in_process(
    iris_model: svc.RegisteredModel, served_iris: svc.Proc
) -> None:
    x = iris_model.features.iloc[::10]
    expected = np.asarray(
        mlflow.pyfunc.load_model(f"models:/{iris_model.name}/{iris_model.version}").predict(x)
    ).tolist()
    r = httpx.post(served_iris.url + "/predict", json={"instances": x.to_dict(orient="records")})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == expected
    assert r.json()["model_version"] == iris_model.version
    # Rows as lists in signature order give the same answer.
    r2 = httpx.post(served_iris.url + "/predict", json={"instances": x.to_numpy().tolist()})
    assert r2.json()["predictions"] == expected


def test_v2_infer_answers_the_same_as_pyfunc_in_process_with_columns_or_one_matrix(
    iris_model: svc.RegisteredModel, served_iris: svc.Proc
) -> None:
    x = iris_model.features.iloc[::7]
    expected = np.asarray(
        mlflow.pyfunc.load_model(f"models:/{iris_model.name}/{iris_model.version}").predict(x)
    ).tolist()
    url = f"{served_iris.url}/v2/models/{iris_model.name}/infer"
    by_column = {
        "id": "abc",
        "inputs": [
            {"name": c, "shape": [len(x)], "datatype": "FP64", "data": x[c].tolist()}
            for c in x.columns
        ],
    }
    r = httpx.post(url, json=by_column)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "abc"
    assert body["model_version"] == iris_model.version
    assert body["outputs"][0]["data"] == expected
    assert body["outputs"][0]["shape"] == [len(x)]
    matrix = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(x.shape),
                "datatype": "FP64",
                "data": x.to_numpy().ravel().tolist(),
            }
        ]
    }
    r2 = httpx.post(url, json=matrix)
    assert r2.status_code == 200, r2.text
    assert r2.json()["outputs"][0]["data"] == expected


def test_health_metadata_and_readiness_follow_the_v2_protocol(
    iris_model: svc.RegisteredModel, served_iris: svc.Proc
) -> None:
    assert httpx.get(served_iris.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(served_iris.url + "/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{served_iris.url}/v2/models/{iris_model.name}/ready").status_code == 200
    meta = httpx.get(f"{served_iris.url}/v2/models/{iris_model.name}").json()
    assert meta["versions"] == [iris_model.version]
    assert [i["name"] for i in meta["inputs"]] == list(iris_model.features.columns)
    assert httpx.get(f"{served_iris.url}/v2/models/other").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/predict", b"{not json", 400, "json"),
        ("/predict", b'{"rows": []}', 422, "instances"),
        ("/predict", b'{"instances": [{"sepal_length": 1.0}]}', 422, "sepal_width"),
        ("/predict", b'{"instances": [[1.0, 2.0]]}', 422, "expected 4 values"),
        (
            "/predict",
            b'{"instances": [{"sepal_length": "abc", "sepal_width": 1, "petal_length": 1,'
            b' "petal_width": 1}]}',
            422,
            "instances[0].sepal_length: expected a number",
        ),
        (
            "/v2/models/{name}/infer",
            b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2]}]}',
            400,
            "needs 8 values",
        ),
        (
            "/v2/models/{name}/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}',
            400,
            "expected [N, 4]",
        ),
        (
            "/v2/models/{name}/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES",'
            b' "data": ["a", "b", "c", "d"]}]}',
            400,
            "BYTES is not allowed",
        ),
    ],
)
def test_malformed_wrong_shape_and_wrong_type_bodies_get_a_4xx_naming_the_problem(
    iris_model: svc.RegisteredModel,
    served_iris: svc.Proc,
    path: str,
    body: bytes,
    status: int,
    fragment: str,
) -> None:
    r = httpx.post(
        served_iris.url + path.format(name=iris_model.name),
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert fragment.lower() in r.json()["error"].lower()


def test_an_oversize_body_gets_413_before_it_is_parsed(served_iris: svc.Proc) -> None:
    big = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 200_000}).encode()
    assert len(big) > 1_048_576
    r = httpx.post(
        served_iris.url + "/predict", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "MAX_BODY_BYTES" in r.json()["error"]


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in prometheus_client.parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_errors_and_predicted_classes(
    iris_model: svc.RegisteredModel, served_iris: svc.Proc
) -> None:
    x = iris_model.features.head(5)
    labels = {"deployment": "iris", "variant": "stable", "model_version": iris_model.version}
    before = _samples(httpx.get(served_iris.admin + "/metrics").text)
    httpx.post(served_iris.url + "/predict", json={"instances": x.to_dict(orient="records")})
    httpx.post(served_iris.url + "/predict", json={"instances": [[1.0]]})
    after = _samples(httpx.get(served_iris.admin + "/metrics").text)

    def delta(name: str, **extra: str) -> float:
        key = (name, frozenset({**labels, **extra}.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("modelpilot_model_requests_total", protocol="predict") == 1
    assert delta("modelpilot_model_errors_total", code="422") == 1
    assert delta("modelpilot_model_batch_size_sum") == 5
    assert after[("modelpilot_model_loaded", frozenset(labels.items()))] == 1
    predicted = np.asarray(
        mlflow.pyfunc.load_model(f"models:/{iris_model.name}/{iris_model.version}").predict(x)
    )
    for cls in set(predicted.tolist()):
        assert delta("modelpilot_model_predictions_total", **{"class": str(cls)}) == int(
            (predicted == cls).sum()
        )


def test_a_server_whose_model_cannot_load_is_live_but_never_ready_and_answers_503(
    iris_model: svc.RegisteredModel, tmp_path: object
) -> None:
    from pathlib import Path

    from modelpilot.testing import ports

    port = ports.free_port()
    env = {
        "MODELPILOT_SERVER_MODEL_URI": f"models:/{iris_model.name}/999",
        "MODELPILOT_SERVER_TRACKING_URI": iris_model.tracking_uri,
        "MODELPILOT_SERVER_HOST": "127.0.0.1",
        "MODELPILOT_SERVER_PORT": str(port),
        "MODELPILOT_SERVER_ADMIN_PORT": str(ports.free_port()),
        "MODELPILOT_SERVER_LOAD_RETRY_SECONDS": "0.5",
    }
    with svc.running_process(
        ["-m", "modelpilot.modelserver"],
        env,
        log=Path(str(tmp_path)) / "server.log",
        port=port,
        ready_path="/v2/health/live",
    ) as proc:
        assert httpx.get(proc.url + "/v2/health/ready").status_code == 503
        r = httpx.post(proc.url + "/predict", json={"instances": [[1.0, 2.0, 3.0, 4.0]]})
        assert r.status_code == 503
        assert "still loading" in r.json()["error"]
        # The load error is logged (and retried): poll the log with a deadline.
        deadline = time.monotonic() + 60
        while "not found" not in proc.log.read_text():
            assert time.monotonic() < deadline, proc.log.read_text()[-2000:]
            time.sleep(0.1)
        assert httpx.get(proc.url + "/v2/health/ready").status_code == 503
