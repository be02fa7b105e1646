"""The regret simulator: Thompson against epsilon-greedy and a uniform split, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot import errors
from modelpilot.stats import regret

ARMS = (0.10, 0.15, 0.12)


def _run(policy: regret.Policy, *, batch_size: int = 1) -> regret.RegretResult:
    return regret.simulate(
        arms=ARMS,
        policy=policy,
        rounds=10_000,
        seeds=50,
        batch_size=batch_size,
        epsilon=0.1,
        rng=np.random.default_rng(2024),
    )


def test_thompson_regret_over_50_seeds_beats_epsilon_greedy_and_a_third_of_uniform() -> None:
    thompson = _run("thompson")
    greedy = _run("epsilon-greedy")
    uniform = _run("uniform")
    assert thompson.mean_regret < greedy.mean_regret
    assert thompson.mean_regret < uniform.mean_regret / 3
    assert thompson.best_arm_share > 0.8


def test_uniform_regret_matches_its_closed_form() -> None:
    uniform = _run("uniform")
    expected = regret.uniform_expected_regret(ARMS, 10_000)
    # Pulls are multinomial(10000, 1/3): the regret's sd per seed is about 3; over 50 seeds ~0.45.
    assert uniform.mean_regret == pytest.approx(expected, abs=2.0)
    assert sum(uniform.pulls) == pytest.approx(10_000)


def test_delayed_batched_updates_still_learn_the_best_arm() -> None:
    batched = _run("thompson", batch_size=200)
    assert batched.mean_regret < regret.uniform_expected_regret(ARMS, 10_000) / 3
    assert batched.best_arm_share > 0.75


def test_ucb1_learns_the_best_arm() -> None:
    ucb = _run("ucb1")
    assert ucb.best_arm_share > 0.5
    assert ucb.mean_regret < regret.uniform_expected_regret(ARMS, 10_000)


def test_same_seed_gives_the_same_result() -> None:
    a = regret.simulate(
        arms=ARMS, policy="thompson", rounds=500, seeds=5, rng=np.random.default_rng(1)
    )
    b = regret.simulate(
        arms=ARMS, policy="thompson", rounds=500, seeds=5, rng=np.random.default_rng(1)
    )
    assert a == b


def test_arms_outside_zero_one_are_rejected() -> None:
    with pytest.raises(errors.InputError, match="arms: every rate must be between 0 and 1"):
        regret.simulate(arms=[0.1, 1.5], policy="thompson", rounds=10, rng=np.random.default_rng(0))
