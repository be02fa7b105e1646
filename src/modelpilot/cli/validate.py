"""`modelpilot validate`: the CI gate. Thresholds on a candidate model; exit 0 pass, 1 fail, 2 bad
input.

Design decision: every threshold is checked and reported (table and JUnit XML) before deciding, so a
failing CI job shows all that is wrong at once; the failure is `errors.CheckFailed`, which the CLI
turns into exit code 1 with one line naming the failed thresholds.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelpilot.cli import checkreport
from modelpilot.cli import models as models_cli
from modelpilot.lifecycle import gate, yamlio


@click.command("validate")
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN/PATH.",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV with the features and the label column named in the config.",
)
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="validation.yaml: target, thresholds, regression, latency.",
)
@click.option(
    "--name",
    "registered_name",
    default=None,
    help="Registered model to compare against when --model is a runs:/ URI.",
)
@checkreport.junit_option
@models_cli.tracking_uri_option
@models_cli.registry_failures_are_one_line
def validate(
    model_uri: str,
    data: Path,
    config_path: Path,
    registered_name: str | None,
    junit: Path | None,
    tracking_uri: str | None,
) -> None:
    """Score MODEL on DATA against the thresholds of CONFIG (and against the champion)."""
    config = gate.parse_config(yamlio.load_mapping(config_path, option="--config"))
    found, _ = gate.run(
        model_uri=model_uri,
        data=data,
        config=config,
        tracking_uri=tracking_uri,
        registered_name=registered_name,
    )
    checkreport.report(
        found,
        junit=junit,
        suite=f"modelpilot.validate {model_uri}",
        failure=f"gate failed for {model_uri}",
    )
