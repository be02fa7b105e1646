"""The drift job on windows collected from two real model-server processes; its gauges pushed to a
real Pushgateway (Debian's `prometheus-pushgateway`, `modelpilot.testing.prometheus`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelpilot.cli import main as cli_main
from modelpilot.registry import client as registry_client
from modelpilot.registry import profiles
from modelpilot.stats import drift as drift_stats
from modelpilot.stats import profile as profile_mod
from modelpilot.testing import prometheus as prom
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
    cli_main.main(svc.drift_run_args(iris_model, [a.admin, b.admin]))
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
        for u in (a.admin, b.admin)
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
    base = svc.drift_run_args(iris_model)
    cli_main.main([*base, "--window-url", a.admin, "--window-url", dead])
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == 1
    assert dead in summary["skipped"]
    with pytest.raises(SystemExit) as info:
        cli_main.main([*base, "--window-url", dead])
    assert info.value.code == 1
    assert "no drift window collected" in capsys.readouterr().err


def _drift_run(model: svc.RegisteredModel, urls: list[str], *extra: str) -> None:
    cli_main.main([*svc.drift_run_args(model, urls, namespace="ml"), *extra])


def _samples(group: dict[str, Any]) -> dict[tuple[str, str | None], tuple[float, dict[str, str]]]:
    """(metric, feature) -> (value, labels) of a Pushgateway group's pushed families (not the
    Pushgateway's own push_time_seconds / push_failure_time_seconds)."""
    out = {}
    for name, family in group.items():
        if name == "labels" or not isinstance(family, dict) or name.startswith("push_"):
            continue
        assert family["type"] == "GAUGE", name
        for metric in family["metrics"]:
            labels = metric["labels"]
            out[(name, labels.get("feature"))] = (float(metric["value"]), labels)
    return out


def test_the_drift_gauges_reach_a_real_pushgateway_and_each_run_replaces_the_group(
    fed_servers: tuple[svc.Proc, svc.Proc, pd.DataFrame],
    iris_model: svc.RegisteredModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import prometheus_client

    a, b, _ = fed_servers
    key = {"job": "modelpilot-drift", "namespace": "ml", "deployment": "iris"}
    features = list(iris_model.features.columns)
    with prom.running_pushgateway(tmp_path) as gateway:
        # What an earlier run left in the group: the PSI of a feature the model no longer has, and
        # a family the job does not push (a POST would keep that one; the job's PUT must not).
        registry = prometheus_client.CollectorRegistry()
        labels = ["namespace", "deployment", "feature"]
        for name in ("modelpilot_drift_psi", "modelpilot_drift_legacy_score"):
            prometheus_client.Gauge(name, name, labels, registry=registry).labels(
                "ml", "iris", "retired_feature"
            ).set(0.7)
        prometheus_client.pushadd_to_gateway(
            gateway.address, job=key["job"], registry=registry, grouping_key=key
        )

        _drift_run(iris_model, [a.admin, b.admin], "--pushgateway", gateway.address)
        first = gateway.group(**key)
        assert first is not None, (gateway.groups(), gateway.log_tail())
        samples = _samples(first)
        assert samples[("modelpilot_drift_drifted_features", None)][0] == 2
        for feature in features:
            value, labels = samples[("modelpilot_drift_psi", feature)]
            assert value >= 0
            assert labels == {**key, "feature": feature, "instance": ""}
            assert 0 <= samples[("modelpilot_drift_ks_pvalue", feature)][0] <= 1
            assert ("modelpilot_drift_ks_statistic", feature) in samples
            assert ("modelpilot_drift_js_distance", feature) in samples
            assert ("modelpilot_drift_null_rate_delta", feature) in samples
        assert samples[("modelpilot_drift_psi", "sepal_length")][0] > 0.2
        assert samples[("modelpilot_drift_psi", "sepal_width")][0] < 0.2
        assert samples[("modelpilot_drift_last_run_timestamp_seconds", None)][0] > 0
        # The push is a PUT: the group now holds this run's series only.
        assert ("modelpilot_drift_psi", "retired_feature") not in samples
        assert not [name for name, _ in samples if name == "modelpilot_drift_legacy_score"]
        assert first["last_push_successful"] is True

        # The next run (one window only, so other values) replaces the group again.
        _drift_run(iris_model, [a.admin], "--pushgateway", gateway.address)
        capsys.readouterr()
        second = gateway.group(**key)
        assert second is not None
        again = _samples(second)
        assert set(again) == set(samples)
        assert (
            again[("modelpilot_drift_psi", "sepal_length")]
            != (samples[("modelpilot_drift_psi", "sepal_length")])
        )
        pushed = [float(g["push_time_seconds"]["metrics"][0]["value"]) for g in (first, second)]
        assert pushed[1] > pushed[0]
        assert [g["labels"] for g in gateway.groups()] == [key]
