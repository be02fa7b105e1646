"""Conditions of both kinds follow one rule: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

import datetime as dt

from modelpilot.api import conditions
from modelpilot.operator import conditions as md_conditions
from modelpilot.operator.experiment import conditions as exp_conditions

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_the_timestamp_is_rfc3339_utc_to_the_second_and_reads_back() -> None:
    local = T0.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert conditions.timestamp(local) == "2026-01-02T03:04:05Z"
    assert conditions.parse_timestamp("2026-01-02T03:04:05Z") == T0.replace(microsecond=0)


def test_a_refreshed_reason_keeps_the_transition_time_and_a_flip_moves_it() -> None:
    first = conditions.set_condition(
        [], type_="Ready", status=True, reason="A", message="a", now=T0
    )
    same = conditions.set_condition(
        first, type_="Ready", status="True", reason="B", message="b", now=T1
    )
    assert same[0]["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert (same[0]["reason"], same[0]["message"]) == ("B", "b")
    flipped = conditions.set_condition(
        same, type_="Ready", status=False, reason="C", message="c", now=T1
    )
    assert flipped[0]["lastTransitionTime"] == conditions.timestamp(T1)


def test_both_kinds_write_identical_conditions_for_the_same_history() -> None:
    md: list[conditions.Condition] = []
    exp: list[conditions.Condition] = []
    for now, status in [(T0, True), (T1, True), (T1 + T1.resolution, False)]:
        md = md_conditions.set_condition(
            md,
            type_="Ready",
            status="True" if status else "False",
            reason="R",
            message="m",
            generation=None,
            now=now,
        )
        exp = exp_conditions.set_condition(
            exp,
            type_="Ready",
            status=status,
            reason="R",
            message="m",
            now=conditions.timestamp(now),
        )
    assert md == exp


def test_the_model_deployment_keeps_ready_first_and_the_experiment_keeps_its_order() -> None:
    md = md_conditions.set_condition(
        [], type_="Degraded", status="False", reason="R", message="m", generation=3, now=T0
    )
    md = md_conditions.set_condition(
        md, type_="Ready", status="True", reason="R", message="m", generation=3, now=T0
    )
    assert [c["type"] for c in md] == ["Ready", "Degraded"]
    assert md[0]["observedGeneration"] == 3
    exp = exp_conditions.set_condition(
        [{"type": "Completed", "status": "False"}],
        type_="Ready",
        status=True,
        reason="R",
        message="m",
        now=conditions.timestamp(T0),
    )
    assert [c["type"] for c in exp] == ["Completed", "Ready"]
