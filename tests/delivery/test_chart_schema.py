"""values.schema.json is generated from the commented values.yaml (`make chart-schema`)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
SCRIPT = REPO / "hack" / "chart_schema.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_schema", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_schema_equals_the_one_generated_from_values_yaml() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{proc.stderr} (run `make chart-schema` and commit the result)"


def test_a_new_commented_key_gets_its_type_description_and_annotations() -> None:
    gen = _generator()
    schema = gen.generate(
        "# -- The block.\n"
        "block:\n"
        "  # -- How many; at least one.\n"
        '  # @schema {"minimum": 1,\n'
        '  # @schema  "maximum": 9}\n'
        "  count: 2\n"
        "  # -- Extra labels.\n"
        '  # @schema {"additionalProperties": {"type": "string"}}\n'
        "  labels:\n"
        "    team: ml\n"
        "  ratio: 0.5\n"
        "  enabled: true\n"
        "  names: [a]\n"
    )
    block = schema["properties"]["block"]
    assert block["description"] == "The block."
    assert block["additionalProperties"] is False
    count = block["properties"]["count"]
    assert count == {
        "type": "integer",
        "description": "How many; at least one.",
        "minimum": 1,
        "maximum": 9,
    }
    # An open mapping: its defaults are examples, so no keys are inferred.
    assert "properties" not in block["properties"]["labels"]
    assert block["properties"]["ratio"]["type"] == "number"
    assert block["properties"]["enabled"]["type"] == "boolean"
    assert block["properties"]["names"]["items"] == {"type": "string"}
    with pytest.raises(jsonschema.ValidationError, match="cuont"):
        jsonschema.validate({"block": {"cuont": 1}}, schema)
    with pytest.raises(jsonschema.ValidationError, match="0 is less than the minimum"):
        jsonschema.validate({"block": {"count": 0}}, schema)
    jsonschema.validate({"block": {"labels": {"any": "thing"}}}, schema)


def test_a_bad_annotation_names_the_line_and_the_key() -> None:
    gen = _generator()
    with pytest.raises(SystemExit, match=r"values.yaml:2: @schema of key"):
        gen.generate("# @schema {not json}\nkey: 1\n")


def test_the_schema_file_is_the_generators_rendering() -> None:
    committed = json.loads((CHART / "values.schema.json").read_text())
    assert committed["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert committed["properties"]["global"]["type"] == "object"
