"""One classification of modelpilot's errors: what the caller should do, by class alone."""

from __future__ import annotations

import pytest

from modelpilot import errors
from modelpilot.api import routes, stats
from modelpilot.operator.experiment import sources
from modelpilot.registry import client


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (client.ModelNotFound("models:/x/9"), "input", 2),
        (routes.InvalidRoutes("routes.variants: empty"), "input", 2),
        (stats.InvalidStats("variants.stable.requests"), "input", 2),
        (client.RegistryUnavailable("http://mlflow:5000 did not answer"), "transient", 75),
        (sources.SourceError("GET http://r/stats: refused"), "transient", 75),
        (errors.CheckFailed("accuracy 0.7 < 0.9"), "check", 1),
    ],
)
def test_every_error_says_by_its_class_whether_to_fix_the_input_retry_or_accept_a_no(
    exc: errors.ModelpilotError, kind: errors.Kind, code: int
) -> None:
    assert errors.kind_of(exc) == kind
    assert errors.exit_code(exc) == code


def test_an_outage_of_the_registry_is_never_bad_input() -> None:
    outage = client.RegistryUnavailable("down")
    assert not isinstance(outage, errors.InputError)
    assert errors.kind_of(outage) == "transient"


def test_an_exception_modelpilot_did_not_raise_on_purpose_has_no_kind() -> None:
    assert errors.kind_of(KeyError("x")) is None
    assert errors.kind_of(ValueError("x")) is None
