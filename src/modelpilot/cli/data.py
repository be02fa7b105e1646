"""`modelpilot data validate`: check a data file against a YAML schema or a reference profile.

Design decision: the same check records as the model gate, so a CI job gets the same table, JUnit
XML and exit codes (0 pass, 1 fail, 2 bad input) from both steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from modelpilot import errors
from modelpilot.cli import checkreport
from modelpilot.cli import models as models_cli
from modelpilot.lifecycle import datavalidate, yamlio
from modelpilot.registry import client as registry_client
from modelpilot.registry import profiles
from modelpilot.stats import profile as profile_mod


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise errors.InputError(f"--data: cannot read {path}: {exc}") from exc


def _load_profile(ref: str, tracking_uri: str | None) -> profile_mod.ReferenceProfile:
    if ref.startswith("models:/"):
        name, _, version = ref.removeprefix("models:/").partition("/")
        if not name or not version.isdigit():
            raise errors.InputError(f"--profile: {ref!r} must be models:/NAME/VERSION or a file")
        c = registry_client.make_client(tracking_uri)
        return profiles.load_reference_profile(c, name=name, version=version)
    try:
        data = json.loads(Path(ref).read_text())
    except OSError as exc:
        raise errors.InputError(f"--profile: cannot read {ref}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise errors.InputError(
            f"--profile: {ref} is not JSON: {exc.msg} at line {exc.lineno}"
        ) from exc
    return profile_mod.ReferenceProfile.from_dict(data)


@click.group("data")
def data() -> None:
    """Data checks for training and CI."""


@data.command("validate")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV (or Parquet) file to check.",
)
@click.option(
    "--schema",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML schema: rows, columns (type, min, max, max_missing, categories).",
)
@click.option(
    "--profile",
    "profile_ref",
    default=None,
    help="Reference profile: a JSON file or models:/NAME/VERSION.",
)
@click.option(
    "--min-rows",
    type=click.IntRange(min=0),
    default=None,
    help="With --profile: the minimum row count.",
)
@checkreport.junit_option
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking server, for --profile models:/...",
)
@models_cli.registry_failures_are_one_line
def validate(
    data_path: Path,
    schema: Path | None,
    profile_ref: str | None,
    min_rows: int | None,
    junit: Path | None,
    tracking_uri: str | None,
) -> None:
    """Validate DATA against --schema or --profile (exactly one)."""
    if schema is not None and profile_ref is None:
        parsed = datavalidate.parse_schema(yamlio.load_mapping(schema, option="--schema"))
        found = datavalidate.validate(_read(data_path), parsed)
    elif profile_ref is not None and schema is None:
        reference = _load_profile(profile_ref, tracking_uri)
        found = datavalidate.validate_against_profile(
            _read(data_path), reference, min_rows=min_rows
        )
    else:
        raise click.UsageError("give exactly one of --schema or --profile")
    checkreport.report(
        found,
        junit=junit,
        suite=f"modelpilot.data {data_path.name}",
        failure=f"data validation failed for {data_path}",
    )
