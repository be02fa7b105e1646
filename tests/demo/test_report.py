"""The demo's HTML report, built from recorded timelines (no process is started)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from modelpilot import errors
from modelpilot.cli import main as cli_main
from modelpilot.demo import report
from modelpilot.demo import timeline as tl

pytestmark = pytest.mark.slow


def _simulated_timeline(seed: int = 3) -> tl.Timeline:
    """A seeded two-arm Beta-Bernoulli Thompson run (0.72 vs 0.91), recorded every 100 requests."""
    rng = np.random.default_rng(seed)
    rates = {"stable": 0.72, "challenger": 0.91}
    alpha = dict.fromkeys(rates, 1.0)
    beta = dict.fromkeys(rates, 1.0)
    requests = dict.fromkeys(rates, 0)
    weights = {"stable": 50.0, "challenger": 50.0}
    out = tl.Timeline(started_at=1_700_000_000.0)
    phase = "Running"
    for tick in range(1, 40):
        for name in rates:
            n = int(rng.binomial(100, weights[name] / 100))
            wins = int(rng.binomial(n, rates[name]))
            requests[name] += n
            alpha[name] += wins
            beta[name] += n - wins
        draws = {k: rng.beta(alpha[k], beta[k], size=4000) for k in rates}
        p_best = float(np.mean(draws["challenger"] > draws["stable"]))
        weights = {"challenger": min(95.0, max(5.0, 100 * p_best))}
        weights["stable"] = 100.0 - weights["challenger"]
        if p_best > 0.95 and min(requests.values()) >= 300:
            phase = "Promoted"
        out.snapshots.append(
            tl.Snapshot(
                t=5.0 * tick,
                phase=phase,
                variants=[
                    tl.VariantSample(
                        name=k,
                        weight=weights[k],
                        requests=requests[k],
                        rewards=alpha[k] - 1,
                        alpha=alpha[k],
                        beta=beta[k],
                        probability_to_be_best=p_best if k == "challenger" else 1 - p_best,
                    )
                    for k in rates
                ],
            )
        )
        if phase == "Promoted":
            break
    out.steps = [
        tl.Step(key="mlflow", title="MLflow", status="done", started=0.0, finished=2.5),
        tl.Step(key="drift", title="Drift run", status="pending", detail="pending: issue 5"),
    ]
    out.drift = [
        tl.DriftFeature(feature="f0", psi=0.9, drifted=True, ks_pvalue=1e-30),
        tl.DriftFeature(feature="f1", psi=0.01, drifted=False, ks_pvalue=0.6),
        tl.DriftFeature(feature="f2", psi=0.45, drifted=True, ks_pvalue=1e-12),
        tl.DriftFeature(feature="f3", psi=0.02, drifted=False, ks_pvalue=0.3),
    ]
    return out


def _images(html: str) -> list[bytes]:
    return [
        base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    ]


def test_a_full_timeline_gives_three_embedded_png_plots_and_no_external_reference() -> None:
    html = report.build_html(_simulated_timeline())
    images = _images(html)
    assert len(images) == 3
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert not re.search(r"(src|href)=['\"](?!data:)", html)


def test_the_summary_states_the_outcome_the_timeline_records() -> None:
    timeline = _simulated_timeline()
    last = timeline.snapshots[-1]
    lines = report.summary_lines(timeline)
    assert lines[0] == "1 of 2 steps done, 1 pending."
    assert f"ended in phase {last.phase}" in lines[1]
    challenger = next(v for v in last.variants if v.name == "challenger")
    first = next(v for v in timeline.snapshots[0].variants if v.name == "challenger")
    assert any(
        line.startswith(
            f"Variant challenger: weight {first.weight:.0f}% -> {challenger.weight:.0f}%"
        )
        and f"reward rate {challenger.rewards / challenger.requests:.3f}" in line
        for line in lines
    )
    assert "Drift run: 2 of 4 features flagged (f0, f2) at PSI >= 0.2." in lines


def test_the_posterior_plot_draws_the_beta_densities_of_the_last_snapshot() -> None:
    snap = _simulated_timeline().snapshots[-1]
    fig = report.plot_posteriors(snap)
    assert fig is not None
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2
    for line, v in zip(lines, snap.variants, strict=True):
        x, y = line.get_xdata(), line.get_ydata()
        np.testing.assert_allclose(y, sps.beta.pdf(x, v.alpha, v.beta), rtol=1e-12)


def test_pending_steps_and_missing_results_are_said_not_hidden() -> None:
    timeline = tl.Timeline(
        steps=[
            tl.Step(
                key="cluster",
                title="Local control plane",
                status="pending",
                detail="pending: the local control plane harness (issue 3)",
            )
        ]
    )
    html = report.build_html(timeline)
    assert "pending: the local control plane harness (issue 3)" in html
    assert "Pending: no experiment ran." in html
    assert "Pending: no drift run." in html
    assert _images(html) == []


def test_a_timeline_round_trips_through_json(tmp_path: Path) -> None:
    timeline = _simulated_timeline()
    path = tmp_path / "timeline.json"
    timeline.save(path)
    assert tl.load(path) == timeline


def test_a_malformed_timeline_is_an_input_error_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "timeline.json"
    path.write_text('{"steps": [{"key": "a", "title": "A", "status": "great"}]}')
    with pytest.raises(errors.InputError, match=r"steps\[a\]\.status is 'great'; allowed: "):
        tl.load(path)


def test_demo_report_rebuilds_the_html_from_a_saved_timeline(tmp_path: Path) -> None:
    source = tmp_path / "timeline.json"
    _simulated_timeline().save(source)
    out = tmp_path / "report.html"
    cli_main.main(["demo", "report", "--timeline", str(source), "--out", str(out)])
    assert len(_images(out.read_text())) == 3


def test_demo_report_on_a_missing_timeline_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["demo", "report", "--timeline", str(tmp_path / "nope.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("modelpilot: error: timeline: no such file")
    assert "\n" not in err


def test_the_report_of_a_recorded_demo_run_shows_the_promotion_and_the_drift() -> None:
    """tests/demo/data/timeline.json is the timeline of a real `modelpilot demo` run."""
    timeline = tl.load(Path(__file__).parent / "data" / "timeline.json")
    html = report.build_html(timeline)
    assert len(_images(html)) == 3
    assert timeline.final_phase == "Promoted"
    assert all(step.status == "done" for step in timeline.steps)
    assert sorted(d.feature for d in timeline.drift if d.drifted) == ["f0", "f2"]
    weights = [
        next(v.weight for v in snap.variants if v.name == "challenger")
        for snap in timeline.snapshots
        if snap.phase == "Running"
    ]
    assert weights[0] == 50
    assert max(weights) > weights[0]
