"""What the demo saw, as plain data: the steps, experiment snapshots over time, the drift result.

The live view and the HTML report both read this record, and it is saved as `.demo/timeline.json`,
so the report can be rebuilt (and tested) from a recorded run without running anything. The one
design decision: a step that could not run because its piece of the platform is not in the tree yet
is recorded as `pending` with the reason, never as done, and every later step that needs it is
`pending` too; the summary counts only what really happened.

Pure: standard library and the API's constants only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelpilot import errors
from modelpilot.api import constants

TERMINAL_PHASES = constants.TERMINAL_PHASES

StepStatus = Literal["waiting", "running", "done", "pending", "failed", "skipped"]
STEP_STATUSES: tuple[str, ...] = ("waiting", "running", "done", "pending", "failed", "skipped")


@dataclass
class Step:
    """One step of the demo's flow."""

    key: str
    title: str
    status: StepStatus = "waiting"
    detail: str = ""
    started: float | None = None
    finished: float | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass
class VariantSample:
    """One variant at one moment, as the Experiment's status (or the router) reported it."""

    name: str
    weight: float
    requests: int
    rewards: float
    probability_to_be_best: float | None = None
    alpha: float | None = None
    beta: float | None = None
    model_version: str | None = None


@dataclass
class Snapshot:
    """The experiment at time `t` (seconds since the traffic started)."""

    t: float
    phase: str
    variants: list[VariantSample]


@dataclass
class DriftFeature:
    """One feature's drift as the drift run reported it."""

    feature: str
    psi: float
    drifted: bool
    ks_pvalue: float | None = None


@dataclass
class ClientTally:
    """What the simulated users saw for one variant (`?`: answers that named no variant)."""

    variant: str
    requests: int = 0
    errors: int = 0
    rewards: float = 0.0
    feedback_sent: int = 0
    feedback_failed: int = 0


@dataclass
class Outcome:
    """How the experiment ended and what serves now, read from the two resources' status."""

    phase: str  # Promoted | RolledBack | Concluded | Failed
    winner: str | None = None
    reason: str = ""
    model: str = ""
    serving_version: str | None = None  # the ModelDeployment's status.model.version afterwards
    previous_version: str | None = None  # what the stable variant served before
    challenger_version: str | None = None


@dataclass
class Timeline:
    """Everything the report needs; saved as JSON."""

    started_at: float = field(default_factory=time.time)
    steps: list[Step] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    drift: list[DriftFeature] = field(default_factory=list)
    psi_threshold: float = 0.2
    facts: dict[str, str] = field(default_factory=dict)
    outcome: Outcome | None = None
    clients: list[ClientTally] = field(default_factory=list)
    transport_errors: int = 0

    @property
    def client_errors(self) -> int:
        """Failed user requests: error answers plus requests that got no answer at all."""
        return sum(c.errors for c in self.clients) + self.transport_errors

    def decision_snapshot(self) -> Snapshot | None:
        """The last snapshot before the experiment ended (what the decision was taken on)."""
        for snap in reversed(self.snapshots):
            if snap.phase not in TERMINAL_PHASES:
                return snap
        return self.snapshots[-1] if self.snapshots else None

    def step(self, key: str) -> Step:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    @property
    def final_phase(self) -> str | None:
        return self.snapshots[-1].phase if self.snapshots else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


def load(path: Path) -> Timeline:
    """Read a timeline saved by `Timeline.save`; a malformed file is an InputError naming it."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise errors.InputError(f"timeline: no such file {path}") from exc
    except json.JSONDecodeError as exc:
        raise errors.InputError(
            f"timeline: {path} is not JSON ({exc.msg}, line {exc.lineno})"
        ) from exc
    return from_dict(raw)


def from_dict(raw: Any) -> Timeline:
    if not isinstance(raw, dict):
        raise errors.InputError("timeline: expected a JSON object at the top level")
    try:
        steps = [Step(**s) for s in raw.get("steps", [])]
        snapshots = [
            Snapshot(
                t=float(s["t"]),
                phase=str(s["phase"]),
                variants=[VariantSample(**v) for v in s["variants"]],
            )
            for s in raw.get("snapshots", [])
        ]
        drift = [DriftFeature(**d) for d in raw.get("drift", [])]
        outcome = Outcome(**raw["outcome"]) if raw.get("outcome") else None
        clients = [ClientTally(**c) for c in raw.get("clients", [])]
        transport_errors = int(raw.get("transport_errors", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.InputError(f"timeline: malformed entry ({exc})") from exc
    for step in steps:
        if step.status not in STEP_STATUSES:
            raise errors.InputError(
                f"timeline: steps[{step.key}].status is {step.status!r}; "
                f"allowed: {', '.join(STEP_STATUSES)}"
            )
    return Timeline(
        started_at=float(raw.get("started_at", 0.0)),
        steps=steps,
        snapshots=snapshots,
        drift=drift,
        psi_threshold=float(raw.get("psi_threshold", 0.2)),
        facts={str(k): str(v) for k, v in raw.get("facts", {}).items()},
        outcome=outcome,
        clients=clients,
        transport_errors=transport_errors,
    )


def outcome_sentences(timeline: Timeline) -> list[str]:
    """What serves now and what became of the challenger, in words a newcomer follows."""
    out = timeline.outcome
    if out is None:
        return []
    snap = timeline.decision_snapshot()
    by_name = {v.name: v for v in snap.variants} if snap is not None else {}
    model = out.model or "the model"
    lines: list[str] = []
    if out.phase == constants.PROMOTED:
        won = by_name.get(out.winner or "")
        evidence = ""
        if won is not None and won.probability_to_be_best is not None:
            total = sum(v.requests for v in by_name.values())
            evidence = (
                f" with probability {won.probability_to_be_best:.3f} to be the better model"
                f" after {total} requests"
            )
        lines.append(f"The {out.winner or 'challenger'} won{evidence}, and was promoted.")
        serving = out.serving_version or out.challenger_version
        lines.append(
            f"Now serving: {model} version {serving} as the deployment's stable model, with "
            "100% of the traffic."
        )
        if out.previous_version:
            lines.append(
                f"The previous champion, version {out.previous_version}, was retired: it stays in "
                "the MLflow registry and in the ModelDeployment's status.history, so a rollback "
                "is one `kubectl patch` away."
            )
        lines.append(
            f"The {out.winner or 'challenger'} variant's own model server and Service were "
            "removed; its model now runs as the stable variant."
        )
    elif out.phase == constants.ROLLED_BACK:
        lines.append(
            f"The challenger (version {out.challenger_version}) was rolled back: {out.reason}"
        )
        lines.append(
            f"Still serving: {model} version {out.serving_version or out.previous_version} with "
            "100% of the traffic."
        )
    elif out.phase in TERMINAL_PHASES:
        lines.append(f"The experiment ended in phase {out.phase}: {out.reason}")
        if out.serving_version:
            lines.append(f"Serving: {model} version {out.serving_version}.")
    else:
        lines.append(
            f"The experiment had not decided when the demo stopped waiting (phase {out.phase}); "
            "nothing was promoted."
        )
        if out.serving_version:
            lines.append(f"Still serving: {model} version {out.serving_version}.")
    return lines
