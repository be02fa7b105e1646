"""KServe's `InferenceRESTClient` calls, run in KServe's own venv, printing what they saw as JSON.

Why a separate venv: KServe pins pandas<3 and the product runs on pandas 3 (issue 14, item 5), so
the client lives in `modelpilot.testing.kserve`'s venv and this file runs there as a script (it
imports nothing of the product, nor of the tests).
`python oip_kserve_calls.py BASE_URL MODEL ROWS.npy`
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import kserve
import numpy as np
from kserve.protocol import infer_type


async def main(base_url: str, model: str, rows_file: str) -> dict[str, Any]:
    rows = np.load(rows_file)
    client = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2", retries=0))
    try:
        seen: dict[str, Any] = {
            "live": await client.is_server_live(base_url),
            "ready": await client.is_server_ready(base_url),
            "model_ready": await client.is_model_ready(base_url, model),
            "infer": [],
        }
        for binary in (True, False):
            tensor = kserve.InferInput("x", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows.astype(np.float32), binary_data=binary)
            request = kserve.InferRequest(
                model_name=model,
                infer_inputs=[tensor],
                request_outputs=[
                    infer_type.RequestedOutput("predict", parameters={"binary_data": binary})
                ],
            )
            response = await client.infer(base_url, request, model_name=model)
            seen["infer"].append(
                {
                    "binary": binary,
                    "type": type(response).__name__,
                    "model_name": response.model_name,
                    "predict": response.outputs[0].as_numpy().tolist(),
                }
            )
        return seen
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:]))))
