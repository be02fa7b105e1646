"""After the decision, the demo names what serves now and shows every failed user request.

Built from recorded timelines (no process is started): the view, the report's summary and its
table of what the users saw.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from modelpilot.demo import report, view
from modelpilot.demo import timeline as tl


def _variant(
    name: str, weight: float, p_best: float, requests: int, version: str
) -> tl.VariantSample:
    return tl.VariantSample(
        name=name,
        weight=weight,
        requests=requests,
        rewards=requests * 0.8,
        probability_to_be_best=p_best,
        model_version=version,
    )


def _promoted() -> tl.Timeline:
    record = tl.Timeline(started_at=1_700_000_000.0)
    record.snapshots = [
        tl.Snapshot(t=0.0, phase="Running", variants=[
            _variant("stable", 50, 0.5, 0, "1"), _variant("challenger", 50, 0.5, 0, "2")]),
        tl.Snapshot(t=20.0, phase="Running", variants=[
            _variant("stable", 8, 0.03, 140, "1"), _variant("challenger", 92, 0.97, 560, "2")]),
        # What the status says once promoted: the new stable variant, with the old champion's
        # probability to be best still beside it.
        tl.Snapshot(t=22.0, phase="Promoted", variants=[_variant("stable", 100, 0.001, 0, "2")]),
    ]  # fmt: skip
    record.outcome = tl.Outcome(
        phase="Promoted",
        winner="challenger",
        reason="challenger has P(best) 0.970 >= 0.95",
        model="demo-classifier",
        serving_version="2",
        previous_version="1",
        challenger_version="2",
    )
    record.clients = [
        tl.ClientTally(variant="challenger", requests=560, errors=0),
        tl.ClientTally(variant="stable", requests=140, errors=0),
    ]
    return record


def test_the_decision_snapshot_is_the_last_one_before_the_experiment_ended() -> None:
    snap = _promoted().decision_snapshot()
    assert snap is not None
    assert (snap.t, snap.phase) == (20.0, "Running")


def test_after_promotion_the_outcome_names_the_new_champion_and_what_became_of_the_old_one() -> (
    None
):
    text = " ".join(tl.outcome_sentences(_promoted()))
    assert (
        "The challenger won with probability 0.970 to be the better model after 700 requests"
        in text
    )
    assert "Now serving: demo-classifier version 2 as the deployment's stable model" in text
    assert "previous champion, version 1, was retired" in text
    # The stale P(best) of the promoted status never reads as the verdict.
    assert "0.001" not in text


def test_the_plain_view_tells_the_outcome_once_and_never_calls_the_champion_the_loser() -> None:
    out = io.StringIO()
    shown = view.View(stream=out, live=False)
    record = _promoted()
    shown.update(record)
    shown.update(record)
    printed = out.getvalue()
    assert printed.count("Now serving: demo-classifier version 2") == 1
    assert "phase=Promoted | stable: weight=100% (version 2)" in printed
    assert "p_best=0.001" not in printed


def test_the_live_panel_shows_the_numbers_the_decision_was_taken_on() -> None:
    out = io.StringIO()
    Console(file=out, width=140).print(view.render(_promoted()))
    panel = out.getvalue()
    assert "at the decision (t=20s)" in panel
    assert "0.970" in panel
    assert "0.001" not in panel
    assert "Now serving" in panel


def test_the_report_lists_failed_user_requests_per_variant_and_the_total() -> None:
    record = _promoted()
    record.clients[1].errors = 3
    record.transport_errors = 2
    html = report.build_html(record)
    assert "What the users saw" in html
    assert "<td>stable</td><td>140</td><td>3</td>" in html
    assert "(no answer)</td><td>2</td>" in html
    lines = report.summary_lines(record)
    assert "Failed user requests over the whole run: 5 (2 without any answer)." in lines
    assert record.client_errors == 5


def test_a_saved_timeline_keeps_the_outcome_and_the_client_counts(tmp_path: Path) -> None:
    record = _promoted()
    path = tmp_path / "timeline.json"
    record.save(path)
    again = tl.load(path)
    assert again.outcome == record.outcome
    assert again.clients == record.clients
    assert again.client_errors == 0
