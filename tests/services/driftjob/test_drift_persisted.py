"""Drift samples survive model-server restarts and rollouts (issue 15, item 5).

Real model-server processes flush their window to the session's real MLflow server (artifacts of
the served version's run); they are stopped with SIGTERM (a rollout, a scale-in: the last flush
runs) or SIGKILL (a crash: what arrived since the last flush is lost, at most one flush interval),
restarted, and the real drift job must still count the samples, each once.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from modelpilot.cli import main as cli_main
from modelpilot.registry import client as registry_client
from modelpilot.registry import windows as stored
from tests.services import conftest as svc
from tests.services.driftjob import test_drift_job as drift_tests

pytestmark = pytest.mark.mlflow

T = TypeVar("T")


def _until(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None and value is not False:
            return value
        time.sleep(0.1)  # poll interval of a deadline loop
    raise AssertionError(f"not within {timeout}s: {what}")


class Deployment:
    """One ModelDeployment's worth of model servers, in a namespace of its own."""

    def __init__(self, model: svc.RegisteredModel, tmp: Path, **settings: str) -> None:
        self.model = model
        self.tmp = tmp
        self.namespace = f"ns-{uuid.uuid4().hex[:8]}"
        self.name = "persist"
        self.settings = {
            "deployment": self.name,
            "namespace": self.namespace,
            "window_flush_seconds": "1",
            **settings,
        }
        client = registry_client.make_client(model.tracking_uri)
        self.client = client
        self.run_id = stored.run_id_of(client, name=model.name, version=model.version)

    def server(self) -> Any:
        return svc.model_server(self.model, self.tmp, **self.settings)

    def files(self) -> list[stored.WindowFile]:
        return stored.list_files(
            self.client, run_id=self.run_id, namespace=self.namespace, deployment=self.name
        )

    def flushed_rows(self) -> dict[str, int]:
        """Rows of each persisted flush, by epoch."""
        out = {}
        for f in self.files():
            try:
                raw = stored.read(self.client, run_id=self.run_id, path=f.path)
            except Exception:  # pruned between the listing and the read
                continue
            out[f.epoch] = int(json.loads(raw)["window"]["row_count"])
        return out

    def drift_run(self, capsys: pytest.CaptureFixture[str], *urls: str) -> dict[str, Any]:
        cli_main.main(
            svc.drift_run_args(self.model, urls, deployment=self.name, namespace=self.namespace)
        )
        out: dict[str, Any] = json.loads(capsys.readouterr().out)
        return out


def _feed(model: svc.RegisteredModel, server: svc.Proc, rows: int, seed: int) -> None:
    drift_tests._feed(server.url, drift_tests._traffic(model.features, rows, seed=seed))
    # The data plane may buffer inputs before they reach the window (up to 512 rows); a read of
    # the window (on the admin port) folds them in, so the rows sent are the rows counted from here.
    assert httpx.get(server.admin + "/drift/window", timeout=30).status_code == 200


def _stop(proc: svc.Proc, sig: signal.Signals) -> int:
    proc.proc.send_signal(sig)
    return proc.proc.wait(timeout=60)


def test_samples_of_a_server_stopped_with_sigterm_count_after_its_restart_and_only_once(
    iris_model: svc.RegisteredModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment = Deployment(iris_model, tmp_path)
    with deployment.server() as first:
        _feed(iris_model, first, 300, seed=11)
        assert _stop(first, signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises it
    # The shutdown flushed everything the process had counted.
    assert list(deployment.flushed_rows().values()) == [300]
    with deployment.server() as second:
        _feed(iris_model, second, 200, seed=12)
        # Wait for the live process's own flush too: it must not be counted beside its live window.
        _until("the restarted server flushed", lambda: 200 in deployment.flushed_rows().values())
        summary = deployment.drift_run(capsys, second.admin)
    assert summary["rows"] == 500
    assert summary["windows"] == 2
    assert summary["persisted"] == 1
    assert summary["skipped"] == {}
    assert len(summary["duplicates"]) == 1  # the live server's flush, beaten by its live window
    assert sorted(summary["driftedFeatures"]) == sorted(drift_tests.SHIFTED)


def test_a_sigkill_loses_at_most_the_traffic_since_the_last_flush(
    iris_model: svc.RegisteredModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment = Deployment(iris_model, tmp_path)
    with deployment.server() as first:
        _feed(iris_model, first, 300, seed=21)
        _until("the first 300 rows flushed", lambda: 300 in deployment.flushed_rows().values())
        _feed(iris_model, first, 100, seed=22)  # may or may not be flushed before the kill
        assert _stop(first, signal.SIGKILL) == -signal.SIGKILL
    (kept,) = deployment.flushed_rows().values()
    assert 300 <= kept <= 400
    with deployment.server() as second:
        _feed(iris_model, second, 200, seed=23)
        summary = deployment.drift_run(capsys, second.admin)
    assert summary["rows"] == kept + 200
    assert summary["persisted"] == 1


def test_with_every_server_gone_the_job_still_reads_their_flushed_windows(
    iris_model: svc.RegisteredModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollout that replaced every pod: no live window answers, the flushes still count."""
    deployment = Deployment(iris_model, tmp_path)
    for seed in (31, 32):
        with deployment.server() as server:
            _feed(iris_model, server, 150, seed=seed)
            assert _stop(server, signal.SIGTERM) in (0, -signal.SIGTERM)
    from modelpilot.testing import ports

    gone = f"http://127.0.0.1:{ports.free_port()}"  # what the pod list had: nothing answers
    summary = deployment.drift_run(capsys, gone)
    assert summary["skipped"][gone].startswith("unreachable:")
    assert summary["rows"] == 300
    assert summary["windows"] == 2
    assert summary["persisted"] == 2


def test_the_store_keeps_one_flush_per_process_and_prunes_flushes_past_the_horizon(
    iris_model: svc.RegisteredModel, tmp_path: Path
) -> None:
    # Window period 2 s, so flushes older than 2 x 2 s + 2 x 0.5 s are past the horizon.
    deployment = Deployment(iris_model, tmp_path, window_seconds="2", window_flush_seconds="0.5")
    with deployment.server() as first:
        sequence = -1
        for i in range(3):
            _feed(iris_model, first, 50, seed=40 + i)

            def one_newer_flush(after: int = sequence) -> int | None:
                # Each flush replaces the process's previous one: one file, a higher sequence.
                files = deployment.files()
                if len(files) == 1 and files[0].sequence > after:
                    return files[0].sequence
                return None

            sequence = _until(f"flush {i + 1} replacing the one before", one_newer_flush)
        first_epoch = deployment.files()[0].epoch
        assert _stop(first, signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises it
    with deployment.server() as second:

        def pruned() -> bool:
            _feed(iris_model, second, 5, seed=49)  # traffic, so the new process flushes
            return {f.epoch for f in deployment.files()} - {first_epoch} != set() and all(
                f.epoch != first_epoch for f in deployment.files()
            )

        _until("the dead process's flush pruned", pruned, timeout=60)
    assert len(deployment.files()) == 1
