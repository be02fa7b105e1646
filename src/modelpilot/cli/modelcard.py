"""`modelpilot model-card`: write the model card of a registered version (Markdown + JSON + PNGs).

Design decision: the card is computed from the registry alone (the version, its run and the test
split the run logged), so anyone can write it for any version after the fact.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelpilot.cli import models as models_cli
from modelpilot.lifecycle import card, card_writer, yamlio


@click.command("model-card")
@click.option("--name", required=True, help="Registered model name.")
@click.option("--version", required=True, help="Model version.")
@click.option(
    "--intended-use",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML: primary_uses, primary_users, out_of_scope, limitations, "
    "ethical_considerations, license.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("model_card"),
    show_default=True,
    help="Directory for model_card.md, model_card.json and the PNGs.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=100, max=100_000),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the confidence intervals.",
)
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking server (default: $MLFLOW_TRACKING_URI).",
)
@models_cli.registry_failures_are_one_line
def model_card(
    name: str,
    version: str,
    intended_use: Path | None,
    out: Path,
    resamples: int,
    tracking_uri: str | None,
) -> None:
    """Write the model card of NAME version VERSION and log it to the version's run."""
    use = card.parse_intended_use(
        yamlio.load_mapping(intended_use, option="--intended-use") if intended_use else None
    )
    written = card_writer.write_card(
        tracking_uri=tracking_uri,
        name=name,
        version=version,
        intended_use=use,
        out=out,
        n_resamples=resamples,
    )
    click.echo(f"wrote {written.markdown} and {written.json}")
    for plot in written.plots:
        click.echo(f"wrote {plot}")
