"""The demo's terminal view: a rich Live panel on a TTY, plain log lines otherwise.

Both read the same `Timeline`. The one design decision: the view is refreshed by the flow calling
`update(timeline)` (no background thread owns the terminal), and when stdout is not a TTY (CI, `make
demo | tee`, the tests) it prints one line per step change and one line per new experiment snapshot
at most every `log_every` seconds, so logs stay readable and greppable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from modelpilot.demo import timeline as tl

_STYLE = {
    "done": "green",
    "pending": "yellow",
    "failed": "bold red",
    "running": "cyan",
    "waiting": "dim",
    "skipped": "dim",
}


def _fmt_p(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def render(timeline: tl.Timeline) -> Group:
    """The panel: the steps, then the variants of the latest snapshot."""
    steps = Table(title="modelpilot demo", expand=False)
    steps.add_column("step")
    steps.add_column("status")
    steps.add_column("detail", overflow="fold", max_width=70)
    for step in timeline.steps:
        style = _STYLE.get(step.status, "")
        steps.add_row(step.title, f"[{style}]{step.status}[/]", step.detail)
    if not timeline.snapshots:
        return Group(steps)
    snap = timeline.snapshots[-1]
    title = f"experiment at t={snap.t:.0f}s, phase {snap.phase}"
    if snap.phase in tl.TERMINAL_PHASES:
        # After the decision the status describes the new stable variant (its P(best) is the old
        # champion's): show the numbers the decision was taken on, and the outcome in words.
        snap = timeline.decision_snapshot() or snap
        title = f"experiment at the decision (t={snap.t:.0f}s)"
    variants = Table(title=title)
    for col in ("variant", "version", "weight %", "P(best)", "requests", "rewards", "reward rate"):
        variants.add_column(col, justify="left" if col == "variant" else "right")
    for v in snap.variants:
        rate = f"{v.rewards / v.requests:.3f}" if v.requests else ""
        variants.add_row(
            v.name,
            v.model_version or "",
            f"{v.weight:.0f}",
            _fmt_p(v.probability_to_be_best),
            str(v.requests),
            f"{v.rewards:.0f}",
            rate,
        )
    outcome = tl.outcome_sentences(timeline)
    if outcome:
        return Group(steps, variants, Text("\n".join(outcome), style="bold"))
    return Group(steps, variants)


def log_line(snap: tl.Snapshot) -> str:
    """One plain line per snapshot."""
    parts = [f"t={snap.t:5.0f}s phase={snap.phase}"]
    if snap.phase in tl.TERMINAL_PHASES:
        # The status after the decision describes the new split; its P(best) figures belong to
        # the decision (the outcome lines say it in words), so only the split is shown here.
        return " | ".join(
            parts
            + [
                f"{v.name}: weight={v.weight:.0f}%"
                + (f" (version {v.model_version})" if v.model_version else "")
                for v in snap.variants
            ]
        )
    for v in snap.variants:
        parts.append(
            f"{v.name}: weight={v.weight:.0f}% p_best={_fmt_p(v.probability_to_be_best) or '-'} "
            f"requests={v.requests} rewards={v.rewards:.0f}"
        )
    return " | ".join(parts)


class View:
    """Shows the timeline; use as a context manager around the flow."""

    def __init__(
        self, *, stream: TextIO | None = None, live: bool | None = None, log_every: float = 5.0
    ) -> None:
        self.stream = stream or sys.stdout
        self.live_mode = self.stream.isatty() if live is None else live
        self.log_every = log_every
        self._live: Live | None = None
        self._seen_steps: dict[str, tuple[str, str]] = {}
        self._last_logged_snapshot = 0
        self._last_log_time = 0.0
        self._last_phase: str | None = None
        self._outcome_told = False

    def __enter__(self) -> View:
        if self.live_mode:
            self._live = Live(
                console=Console(file=self.stream), refresh_per_second=4, auto_refresh=False
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, timeline: tl.Timeline) -> None:
        if self._live is not None:
            self._live.update(render(timeline), refresh=True)
            return
        for step in timeline.steps:
            seen = (step.status, step.detail)
            if self._seen_steps.get(step.key) != seen and step.status != "waiting":
                self._seen_steps[step.key] = seen
                detail = f": {step.detail}" if step.detail else ""
                self._print(f"[{step.status:>7}] {step.title}{detail}")
        if len(timeline.snapshots) > self._last_logged_snapshot:
            snap = timeline.snapshots[-1]
            now = time.monotonic()
            if now - self._last_log_time >= self.log_every or snap.phase != self._last_phase:
                self._print(log_line(snap))
                self._last_log_time = now
                self._last_phase = snap.phase
            self._last_logged_snapshot = len(timeline.snapshots)
        if timeline.outcome is not None and not self._outcome_told:
            self._outcome_told = True
            for line in tl.outcome_sentences(timeline):
                self._print(line)

    def message(self, text: str) -> None:
        """A line of its own (above the live panel on a TTY)."""
        if self._live is not None:
            self._live.console.print(text)
        else:
            self._print(text)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
