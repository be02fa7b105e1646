"""How a checking command ends: the table, JUnit XML if asked, and the exit code.

Shared by `modelpilot validate` (the model gate) and `modelpilot data validate`, so a CI job gets
the same table, JUnit XML and exit codes (0 pass, 1 fail, 2 bad input) from both steps. A failure
is `errors.CheckFailed`, which the CLI turns into exit code 1 with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from modelpilot import errors
from modelpilot.lifecycle import checks

junit_option = click.option(
    "--junit",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the result as JUnit XML here.",
)


def report(found: Sequence[checks.Check], *, junit: Path | None, suite: str, failure: str) -> None:
    """Print `found` as a table, write it to `junit` as `suite`; raise CheckFailed if one failed.

    `failure` begins the CheckFailed message; the summary of the failed checks follows it.
    """
    click.echo(checks.render_table(found))
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(checks.build_junit(found, suite=suite))
    if checks.failed(found):
        raise errors.CheckFailed(f"{failure}: {checks.summary(found)}")
