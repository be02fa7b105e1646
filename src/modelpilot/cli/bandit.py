"""`modelpilot bandit simulate`: compare bandit policies by simulated regret.

Translates flags into `modelpilot.stats.regret.simulate`; a table by default, `--json` for scripts
(keys mean_regret, regret_std, pulls, best_arm_share plus the settings). The one design decision:
the simulation is seeded (`--seed`), so a number quoted in a design review can be reproduced.
"""

from __future__ import annotations

import click
import numpy as np

from modelpilot.cli import stats as stats_cli
from modelpilot.stats import regret


@click.group("bandit")
def bandit() -> None:
    """Bandit policies: simulate regret."""


@bandit.command("simulate")
@click.option("--arms", required=True, help="True conversion rate per arm, e.g. 0.10,0.15,0.12.")
@click.option(
    "--policy",
    type=click.Choice(list(regret.POLICIES)),
    default="thompson",
    show_default=True,
)
@click.option("--rounds", type=int, default=10_000, show_default=True)
@click.option("--epsilon", type=float, default=0.1, show_default=True, help="For epsilon-greedy.")
@click.option("--seeds", type=int, default=50, show_default=True, help="Independent runs.")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Requests per update.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def simulate(
    *,
    arms: str,
    policy: str,
    rounds: int,
    epsilon: float,
    seeds: int,
    batch_size: int,
    seed: int,
    as_json: bool,
) -> None:
    """Mean regret of a policy over seeded simulations."""
    rates = stats_cli.parse_numbers("--arms", arms)
    chosen: regret.Policy = next(p for p in regret.POLICIES if p == policy)
    result = regret.simulate(
        arms=rates,
        policy=chosen,
        rounds=rounds,
        seeds=seeds,
        batch_size=batch_size,
        epsilon=epsilon,
        rng=np.random.default_rng(seed),
    )
    data = result.to_dict()
    data["uniform_regret"] = regret.uniform_expected_regret(rates, rounds)
    stats_cli.emit(f"{policy} regret after {rounds} rounds", data, as_json=as_json)
