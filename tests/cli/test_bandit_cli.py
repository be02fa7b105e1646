"""`modelpilot bandit simulate` through the real entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelpilot.stats import regret
from tests.cli.conftest import run


def test_simulate_json_has_the_documented_keys_and_equals_the_library(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        [
            "bandit",
            "simulate",
            "--arms",
            "0.10,0.15,0.12",
            "--policy",
            "thompson",
            "--rounds",
            "2000",
            "--seeds",
            "10",
            "--seed",
            "3",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert {"mean_regret", "regret_std", "pulls", "best_arm_share"} <= set(data)
    expected = regret.simulate(
        arms=[0.10, 0.15, 0.12],
        policy="thompson",
        rounds=2000,
        seeds=10,
        rng=np.random.default_rng(3),
    )
    assert data["mean_regret"] == expected.mean_regret
    assert data["pulls"] == expected.pulls


@pytest.mark.parametrize("policy", ["epsilon-greedy", "ucb1", "uniform"])
def test_every_policy_runs_from_the_command_line(
    policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        [
            "bandit",
            "simulate",
            "--arms",
            "0.1,0.2",
            "--policy",
            policy,
            "--rounds",
            "300",
            "--seeds",
            "3",
            "--batch-size",
            "10",
        ],
        capsys,
    )
    assert code == 0
    assert "mean_regret" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arms", "0.1,1.2"], "arms: every rate must be between 0 and 1"),
        (["--arms", "0.1"], "arms: need at least two arm rates"),
        (["--arms", "0.1,x"], "--arms: expected comma-separated numbers"),
        (["--arms", "0.1,0.2", "--policy", "greedy"], "Invalid value for '--policy'"),
        (["--arms", "0.1,0.2", "--rounds", "0"], "rounds must be at least 1"),
        (["--arms", "0.1,0.2", "--epsilon", "2"], "epsilon must be in [0, 1]"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["bandit", "simulate", *args], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err
