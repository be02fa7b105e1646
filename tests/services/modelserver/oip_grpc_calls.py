"""tritonclient.grpc calls run in a process of their own, printing what they saw as JSON.

Why a separate process: tritonclient.grpc and kserve each register the protocol's messages
(package `inference`) in protobuf's default descriptor pool under their own file names, so the
two cannot be imported into one interpreter (protobuf raises "duplicate symbol"); kserve has a
venv of its own anyway (it pins pandas<3: `oip_kserve_calls`).
`python -m tests.services.modelserver.oip_grpc_calls SCENARIO TARGET MODEL VERSION ROWS.npy`
(scenario `columns`: a JSON file {"columns", "rows", "datatype"} instead).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as triton_grpc
import tritonclient.utils as triton_utils
from tritonclient.grpc import service_pb2, service_pb2_grpc


def _error(call: Any) -> dict[str, str]:
    try:
        call()
    except triton_utils.InferenceServerException as exc:
        return {"status": str(exc.status()), "message": str(exc.message())}
    return {"status": "OK", "message": ""}


def _columns(client: Any, model: str, spec_file: str) -> dict[str, Any]:
    """One tensor per column ({"columns", "rows", "datatype"} in `spec_file`), raw contents."""
    spec = json.loads(Path(spec_file).read_text())
    rows = np.asarray(spec["rows"], dtype=np.float64)
    dtype = np.float32 if spec["datatype"] == "FP32" else np.float64
    inputs = []
    for j, name in enumerate(spec["columns"]):
        tensor = triton_grpc.InferInput(name, [len(rows)], spec["datatype"])
        tensor.set_data_from_numpy(rows[:, j].astype(dtype))
        inputs.append(tensor)
    result = client.infer(model, inputs)
    first = result.get_response().outputs[0].name
    return {"output": first, "data": result.as_numpy(first).ravel().tolist()}


def main(scenario: str, target: str, model: str, version: str, rows_file: str) -> dict[str, Any]:
    client = triton_grpc.InferenceServerClient(target)
    if scenario == "columns":
        try:
            return _columns(client, model, rows_file)
        finally:
            client.close()
    rows = np.load(rows_file)
    try:
        if scenario == "metadata":
            return {
                "live": client.is_server_live(),
                "ready": client.is_server_ready(),
                "model_ready": client.is_model_ready(model),
                "version_ready": client.is_model_ready(model, version),
                "server": client.get_server_metadata(as_json=True),
                "model": client.get_model_metadata(model, as_json=True),
            }
        if scenario in ("FP32", "FP64"):
            dtype = np.float32 if scenario == "FP32" else np.float64
            columns = []
            for j in range(rows.shape[1]):
                name = ["sepal_length", "sepal_width", "petal_length", "petal_width"][j]
                tensor = triton_grpc.InferInput(name, [len(rows)], scenario)
                tensor.set_data_from_numpy(rows[:, j].astype(dtype))
                columns.append(tensor)
            by_column = client.infer(model, columns, request_id="g-1")
            matrix = triton_grpc.InferInput("x", list(rows.shape), scenario)
            matrix.set_data_from_numpy(rows.astype(dtype))
            versioned = client.infer(
                model,
                [matrix],
                model_version=version,
                outputs=[triton_grpc.InferRequestedOutput("predict")],
            )
            return {
                "by_column": by_column.as_numpy("predict").tolist(),
                "id": by_column.get_response().id,
                "matrix": versioned.as_numpy("predict").tolist(),
                "version": versioned.get_response().model_version,
            }
        if scenario == "typed":
            import grpc

            request = service_pb2.ModelInferRequest(
                model_name=model,
                inputs=[
                    service_pb2.ModelInferRequest.InferInputTensor(
                        name="x",
                        datatype="FP64",
                        shape=list(rows.shape),
                        contents=service_pb2.InferTensorContents(fp64_contents=rows.ravel()),
                    )
                ],
            )
            with grpc.insecure_channel(target) as channel:
                response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
            return {
                "predict": np.frombuffer(response.raw_output_contents[0], "<i8").tolist(),
                "datatype": response.outputs[0].datatype,
            }
        if scenario == "errors":
            matrix = triton_grpc.InferInput("x", list(rows.shape), "FP64")
            matrix.set_data_from_numpy(rows)
            words = triton_grpc.InferInput("x", list(rows.shape), "BYTES")
            words.set_data_from_numpy(rows.astype(str).astype(np.object_))
            proba = [triton_grpc.InferRequestedOutput("proba")]
            return {
                "output": _error(lambda: client.infer(model, [matrix], outputs=proba)),
                "bytes": _error(lambda: client.infer(model, [words])),
                "version": _error(lambda: client.infer(model, [matrix], model_version="999")),
                "model": _error(lambda: client.get_model_metadata("no-such-model")),
            }
        raise SystemExit(f"unknown scenario {scenario!r}")
    finally:
        client.close()


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:6])))
