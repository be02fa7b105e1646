"""Fixtures of the services tier: a model trained and registered in the test, and real servers.

The model servers run as real processes (`python -m modelpilot.modelserver`) on free loopback ports,
against the session's real MLflow server; readiness is polled with a deadline, never slept on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from modelpilot.testing import ports, processes


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    features: pd.DataFrame  # the training inputs (also the reference of the drift profile)
    tracking_uri: str


def register_iris(tracking_uri: str, *, with_profile: bool = True) -> RegisteredModel:
    import mlflow
    import mlflow.models
    import mlflow.sklearn
    import sklearn.datasets
    import sklearn.linear_model

    from modelpilot.registry import client as registry_client
    from modelpilot.registry import profiles
    from modelpilot.stats import profile as profile_mod

    iris = sklearn.datasets.load_iris(as_frame=True)
    x = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    y = iris.target
    model = sklearn.linear_model.LogisticRegression(max_iter=500).fit(x, y)
    name = f"iris-{uuid.uuid4().hex[:8]}"
    client = registry_client.make_client(tracking_uri)
    mlflow.set_experiment("services-tests")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=mlflow.models.infer_signature(x, model.predict(x)),
            input_example=x.head(2),
        )
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    if with_profile:
        prof = profile_mod.build_profile(
            {c: x[c].to_numpy() for c in x.columns}, rng=np.random.default_rng(0)
        )
        profiles.log_reference_profile(client, name=name, version=str(mv.version), profile=prof)
    return RegisteredModel(
        name=name, version=str(mv.version), features=x, tracking_uri=tracking_uri
    )


@pytest.fixture(scope="session")
def iris_model(mlflow_server: object) -> RegisteredModel:
    uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]
    os.environ.setdefault("MLFLOW_TRACKING_URI", uri)
    return register_iris(uri)


def dead_url() -> str:
    """A loopback URL nothing listens on: a backend a routes document can name."""
    return f"http://127.0.0.1:{ports.free_port()}"


def wait_until(predicate: Callable[[], bool], what: str, *, timeout: float = 10.0) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)  # poll interval of a deadline loop
    raise AssertionError(f"{what}: not within {timeout}s")


def drift_run_args(
    model: RegisteredModel,
    urls: Sequence[str] = (),
    *,
    deployment: str = "iris",
    namespace: str | None = None,
) -> list[str]:
    """`modelpilot drift run` over the windows at `urls` against `model` in the real MLflow
    server, printing its summary and writing no status (`--no-status`)."""
    return [
        "drift",
        "run",
        "--deployment",
        deployment,
        *(["--namespace", namespace] if namespace is not None else []),
        "--no-status",
        "--model",
        f"{model.name}/{model.version}",
        "--tracking-uri",
        model.tracking_uri,
        *(arg for url in urls for arg in ("--window-url", url)),
    ]


@dataclass(frozen=True)
class Proc:
    url: str  # the inference port
    proc: subprocess.Popen[bytes]
    log: Path
    admin: str = ""  # the admin port (/stats, /routes, /drift/window, /metrics)


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path, *, path: str, timeout: float = 90.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # poll interval of a deadline loop, not a synchronisation sleep
    raise RuntimeError(f"{url}{path} not ready in {timeout}s:\n{log.read_text()[-3000:]}")


@contextmanager
def running_process(
    args: list[str],
    env: dict[str, str],
    *,
    log: Path,
    port: int,
    ready_path: str,
    admin_port: int | None = None,
) -> Iterator[Proc]:
    url = f"http://127.0.0.1:{port}"
    admin = f"http://127.0.0.1:{admin_port}" if admin_port else ""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(url, proc, log, path=ready_path)
        yield Proc(url=url, proc=proc, log=log, admin=admin)
    finally:
        processes.stop(proc, grace=15)


@contextmanager
def model_server(
    model: RegisteredModel, tmp: Path, *, variant: str = "stable", **extra: str
) -> Iterator[Proc]:
    port, admin_port = ports.free_port(), ports.free_port()
    env = {
        "MODELPILOT_SERVER_MODEL_URI": f"models:/{model.name}/{model.version}",
        "MODELPILOT_SERVER_TRACKING_URI": model.tracking_uri,
        "MODELPILOT_SERVER_DEPLOYMENT": "iris",
        "MODELPILOT_SERVER_VARIANT": variant,
        "MODELPILOT_SERVER_HOST": "127.0.0.1",
        "MODELPILOT_SERVER_PORT": str(port),
        "MODELPILOT_SERVER_ADMIN_PORT": str(admin_port),
        "MODELPILOT_SERVER_LOG_LEVEL": "warning",
        **{f"MODELPILOT_SERVER_{k.upper()}": v for k, v in extra.items()},
    }
    with running_process(
        ["-m", "modelpilot.modelserver"],
        env,
        log=tmp / f"server-{variant}-{port}.log",
        port=port,
        ready_path="/v2/health/ready",
        admin_port=admin_port,
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def served_iris(
    iris_model: RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proc]:
    with model_server(iris_model, tmp_path_factory.mktemp("server")) as proc:
        yield proc


@dataclass
class RouterProc:
    url: str  # the inference port
    routes_file: Path
    proc: subprocess.Popen[bytes]
    admin: str = ""  # the admin port (/stats, /routes, /metrics)

    def set_routes(self, doc: dict[str, object], *, timeout: float = 5.0) -> float:
        """Write the routes file atomically; return seconds until the router reports the change."""
        import json

        before = httpx.get(self.admin + "/stats").json()["routes_version"]
        tmp = self.routes_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        start = time.monotonic()
        os.replace(tmp, self.routes_file)
        while time.monotonic() - start < timeout:
            if httpx.get(self.admin + "/stats").json()["routes_version"] > before:
                return time.monotonic() - start
            time.sleep(0.01)  # poll interval of a deadline loop
        raise AssertionError(f"routes change not applied within {timeout}s")

    def routes_rejected(self) -> float:
        """`modelpilot_router_routes_rejected_total` as the admin port's /metrics shows it."""
        for line in httpx.get(self.admin + "/metrics").text.splitlines():
            if line.startswith("modelpilot_router_routes_rejected_total"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def routes_doc(
    stable_url: str,
    challenger_url: str,
    *,
    policy: str = "fixed",
    weights: tuple[float, float] = (80, 20),
    posteriors: tuple[dict[str, float], dict[str, float]] = (
        {"alpha": 1, "beta": 1},
        {"alpha": 1, "beta": 1},
    ),
    sticky: str | None = None,
) -> dict[str, object]:
    return {
        "deployment": "iris",
        "stable": "stable",
        "policy": {"type": policy, "epsilon": 0.1, "stickyHeader": sticky},
        "variants": [
            {
                "name": "stable",
                "url": stable_url,
                "weight": weights[0],
                "modelVersion": "1",
                "posterior": posteriors[0],
            },
            {
                "name": "challenger",
                "url": challenger_url,
                "weight": weights[1],
                "modelVersion": "1",
                "posterior": posteriors[1],
            },
        ],
    }


@contextmanager
def router_process(
    doc: dict[str, object] | None,
    tmp: Path,
    *,
    seed: int = 0,
    port: int | None = None,
    admin_port: int | None = None,
    **extra_env: str,
) -> Iterator[RouterProc]:
    """A router reading `doc` from a file; with `doc=None`, `extra_env` names the ConfigMap.

    `port` and `admin_port` (default: free ones) let a test restart a router where a scraper
    expects it.
    """
    import json

    port = port or ports.free_port()
    admin_port = admin_port or ports.free_port()
    routes_file = tmp / "routes.json"
    env = {
        "MODELPILOT_ROUTER_DEPLOYMENT": "iris",
        "MODELPILOT_ROUTER_HOST": "127.0.0.1",
        "MODELPILOT_ROUTER_PORT": str(port),
        "MODELPILOT_ROUTER_ADMIN_PORT": str(admin_port),
        "MODELPILOT_ROUTER_SEED": str(seed),
        "MODELPILOT_ROUTER_LOG_LEVEL": "warning",
        "MODELPILOT_ROUTER_TIMEOUT_SECONDS": "5",
        **extra_env,
    }
    if doc is not None:
        routes_file.write_text(json.dumps(doc))
        env["MODELPILOT_ROUTER_ROUTES_FILE"] = str(routes_file)
    with running_process(
        ["-m", "modelpilot.router"],
        env,
        log=tmp / f"router-{port}.log",
        port=port,
        ready_path="/readyz",
        admin_port=admin_port,
    ) as proc:
        yield RouterProc(url=proc.url, routes_file=routes_file, proc=proc.proc, admin=proc.admin)


@pytest.fixture(scope="module")
def two_servers(
    iris_model: RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Proc, Proc]]:
    tmp = tmp_path_factory.mktemp("servers")
    with (
        model_server(iris_model, tmp, variant="stable") as a,
        model_server(iris_model, tmp, variant="challenger") as b,
    ):
        yield a, b
