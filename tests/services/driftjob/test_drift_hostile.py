"""The drift job against hostile and broken pods (issue 15, item 4).

One real model server (fed real traffic) stands for the healthy pods; small HTTP servers on
loopback ports (`http.server`, real sockets, each in its own thread) stand for the bad ones: deep
JSON, garbage, a 500, a pod that never answers or drips its answer, a huge body, and windows that
are well-formed JSON but wrong (negative rows, NaN counts, mismatched shapes and features). The job
must skip each bad pod with a warning naming it and the field, count it by reason in the pushed
gauge, use the good window, count a window once however it is listed, and never end in a traceback.
"""

from __future__ import annotations

import copy
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from modelpilot.cli import main as cli_main
from modelpilot.testing import prometheus as prom
from tests.services import conftest as svc
from tests.services.driftjob import test_drift_job as drift_tests

pytestmark = pytest.mark.mlflow

ROWS = 400

Behaviour = Callable[[http.server.BaseHTTPRequestHandler, threading.Event], None]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour
    stop: threading.Event


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.behaviour(self, self.server.stop)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def hostile(behaviour: Behaviour) -> Iterator[str]:
    """A loopback HTTP server answering every GET with `behaviour`; yields its base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = behaviour
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


def answer(body: bytes, *, status: int = 200, length: bool = True) -> Behaviour:
    def behave(h: http.server.BaseHTTPRequestHandler, _: threading.Event) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        if length:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return behave


def never_answer(h: http.server.BaseHTTPRequestHandler, stop: threading.Event) -> None:
    stop.wait(60)


def drip(h: http.server.BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Headers at once, then one byte every 0.2 s: each read is quick, the whole never ends."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.end_headers()
    h.wfile.write(b"{")
    while not stop.wait(0.2):
        try:
            h.wfile.write(b" ")
            h.wfile.flush()
        except OSError:
            return


def endless(h: http.server.BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A 200 without Content-Length that streams spaces until the client hangs up."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.end_headers()
    chunk = b" " * 65536
    while not stop.is_set():
        try:
            h.wfile.write(chunk)
        except OSError:
            return


@pytest.fixture(scope="module")
def good(
    iris_model: svc.RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A real model server fed ROWS shifted rows: its admin URL and its live window document."""
    with svc.model_server(iris_model, tmp_path_factory.mktemp("good")) as server:
        drift_tests._feed(server.url, drift_tests._traffic(iris_model.features, ROWS, seed=7))
        yield server.admin, httpx.get(server.admin + "/drift/window").json()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prom.Pushgateway]:
    with prom.running_pushgateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


def run_job(
    model: svc.RegisteredModel,
    urls: list[str],
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> dict[str, Any]:
    cli_main.main([*svc.drift_run_args(model, urls, namespace="hostile"), "--timeout", "2", *extra])
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def skipped_gauge(gateway: prom.Pushgateway) -> dict[str, float]:
    group = gateway.group(job="modelpilot-drift", namespace="hostile", deployment="iris")
    assert group is not None, gateway.groups()
    family = group["modelpilot_drift_windows_skipped"]
    return {m["labels"]["reason"]: float(m["value"]) for m in family["metrics"]}


def _nested(depth: int) -> bytes:
    return b'{"window": ' + b"[" * depth + b"]" * depth + b"}"


BAD_PODS: dict[str, tuple[Behaviour, str]] = {
    "nested_10000_deep": (answer(_nested(10_000)), "invalid"),
    "garbage": (answer(b"\x00\xff<html>not json"), "invalid"),
    "http_500": (answer(b'{"error": "boom"}', status=500), "http_status"),
    "never_answers": (never_answer, "timeout"),
    "drips_forever": (drip, "timeout"),
    "huge_declared": (answer(b"[" + b" " * (2 * 1024 * 1024) + b"]"), "too_large"),
    "huge_streamed": (endless, "too_large"),
}


@pytest.mark.parametrize("kind", sorted(BAD_PODS))
def test_a_bad_pod_is_skipped_with_a_warning_and_a_metric_and_the_good_window_is_used(
    kind: str,
    good: tuple[str, dict[str, Any]],
    iris_model: svc.RegisteredModel,
    gateway: prom.Pushgateway,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    behaviour, reason = BAD_PODS[kind]
    good_url, _ = good
    with hostile(behaviour) as bad_url, caplog.at_level(logging.WARNING, "modelpilot.driftjob"):
        summary = run_job(
            iris_model,
            [bad_url, good_url],
            capsys,
            "--max-window-bytes",
            str(1024 * 1024),
            "--pushgateway",
            gateway.address,
        )
    assert summary["windows"] == 1
    assert summary["rows"] == ROWS
    assert summary["sources"] == [good_url]
    assert summary["skipped"][bad_url].startswith(reason + ":"), summary["skipped"]
    assert sorted(summary["driftedFeatures"]) == sorted(drift_tests.SHIFTED)
    assert any(bad_url in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    gauge = skipped_gauge(gateway)
    assert gauge[reason] == 1
    assert sum(gauge.values()) == 1


def _mutated(document: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = copy.deepcopy(document)
    change(doc["window"])
    return json.dumps(doc).encode()  # allow_nan: NaN is written as the bare token NaN


def _negative_rows(w: dict[str, Any]) -> None:
    w["row_count"] = -5


def _nan_count(w: dict[str, Any]) -> None:
    w["columns"]["sepal_length"]["counts"][0] = float("nan")


def _short_keys(w: dict[str, Any]) -> None:
    w["columns"]["sepal_width"]["keys"] = w["columns"]["sepal_width"]["keys"][:-1]


def _counts_do_not_add_up(w: dict[str, Any]) -> None:
    w["row_count"] = 10**9


def _missing_feature(w: dict[str, Any]) -> None:
    del w["columns"]["petal_width"]


def _bool_rows(w: dict[str, Any]) -> None:
    w["row_count"] = True


INVALID_WINDOWS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "negative_rows": (_negative_rows, "window.row_count"),
    "nan_count": (_nan_count, "window.columns.sepal_length.counts.0"),
    "sample_and_keys_of_different_lengths": (_short_keys, "columns.sepal_width: "),
    "counts_that_do_not_add_up_to_the_rows": (_counts_do_not_add_up, "columns.sepal_length: "),
    "a_feature_missing": (_missing_feature, "missing petal_width"),
    "a_boolean_row_count": (_bool_rows, "window.row_count"),
}


@pytest.mark.parametrize("kind", sorted(INVALID_WINDOWS))
def test_a_malformed_window_is_refused_with_a_message_naming_the_pod_and_the_field(
    kind: str,
    good: tuple[str, dict[str, Any]],
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    change, field = INVALID_WINDOWS[kind]
    good_url, document = good
    with hostile(answer(_mutated(document, change))) as bad_url:
        summary = run_job(iris_model, [good_url, bad_url], capsys)
    assert summary["windows"] == 1
    assert summary["rows"] == ROWS
    message = summary["skipped"][bad_url]
    assert message.startswith("invalid:"), message
    assert field in message, message


def test_an_unchanged_copy_of_a_valid_window_served_elsewhere_is_counted_once(
    good: tuple[str, dict[str, Any]],
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The control of the test above: the copy itself is valid, and it is the same process's."""
    good_url, document = good
    with hostile(answer(json.dumps(document).encode())) as copy_url:
        summary = run_job(iris_model, [good_url, copy_url], capsys)
    assert summary["skipped"] == {}
    assert summary["windows"] == 1
    assert summary["rows"] == ROWS
    assert summary["duplicates"] == {copy_url: good_url}


def test_the_same_window_url_listed_twice_is_counted_once(
    good: tuple[str, dict[str, Any]],
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_url, _ = good
    summary = run_job(iris_model, [good_url, good_url, good_url + "/"], capsys)
    assert summary["windows"] == 1
    assert summary["rows"] == ROWS
    assert summary["sources"] == [good_url]


def test_the_same_pod_reached_through_two_addresses_is_counted_once(
    good: tuple[str, dict[str, Any]],
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_url, _ = good
    other = good_url.replace("127.0.0.1", "localhost")
    summary = run_job(iris_model, [good_url, other], capsys)
    assert summary["skipped"] == {}
    assert summary["windows"] == 1
    assert summary["rows"] == ROWS
    assert summary["duplicates"] == {other: good_url}


def _cli(model: svc.RegisteredModel, *args: str) -> subprocess.CompletedProcess[str]:
    """`modelpilot drift run` as its own process, as the CronJob runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "modelpilot.cli.main",
            "drift",
            "run",
            "--deployment",
            "iris",
            "--no-status",
            "--model",
            f"{model.name}/{model.version}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "MLFLOW_TRACKING_URI": model.tracking_uri},
    )


def test_when_every_pod_is_bad_the_job_exits_1_naming_each_pod_without_a_traceback(
    iris_model: svc.RegisteredModel,
) -> None:
    with (
        hostile(answer(_nested(10_000))) as nested,
        hostile(answer(b"garbage")) as garbage,
        hostile(answer(b"x", status=500)) as failing,
    ):
        done = _cli(
            iris_model, "--window-url", nested, "--window-url", garbage, "--window-url", failing
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("modelpilot: no drift window collected from 3 model server(s)")
    for url in (nested, garbage, failing):
        assert url in last


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--window-url", "ftp://10.0.0.1/x"], "--window-url"),
        (["--window-url", "http://[::1"], "--window-url"),
        (["--window-url", "http://127.0.0.1:99999"], "--window-url"),
        (["--window-url", "not a url"], "--window-url"),
        (["--window-url", "http://127.0.0.1:1", "--timeout", "-1"], "--timeout"),
        (["--window-url", "http://127.0.0.1:1", "--max-window-bytes", "x"], "--max-window-bytes"),
    ],
)
def test_bad_flags_exit_2_with_one_line_naming_the_flag(
    args: list[str], named: str, iris_model: svc.RegisteredModel
) -> None:
    done = _cli(iris_model, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert named in done.stderr
