"""The kind tier runs the real-node tier's test bodies (issue 13, item 4: same images, same
tests): `e2e.load_test_bodies` must hand over every test and every fixture those tests define
in their own module, or a test collected on kind would fail for a missing fixture, not a bug."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from modelpilot.testing import e2e

REAL_POD_TESTS = Path(__file__).resolve().parents[1] / "e2e" / "test_real_pods.py"
# Fixtures the kind tier provides itself (tests/kind/test_e2e_kind.py) or pytest does.
PROVIDED = {"cluster", "request"}


def _params(value: Any) -> set[str]:
    function = getattr(value, "_get_wrapped_function", lambda: value)()
    return set(inspect.signature(function).parameters)


def test_the_kind_tier_gets_every_real_pod_test_and_the_fixtures_they_need() -> None:
    bodies = e2e.load_test_bodies(REAL_POD_TESTS)
    tests = {name for name in bodies if name.startswith("test_")}
    source = REAL_POD_TESTS.read_text()
    assert tests == {
        line.split("(")[0][4:] for line in source.splitlines() if line.startswith("def test_")
    }
    fixtures = set(bodies) - tests
    for name in tests:
        parametrized = {
            arg.strip()
            for mark in getattr(bodies[name], "pytestmark", [])
            if mark.name == "parametrize"
            for arg in (mark.args[0].split(",") if isinstance(mark.args[0], str) else mark.args[0])
        }
        missing = _params(bodies[name]) - PROVIDED - fixtures - parametrized
        assert not missing, (name, missing)
    for name in fixtures:
        assert not _params(bodies[name]) - PROVIDED - fixtures, name
