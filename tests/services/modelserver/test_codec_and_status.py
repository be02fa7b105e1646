"""Pure parts of the data plane: request decoding against a signature, drift status builders."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.driftjob import status
from modelpilot.modelserver import codec, errors, oip
from modelpilot.stats import drift as drift_stats

SCHEMA = (
    codec.Column("a", "double"),
    codec.Column("b", "long"),
    codec.Column("c", "string", required=False),
)


def test_instances_as_objects_and_as_lists_decode_to_the_same_columns() -> None:
    by_name = codec.decode_instances(
        [{"a": 1, "b": 2, "c": "x"}, {"a": 1.5, "b": 3}], SCHEMA, max_rows=10
    )
    by_position = codec.decode_instances([[1, 2, "x"], [1.5, 3, None]], SCHEMA, max_rows=10)
    assert (
        by_name.columns == by_position.columns == {"a": [1.0, 1.5], "b": [2, 3], "c": ["x", None]}
    )


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([{"a": "1", "b": 2}], "instances[0].a: expected a number"),
        ([{"a": 1.0, "b": 2.5}], "instances[0].b: expected an integer"),
        ([{"a": True, "b": 2}], "instances[0].a: expected a number"),
        ([{"a": 10**400, "b": 2}], "instances[0].a: 1000"),
        ([{"b": 2}], "instances[0].a: missing"),
        ([{"a": 1, "b": 2, "z": 0}], "instances[0].z: not an input"),
        ([[1, 2]], "instances[0]: expected 3 values"),
        ([7], "instances[0]: expected an object or a list"),
        ([], "instances: expected at least one row"),
    ],
)
def test_bad_instances_are_rejected_with_the_field_named(instances: object, message: str) -> None:
    with pytest.raises(errors.InvalidInputError) as info:
        codec.decode_instances(instances, SCHEMA, max_rows=10)
    assert message in info.value.message


def test_too_many_rows_are_a_413_not_a_422() -> None:
    with pytest.raises(errors.PayloadTooLargeError):
        codec.decode_instances([[1, 2, "x"]] * 11, SCHEMA, max_rows=10)


def test_v2_tensors_per_column_and_one_matrix_decode_to_the_same_columns() -> None:
    numeric = SCHEMA[:2]
    per_column = codec.decode_v2_inputs(
        [
            oip.Tensor("a", [2], "FP64", [1.0, 2.0]),
            oip.Tensor("b", [2], "INT64", [3, 4]),
        ],
        numeric,
        max_rows=10,
    )
    matrix = codec.decode_v2_inputs(
        [oip.Tensor("x", [2, 2], "INT64", [[1, 3], [2, 4]])],
        (codec.Column("a", "double"), codec.Column("b", "long")),
        max_rows=10,
    )
    as_lists = {k: v.tolist() for k, v in per_column.columns.items()}
    assert as_lists == {k: v.tolist() for k, v in matrix.columns.items()}
    assert as_lists == {"a": [1.0, 2.0], "b": [3, 4]}
    assert per_column.columns["a"].dtype == np.float64
    assert per_column.columns["b"].dtype == np.int64


def test_an_optional_column_left_out_of_v2_decodes_as_nulls_as_in_predict() -> None:
    # The signature's third column (a string with required=False) is sent by neither request,
    # and is placed second in the schema order here so the row count must come from a later tensor.
    schema = (SCHEMA[0], SCHEMA[2], SCHEMA[1])
    v2 = codec.decode_v2_inputs(
        [oip.Tensor("b", [2], "INT64", [3, 4]), oip.Tensor("a", [2], "FP64", [1.0, 2.0])],
        schema,
        max_rows=10,
    )
    predict = codec.decode_instances([{"a": 1.0, "b": 3}, {"a": 2.0, "b": 4}], schema, max_rows=10)
    assert list(v2.columns) == ["a", "c", "b"] == list(predict.columns)
    assert v2.rows == 2
    assert {k: list(v) for k, v in v2.columns.items()} == predict.columns
    assert predict.columns["c"] == [None, None]


def test_a_required_column_left_out_of_v2_is_still_refused_by_name() -> None:
    with pytest.raises(errors.InvalidInputError) as info:
        codec.decode_v2_inputs([oip.Tensor("c", [1], "BYTES", ["x"])], SCHEMA, max_rows=10)
    assert info.value.message == "inputs.a: missing (required by the signature)"


def test_a_tensors_declared_datatype_is_honoured_before_the_column_type() -> None:
    # 0.1 as FP32 is 0.100000001490116...: the model gets the float32 value, as from MLServer.
    decoded = codec.decode_v2_inputs(
        [oip.Tensor("a", [1], "FP32", [0.1]), oip.Tensor("b", [1], "INT8", [3])],
        SCHEMA[:2],
        max_rows=10,
    )
    assert decoded.columns["a"].tolist() == [float(np.float32(0.1))]
    binary = codec.decode_v2_inputs(
        [
            oip.Tensor(
                "a",
                [2],
                "FP64",
                oip.from_bytes(np.array([1.5, 2.5]).tobytes(), datatype="FP64", size=2, where="a"),
            ),
            oip.Tensor("b", [2], "INT32", np.array([7, 8], dtype=np.int32)),
        ],
        SCHEMA[:2],
        max_rows=10,
    )
    assert binary.columns["a"].tolist() == [1.5, 2.5]
    assert binary.columns["b"].tolist() == [7, 8]


def test_bytes_tensors_round_trip_through_the_length_prefixed_binary_form() -> None:
    words = np.array(["setosa", "", "virginica"], dtype=object)
    raw = oip.to_bytes(words)
    assert raw[:4] == (6).to_bytes(4, "little")
    back = oip.from_bytes(raw, datatype="BYTES", size=3, where="w")
    assert [b.decode() for b in back] == words.tolist()
    with pytest.raises(errors.InvalidInputError, match="truncated"):
        oip.from_bytes(raw[:-1], datatype="BYTES", size=3, where="w")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([oip.Tensor("a", [2], "FP64", [1.0])], "needs 2 values"),
        ([oip.Tensor("a", [1], "FP99", [1.0])], "datatype"),
        ([oip.Tensor("a", [-1], "FP64", [])], "shape"),
        (
            [
                oip.Tensor("a", [1], "FP64", [1.0]),
                oip.Tensor("b", [1], "FP64", [1.0]),
            ],
            "b is long; FP64 is not allowed",
        ),
        ([oip.Tensor("a", [1], "FP64", [True])], "inputs[0].data[0]: expected a number"),
        ([oip.Tensor("a", [1], "INT8", [300])], "300 is out of the range of INT8"),
        ([oip.Tensor("a", [1], "FP64", [10**400])], "out of the range of FP64"),
        (
            [oip.Tensor("a", [1], "FP64", [1.0]), oip.Tensor("b", [1], "UINT64", [2**63])],
            "outside the long range",
        ),
        ([oip.Tensor("a", [1], "FP64", [1.0])], "inputs.b: missing"),
    ],
)
def test_bad_v2_tensors_are_rejected_with_the_field_named(inputs: object, message: str) -> None:
    with pytest.raises(errors.InvalidInputError) as info:
        codec.decode_v2_inputs(inputs, SCHEMA[:2], max_rows=10)
    assert message in info.value.message


def _report(shift: float) -> drift_stats.DriftReport:
    rng = np.random.default_rng(0)
    ref = {"x": rng.normal(size=2000), "y": rng.normal(size=2000)}
    cur = {"x": rng.normal(loc=shift, size=2000), "y": rng.normal(size=2000)}
    return drift_stats.compare_frames(ref, cur)


def test_the_condition_is_true_with_the_drifted_feature_named_and_false_without_drift() -> None:
    drifted = _report(1.0)
    assert drifted.drifted_features == ["x"]
    state, reason, message = status.condition_for(drifted)
    assert (state, reason) == ("True", "DriftDetected")
    assert "x (psi" in message
    assert status.condition_for(_report(0.0))[:2] == ("False", "NoDrift")


def test_last_transition_time_moves_only_when_the_status_flips_and_other_conditions_stay() -> None:
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    t1, t2, t3 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"
    first = status.build_conditions(
        [ready], status="True", reason="DriftDetected", message="m", now=t1, generation=3
    )
    same = status.build_conditions(
        first, status="True", reason="DriftDetected", message="m2", now=t2, generation=4
    )
    flipped = status.build_conditions(
        first, status="False", reason="NoDrift", message="m3" * 600, now=t3, generation=4
    )
    assert first[0] == ready
    assert first[1]["lastTransitionTime"] == t1
    assert first[1]["observedGeneration"] == 3
    assert same[1]["lastTransitionTime"] == t1
    assert (same[1]["message"], same[1]["observedGeneration"]) == ("m2", 4)
    assert flipped[1]["lastTransitionTime"] == t3
    assert len(flipped[1]["message"]) == 1024
    assert [c["type"] for c in flipped] == ["Ready", "DriftDetected"]


def test_status_drift_holds_only_the_fields_of_the_crd_and_gauges_cover_every_feature() -> None:
    report = _report(1.0)
    summary = status.build_drift_summary(report, now="t", model_version="3", windows=2)
    assert status.build_status_drift(summary) == {
        "lastRun": "t",
        "maxPsi": round(report.max_psi, 6),
        "driftedFeatures": ["x"],
    }
    gauges = status.build_gauges(report)
    assert set(gauges["modelpilot_drift_psi"]) == {"x", "y"}
    assert gauges["modelpilot_drift_psi"]["x"] == report.feature("x").psi
