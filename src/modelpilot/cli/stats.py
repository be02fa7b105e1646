"""`modelpilot stats`: sample size, A/B test and sample-ratio-mismatch check from the command line.

Translates flags into calls of `modelpilot.stats.abtest` and prints a table (rich) or, with
`--json`, one JSON object whose keys are the result's fields. The one design decision: the
statistics module validates every value (rates, MDE, counts), so the messages are the same here as
in the operator; this module only parses the "SUCCESSES/TRIALS" and comma-list formats.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
import rich.console
import rich.table

from modelpilot import errors
from modelpilot.stats import abtest


def emit(title: str, data: Mapping[str, Any], *, as_json: bool) -> None:
    """Print a result as JSON or as a two-column table."""
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    table = rich.table.Table(title=title, show_header=True)
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in data.items():
        table.add_row(key, format_value(value))
    rich.console.Console().print(table)


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def parse_fraction(flag: str, text: str) -> tuple[int, int]:
    successes, sep, trials = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return int(successes), int(trials)
    except ValueError:
        raise errors.InputError(
            f"{flag}: expected SUCCESSES/TRIALS such as 100/1000, got {text!r}"
        ) from None


def parse_numbers(flag: str, text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise errors.InputError(
            f"{flag}: expected comma-separated numbers such as 5000,5200, got {text!r}"
        ) from None
    return values


@click.group("stats")
def stats() -> None:
    """A/B test statistics: sample size, two-proportion z-test, sample-ratio mismatch."""


@stats.command("sample-size")
@click.option(
    "--baseline-rate", type=float, required=True, help="Control conversion rate, in (0, 1)."
)
@click.option("--mde", type=float, required=True, help="Minimum detectable effect (> 0).")
@click.option("--relative", is_flag=True, help="The MDE is relative to the baseline (0.2 = +20%).")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Two-sided level.")
@click.option("--power", type=float, default=0.8, show_default=True)
@click.option("--ratio", type=float, default=1.0, show_default=True, help="Treatment/control size.")
@click.option(
    "--method",
    type=click.Choice(list(abtest.METHODS)),
    default="unpooled",
    show_default=True,
    help=(
        "unpooled: null variance from the baseline, alternative from each arm's rate; matches "
        "Evan Miller's calculator (3,623/arm for 10%->12%). pooled: the textbook formula with the "
        "average rate in both terms, as in the seed guide (3,843). arcsine: Cohen's h with the "
        "far tail; matches statsmodels NormalIndPower and G*Power (3,835)."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sample_size(
    *,
    baseline_rate: float,
    mde: float,
    relative: bool,
    alpha: float,
    power: float,
    ratio: float,
    method: str,
    as_json: bool,
) -> None:
    """Sample size per variant for a two-sided two-proportion test.

    \b
    The three --method values answer the same question with different variance terms:
      unpooled  the default; null variance from the baseline rate in both arms, alternative
                variance from each arm's own rate (Evan Miller's calculator)
      pooled    the average rate in both terms (the textbook formula of many guides,
                including the one this project grew from); a little larger below 50%
      arcsine   Cohen's effect size h, power solved with both tails (statsmodels
                NormalIndPower, G*Power)
    For 10% -> 12% at alpha 0.05 and power 0.8: 3,623 / 3,843 / 3,835 per variant
    (pooled: 3,842.03 before rounding up).
    """
    result = abtest.sample_size(
        baseline_rate=baseline_rate,
        mde=mde,
        relative=relative,
        alpha=alpha,
        power=power,
        ratio=ratio,
        method=next(m for m in abtest.METHODS if m == method),
    )
    emit("sample size per variant", result.to_dict(), as_json=as_json)


@stats.command("ab-test")
@click.option("--control", required=True, help="Control SUCCESSES/TRIALS, e.g. 100/1000.")
@click.option("--treatment", required=True, help="Treatment SUCCESSES/TRIALS, e.g. 130/1000.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ab_test(*, control: str, treatment: str, alpha: float, as_json: bool) -> None:
    """Two-proportion z-test with lift and the confidence interval of the difference."""
    cs, cn = parse_fraction("--control", control)
    ts, tn = parse_fraction("--treatment", treatment)
    result = abtest.two_proportion_ztest(
        control_successes=cs,
        control_total=cn,
        treatment_successes=ts,
        treatment_total=tn,
        alpha=alpha,
    )
    emit("two-proportion z-test (treatment - control)", result.to_dict(), as_json=as_json)


@stats.command("srm")
@click.option("--counts", required=True, help="Observed units per variant, e.g. 5000,5200.")
@click.option("--ratios", default=None, help="Planned allocation, e.g. 1,1 (default: equal).")
@click.option(
    "--threshold", type=float, default=0.001, show_default=True, help="Flag mismatch below this p."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def srm(*, counts: str, ratios: str | None, threshold: float, as_json: bool) -> None:
    """Sample-ratio-mismatch chi-square test."""
    c = parse_numbers("--counts", counts)
    r = parse_numbers("--ratios", ratios) if ratios is not None else None
    if r is not None and len(r) != len(c):
        raise errors.InputError(
            f"--ratios: {len(r)} ratios for {len(c)} counts; give one ratio per count"
        )
    result = abtest.srm_test(c, r, threshold=threshold)
    emit("sample-ratio mismatch", result.to_dict(), as_json=as_json)
