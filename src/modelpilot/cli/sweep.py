"""`modelpilot sweep --config sweep.yaml`: run or resume a hyperparameter sweep on Optuna + MLflow.

Design decision: running the same command again resumes (the study lives in its storage, by default
a SQLite file beside the config), so an interrupted CI job or laptop session loses only the trial
that was running.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelpilot.cli import models as models_cli
from modelpilot.lifecycle import sweep as sweep_mod
from modelpilot.lifecycle import yamlio


@click.command("sweep")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="W&B-style sweep config (YAML).",
)
@click.option(
    "--storage",
    default=None,
    help="Optuna storage URL (default: sqlite:///<config>.optuna.db beside the config).",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=None,
    help="Run at most this many trials now (the total stays capped by run_cap).",
)
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking server (default: $MLFLOW_TRACKING_URI).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@models_cli.registry_failures_are_one_line
def sweep(
    config_path: Path,
    storage: str | None,
    trials: int | None,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Run (or resume) a sweep; each trial is a nested MLflow run and the best run is tagged."""
    config = sweep_mod.parse_config(
        yamlio.load_mapping(config_path, option="--config"), base_dir=config_path.resolve().parent
    )
    result = sweep_mod.run_sweep(
        config=config,
        storage=storage or sweep_mod.default_storage(config_path),
        tracking_uri=tracking_uri,
        max_trials=trials,
    )
    if as_json:
        click.echo(json.dumps(result.__dict__, default=str))
        return
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(result.states.items()))
    click.echo(f"sweep {result.study_name}: ran {result.ran_now} trials now; {states}")
    click.echo(
        f"best {config.metric} = {result.best_value:.6g} in run {result.best_run_id} "
        f"with {json.dumps(result.best_params, sort_keys=True)}"
    )
    click.echo(f"parent run {result.parent_run_id}; storage {result.storage}")
