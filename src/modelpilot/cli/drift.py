"""`modelpilot drift compute`: PSI, KS, JS and null-rate drift between two data files.

Reads the reference and current files (CSV or Parquet, via `modelpilot.tabular`), runs
`modelpilot.stats.drift.compare_frames` (exact KS over whole columns), and prints a table, JSON
(`--json`) and optionally a self-contained HTML report (`--report drift.html`) with, per column, the
reference and current distributions as an embedded PNG and the drift table. `--fail-on-drift` exits
1 when any column drifted, for CI.

The one design decision: the report is one file with the plots inlined as base64 PNGs (matplotlib,
Agg backend), so it can be attached to a CI run or an issue without a server.
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
import rich.console
import rich.table

from modelpilot import errors, tabular
from modelpilot.stats import drift as drift_stats

JSON_KEYS = (
    "name",
    "kind",
    "psi",
    "psi_band",
    "ks_statistic",
    "ks_pvalue",
    "ks_pvalue_adjusted",
    "js_distance",
    "chi2_statistic",
    "chi2_pvalue",
    "chi2_pvalue_adjusted",
    "null_rate_reference",
    "null_rate_current",
    "null_rate_delta",
    "drifted",
    "reasons",
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def report_json(report: drift_stats.DriftReport) -> dict[str, Any]:
    data = report.to_dict()
    data["features"] = [{k: f.to_dict()[k] for k in JSON_KEYS} for f in report.features]
    return data


def _print_table(report: drift_stats.DriftReport) -> None:
    table = rich.table.Table(
        title=f"drift: {report.current_rows} current rows vs {report.reference_rows} reference rows"
    )
    for col in ("column", "psi", "band", "ks stat", "p ks|chi2 (BH)", "js", "null ref", "null cur"):
        table.add_column(col, justify="left" if col == "column" else "right")
    table.add_column("drifted")
    for f in report.features:
        p_adj = f.ks_pvalue_adjusted if f.kind == "numeric" else f.chi2_pvalue_adjusted
        table.add_row(
            f.name,
            _fmt(f.psi),
            f.psi_band,
            _fmt(f.ks_statistic),
            _fmt(p_adj),
            _fmt(f.js_distance),
            _fmt(f.null_rate_reference),
            _fmt(f.null_rate_current),
            "[bold red]yes[/]" if f.drifted else "no",
        )
    # Piped output has no terminal width; 120 columns keep the nine columns unabbreviated.
    console = rich.console.Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    drifted = report.drifted_features
    console.print(
        f"drifted columns: {', '.join(drifted) if drifted else 'none'} "
        f"(psi >= {report.psi_threshold}, BH-adjusted p < {report.ks_pvalue})"
    )


def _plot_png(feature: drift_stats.FeatureDrift, ref: Any, cur: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 2.8), dpi=90)
    try:
        if feature.kind == "numeric":
            r = np.asarray(ref, dtype=np.float64)
            c = np.asarray(cur, dtype=np.float64)
            r, c = r[~np.isnan(r)], c[~np.isnan(c)]
            both = np.concatenate([r, c])
            lo, hi = np.percentile(both, [0.5, 99.5]) if both.size else (0.0, 1.0)
            if not hi > lo:
                lo, hi = lo - 0.5, hi + 0.5
            grid = np.linspace(lo, hi, 41).tolist()
            ax.hist(r, bins=grid, density=True, histtype="step", linewidth=1.5, label="reference")
            ax.hist(c, bins=grid, density=True, histtype="step", linewidth=1.5, label="current")
            ax.set_ylabel("density")
        else:
            x = np.arange(len(feature.bins))
            ax.bar(x - 0.2, feature.reference_proportions, width=0.4, label="reference")
            ax.bar(x + 0.2, feature.current_proportions, width=0.4, label="current")
            ax.set_xticks(x, feature.bins, rotation=30, ha="right", fontsize=7)
            ax.set_ylabel("share")
        ax.set_title(f"{feature.name}: psi {feature.psi:.3f}, js {feature.js_distance:.3f}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(
    report: drift_stats.DriftReport,
    *,
    reference: dict[str, Any],
    current: dict[str, Any],
    title: str,
) -> str:
    """A self-contained HTML page: the drift table, then one plot per column."""
    esc = html.escape
    head = ["column", "kind", "psi", "band", "ks stat", "p (BH)", "js", "null ref", "null cur",
            "drifted", "why"]  # fmt: skip
    rows = []
    for f in report.features:
        p_adj = f.ks_pvalue_adjusted if f.kind == "numeric" else f.chi2_pvalue_adjusted
        cells = [f.name, f.kind, _fmt(f.psi), f.psi_band, _fmt(f.ks_statistic), _fmt(p_adj),
                 _fmt(f.js_distance), _fmt(f.null_rate_reference), _fmt(f.null_rate_current),
                 _fmt(f.drifted), "; ".join(f.reasons)]  # fmt: skip
        cls = ' class="drifted"' if f.drifted else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    plots = []
    for f in report.features:
        png = _plot_png(f, reference[f.name], current[f.name])
        plots.append(
            f'<figure id="plot-{esc(f.name)}"><img alt="{esc(f.name)}: reference vs current" '
            f'src="data:image/png;base64,{png}"><figcaption>{esc(f.name)}</figcaption></figure>'
        )
    drifted = ", ".join(report.drifted_features) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
tr.drifted td {{ background: #fde2e2; }} figure {{ display: inline-block; margin: 8px; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{report.current_rows} current rows against {report.reference_rows} reference rows.
Drifted columns: <strong>{esc(drifted)}</strong>
(PSI &ge; {report.psi_threshold}, Benjamini-Hochberg adjusted p &lt; {report.ks_pvalue},
or a null-rate change of at least {report.null_rate_threshold}).</p>
<table><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Distributions</h2>
{"".join(plots)}
</body></html>
"""


# `drift run`, the drift CronJob's command, lives with the drift job (services/driftjob, the
# modelpilot-driftjob distribution), which adds it through the entry point `drift.run`.
@click.group("drift")
def drift() -> None:
    """Data drift between a reference and a current data set."""


@drift.command("compute")
@click.option("--reference", required=True, type=click.Path(path_type=Path), help="CSV/Parquet.")
@click.option("--current", required=True, type=click.Path(path_type=Path), help="CSV/Parquet.")
@click.option("--columns", default=None, help="Comma-separated columns (default: all).")
@click.option("--bins", type=int, default=10, show_default=True, help="Quantile bins for PSI.")
@click.option("--psi-threshold", type=float, default=0.2, show_default=True)
@click.option("--ks-pvalue", type=float, default=0.01, show_default=True)
@click.option("--methods", default="psi,ks", show_default=True, help="psi, ks, js, chi2.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write HTML here.")
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when any column drifted.")
def compute(
    *,
    reference: Path,
    current: Path,
    columns: str | None,
    bins: int,
    psi_threshold: float,
    ks_pvalue: float,
    methods: str,
    as_json: bool,
    report: Path | None,
    fail_on_drift: bool,
) -> None:
    """PSI, KS, JS and null rates per column; a table, JSON or an HTML report."""
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if columns is not None and not wanted:
        raise errors.InputError("--columns: give at least one column name")
    if bins < 2:
        raise errors.InputError(f"--bins: must be at least 2, got {bins}")
    ref_cols = tabular.read_columns(reference, columns=wanted)
    cur_cols = tabular.read_columns(current, columns=list(ref_cols))
    for name, values in ref_cols.items():
        if values.dtype.kind == "f":
            tabular.require_numeric_like(current, name, cur_cols[name], reference=reference)
    result = drift_stats.compare_frames(
        ref_cols,
        cur_cols,
        bins=bins,
        psi_threshold=psi_threshold,
        ks_pvalue=ks_pvalue,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
    )
    if report is not None:
        page = render_html(
            result, reference=ref_cols, current=cur_cols, title=f"Drift: {current} vs {reference}"
        )
        try:
            report.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise errors.InputError(f"--report: cannot write {report}: {exc.strerror}") from exc
    if as_json:
        click.echo(json.dumps(report_json(result), indent=2))
    else:
        _print_table(result)
        if report is not None:
            click.echo(f"report written to {report}")
    if fail_on_drift and result.drifted_features:
        raise errors.CheckFailed(f"drift in {', '.join(result.drifted_features)}")
