"""The operator's one translation of errors into kopf's retry decisions (no control plane)."""

from __future__ import annotations

import kopf

from modelpilot import errors
from modelpilot.kube import apply
from modelpilot.operator.experiment import sources
from modelpilot.operator.handlers import failures
from modelpilot.registry import client


def test_an_outage_is_retried_after_the_given_delay() -> None:
    out = failures.for_kopf(client.RegistryUnavailable("http://mlflow:5000: refused"), delay=7)
    assert isinstance(out, kopf.TemporaryError)
    assert out.delay == 7
    assert "refused" in str(out)
    assert isinstance(failures.for_kopf(sources.SourceError("x"), delay=1), kopf.TemporaryError)


def test_bad_input_and_a_failed_check_are_not_retried() -> None:
    assert isinstance(failures.for_kopf(client.ModelNotFound("no v9")), kopf.PermanentError)
    assert isinstance(failures.for_kopf(errors.CheckFailed("no")), kopf.PermanentError)


def test_a_kubernetes_api_error_is_retried_and_the_message_says_what_failed() -> None:
    out = failures.for_kopf(
        apply.ConflictError("the object has been modified", status=409),
        delay=5,
        what="applying the desired objects failed",
    )
    assert isinstance(out, kopf.TemporaryError)
    assert str(out) == "applying the desired objects failed: the object has been modified"
