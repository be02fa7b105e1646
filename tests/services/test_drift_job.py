"""The drift job on windows collected from two real model-server processes."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from modelpilot.cli import main as cli_main
from modelpilot.registry import client as registry_client
from modelpilot.registry import profiles
from modelpilot.stats import drift as drift_stats
from modelpilot.stats import profile as profile_mod
from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow

SHIFTED = ("sepal_length", "petal_width")


def _traffic(reference: pd.DataFrame, rows: int, *, seed: int) -> pd.DataFrame:
    """Rows resampled from the reference, with two of the four features moved by +1.5 cm."""
    rng = np.random.default_rng(seed)
    sample = reference.iloc[rng.integers(0, len(reference), rows)].reset_index(drop=True)
    for column in SHIFTED:
        sample[column] = sample[column] + 1.5
    return sample


def _feed(url: str, frame: pd.DataFrame, batch: int = 50) -> None:
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(frame), batch):
            rows = frame.iloc[start : start + batch].to_dict(orient="records")
            assert client.post(url + "/predict", json={"instances": rows}).status_code == 200


@pytest.fixture(scope="module")
def fed_servers(
    two_servers: tuple[svc.Proc, svc.Proc], iris_model: svc.RegisteredModel
) -> tuple[svc.Proc, svc.Proc, pd.DataFrame]:
    a, b = two_servers
    first = _traffic(iris_model.features, 600, seed=1)
    second = _traffic(iris_model.features, 400, seed=2)
    _feed(a.url, first)
    _feed(b.url, second)
    return a, b, pd.concat([first, second], ignore_index=True)


def test_the_drift_job_flags_exactly_the_two_shifted_features(
    fed_servers: tuple[svc.Proc, svc.Proc, pd.DataFrame],
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b, _ = fed_servers
    cli_main.main(
        [
            "drift",
            "run",
            "--deployment",
            "iris",
            "--no-status",
            "--model",
            f"{iris_model.name}/{iris_model.version}",
            "--tracking-uri",
            iris_model.tracking_uri,
            "--window-url",
            a.url,
            "--window-url",
            b.url,
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert sorted(summary["driftedFeatures"]) == sorted(SHIFTED)
    assert summary["windows"] == 2
    assert summary["skipped"] == {}
    assert summary["rows"] == 1_000


def test_the_merged_windows_give_the_same_result_as_the_concatenated_data(
    fed_servers: tuple[svc.Proc, svc.Proc, pd.DataFrame], iris_model: svc.RegisteredModel
) -> None:
    a, b, sent = fed_servers
    client = registry_client.make_client(iris_model.tracking_uri)
    reference = profiles.load_reference_profile(
        client, name=iris_model.name, version=iris_model.version
    )
    windows = [
        profile_mod.WindowSketch.from_dict(httpx.get(u + "/drift/window").json()["window"])
        for u in (a.url, b.url)
    ]
    merged = profile_mod.merge_all(windows)
    # The servers are this module's own and answered exactly the rows sent above.
    assert merged.row_count == len(sent)
    assert merged.row_count <= merged.reservoir_size  # so the samples hold every row
    all_rows = {name: sent[name].to_numpy() for name in reference.feature_names}
    one = profile_mod.WindowSketch.empty(reference, reservoir_size=merged.reservoir_size, seed=5)
    one.update(all_rows)
    from_merge = drift_stats.compare(reference, merged)
    from_concat = drift_stats.compare(reference, one)
    for f_merge, f_concat in zip(from_merge.features, from_concat.features, strict=True):
        assert f_merge.name == f_concat.name
        assert f_merge.psi == pytest.approx(f_concat.psi, abs=1e-12)
        assert f_merge.ks_statistic == pytest.approx(f_concat.ks_statistic, abs=1e-12)
        assert f_merge.ks_pvalue == pytest.approx(f_concat.ks_pvalue, rel=1e-9)
        assert f_merge.js_distance == pytest.approx(f_concat.js_distance, abs=1e-12)
    assert from_merge.drifted_features == from_concat.drifted_features


def test_a_window_that_cannot_be_reached_is_skipped_and_no_window_at_all_exits_1(
    fed_servers: tuple[svc.Proc, svc.Proc, pd.DataFrame],
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from modelpilot.testing import ports

    a, _, _ = fed_servers
    dead = f"http://127.0.0.1:{ports.free_port()}"
    base = [
        "drift",
        "run",
        "--deployment",
        "iris",
        "--no-status",
        "--model",
        f"{iris_model.name}/{iris_model.version}",
        "--tracking-uri",
        iris_model.tracking_uri,
    ]
    cli_main.main([*base, "--window-url", a.url, "--window-url", dead])
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == 1
    assert dead in summary["skipped"]
    with pytest.raises(SystemExit) as info:
        cli_main.main([*base, "--window-url", dead])
    assert info.value.code == 1
    assert "no drift window collected" in capsys.readouterr().err


def test_the_drift_gauges_are_pushed_with_the_documented_names_and_labels(
    fed_servers: tuple[svc.Proc, svc.Proc, pd.DataFrame],
    iris_model: svc.RegisteredModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A stand-in for the Pushgateway: a real loopback HTTP server that records what is pushed
    # (the Pushgateway itself is a Go binary this tier does not build). It checks the request the
    # drift job sends, not the Pushgateway's own behaviour.
    import http.server
    import threading

    import prometheus_client.parser

    received: list[tuple[str, str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        a, b, _ = fed_servers
        cli_main.main(
            [
                "drift",
                "run",
                "--deployment",
                "iris",
                "--namespace",
                "ml",
                "--no-status",
                "--model",
                f"{iris_model.name}/{iris_model.version}",
                "--tracking-uri",
                iris_model.tracking_uri,
                "--window-url",
                a.url,
                "--window-url",
                b.url,
                "--pushgateway",
                f"127.0.0.1:{server.server_address[1]}",
            ]
        )
        capsys.readouterr()
    finally:
        server.shutdown()
        server.server_close()
    assert len(received) == 1
    method, path, body = received[0]
    assert method == "PUT"
    # /metrics/job/<job>/<label>/<value>/...: the grouping key, in any order.
    parts = path.removeprefix("/metrics/").split("/")
    assert dict(zip(parts[::2], parts[1::2], strict=True)) == {
        "job": "modelpilot-drift",
        "namespace": "ml",
        "deployment": "iris",
    }
    samples = {
        (s.name, s.labels.get("feature")): s.value
        for family in prometheus_client.parser.text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("modelpilot_drift_drifted_features", None)] == 2
    for feature in iris_model.features.columns:
        assert samples[("modelpilot_drift_psi", feature)] >= 0
        assert ("modelpilot_drift_ks_pvalue", feature) in samples
    assert samples[("modelpilot_drift_psi", "sepal_length")] > 0.2
