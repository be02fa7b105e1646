"""The Open Inference Protocol as the ecosystem's own clients speak it (issue 16).

tritonclient (http) and KServe's `InferenceRESTClient` (protocol v2; in a venv of its own, as it
pins pandas<3), unmodified, against a real model-server process serving a model from a real MLflow
server, and through a real router process in front of it. Raw HTTP (httpx) only for what the
clients cannot send: malformed bodies, wrong methods, unknown routes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow.pyfunc
import numpy as np
import prometheus_client.parser
import pytest
import tritonclient.http as triton_http
import tritonclient.utils as triton_utils

from modelpilot.testing import kserve
from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow

KSERVE_CALLS = Path(__file__).with_name("oip_kserve_calls.py")


@pytest.fixture(scope="module")
def routed_iris(served_iris: svc.Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A router whose two variants are both the served model (so every answer is comparable)."""
    doc = svc.routes_doc(served_iris.url, served_iris.url)
    with svc.router_process(doc, tmp_path_factory.mktemp("router")) as router:
        yield router.url


@pytest.fixture(params=["server", "router"])
def base_url(request: pytest.FixtureRequest, served_iris: svc.Proc) -> str:
    if request.param == "server":
        return served_iris.url
    url: str = request.getfixturevalue("routed_iris")
    return url


@pytest.fixture(scope="module")
def expected(iris_model: svc.RegisteredModel) -> tuple[np.ndarray, np.ndarray]:
    """Rows and what the model predicts for them in process (the oracle)."""
    x = iris_model.features.iloc[::6]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{iris_model.name}/{iris_model.version}")
    return x.to_numpy(), np.asarray(pyfunc.predict(x))


def _triton(url: str) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(url.removeprefix("http://"))


def test_tritonclient_reads_health_server_metadata_and_the_signatures_inputs_and_outputs(
    base_url: str, iris_model: svc.RegisteredModel
) -> None:
    client = _triton(base_url)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(iris_model.name)
        assert client.is_model_ready(iris_model.name, iris_model.version)
        assert not client.is_model_ready(iris_model.name, "999")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        meta = client.get_model_metadata(iris_model.name, iris_model.version)
        assert meta["versions"] == [iris_model.version]
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
            (c, "FP64") for c in iris_model.features.columns
        ]
        assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
    finally:
        client.close()


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infers_with_and_without_the_binary_extension_as_pyfunc_does(
    base_url: str,
    iris_model: svc.RegisteredModel,
    expected: tuple[np.ndarray, np.ndarray],
    datatype: str,
    binary: bool,
) -> None:
    rows, predictions = expected
    dtype = np.float32 if datatype == "FP32" else np.float64
    client = _triton(base_url)
    try:
        inputs = []
        for j, name in enumerate(iris_model.features.columns):
            tensor = triton_http.InferInput(name, [len(rows)], datatype)
            tensor.set_data_from_numpy(rows[:, j].astype(dtype), binary_data=binary)
            inputs.append(tensor)
        # No `outputs`: tritonclient then asks for every output in binary.
        result = client.infer(iris_model.name, inputs, request_id="r-1")
        assert result.as_numpy("predict").tolist() == predictions.tolist()
        assert result.get_response()["id"] == "r-1"
        # One [N, 4] tensor on the versioned route, the output asked for in JSON.
        matrix = triton_http.InferInput("x", list(rows.shape), datatype)
        matrix.set_data_from_numpy(rows.astype(dtype), binary_data=binary)
        wanted = triton_http.InferRequestedOutput("predict", binary_data=False)
        result = client.infer(
            iris_model.name, [matrix], model_version=iris_model.version, outputs=[wanted]
        )
        output = result.get_output("predict")
        assert output["datatype"] == "INT64"
        assert output["data"] == predictions.tolist()
    finally:
        client.close()


def test_tritonclient_gets_a_clear_error_for_an_unknown_output_model_version_or_datatype(
    base_url: str, iris_model: svc.RegisteredModel, expected: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, _ = expected
    client = _triton(base_url)
    try:
        matrix = triton_http.InferInput("x", list(rows.shape), "FP64")
        matrix.set_data_from_numpy(rows)
        cases = [
            (
                {"outputs": [triton_http.InferRequestedOutput("proba")]},
                "400",
                "outputs[0].name: 'proba' is not an output",
            ),
            ({"model_version": "999"}, "404", "version '999' is not served"),
        ]
        for extra, status, fragment in cases:
            with pytest.raises(triton_utils.InferenceServerException) as info:
                client.infer(iris_model.name, [matrix], **extra)  # type: ignore[arg-type]
            assert info.value.status() == status, info.value
            assert fragment in info.value.message()
        words = triton_http.InferInput("x", list(rows.shape), "BYTES")
        words.set_data_from_numpy(rows.astype(str).astype(np.object_))
        with pytest.raises(triton_utils.InferenceServerException) as info:
            client.infer(iris_model.name, [words])
        assert info.value.status() == "400"
        assert "BYTES is not allowed" in info.value.message()
        with pytest.raises(triton_utils.InferenceServerException) as info:
            client.infer("no-such-model", [matrix])
        assert info.value.status() == "404"
    finally:
        client.close()


def test_kserves_rest_client_checks_health_and_infers_in_json_and_binary(
    base_url: str,
    iris_model: svc.RegisteredModel,
    expected: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    rows, predictions = expected
    rows_file = tmp_path / "rows.npy"
    np.save(rows_file, rows)
    # KServe pins pandas<3: its client runs in a venv of its own (modelpilot.testing.kserve).
    out = subprocess.run(
        [str(kserve.python()), str(KSERVE_CALLS), base_url, iris_model.name, str(rows_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    assert [call["binary"] for call in seen["infer"]] == [True, False]
    for call in seen["infer"]:
        assert call["type"] == "InferResponse"
        assert call["predict"] == predictions.tolist()
        assert call["model_name"] == iris_model.name  # (kserve's parser drops the version)


def _errors(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics").text
    return {
        sample.labels["code"]: sample.value
        for family in prometheus_client.parser.text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "modelpilot_model_errors_total"
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "fragment"),
    [
        ("GET", "/v2/models/{name}/infer", None, {}, 405, "method not allowed"),
        ("GET", "/v2/nothing-here", None, {}, 404, "not found"),
        ("GET", "/v2/models/other", None, {}, 404, "'other' is not served"),
        ("GET", "/v2/models/{name}/versions/7", None, {}, 404, "version '7' is not served"),
        ("POST", "/v2/models/{name}/infer", b"{not json", {}, 400, "not valid json"),
        ("POST", "/v2/models/{name}/infer", b"[1, 2]", {}, 400, "expected a json object"),
        (
            "POST",
            "/v2/models/{name}/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
            b' "data": [1, 2, 3, "a"]}]}',
            {},
            400,
            "inputs[0].data[3]: expected a number (FP64)",
        ),
        (
            "POST",
            "/v2/models/{name}/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",'
            b' "parameters": {"binary_data_size": 16}}]}AAAA',
            {"Inference-Header-Content-Length": "90"},
            400,
            "binary_data_size: 16 bytes from offset 0",
        ),
        (
            "POST",
            "/v2/models/{name}/infer",
            b'{"inputs": []}',
            {"Inference-Header-Content-Length": "999"},
            400,
            "inference-header-content-length",
        ),
        (
            "POST",
            "/predict",
            json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 200_000}).encode(),
            {},
            413,
            "MAX_BODY_BYTES",
        ),
    ],
)
def test_every_error_is_in_the_protocols_shape_with_its_status_and_counted(
    served_iris: svc.Proc,
    iris_model: svc.RegisteredModel,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    fragment: str,
) -> None:
    if "binary_data_size" in fragment:
        head = body[: body.index(b"}]}") + 3] if body else b""
        headers = {"Inference-Header-Content-Length": str(len(head))}
    before = _errors(served_iris.admin)
    r = httpx.request(
        method,
        served_iris.url + path.format(name=iris_model.name),
        content=body,
        headers=headers,
    )
    assert r.status_code == status, r.text
    assert fragment.lower() in r.json()["error"].lower()
    after = _errors(served_iris.admin)
    assert after.get(str(status), 0) - before.get(str(status), 0) == 1


def test_a_body_without_content_type_is_accepted_on_every_inference_route(
    base_url: str, iris_model: svc.RegisteredModel, expected: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, predictions = expected
    v2 = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "data": rows.ravel().tolist(),
                }
            ]
        }
    ).encode()
    for path in (
        f"/v2/models/{iris_model.name}/infer",
        f"/v2/models/{iris_model.name}/versions/{iris_model.version}/infer",
    ):
        r = httpx.post(base_url + path, content=v2)
        assert "content-type" not in r.request.headers
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == predictions.tolist()
    r = httpx.post(base_url + "/predict", content=json.dumps({"instances": rows.tolist()}))
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == predictions.tolist()


def test_the_openapi_description_lists_the_versioned_routes(served_iris: svc.Proc) -> None:
    paths = httpx.get(served_iris.url + "/openapi.json").json()["paths"]
    for path in (
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        assert path in paths
