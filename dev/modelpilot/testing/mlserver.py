"""MLServer (Seldon's reference Open Inference Protocol server) as a baseline, in its own venv.

MLServer and its MLflow runtime are never a dependency of the product: they pin their own FastAPI,
pandas and protobuf. `ensure_venv()` makes a virtualenv for them under the cache directory (keyed
by the pinned versions and this interpreter), with the same MLflow and scikit-learn as the
product's environment so both servers load the model with the same code; `running()` starts one
MLServer process over one or more registered models. Used by the predictions test
(tests/services/modelserver/test_oip_baselines.py) and the serving benchmark (bench/serving.py).

The design decision: MLServer runs as configured for a fair comparison, one process
(`parallel_workers: 0`, inference in the server process, as the model server does); adaptive
batching is its own (`max_batch_size` requests, `max_batch_time` seconds), on or off.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelpilot.testing import ports, processes, venvs

MLSERVER = "1.7.1"


class MLServerError(RuntimeError):
    """The venv could not be made, or MLServer did not become ready."""


def requirements() -> list[str]:
    """What the venv holds: MLServer pinned, MLflow and scikit-learn as in this environment."""
    return [
        f"mlserver=={MLSERVER}",
        f"mlserver-mlflow=={MLSERVER}",
        f"mlflow=={importlib.metadata.version('mlflow')}",
        f"scikit-learn=={importlib.metadata.version('scikit-learn')}",
    ]


def ensure_venv() -> Path:
    """The venv's directory, made (once per requirements and Python) with `venv` and pip."""
    return venvs.ensure("MLServer", requirements(), MLServerError)


@dataclass(frozen=True)
class MLServer:
    url: str
    grpc_target: str
    log: Path


@contextlib.contextmanager
def running(
    models: dict[str, str],
    *,
    tracking_uri: str,
    workdir: Path,
    batching: bool = False,
    max_batch_size: int = 8,
    max_batch_time: float = 0.001,
    timeout: float = 300.0,
) -> Iterator[MLServer]:
    """MLServer serving `models` ({name: models:/ URI}) on free loopback ports."""
    venv = ensure_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, grpc_port, metrics_port = ports.free_port(), ports.free_port(), ports.free_port()
    (workdir / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": metrics_port,
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )
    for name, uri in models.items():
        folder = workdir / name
        folder.mkdir(exist_ok=True)
        settings: dict[str, object] = {
            "name": name,
            "implementation": "mlserver_mlflow.MLflowRuntime",
            "parameters": {"uri": uri},
        }
        if batching:
            settings |= {"max_batch_size": max_batch_size, "max_batch_time": max_batch_time}
        (folder / "model-settings.json").write_text(json.dumps(settings))
    log = workdir / "mlserver.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "mlserver"), "start", str(workdir)],
            env={
                **os.environ,
                "MLFLOW_TRACKING_URI": tracking_uri,
                "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                "VIRTUAL_ENV": str(venv),
            },
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        for name in models:
            processes.wait_http_ok(
                f"{url}/v2/models/{name}/ready",
                proc,
                log,
                what="MLServer",
                timeout=timeout,
                error=MLServerError,
                interval=0.2,
            )
        yield MLServer(url=url, grpc_target=f"127.0.0.1:{grpc_port}", log=log)
    finally:
        processes.stop_group(proc)
