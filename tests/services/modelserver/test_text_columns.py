"""Text in and out of a served model answers the same on pandas 2 and pandas 3 (issue 14, item 5).

pandas 3 makes text columns its `str` dtype, whose missing value is NaN (pandas 2 kept objects and
None). A model-server process serves a pyfunc model (MLflow's models from code) with an optional
text input and a text output with a missing value, from the session's real MLflow server; every
transport must answer the missing text as it did on pandas 2: null in JSON, never "nan".
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow

# A model from code (MLflow 3's way to log a pyfunc without pickling the test's classes).
MODEL_CODE = """
import mlflow
import pandas as pd


class Tags(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        x = model_input
        note = x["note"] if "note" in x else pd.Series([None] * len(x))
        return pd.DataFrame({
            "tag": [c if s > 0 else None for c, s in zip(x["color"], x["size"])],
            "note_missing": note.isna().to_numpy(),
        })


mlflow.models.set_model(Tags())
"""


@pytest.fixture(scope="module")
def tags_model(
    mlflow_server: object, tmp_path_factory: pytest.TempPathFactory
) -> svc.RegisteredModel:
    import mlflow
    import mlflow.pyfunc
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]
    mlflow.set_tracking_uri(uri)
    code = tmp_path_factory.mktemp("tags") / "tags_model.py"
    code.write_text(MODEL_CODE)
    signature = ModelSignature(
        inputs=Schema(
            [
                ColSpec("string", "color"),
                ColSpec("double", "size"),
                ColSpec("string", "note", required=False),
            ]
        ),
        outputs=Schema([ColSpec("string", "tag"), ColSpec("boolean", "note_missing")]),
    )
    name = f"tags-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment("services-tests")
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="model", python_model=str(code), signature=signature)
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    return svc.RegisteredModel(
        name=name, version=str(mv.version), features=pd.DataFrame(), tracking_uri=uri
    )


@pytest.fixture(scope="module")
def served_tags(
    tags_model: svc.RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[svc.Proc]:
    with svc.model_server(
        tags_model, tmp_path_factory.mktemp("server"), drift_window="false"
    ) as proc:
        yield proc


COLOR, SIZE = ["red", "green", "blue"], [1.0, -2.0, 0.5]


def test_a_missing_text_output_is_null_in_predict_and_v2_json(
    tags_model: svc.RegisteredModel, served_tags: svc.Proc
) -> None:
    rows = [
        {"color": "red", "size": 1.0},
        {"color": "green", "size": -2.0, "note": None},
        {"color": "blue", "size": 0.5, "note": "n"},
    ]
    r = httpx.post(served_tags.url + "/predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [
        {"tag": "red", "note_missing": True},
        {"tag": None, "note_missing": True},
        {"tag": "blue", "note_missing": False},
    ]
    body = {
        "inputs": [
            {"name": "color", "shape": [3], "datatype": "BYTES", "data": COLOR},
            {"name": "size", "shape": [3], "datatype": "FP64", "data": SIZE},
            {"name": "note", "shape": [3], "datatype": "BYTES", "data": ["a", None, "c"]},
        ]
    }
    r = httpx.post(f"{served_tags.url}/v2/models/{tags_model.name}/infer", json=body)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    assert outputs["tag"]["datatype"] == "BYTES"
    assert outputs["tag"]["data"] == ["red", None, "blue"]
    assert outputs["note_missing"]["data"] == [False, True, False]


def test_an_optional_input_may_be_left_out_of_a_v2_request_as_of_predict(
    tags_model: svc.RegisteredModel, served_tags: svc.Proc
) -> None:
    # MLflow's signature says `note` is optional; a v2 client (Triton's, KServe's) sends only the
    # tensors it has, as a `/predict` client leaves the key out.
    body = {
        "inputs": [
            {"name": "color", "shape": [3], "datatype": "BYTES", "data": COLOR},
            {"name": "size", "shape": [3], "datatype": "FP64", "data": SIZE},
        ]
    }
    r = httpx.post(f"{served_tags.url}/v2/models/{tags_model.name}/infer", json=body)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    assert outputs == {"tag": ["red", None, "blue"], "note_missing": [True, True, True]}
    # A required one left out is still refused, naming it.
    body["inputs"] = body["inputs"][:1]
    r = httpx.post(f"{served_tags.url}/v2/models/{tags_model.name}/infer", json=body)
    assert r.status_code == 400, r.text
    assert "inputs.size: missing (required by the signature)" in r.text


def _binary_request(model: str) -> tuple[bytes, dict[str, str]]:
    blobs = b"".join(struct.pack("<I", len(c)) + c.encode() for c in COLOR)
    sizes = struct.pack("<3d", *SIZE)
    notes = b"".join(struct.pack("<I", len(n)) + n.encode() for n in ("a", "", "c"))
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "color",
                    "shape": [3],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blobs)},
                },
                {
                    "name": "size",
                    "shape": [3],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(sizes)},
                },
                {
                    "name": "note",
                    "shape": [3],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(notes)},
                },
            ],
            "outputs": [{"name": "tag", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return head + blobs + sizes + notes, {"Inference-Header-Content-Length": str(len(head))}


def _bytes_elements(raw: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


def test_a_missing_text_output_in_binary_is_written_as_on_pandas_2_not_as_nan(
    tags_model: svc.RegisteredModel, served_tags: svc.Proc
) -> None:
    body, headers = _binary_request(tags_model.name)
    r = httpx.post(
        f"{served_tags.url}/v2/models/{tags_model.name}/infer", content=body, headers=headers
    )
    assert r.status_code == 200, r.text
    head_length = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:head_length])
    (tag,) = head["outputs"]
    assert (tag["datatype"], tag["shape"]) == ("BYTES", [3])
    elements = _bytes_elements(r.content[head_length:])
    # The binary extension has no null; the element is what pandas 2's None always gave
    # (pandas 3's NaN gave b"nan", a word a client cannot tell from a model's answer).
    assert elements == [b"red", b"None", b"blue"]
