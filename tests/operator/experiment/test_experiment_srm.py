"""The interval's sample-ratio-mismatch test with a composite null (mixtures of splits in force)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from modelpilot.operator.experiment import srm


def test_with_one_split_in_force_the_p_value_is_scipys_chi_square() -> None:
    requests = {"stable": 530, "challenger": 470, "other": 1000}
    shares = {"stable": 0.25, "challenger": 0.25, "other": 0.5}
    got = srm.p_value(requests, [shares, shares], min_requests=100)
    oracle = sps.chisquare([530, 470, 1000], [500, 500, 1000]).pvalue
    assert got == pytest.approx(oracle, rel=1e-9)


def test_traffic_still_on_the_previous_split_is_no_mismatch_but_a_split_nobody_set_is() -> None:
    # One interval played entirely on the old 50/50 routes, read after the routes moved to 97/3.
    requests = {"stable": 209, "challenger": 191}
    old, new = {"stable": 0.5, "challenger": 0.5}, {"stable": 0.0244, "challenger": 0.9756}
    only_new = srm.p_value(requests, [new], min_requests=100)
    either = srm.p_value(requests, [old, new], min_requests=100)
    # Under-reporting: 30 % challenger where every mixture of 50/50 and 2/98 has more.
    under = srm.p_value({"stable": 700, "challenger": 300}, [old, new], min_requests=100)
    assert only_new is not None
    assert only_new < 1e-12
    assert either is not None
    assert either > 0.1
    assert under is not None
    assert under < 1e-6


def test_a_mixture_of_two_splits_is_accepted_at_the_chi_square_false_alarm_rate() -> None:
    rng = np.random.default_rng(4)
    old, new = {"a": 0.5, "b": 0.5}, {"a": 0.1, "b": 0.9}
    alarms = 0
    trials = 800
    for _ in range(trials):
        lam = rng.uniform()
        p_a = lam * 0.5 + (1 - lam) * 0.1
        a = int(rng.binomial(1000, p_a))
        p = srm.p_value({"a": a, "b": 1000 - a}, [old, new], min_requests=100)
        assert p is not None
        alarms += p < 0.01
    # Minimising over the mixture makes the test conservative: at most the nominal 1 %.
    assert alarms / trials <= 0.01


def test_too_few_requests_or_variants_are_not_tested() -> None:
    assert srm.p_value({"a": 10, "b": 20}, [{"a": 0.5, "b": 0.5}], min_requests=100) is None
    assert srm.p_value({"a": 500}, [{"a": 1.0}], min_requests=100) is None
    assert srm.p_value({"a": 990, "b": 10}, [{"a": 0.999, "b": 0.001}], min_requests=100) is None
