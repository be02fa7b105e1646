"""Benchmark: drift statistics for every column, modelpilot against a plain loop and Evidently.

The same seeded data (200,000 rows x 20 numeric columns for reference and for current; half of the
columns shifted) go through:

- `modelpilot exact`: `modelpilot.stats.drift.compare_frames` on the raw arrays: decile edges of the
  reference, PSI and Jensen-Shannon over those bins, and the **exact** two-sample KS statistic and
  p-value over whole columns (scipy's p-value and method selection), plus Benjamini-Hochberg.
- `modelpilot sketch`: the product path. `build_profile` of the reference (edges, counts, a 5,000
  value sample), then `WindowSketch.update` with every current row (counts over the bins and a
  5,000 value bottom-k sample) and `compare`: PSI/JS over all rows, KS on the **bounded samples**
  (5,000 vs 5,000). Timed in total and for the window part alone (the profile is computed once, at
  registration).
- `loop`: per column `np.percentile` deciles, `np.histogram` of both sides, PSI by the formula,
  `scipy.spatial.distance.jensenshannon`, `scipy.stats.ks_2samp` (exact KS over whole columns).
- `evidently psi`: `Report([DataDriftPreset(method="psi")]).run(current, reference)`.
- `evidently default`: `Report([DataDriftPreset()]).run(current, reference)` (for numeric columns
  of more than 1,000 rows Evidently picks the normed Wasserstein distance).

The data are column-major (each column contiguous, as in Parquet, Arrow or a pandas block).
Every side runs in its own subprocess that first builds the data (from the seed), then resets the
kernel's peak-RSS mark (`/proc/self/clear_refs`), so "peak MiB" is the peak resident memory above
the data and imports. Times are wall-clock; the fast sides take the median of `--repeat` runs, the
Evidently ones one run. modelpilot alone is also timed at 1,000,000 x 50. PSI identity: the bin
shares of `modelpilot exact` and of the loop must be equal to the last bit and the PSI values within
1e-12. Writes bench/out/drift.json (docs/architecture.md, "Benchmark output").

    python bench/drift.py [--rows 200000] [--cols 20] [--big-rows 1000000] [--big-cols 50]
                          [--repeat 3] [--skip-evidently] [--out bench/out/drift.json]

Design decision: what each side computes is pinned in this docstring and in the JSON `notes`,
because a speed ratio means nothing unless both sides did comparable work. Evidently runs in its
own venv (`modelpilot.testing.evidently`, made on first use: Evidently pins pandas 2 and is no
dependency of the product), with the same numpy, so its side sees the same seeded data.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE = 5000
BINS = 10


def make_data(rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current, (rows, cols) float64; even columns drift; every 4th has ties."""
    rng = np.random.default_rng(seed)
    # Column-major, so each column is one contiguous array, as Parquet, Arrow and pandas hold them.
    ref = np.empty((rows, cols), order="F")
    cur = np.empty((rows, cols), order="F")
    for j in range(cols):
        kind = j % 4
        shift = 0.02 * (1 + j // 2) if j % 2 == 0 else 0.0
        if kind == 0:
            ref[:, j] = rng.standard_normal(rows)
            cur[:, j] = rng.standard_normal(rows) + shift
        elif kind == 1:
            ref[:, j] = rng.lognormal(0.0, 0.7, rows)
            cur[:, j] = rng.lognormal(shift, 0.7, rows)
        elif kind == 2:
            ref[:, j] = np.round(rng.normal(50, 10, rows))  # integers: many ties
            cur[:, j] = np.round(rng.normal(50 + 10 * shift, 10, rows))
        else:
            ref[:, j] = rng.exponential(1.0, rows)
            cur[:, j] = rng.exponential(1.0 + shift, rows)
    return ref, cur


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ---- the sides (each returns per-column PSI, and the bin shares where it has them) ---------


def side_modelpilot_exact(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    from modelpilot.stats import drift

    names = [f"f{j}" for j in range(ref.shape[1])]
    report = drift.compare_frames(
        {n: ref[:, j] for j, n in enumerate(names)},
        {n: cur[:, j] for j, n in enumerate(names)},
        bins=BINS,
        methods=("psi", "ks", "js"),
    )
    return {
        "psi": [f.psi for f in report.features],
        "ks_statistic": [f.ks_statistic for f in report.features],
        "ks_pvalue": [f.ks_pvalue for f in report.features],
        "ref_shares": [f.reference_proportions for f in report.features],
        "cur_shares": [f.current_proportions for f in report.features],
        "drifted": report.drifted_features,
    }


def side_modelpilot_sketch(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    from modelpilot.stats import drift, profile

    names = [f"f{j}" for j in range(ref.shape[1])]
    t0 = time.perf_counter()
    prof = profile.build_profile(
        {n: ref[:, j] for j, n in enumerate(names)},
        bins=BINS,
        sample_size=SAMPLE,
        rng=np.random.default_rng(1),
    )
    t1 = time.perf_counter()
    sketch = profile.WindowSketch.empty(prof, reservoir_size=SAMPLE, seed=2)
    sketch.update({n: cur[:, j] for j, n in enumerate(names)})
    report = drift.compare(prof, sketch, methods=("psi", "ks", "js"))
    t2 = time.perf_counter()
    return {
        "psi": [f.psi for f in report.features],
        "ks_statistic": [f.ks_statistic for f in report.features],
        "profile_seconds": t1 - t0,
        "window_seconds": t2 - t1,
        "drifted": report.drifted_features,
    }


def side_loop(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    import scipy.spatial.distance
    import scipy.stats

    out: dict[str, list[Any]] = {"psi": [], "ks_statistic": [], "ks_pvalue": [], "js": []}
    out["ref_shares"], out["cur_shares"] = [], []
    for j in range(ref.shape[1]):
        r_col, c_col = ref[:, j], cur[:, j]
        edges = np.percentile(r_col, np.linspace(0, 100, BINS + 1))
        edges[0], edges[-1] = -np.inf, np.inf
        r = np.histogram(r_col, edges)[0] / r_col.size
        c = np.histogram(c_col, edges)[0] / c_col.size
        rf, cf = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
        out["psi"].append(float(np.sum((cf - rf) * np.log(cf / rf))))
        out["js"].append(float(scipy.spatial.distance.jensenshannon(r, c)))
        ks = scipy.stats.ks_2samp(r_col, c_col)
        out["ks_statistic"].append(float(ks.statistic))
        out["ks_pvalue"].append(float(ks.pvalue))
        out["ref_shares"].append(r.tolist())
        out["cur_shares"].append(c.tolist())
    return out


def _evidently(ref: np.ndarray, cur: np.ndarray, method: str | None) -> dict[str, Any]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    names = [f"f{j}" for j in range(ref.shape[1])]
    ref_df = pd.DataFrame(ref, columns=names)
    cur_df = pd.DataFrame(cur, columns=names)
    preset = DataDriftPreset(method=method) if method else DataDriftPreset()
    t0 = time.perf_counter()
    snapshot = Report([preset]).run(cur_df, ref_df)
    elapsed = time.perf_counter() - t0
    values: list[float] = []
    methods: set[str] = set()
    for metric in snapshot.dict()["metrics"]:
        if metric["config"].get("type", "").endswith("ValueDrift"):
            values.append(float(metric["value"]))
            methods.add(str(metric["config"].get("method")))
    return {"psi": values, "methods": sorted(methods), "inner_seconds": elapsed}


SIDES = {
    "modelpilot-exact": side_modelpilot_exact,
    "modelpilot-sketch": side_modelpilot_sketch,
    "loop": side_loop,
    "evidently-psi": lambda r, c: _evidently(r, c, "psi"),
    "evidently-default": lambda r, c: _evidently(r, c, None),
}


def worker(side: str, rows: int, cols: int, seed: int, repeat: int) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    # Import what the side needs before measuring, so imports count in neither time nor memory.
    if side.startswith("evidently"):  # in Evidently's own venv: no modelpilot there
        import evidently.presets  # noqa: F401
        import pandas  # noqa: F401
    else:
        import scipy.spatial.distance
        import scipy.stats  # noqa: F401

        from modelpilot.stats import drift, profile  # noqa: F401
    ref, cur = make_data(rows, cols, seed)
    times, peaks = [], []
    result: dict[str, Any] = {}
    for _ in range(repeat):
        gc.collect()
        exact_peak = _reset_peak()
        rss0 = _status_kib("VmRSS")
        t0 = time.perf_counter()
        result = SIDES[side](ref, cur)
        elapsed = time.perf_counter() - t0
        # Evidently: time Report.run only (its DataFrames are built inside the side, untimed).
        times.append(float(result.get("inner_seconds", elapsed)))
        peak = _status_kib("VmHWM") if exact_peak else rss0
        peaks.append((peak - rss0) / 1024)
    result.update(
        {
            "side": side,
            "seconds": statistics.median(times),
            "min_seconds": min(times),
            "all_seconds": times,
            "peak_mib": max(peaks),
            "peak_is_exact": exact_peak,
            "load_average_1min": os.getloadavg()[0],
        }
    )
    return result


def run_side(side: str, *, rows: int, cols: int, seed: int, repeat: int) -> dict[str, Any]:
    interpreter = sys.executable
    if side.startswith("evidently"):
        from modelpilot.testing import evidently

        interpreter = str(evidently.python())
    cmd = [interpreter, __file__, "--worker", side, "--rows", str(rows), "--cols", str(cols),
           "--seed", str(seed), "--repeat", str(repeat)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench side {side} failed:\n{proc.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"  {side:<18} {rows:>9,} x {cols:<3} {data['seconds']:8.3f} s "
        f"(min {data['min_seconds']:.3f})   peak +{data['peak_mib']:7.1f} MiB   "
        f"load {data['load_average_1min']:.1f}",
        flush=True,
    )
    return data


def _figure(metric: str, value: float, unit: str, baseline: str | None = None,
            baseline_value: float | None = None) -> dict[str, Any]:  # fmt: skip
    ratio = baseline_value / value if baseline_value is not None and value > 0 else None
    return {
        "metric": metric,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": None if baseline_value is None else round(baseline_value, 4),
        "ratio": None if ratio is None else round(ratio, 2),
        "better": "lower",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--big-cols", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/out/drift.json"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        res = worker(args.worker, args.rows, args.cols, args.seed, args.repeat)
        print(json.dumps(res))
        return

    rows, cols = args.rows, args.cols
    size = f"{rows // 1000}k_x_{cols}"
    print(f"drift benchmark: {rows:,} x {cols} reference and current, seed {args.seed}")
    exact = run_side("modelpilot-exact", rows=rows, cols=cols, seed=args.seed, repeat=args.repeat)
    sketch = run_side("modelpilot-sketch", rows=rows, cols=cols, seed=args.seed, repeat=args.repeat)
    loop = run_side("loop", rows=rows, cols=cols, seed=args.seed, repeat=args.repeat)
    ev_psi = ev_def = None
    if not args.skip_evidently:
        ev_psi = run_side("evidently-psi", rows=rows, cols=cols, seed=args.seed, repeat=1)
        ev_def = run_side("evidently-default", rows=rows, cols=cols, seed=args.seed, repeat=1)
    big = f"{args.big_rows // 1_000_000}m_x_{args.big_cols}" if args.big_rows >= 1_000_000 else (
        f"{args.big_rows // 1000}k_x_{args.big_cols}")  # fmt: skip
    print(f"modelpilot alone: {args.big_rows:,} x {args.big_cols}")
    big_exact = run_side(
        "modelpilot-exact", rows=args.big_rows, cols=args.big_cols, seed=args.seed, repeat=1
    )
    big_sketch = run_side(
        "modelpilot-sketch", rows=args.big_rows, cols=args.big_cols, seed=args.seed, repeat=1
    )

    # PSI identity with the loop on the same bins.
    shares_equal = exact["ref_shares"] == loop["ref_shares"] and (
        exact["cur_shares"] == loop["cur_shares"]
    )
    psi_diff = float(np.max(np.abs(np.array(exact["psi"]) - np.array(loop["psi"]))))
    ks_stat_diff = float(
        np.max(np.abs(np.array(exact["ks_statistic"]) - np.array(loop["ks_statistic"])))
    )
    ks_p_diff = float(np.max(np.abs(np.array(exact["ks_pvalue"]) - np.array(loop["ks_pvalue"]))))
    sketch_psi_diff = float(np.max(np.abs(np.array(sketch["psi"]) - np.array(exact["psi"]))))

    figures = [
        _figure(f"seconds_{size}_exact_ks", exact["seconds"], "s", "per-column loop (np.percentile"
                " + np.histogram + scipy ks_2samp + jensenshannon)", loop["seconds"]),
        _figure(f"seconds_{size}_bounded_ks", sketch["seconds"], "s", "per-column loop (exact KS)",
                loop["seconds"]),
        _figure(f"seconds_{size}_window_only_bounded_ks", sketch["window_seconds"], "s"),
        _figure(f"peak_mib_{size}_exact_ks", exact["peak_mib"], "MiB", "per-column loop",
                loop["peak_mib"]),
    ]  # fmt: skip
    if ev_psi and ev_def:
        figures += [
            _figure(f"seconds_{size}_exact_ks", exact["seconds"], "s",
                    "evidently DataDriftPreset (psi)", ev_psi["seconds"]),
            _figure(f"seconds_{size}_exact_ks", exact["seconds"], "s",
                    "evidently DataDriftPreset (default)", ev_def["seconds"]),
            _figure(f"seconds_{size}_bounded_ks", sketch["seconds"], "s",
                    "evidently DataDriftPreset (psi)", ev_psi["seconds"]),
            _figure(f"seconds_{size}_bounded_ks", sketch["seconds"], "s",
                    "evidently DataDriftPreset (default)", ev_def["seconds"]),
            _figure(f"peak_mib_{size}_exact_ks", exact["peak_mib"], "MiB",
                    "evidently DataDriftPreset (psi)", ev_psi["peak_mib"]),
            _figure(f"peak_mib_{size}_exact_ks", exact["peak_mib"], "MiB",
                    "evidently DataDriftPreset (default)", ev_def["peak_mib"]),
        ]  # fmt: skip
    figures += [
        _figure(f"seconds_{big}_exact_ks", big_exact["seconds"], "s"),
        _figure(f"seconds_{big}_bounded_ks", big_sketch["seconds"], "s"),
        _figure(f"seconds_{big}_window_only_bounded_ks", big_sketch["window_seconds"], "s"),
        _figure(f"peak_mib_{big}_exact_ks", big_exact["peak_mib"], "MiB"),
        _figure(f"peak_mib_{big}_bounded_ks", big_sketch["peak_mib"], "MiB"),
        _figure("psi_max_abs_diff_vs_loop", psi_diff, "abs"),
    ]

    targets = {
        "psi identical to the loop on the same bins": shares_equal and psi_diff <= 1e-12,
        "ks equal to scipy (1e-9)": ks_stat_diff <= 1e-9 and ks_p_diff <= 1e-9,
        ">= 3x faster than the loop (exact KS)": loop["seconds"] / exact["seconds"] >= 3,
        ">= 3x faster than the loop (bounded KS)": loop["seconds"] / sketch["seconds"] >= 3,
    }
    if ev_psi and ev_def:
        targets[">= 10x faster than evidently psi (exact KS)"] = (
            ev_psi["seconds"] / exact["seconds"] >= 10
        )
        targets[">= 20x faster than evidently default (exact KS)"] = (
            ev_def["seconds"] / exact["seconds"] >= 20
        )
    print()
    print(f"{'side':<22}{'seconds':>10}{'x loop':>9}{'peak MiB':>10}")
    rows_out = [("modelpilot exact KS", exact), ("modelpilot bounded KS", sketch), ("loop", loop)]
    if ev_psi and ev_def:
        rows_out += [("evidently psi", ev_psi), ("evidently default", ev_def)]
    for label, d in rows_out:
        print(
            f"{label:<22}{d['seconds']:>10.3f}{loop['seconds'] / d['seconds']:>9.2f}"
            f"{d['peak_mib']:>10.1f}"
        )
    print(
        f"  (bounded KS: profile build {sketch['profile_seconds']:.3f} s once, "
        f"window {sketch['window_seconds']:.3f} s per run)"
    )
    print(
        f"PSI: bin shares identical to the loop: {shares_equal}; max |dPSI| {psi_diff:.3g}; "
        f"sketch path max |dPSI| vs exact {sketch_psi_diff:.3g}"
    )
    print(f"KS vs scipy: max |dD| {ks_stat_diff:.3g}, max |dp| {ks_p_diff:.3g}")
    for label, ok in targets.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {label}")

    out = {
        "name": "drift",
        "description": f"PSI+KS+JS for every column, {rows:,} x {cols} numeric",
        "params": {
            "rows": rows,
            "cols": cols,
            "big_rows": args.big_rows,
            "big_cols": args.big_cols,
            "bins": BINS,
            "bounded_sample": SAMPLE,
            "repeat": args.repeat,
            "seed": args.seed,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "evidently_methods": {
                "psi": ev_psi["methods"] if ev_psi else None,
                "default": ev_def["methods"] if ev_def else None,
            },
        },
        "figures": figures,
        "load_average_1min": {
            d["side"]: d["load_average_1min"] for d in (exact, sketch, loop, ev_psi, ev_def) if d
        },
        "targets": targets,
        "checks": {
            "psi_bin_shares_identical_to_loop": shares_equal,
            "psi_max_abs_diff_vs_loop": psi_diff,
            "ks_statistic_max_abs_diff_vs_scipy": ks_stat_diff,
            "ks_pvalue_max_abs_diff_vs_scipy": ks_p_diff,
            "bounded_path_psi_max_abs_diff_vs_exact": sketch_psi_diff,
        },
        "notes": (
            "exact KS = compare_frames (decile PSI, JS, exact two-sample KS statistic and scipy "
            "p-value over whole columns, BH); bounded KS = build_profile + WindowSketch.update of "
            "every current row + compare (PSI/JS over all rows, KS on 5,000 vs 5,000 samples); "
            "loop = per-column np.percentile + 2x np.histogram + PSI + jensenshannon + "
            "scipy.stats.ks_2samp; Evidently = Report([DataDriftPreset(...)]).run, DataFrames "
            "built before timing. Wall-clock medians of `repeat` runs (Evidently: one run), each "
            "side in its own process; peak MiB = VmHWM above the resident size before the run. The "
            "machine is shared: each side records the 1-minute load average after its runs."
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
