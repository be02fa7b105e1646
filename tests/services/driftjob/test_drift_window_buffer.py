"""The model server's `DriftWindow` (issue 15, item 5): buffered inputs reach every read and flush,
and a flush never takes the server down when MLflow does not answer."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from modelpilot.api import windows
from modelpilot.modelserver import window as window_mod
from modelpilot.stats import profile as profile_mod
from modelpilot.testing import ports


def _window() -> window_mod.DriftWindow:
    rng = np.random.default_rng(0)
    reference = profile_mod.build_profile(
        {"a": rng.normal(size=300), "b": rng.normal(size=300)}, rng=rng
    )
    return window_mod.DriftWindow(reference, seed=1)


def _rows(n: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(n)
    return {"a": rng.normal(size=n).tolist(), "b": rng.normal(size=n).tolist()}


def test_buffered_inputs_are_in_every_read_and_every_flush_and_counted_once() -> None:
    window = _window()
    for _ in range(3):
        window.add(_rows(10), 10)  # below BUFFER_ROWS: still buffered
    assert window.current.row_count == 0
    document = windows.parse(
        windows.WindowDocument.model_validate(
            {"model": {"name": "m", "version": "1"}, "window": window.to_dict()}
        ).model_dump_json()
    )
    assert document.window.row_count == 30
    assert document.window.source is not None
    assert document.window.source.epoch == window.epoch
    window.add(_rows(5), 5)
    flushed = window.flush_dict(now=1.0)
    assert flushed["row_count"] == 35
    assert flushed["source"]["sequence"] == 1
    assert window.flush_dict(now=2.0)["source"]["sequence"] == 2
    window.add(_rows(window_mod.BUFFER_ROWS), window_mod.BUFFER_ROWS)  # a full buffer folds itself
    assert window.current.row_count == 35 + window_mod.BUFFER_ROWS


def test_a_flush_to_an_mlflow_that_does_not_answer_is_logged_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    window = _window()
    flusher = window_mod.WindowFlusher(
        window,
        tracking_uri=f"http://127.0.0.1:{ports.free_port()}",  # nothing listens there
        model={"name": "m", "version": "1"},
        run_id="0" * 32,
        namespace="ns",
        deployment="d",
        variant="stable",
        interval=3600,
    )
    window.add(_rows(20), 20)
    with caplog.at_level(logging.WARNING, "modelpilot.modelserver"):
        assert flusher.flush() is False
    assert any("could not flush the drift window" in r.getMessage() for r in caplog.records)
    assert flusher.flushed_updates == 0  # so the next flush tries again
    assert window.to_dict()["row_count"] == 20
