"""What the demo saw, as plain data: the steps, experiment snapshots over time, the drift result.

The live view and the HTML report both read this record, and it is saved as `.demo/timeline.json`,
so the report can be rebuilt (and tested) from a recorded run without running anything. The one
design decision: a step that could not run because its piece of the platform is not in the tree yet
is recorded as `pending` with the reason, never as done, and every later step that needs it is
`pending` too; the summary counts only what really happened.

Pure: standard library only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelpilot import errors

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
class Timeline:
    """Everything the report needs; saved as JSON."""

    started_at: float = field(default_factory=time.time)
    steps: list[Step] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    drift: list[DriftFeature] = field(default_factory=list)
    psi_threshold: float = 0.2
    facts: dict[str, str] = field(default_factory=dict)

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
    except (KeyError, TypeError) as exc:
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
    )
