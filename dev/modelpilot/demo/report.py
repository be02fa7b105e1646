"""The demo's HTML report: one self-contained file with embedded PNG plots and a summary.

Built from a `Timeline` alone (`build_html`), so it can be rebuilt from a saved
`.demo/timeline.json` (`modelpilot demo report`) and tested on recorded data. The one design
decision: the plots are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global
figure state, no display needed) and embedded as base64 PNG `data:` URIs, so the file opens
anywhere, offline, with nothing beside it. Steps that did not run are shown as pending with their
reason; the summary never claims what the timeline does not show.
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Sequence

import numpy as np
from matplotlib.backends import backend_agg
from matplotlib.figure import Figure
from scipy import stats as sps

from modelpilot.demo import timeline as tl

_STATUS_COLOURS = {
    "done": "#1a7f37",
    "pending": "#9a6700",
    "failed": "#cf222e",
    "skipped": "#57606a",
    "running": "#0969da",
    "waiting": "#57606a",
}


def _png(fig: Figure) -> str:
    backend_agg.FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _variant_names(snapshots: Sequence[tl.Snapshot]) -> list[str]:
    names: list[str] = []
    for snap in snapshots:
        for v in snap.variants:
            if v.name not in names:
                names.append(v.name)
    return names


def plot_weights(snapshots: Sequence[tl.Snapshot]) -> Figure:
    """Each variant's traffic weight (percent) against time, with the phase changes marked."""
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.add_subplot()
    for name in _variant_names(snapshots):
        ts = [s.t for s in snapshots for v in s.variants if v.name == name]
        ws = [v.weight for s in snapshots for v in s.variants if v.name == name]
        versions = list(
            dict.fromkeys(
                v.model_version
                for s in snapshots
                for v in s.variants
                if v.name == name and v.model_version
            )
        )
        label = f"{name} (v{' -> v'.join(versions)})" if versions else name
        ax.step(ts, ws, where="post", label=label, linewidth=2)
    previous = None
    for snap in snapshots:
        if previous is not None and snap.phase != previous:
            ax.axvline(snap.t, color="grey", linestyle=":", linewidth=1)
            ax.annotate(snap.phase, (snap.t, 100), fontsize=8, ha="left", va="top")
        previous = snap.phase
    ax.set_ylim(0, 102)
    ax.set_xlabel("seconds since traffic started")
    ax.set_ylabel("traffic weight (%)")
    ax.set_title("Traffic split over time (Thompson sampling)")
    ax.legend(loc="center right")
    ax.grid(alpha=0.3)
    return fig


def plot_posteriors(snapshot: tl.Snapshot) -> Figure | None:
    """Beta posterior densities of each variant's reward rate at one moment (None if unknown)."""
    params = [
        (v.name, v.alpha, v.beta)
        for v in snapshot.variants
        if v.alpha is not None and v.beta is not None
    ]
    if not params:
        return None
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.add_subplot()
    lows = [float(sps.beta.ppf(1e-4, a, b)) for _, a, b in params]
    highs = [float(sps.beta.ppf(1 - 1e-4, a, b)) for _, a, b in params]
    x = np.linspace(max(0.0, min(lows)), min(1.0, max(highs)), 600)
    for name, a, b in params:
        density = sps.beta.pdf(x, a, b)
        ax.plot(x, density, linewidth=2, label=f"{name}: mean {a / (a + b):.3f}")
        ax.fill_between(x, density, alpha=0.15)
    ax.set_xlabel("reward rate (fraction of correct predictions)")
    ax.set_ylabel("posterior density")
    ax.set_title(f"Posteriors at t = {snapshot.t:.0f} s (phase {snapshot.phase})")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_psi(drift: Sequence[tl.DriftFeature], threshold: float) -> Figure:
    """PSI per feature as bars, drifted features highlighted, the alert threshold as a line."""
    fig = Figure(figsize=(7.5, 3.0))
    ax = fig.add_subplot()
    names = [d.feature for d in drift]
    values = [d.psi for d in drift]
    colours = ["#cf222e" if d.drifted else "#0969da" for d in drift]
    ax.bar(names, values, color=colours)
    ax.axhline(
        threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold}"
    )
    ax.set_ylabel("PSI")
    ax.set_title("Population stability index per feature (red: flagged)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return fig


def summary_lines(timeline: tl.Timeline) -> list[str]:
    """What happened, in sentences, from the record only."""
    lines: list[str] = []
    done = [s for s in timeline.steps if s.status == "done"]
    pending = [s for s in timeline.steps if s.status == "pending"]
    failed = [s for s in timeline.steps if s.status == "failed"]
    lines.append(
        f"{len(done)} of {len(timeline.steps)} steps done"
        + (f", {len(pending)} pending" if pending else "")
        + (f", {len(failed)} failed" if failed else "")
        + "."
    )
    if timeline.snapshots:
        first, last = timeline.snapshots[0], timeline.snapshots[-1]
        # Per-variant lines describe the decision's evidence, not the status after promotion
        # (which lists the new stable variant with the old champion's probability to be best).
        decided = timeline.decision_snapshot() or last
        total = sum(v.requests for v in decided.variants)
        lines.append(
            f"The experiment ran {last.t - first.t:.0f} s and ended in phase {last.phase}; its "
            f"decision counted {total} requests."
        )
        lines.extend(tl.outcome_sentences(timeline))
        if decided is not last:
            lines.append(f"At the decision (t = {decided.t:.0f} s):")
        for v in decided.variants:
            rate = v.rewards / v.requests if v.requests else float("nan")
            p_best = (
                f", probability to be best {v.probability_to_be_best:.3f}"
                if v.probability_to_be_best is not None
                else ""
            )
            first_w = next((f.weight for f in first.variants if f.name == v.name), None)
            shift = f"weight {first_w:.0f}% -> {v.weight:.0f}%" if first_w is not None else ""
            lines.append(
                f"Variant {v.name}: {shift}, {v.requests} requests, reward rate {rate:.3f}{p_best}."
            )
    else:
        lines.append("No experiment snapshot was recorded.")
    if timeline.drift:
        flagged = [d.feature for d in timeline.drift if d.drifted]
        lines.append(
            f"Drift run: {len(flagged)} of {len(timeline.drift)} features flagged"
            + (f" ({', '.join(flagged)})" if flagged else "")
            + f" at PSI >= {timeline.psi_threshold}."
        )
    else:
        lines.append("No drift result was recorded.")
    if timeline.clients or timeline.transport_errors:
        lines.append(
            f"Failed user requests over the whole run: {timeline.client_errors} "
            f"({timeline.transport_errors} without any answer)."
        )
    for key, value in timeline.facts.items():
        lines.append(f"{key}: {value}.")
    return lines


def client_table(timeline: tl.Timeline) -> str:
    """The users' own counts per variant, errors included (a cross-check of the router's)."""
    if not timeline.clients and not timeline.transport_errors:
        return "<p>No user traffic was recorded.</p>"
    esc = html.escape
    rows = [
        "<p>Counted by the simulated users over the whole run, the promotion included (after it,"
        " the stable variant serves the promoted model).</p>"
        "<table><tr><th>variant that answered</th><th>requests</th><th>failed</th>"
        "<th>correct predictions</th><th>rewards sent</th><th>rewards refused</th></tr>"
    ]
    for c in timeline.clients:
        rows.append(
            f"<tr><td>{esc(c.variant)}</td><td>{c.requests}</td><td>{c.errors}</td>"
            f"<td>{c.rewards:.0f}</td><td>{c.feedback_sent}</td><td>{c.feedback_failed}</td></tr>"
        )
    rows.append(
        f"<tr><td>(no answer)</td><td>{timeline.transport_errors}</td>"
        f"<td>{timeline.transport_errors}</td><td></td><td></td><td></td></tr>"
    )
    rows.append("</table>")
    return "".join(rows)


def build_html(timeline: tl.Timeline) -> str:
    """The whole report as one HTML string."""
    esc = html.escape
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timeline.started_at))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>modelpilot demo report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;color:#1f2328}table{border-collapse:collapse}td,th{padding:.25rem .6rem;"
        "border-bottom:1px solid #d0d7de;text-align:left}img{max-width:100%}"
        ".status{font-weight:600}</style></head><body>",
        "<h1>modelpilot demo report</h1>",
        f"<p>Run started {esc(started)}.</p>",
        "<h2>Summary</h2><ul>",
        *(f"<li>{esc(line)}</li>" for line in summary_lines(timeline)),
        "</ul>",
        "<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>seconds</th><th>detail</th></tr>",
    ]
    for step in timeline.steps:
        colour = _STATUS_COLOURS.get(step.status, "#1f2328")
        secs = f"{step.seconds:.1f}" if step.seconds is not None else ""
        parts.append(
            f"<tr><td>{esc(step.title)}</td><td class='status' style='color:{colour}'>"
            f"{esc(step.status)}</td><td>{secs}</td><td>{esc(step.detail)}</td></tr>"
        )
    parts.append("</table>")
    parts.append("<h2>Traffic split</h2>")
    if timeline.snapshots:
        parts.append(
            f"<img alt='weights over time' src='{_png(plot_weights(timeline.snapshots))}'>"
        )
        parts.append("<h2>What the users saw</h2>")
        parts.append(client_table(timeline))
        posterior = plot_posteriors(timeline.decision_snapshot() or timeline.snapshots[-1])
        parts.append("<h2>Posteriors</h2>")
        if posterior is not None:
            parts.append(f"<img alt='posterior densities' src='{_png(posterior)}'>")
        else:
            parts.append("<p>No posterior was reported.</p>")
    else:
        parts.append("<p>Pending: no experiment ran.</p>")
    parts.append("<h2>Drift</h2>")
    if timeline.drift:
        psi_png = _png(plot_psi(timeline.drift, timeline.psi_threshold))
        parts.append(f"<img alt='PSI per feature' src='{psi_png}'>")
        parts.append(
            "<table><tr><th>feature</th><th>PSI</th><th>KS p-value</th><th>flagged</th></tr>"
        )
        for d in timeline.drift:
            ks = f"{d.ks_pvalue:.3g}" if d.ks_pvalue is not None else ""
            parts.append(
                f"<tr><td>{esc(d.feature)}</td><td>{d.psi:.3f}</td><td>{ks}</td>"
                f"<td>{'yes' if d.drifted else 'no'}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>Pending: no drift run.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
