"""Run every benchmark present and write bench/RESULTS.md: the machine, the versions, each figure
beside its baseline.

    python bench/report.py --run [--make make] [--only drift,serving]  # run the targets, write
    python bench/report.py                                              # rewrite from bench/out/

Each `bench-<name>` target in the Makefile writes `bench/out/<name>.json` in the shape pinned in
docs/architecture.md ("Benchmark output"). The one design decision: this script never measures
anything itself and never trusts a number it cannot check. It runs the targets it finds (a missing
or failing one is listed as such, with the tail of its log, not silently dropped), recomputes each
ratio from the value and the baseline measured in the same run (a ratio that disagrees is flagged),
and stamps the results with the machine and library versions that produced them, because a speed
figure means nothing without them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "bench" / "out"
RESULTS = REPO / "bench" / "RESULTS.md"
PACKAGES = ("numpy", "scipy", "pandas", "mlflow", "kubernetes", "kopf", "fastapi")
_TARGET = re.compile(r"^(bench-[A-Za-z0-9_-]+):", re.MULTILINE)
# Ratios are written rounded (2 decimals) from rounded values: allow that much disagreement.
_RATIO_TOLERANCE = 0.02


class BenchFileError(ValueError):
    """A bench/out/*.json file does not have the documented shape; the message names the field."""


@dataclass
class Figure:
    metric: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    better: str = "lower"
    ratio_check: str = ""  # empty when consistent, else what is wrong


@dataclass
class Bench:
    name: str
    figures: list[Figure]
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    source: str = ""


@dataclass
class Run:
    target: str
    status: str  # passed | failed | not run
    seconds: float = 0.0
    log_tail: str = ""


# ---- pure: parse, check, render ----------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BenchFileError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def expected_ratio(value: float, baseline_value: float, better: str) -> float | None:
    """How many times better than the baseline (docs/architecture.md, "Benchmark output")."""
    if better == "higher":
        return value / baseline_value if baseline_value > 0 else None
    return baseline_value / value if value > 0 else None


def parse_bench(doc: Any, *, source: str) -> Bench:
    """One bench/out/<name>.json document, checked field by field."""
    if not isinstance(doc, dict):
        raise BenchFileError(f"{source}: expected a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise BenchFileError(f"{source}: 'name' must be a non-empty string")
    raw_figures = doc.get("figures")
    if not isinstance(raw_figures, list):
        raise BenchFileError(f"{source}: 'figures' must be a list")
    figures = []
    for i, raw in enumerate(raw_figures):
        where = f"{source}: figures[{i}]"
        if not isinstance(raw, dict):
            raise BenchFileError(f"{where}: expected an object")
        for key in ("metric", "unit"):
            if not isinstance(raw.get(key), str):
                raise BenchFileError(f"{where}.{key}: must be a string")
        better = raw.get("better", "lower")
        if better not in ("lower", "higher"):
            raise BenchFileError(f"{where}.better: must be 'lower' or 'higher', got {better!r}")
        fig = Figure(
            metric=raw["metric"],
            value=_number(raw.get("value"), f"{where}.value"),
            unit=raw["unit"],
            better=better,
        )
        if raw.get("baseline_value") is not None:
            fig.baseline = str(raw.get("baseline") or "baseline")
            fig.baseline_value = _number(raw["baseline_value"], f"{where}.baseline_value")
            stated = raw.get("ratio")
            fig.ratio = None if stated is None else _number(stated, f"{where}.ratio")
            fig.ratio_check = check_ratio(fig)
        figures.append(fig)
    return Bench(
        name=name,
        figures=figures,
        description=str(doc.get("description", "")),
        params=dict(doc.get("params") or {}),
        notes=str(doc.get("notes", "")),
        source=source,
    )


def check_ratio(fig: Figure) -> str:
    """'' when the stated ratio matches value and baseline, else a short explanation."""
    if fig.baseline_value is None:
        return ""
    expected = expected_ratio(fig.value, fig.baseline_value, fig.better)
    if expected is None:
        return "ratio undefined (zero value or baseline)"
    if fig.ratio is None:
        fig.ratio = expected
        return ""
    if abs(fig.ratio - expected) > _RATIO_TOLERANCE * max(1.0, abs(expected)):
        return f"stated ratio {fig.ratio:g} but value/baseline give {expected:.3g}"
    return ""


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.3g}"
    return f"{value:.4g}"


def render(
    benches: list[Bench],
    *,
    machine: dict[str, str],
    versions: dict[str, str],
    runs: list[Run],
    generated: str,
) -> str:
    """The whole RESULTS.md."""
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` (`bench/report.py`) on {generated}. Each figure sits beside",
        "its baseline measured **in the same run** on the same machine; *ratio* is how many times",
        "better than the baseline (baseline/value when lower is better, value/baseline when higher",
        "is). The load average below says how busy the machine was: figures from a shared machine",
        "are noisy, ratios less so (both sides ran under the same load).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine.items()),
        "",
        "## Versions",
        "",
        *(f"- {k}: {v}" for k, v in versions.items()),
        "",
    ]
    if runs:
        lines += ["## Runs", "", "| target | status | seconds |", "|---|---|---|"]
        lines += [f"| `{r.target}` | {r.status} | {r.seconds:.0f} |" for r in runs]
        lines.append("")
        for r in runs:
            if r.status == "failed" and r.log_tail:
                lines += [
                    f"`{r.target}` failed; the end of its log:",
                    "",
                    "```",
                    r.log_tail,
                    "```",
                    "",
                ]
    if not benches:
        lines += ["No benchmark output found under `bench/out/`.", ""]
    for bench in sorted(benches, key=lambda b: b.name):
        lines += [f"## {bench.name}", ""]
        if bench.description:
            lines += [bench.description, ""]
        if bench.params:
            params = ", ".join(f"{k}={v}" for k, v in bench.params.items())
            lines += [f"Parameters: {params}.", ""]
        lines += [
            "| metric | value | unit | baseline | baseline value | ratio |",
            "|---|---|---|---|---|---|",
        ]
        flagged = []
        for f in bench.figures:
            ratio = "—" if f.ratio is None else f"{f.ratio:.3g}x"
            if f.ratio_check:
                ratio += " (!)"
                flagged.append(f"{f.metric}: {f.ratio_check}")
            lines.append(
                f"| {f.metric} | {_fmt(f.value)} | {f.unit} | {f.baseline or '—'} | "
                f"{_fmt(f.baseline_value)} | {ratio} |"
            )
        lines.append("")
        if flagged:
            lines += ["Ratios that disagree with their own value and baseline:", ""]
            lines += [f"- {item}" for item in flagged]
            lines.append("")
        if bench.notes:
            lines += [bench.notes, ""]
        lines += [f"Source: `{bench.source}`.", ""]
    return "\n".join(lines).rstrip() + "\n"


# ---- input/output --------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except (OSError, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return {
        "CPU": cpu,
        "cores (usable by this process)": str(usable),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "load average when the report was written": load,
    }


def versions_info() -> dict[str, str]:
    out = {"Python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    # The drift baseline runs in a venv of its own (bench/drift.py), pinned there.
    from modelpilot.testing import evidently

    out["evidently"] = f"{evidently.EVIDENTLY} (its own venv)"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["modelpilot commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    kube = _kube_version()
    if kube:
        out["Kubernetes (control plane binaries)"] = kube
    return out


def _kube_version() -> str | None:
    override = os.environ.get("MODELPILOT_K8S_BINARIES")
    candidates = [Path(override)] if override else []
    cache = Path(os.environ.get("MODELPILOT_CACHE", Path.home() / ".cache" / "modelpilot")) / "bin"
    if cache.is_dir():
        candidates += sorted(cache.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for folder in candidates:
        kubectl = folder / "kubectl"
        if kubectl.is_file():
            try:
                done = subprocess.run(
                    [str(kubectl), "version", "--client", "-o", "json"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                    check=True,
                )
                return str(json.loads(done.stdout)["clientVersion"]["gitVersion"])
            except (OSError, subprocess.SubprocessError, KeyError, json.JSONDecodeError):
                continue
    return None


def bench_targets(makefile: Path) -> list[str]:
    """Every `bench-*` target the Makefile defines, in file order."""
    return list(dict.fromkeys(_TARGET.findall(makefile.read_text())))


def run_targets(targets: list[str], *, make: str) -> list[Run]:
    runs = []
    logs = OUT_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for target in targets:
        print(f"[bench] make {target}", flush=True)
        log_path = logs / f"{target}.log"
        start = time.monotonic()
        with log_path.open("w") as log:
            done = subprocess.run(
                [*make.split(), "--no-print-directory", target],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        seconds = time.monotonic() - start
        status = "passed" if done.returncode == 0 else "failed"
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        print(f"[bench] {target}: {status} in {seconds:.0f}s", flush=True)
        runs.append(Run(target=target, status=status, seconds=seconds, log_tail=tail))
    return runs


def load_benches(folder: Path) -> tuple[list[Bench], list[str]]:
    benches, problems = [], []
    for path in sorted(folder.glob("*.json")):
        source = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        try:
            benches.append(parse_bench(json.loads(path.read_text()), source=source))
        except json.JSONDecodeError as exc:
            problems.append(f"{source}: not JSON ({exc.msg} at line {exc.lineno})")
        except BenchFileError as exc:
            problems.append(str(exc))
    return benches, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run the bench-* targets first")
    parser.add_argument("--make", default="make", help="the make command (default: make)")
    parser.add_argument("--only", default="", help="comma-separated bench names to run")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    runs: list[Run] = []
    if args.run:
        targets = bench_targets(REPO / "Makefile")
        if args.only:
            wanted = {f"bench-{n.strip()}" for n in args.only.split(",") if n.strip()}
            unknown = wanted - set(targets)
            if unknown:
                print(
                    f"bench/report.py: error: --only: no target {', '.join(sorted(unknown))} "
                    f"(have: {', '.join(targets)})",
                    file=sys.stderr,
                )
                return 2
            targets = [t for t in targets if t in wanted]
        runs = run_targets(targets, make=args.make)
    benches, problems = load_benches(args.out_dir)
    text = render(
        benches,
        machine=machine_info(),
        versions=versions_info(),
        runs=runs,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    if problems:
        text += "\n## Unreadable benchmark output\n\n" + "".join(f"- {p}\n" for p in problems)
    args.results.write_text(text)
    print(f"[bench] wrote {args.results} ({len(benches)} benchmarks)")
    failed = [r.target for r in runs if r.status != "passed"]
    if failed or problems:
        print(f"[bench] failed: {', '.join(failed + problems)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
