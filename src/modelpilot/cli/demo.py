"""`modelpilot demo`: the platform's main loop, run locally; `demo report` rebuilds its report.

Translates options only; the flow lives in `modelpilot.demo.flow`. The one design decision: the exit
status tells the truth. 0 only when every step ran (challenger promoted, drift flagged); 1 when a
step failed or is still pending (a piece of the platform not yet in the tree), with the list; 130 on
Ctrl-C. The report is written in every case.

The demo itself (`modelpilot.demo`) is a development tool: it ships in the `modelpilot-dev`
distribution (`dev/` in the repository, installed by `make venv`), not in the product's wheel or
images. Without it, this command says so instead of failing with a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelpilot import errors

DEV_HINT = (
    "the demo is part of the development distribution modelpilot-dev (dev/ in the repository), "
    "which is not installed here: run `make venv` in a checkout, or `pip install -e dev`"
)


def _check_dev_installed(exc: ModuleNotFoundError) -> None:
    """After a failed import of the demo: an InputError saying how to install the dev
    distribution when that is what is missing; nothing otherwise (the caller re-raises: a bug)."""
    if exc.name == "modelpilot.demo" or (exc.name or "").startswith("modelpilot.demo."):
        raise errors.InputError(DEV_HINT) from exc


def _default_repo() -> Path:
    """The checkout this package runs from (it holds `manifests/`), else the current directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "manifests").is_dir() and (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


@click.group(name="demo", invoke_without_command=True)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="State folder (MLflow store, logs, report); reused by a second run.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of data and users.")
@click.option(
    "--rate",
    type=click.FloatRange(min=1, max=500),
    default=40.0,
    show_default=True,
    help="Simulated requests per second.",
)
@click.option(
    "--timeout",
    "experiment_timeout",
    type=click.FloatRange(min=10),
    default=240.0,
    show_default=True,
    help="Seconds to wait for the experiment to decide.",
)
@click.option("--plain", is_flag=True, help="Plain log lines even on a terminal.")
@click.option(
    "--prometheus",
    "use_prometheus",
    is_flag=True,
    help="Run Prometheus and have the operator read the counts from it (default: router /stats).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    state_dir: Path,
    seed: int,
    rate: float,
    experiment_timeout: float,
    plain: bool,
    use_prometheus: bool,
) -> None:
    """The whole loop on this machine: MLflow, the local control plane, the operator, two models,
    an Thompson-sampling experiment that promotes the better one, then a drift run. Leaves
    STATE_DIR/report.html."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        from modelpilot.demo import flow
    except ModuleNotFoundError as exc:
        _check_dev_installed(exc)
        raise

    options = flow.Options(
        state_dir=state_dir.resolve(),
        repo=_default_repo(),
        seed=seed,
        rate=rate,
        experiment_timeout=experiment_timeout,
        live=False if plain else None,
        use_prometheus=use_prometheus,
    )
    timeline = flow.Demo(options).run()
    unfinished = [s for s in timeline.steps if s.status != "done"]
    if unfinished:
        listing = "; ".join(f"{s.key} {s.status}: {s.detail}" for s in unfinished)
        raise errors.CheckFailed(f"demo incomplete ({len(unfinished)} steps): {listing}")
    click.echo(f"demo complete; report {state_dir / 'report.html'}")


@demo.command(name="report")
@click.option(
    "--timeline",
    "timeline_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".demo/timeline.json"),
    show_default=True,
    help="A timeline saved by a demo run.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".demo/report.html"),
    show_default=True,
    help="Where to write the HTML.",
)
def report(timeline_path: Path, out: Path) -> None:
    """Rebuild the HTML report from a saved timeline (no process is started)."""
    try:
        from modelpilot.demo import report as report_mod
        from modelpilot.demo import timeline as tl
    except ModuleNotFoundError as exc:
        _check_dev_installed(exc)
        raise

    out.write_text(report_mod.build_html(tl.load(timeline_path)))
    click.echo(str(out))
