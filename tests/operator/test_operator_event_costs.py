"""What the operator spends on each watch event (issue 18, 1,000 ModelDeployments at once).

kopf builds a diff base (the "essence") of every event's body and logs every event handler's
success; at 1,000 ModelDeployments applied at once both were a tenth of the event loop's time each
(py-spy). These tests pin the cheaper forms down without changing what kopf compares or shows.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import kopf

from modelpilot.operator import main as operator_main


class _NoCopy:
    """A value that refuses to be deep-copied: where it sits must never be copied."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        raise AssertionError("deep-copied")


def _body(status: Any) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "modelpilot.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {
                "name": "iris",
                "namespace": "ns",
                "annotations": {"example.com/notes": "n" * 1000},
                "labels": {"team": "a"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {"model": {"name": "iris", "alias": "champion"}, "serving": {"replicas": 2}},
            "status": status,
        }
    )


def _storage() -> operator_main.SpecDiffBaseStorage:
    return operator_main.SpecDiffBaseStorage(
        prefix=operator_main.KOPF_PREFIX, key="last-handled-configuration"
    )


def test_the_diff_base_is_the_spec_alone_and_never_copies_the_status_or_metadata() -> None:
    body = _body({"history": [_NoCopy()], "conditions": []})
    essence = _storage().build(body=body, extra_fields=[("spec",)])
    assert essence == {"spec": body["spec"]}
    assert essence["spec"] is not body["spec"]  # a copy: later changes of the body stay out


def test_the_diff_base_equals_kopfs_own_essence_without_metadata() -> None:
    body = _body({"history": [{"version": "1"}], "conditions": []})
    ours = _storage().build(body=body, extra_fields=[("spec",)])
    theirs = kopf.AnnotationsDiffBaseStorage.build(_storage(), body=body, extra_fields=[("spec",)])
    theirs = copy.deepcopy(dict(theirs))
    theirs.pop("metadata", None)
    assert ours == theirs


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


def test_kopfs_per_event_success_lines_are_dropped_and_every_other_line_kept() -> None:
    quiet = operator_main._QuietEventSuccess()
    assert not quiet.filter(_record("Handler 'modeldeployment_owned_deployment_event' succeeded."))
    assert not quiet.filter(
        _record("Handler 'register.<locals>.experiment_deployment_event' succeeded.")
    )
    assert quiet.filter(_record("Handler 'register.<locals>.modeldeployment_create' succeeded."))
    assert quiet.filter(_record("Creation is processed: 1 succeeded; 0 failed."))
    assert quiet.filter(
        _record("Handler 'modeldeployment_event' failed with an exception.", logging.ERROR)
    )
