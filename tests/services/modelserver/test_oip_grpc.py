"""The Open Inference Protocol over gRPC (issue 16, item 2), spoken by tritonclient.grpc unmodified.

A real model-server process with its gRPC port on, a model from a real MLflow server; the same
data plane as REST, so the same predictions, errors (as gRPC codes) and metrics. The client runs
in its own process (`oip_grpc_calls`: tritonclient.grpc and kserve cannot share one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow.pyfunc
import numpy as np
import prometheus_client.parser
import pytest

from modelpilot.testing import ports
from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def grpc_iris(
    iris_model: svc.RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[svc.Proc, str]]:
    port = ports.free_port()
    with svc.model_server(iris_model, tmp_path_factory.mktemp("grpc"), grpc_port=str(port)) as proc:
        yield proc, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def expected(
    iris_model: svc.RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[int]]:
    x = iris_model.features.iloc[::5]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{iris_model.name}/{iris_model.version}")
    rows = tmp_path_factory.mktemp("rows") / "rows.npy"
    np.save(rows, x.to_numpy())
    return rows, np.asarray(pyfunc.predict(x)).tolist()


def _calls(scenario: str, target: str, model: svc.RegisteredModel, rows: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.services.modelserver.oip_grpc_calls",
            scenario,
            target,
            model.name,
            model.version,
            str(rows),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _counters(url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(url + "/metrics").text
    out: dict[tuple[str, str], float] = {}
    for family in prometheus_client.parser.text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "modelpilot_model_requests_total":
                out[("requests", s.labels["protocol"])] = s.value
            elif s.name == "modelpilot_model_errors_total":
                out[("errors", s.labels["code"])] = s.value
    return out


def test_tritonclient_grpc_reads_health_and_metadata_with_the_signatures_outputs(
    grpc_iris: tuple[svc.Proc, str],
    iris_model: svc.RegisteredModel,
    expected: tuple[Path, list[int]],
) -> None:
    got = _calls("metadata", grpc_iris[1], iris_model, expected[0])
    assert [got[k] for k in ("live", "ready", "model_ready", "version_ready")] == [True] * 4
    assert "binary_tensor_data" in got["server"]["extensions"]
    assert got["model"]["versions"] == [iris_model.version]
    assert [i["name"] for i in got["model"]["inputs"]] == list(iris_model.features.columns)
    assert {i["datatype"] for i in got["model"]["inputs"]} == {"FP64"}
    assert got["model"]["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": ["-1"]}]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_tritonclient_grpc_infers_as_pyfunc_does_and_is_counted_as_grpc(
    grpc_iris: tuple[svc.Proc, str],
    iris_model: svc.RegisteredModel,
    expected: tuple[Path, list[int]],
    datatype: str,
) -> None:
    proc, target = grpc_iris
    before = _counters(proc.admin)
    got = _calls(datatype, target, iris_model, expected[0])
    assert got["by_column"] == got["matrix"] == expected[1]
    assert got["id"] == "g-1"
    assert got["version"] == iris_model.version
    after = _counters(proc.admin)
    assert after[("requests", "grpc")] - before.get(("requests", "grpc"), 0) == 2


def test_typed_contents_are_answered_as_raw_contents_are(
    grpc_iris: tuple[svc.Proc, str],
    iris_model: svc.RegisteredModel,
    expected: tuple[Path, list[int]],
) -> None:
    got = _calls("typed", grpc_iris[1], iris_model, expected[0])
    assert got == {"predict": expected[1], "datatype": "INT64"}


def test_errors_are_grpc_codes_with_the_data_planes_message_and_are_counted(
    grpc_iris: tuple[svc.Proc, str],
    iris_model: svc.RegisteredModel,
    expected: tuple[Path, list[int]],
) -> None:
    proc, target = grpc_iris
    before = _counters(proc.admin)
    got = _calls("errors", target, iris_model, expected[0])
    assert got["output"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "'proba' is not an output" in got["output"]["message"]
    assert got["bytes"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "BYTES is not allowed" in got["bytes"]["message"]
    assert got["version"]["status"] == "StatusCode.NOT_FOUND"
    assert "version '999' is not served" in got["version"]["message"]
    assert got["model"]["status"] == "StatusCode.NOT_FOUND"
    after = _counters(proc.admin)
    assert after[("errors", "400")] - before.get(("errors", "400"), 0) == 2
    assert after[("errors", "404")] - before.get(("errors", "404"), 0) == 2
