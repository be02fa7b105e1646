"""The model server's data plane: the one object every endpoint delegates to.

As in KServe and MLServer, the HTTP app only translates requests; loading, readiness, decoding,
prediction, metrics and the drift window live here. The design decision: the model is loaded in
a background task (a thread, since MLflow's download and unpickling block) and the server reports
ready only once it has loaded, so Kubernetes sends no traffic to a pod that cannot answer; a failed
load is retried, never fatal, so a registry outage heals without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sized
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelpilot.modelserver import batching, codec, errors, loader, metrics, oip, settings, window

log = logging.getLogger("modelpilot.modelserver")


class DataPlane:
    def __init__(self, config: settings.ServerSettings) -> None:
        self.settings = config
        self.ref = loader.parse_model_uri(config.model_uri)
        self.metrics = metrics.create_metrics(deployment=config.deployment, variant=config.variant)
        self.model: loader.LoadedModel | None = None
        self.window: window.DriftWindow | None = None
        self.load_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.batcher = batching.Batcher(
            self._predict_columns,
            max_requests=config.max_batch_size,
            max_rows=config.max_batch_rows,
        )

    # ---- lifecycle ---------------------------------------------------------------------------
    def track(self, requests: Sized) -> None:
        """A server's requests in flight (uvicorn's `server_state.tasks`, the gRPC server's
        calls): with batching on, a request that finds others in flight joins a batch."""
        self.batcher.track(requests)

    def start(self) -> None:
        """Start loading in the background (called from the app's lifespan)."""
        self._task = asyncio.get_running_loop().create_task(self._load_until_loaded())

    async def stop(self) -> None:
        await self.batcher.stop()
        if self.window is not None:
            await asyncio.to_thread(self.window.close)  # the last flush (issue 15)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _load_until_loaded(self) -> None:
        while True:
            try:
                loaded = await asyncio.to_thread(
                    loader.load,
                    model_uri=self.settings.model_uri,
                    tracking_uri=self.settings.tracking_uri,
                    with_profile=self.settings.drift_window,
                )
            except Exception as exc:  # any failure of MLflow or the model: retry, stay unready
                self.load_error = f"{type(exc).__name__}: {exc}"
                log.warning("loading %s failed, retrying: %s", self.settings.model_uri, exc)
                await asyncio.sleep(self.settings.load_retry_seconds)
                continue
            self._install(loaded)
            return

    def _install(self, loaded: loader.LoadedModel) -> None:
        if loaded.profile is not None:
            self.window = window.DriftWindow(
                loaded.profile, window_seconds=self.settings.window_seconds
            )
            self.window.persist(config=self.settings, model=loaded)  # issue 15: flush to MLflow
        self.metrics.set_version(loaded.version)
        self.load_error = None
        self.model = loaded  # last: readiness flips only when everything above is in place
        log.info("loaded %s version %s", loaded.name, loaded.version)

    # ---- health and metadata -----------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.model is not None

    def _model(self, name: str | None, version: str | None = None) -> loader.LoadedModel:
        if name is not None and name != self.ref.name:
            raise errors.ModelNotFoundError(
                f"model {name!r} is not served here (this server: {self.ref.name!r})"
            )
        if self.model is None:
            raise errors.ModelNotReadyError(f"model {self.ref.name!r} is still loading")
        if version and version != self.model.version:
            raise errors.ModelNotFoundError(
                f"model {self.ref.name!r} version {version!r} is not served here "
                f"(this server: version {self.model.version})"
            )
        return self.model

    def model_ready(self, name: str, version: str | None = None) -> bool:
        if name != self.ref.name:
            raise errors.ModelNotFoundError(
                f"model {name!r} is not served here (this server: {self.ref.name!r})"
            )
        if self.model is None:
            return False
        self._model(name, version)
        return True

    def server_metadata(self) -> dict[str, Any]:
        return {
            "name": "modelpilot-model-server",
            "version": "0.1.0",
            "extensions": ["binary_tensor_data", "predict", "drift"],
        }

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        model = self._model(name, version)

        def tensors(cols: tuple[codec.Column, ...] | None) -> list[dict[str, Any]]:
            return [
                {
                    "name": c.name,
                    "datatype": V2_OF_KIND.get(c.kind, "BYTES"),
                    "shape": list(c.shape),
                }
                for c in cols or ()
            ]

        return {
            "name": model.name,
            "versions": [model.version],
            "platform": "mlflow",
            "inputs": tensors(model.schema),
            "outputs": tensors(model.outputs),
        }

    # ---- inference ---------------------------------------------------------------------------
    async def infer(
        self, name: str, version: str | None, request: oip.InferRequest, *, protocol: str = "v2"
    ) -> oip.InferResponse:
        """One Open Inference Protocol request, whichever transport it came by."""
        model = self._model(name, version)
        start = time.perf_counter()
        batch = codec.decode_v2_inputs(
            request.inputs, model.schema, max_rows=self.settings.max_batch_rows
        )
        known = [c.name for c in model.outputs] if model.outputs else None
        if known is not None:
            _check_requested(request.outputs, known)
        predictions = await self._predict(batch)
        if known is None:
            _check_requested(request.outputs, list(predictions))
        elif list(predictions) != known and len(predictions) == len(known):
            # The signature names the outputs; the model's own names (a Series' name) yield.
            predictions = dict(zip(known, predictions.values(), strict=True))
        binary_all = bool(request.parameters.get("binary_data_output", False))
        if request.outputs is None:
            wanted = [(col, binary_all) for col in predictions]
        else:
            wanted = [
                (o.name, bool(o.parameters.get("binary_data", binary_all))) for o in request.outputs
            ]
        outputs = []
        for col, binary in wanted:
            values = predictions[col]
            outputs.append(
                oip.OutputTensor(
                    name=col, datatype=oip.datatype_of(values), data=values, binary=binary
                )
            )
        self.metrics.observe(
            protocol=protocol, seconds=time.perf_counter() - start, rows=batch.rows
        )
        return oip.InferResponse(
            model_name=model.name, model_version=model.version, outputs=outputs, id=request.id
        )

    async def predict(self, instances: Any) -> dict[str, Any]:
        model = self._model(None)
        start = time.perf_counter()
        batch = codec.decode_instances(
            instances, model.schema, max_rows=self.settings.max_batch_rows
        )
        predictions = {k: jsonable(v) for k, v in (await self._predict(batch)).items()}
        if len(predictions) == 1:
            body: list[Any] = next(iter(predictions.values()))
        else:
            keys = list(predictions)
            body = [
                dict(zip(keys, row, strict=True)) for row in zip(*predictions.values(), strict=True)
            ]
        self.metrics.observe(
            protocol="predict", seconds=time.perf_counter() - start, rows=batch.rows
        )
        return {"predictions": body, "model_name": model.name, "model_version": model.version}

    async def _predict(self, batch: codec.Batch) -> dict[str, npt.NDArray[Any]]:
        # Batching on, a request alone in flight takes batching off's path: the same call, in
        # its own task, nothing added but the check (`batching`: equal by construction).
        if self.settings.batching and not self.batcher.alone():
            out = await self.batcher.submit(batch.columns, batch.rows)
        else:
            out = self._predict_columns(batch.columns, batch.rows)
        if len(out) == 1:
            self.metrics.count_classes(next(iter(out.values())).tolist())
        return out

    def _predict_columns(self, columns: dict[str, Any], rows: int) -> dict[str, npt.NDArray[Any]]:
        """One model call on decoded columns (a request, or a batch of them), plus the window."""
        model = self.model
        if model is None:
            raise errors.ModelNotReadyError(f"model {self.ref.name!r} is still loading")
        frame = pd.DataFrame(columns)
        if model.schema is not None:
            for c in model.schema:
                if c.kind == "float" and frame[c.name].dtype != np.float32:
                    frame[c.name] = frame[c.name].astype(np.float32)
                elif (
                    c.kind == "integer"
                    and frame[c.name].dtype != np.int32
                    and not frame[c.name].isna().any()
                ):
                    frame[c.name] = frame[c.name].astype(np.int32)
        try:
            raw = (model.predict or model.pyfunc.predict)(frame)
        except Exception as exc:  # MLflow schema enforcement and model errors: the input's fault
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise errors.InvalidInputError(
                f"the model rejected the inputs: {message[:300]}"
            ) from exc
        if self.window is not None:
            self.window.add(columns, rows)  # buffered: folded in every 512 rows and on reads
        return _to_columns(raw, rows)

    # ---- drift window ------------------------------------------------------------------------
    def drift_window(self) -> dict[str, Any]:
        model = self._model(None)
        if self.window is None:
            raise errors.NotAvailableError(
                f"no drift window: model {model.name!r} version {model.version} has no reference "
                "profile, or the window is turned off (MODELPILOT_SERVER_DRIFT_WINDOW)"
            )
        if self.window.disabled is not None:
            raise errors.NotAvailableError(f"no drift window: {self.window.disabled}")
        return {
            "deployment": self.settings.deployment,
            "variant": self.settings.variant,
            "model": {"name": model.name, "version": model.version},
            "window": self.window.to_dict(),
        }

    def count_error(self, code: int) -> None:
        self.metrics.error(code)


V2_OF_KIND = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
}


def _check_requested(outputs: list[oip.RequestedOutput] | None, known: list[str]) -> None:
    """Requested outputs must exist: a name the model does not produce is a 400, not ignored."""
    for i, o in enumerate(outputs or ()):
        if o.name not in known:
            raise errors.InvalidInputError(
                f"outputs[{i}].name: {o.name!r} is not an output of the model "
                f"(outputs: {', '.join(known)})"
            )


def jsonable(values: npt.NDArray[Any]) -> list[Any]:
    """A column as JSON-ready values: NaN and infinities (not JSON) become null, bytes text."""
    if values.dtype.kind == "f":
        return [None if not math.isfinite(v) else v for v in values.tolist()]
    out: list[Any] = values.tolist()
    if values.dtype == object:
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in out]
    return out


def _to_columns(raw: Any, rows: int) -> dict[str, npt.NDArray[Any]]:
    if isinstance(raw, pd.DataFrame):
        return {str(c): _column(raw[c]) for c in raw.columns}
    if isinstance(raw, pd.Series):
        return {str(raw.name or "predict"): _column(raw)}
    array = np.asarray(raw)
    if array.ndim == 2 and array.shape[0] == rows:
        return {f"predict_{j}": array[:, j] for j in range(array.shape[1])}
    return {"predict": array.reshape(rows, -1)[:, 0] if array.ndim > 1 else array}


def _column(series: pd.Series) -> npt.NDArray[Any]:
    """A model's output column as numpy. Text comes out as objects with None where it is missing:
    pandas 3 makes text columns its `str` dtype, whose missing value is NaN (pandas 2's `string`
    dtype: pd.NA), which the transports would write as "nan" (BYTES) or could not encode at all;
    None is what an object column of pandas 2 held, so the answers are the same on both."""
    if isinstance(series.dtype, pd.StringDtype):
        values = series.to_numpy(dtype=object, copy=True)  # a copy: a view may be read-only
        values[series.isna().to_numpy()] = None
        return values
    return series.to_numpy()
