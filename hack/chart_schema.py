"""Generate the chart's values.schema.json from its commented values.yaml (`make chart-schema`).

    python hack/chart_schema.py            write charts/modelpilot/values.schema.json
    python hack/chart_schema.py --check    exit 1 when the committed schema differs

values.yaml is the one source: every key's default is its type, its `# --` comment (the helm-docs
convention) its description, and `# @schema {...}` lines add what a default cannot say (an enum, a
pattern, bounds, the items of a list, a key without a default). The JSON after `@schema` may run
over several `# @schema` lines; it is merged into the inferred node, so it can also override the
inferred type (e.g. `{"type": ["string", "null"]}`).

Inference: a string default is `string`, a whole number `integer`, a fraction `number`, true/false
`boolean`, a list `array` (of the type of its first item), a mapping with keys a closed `object`
(`additionalProperties: false`, so a typo fails `helm install`), and an empty mapping `{}`, or one
annotated with an `additionalProperties` other than false, an open object whose keys are not
inferred (annotate what its values are). Design decision: a line-based reader, not a YAML library
that keeps comments: the chart's values.yaml uses only block mappings, one key per line, so the
indentation gives every key's path, and the generator needs nothing beyond PyYAML.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "modelpilot"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")
HEADER = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "modelpilot chart values",
}


def _comments(lines: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Key path -> (description, `@schema` annotation) from the comment block above each key."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    stack: list[tuple[int, str]] = []
    block: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("#").strip())
            continue
        if not stripped:
            block = []
            continue
        match = KEY.match(line)
        if match is None:  # a list item or a continuation: not a key
            block = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        path = ".".join(k for _, k in stack)
        described, annotation = [], []
        in_description = False
        for text in block:
            if text.startswith("@schema"):
                annotation.append(text[len("@schema") :].strip())
                in_description = False
            elif text.startswith("-- "):
                described = [text[3:]]
                in_description = True
            elif in_description:
                described.append(text)
        try:
            extra = json.loads(" ".join(annotation)) if annotation else {}
        except json.JSONDecodeError as exc:
            raise SystemExit(f"values.yaml:{number}: @schema of {path}: {exc}") from exc
        out[path] = (" ".join(described), extra)
        block = []
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _infer(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array", **({"items": _infer(value[0])} if value else {})}
    if isinstance(value, dict):
        return {"type": "object"}
    return {}


def _node(path: str, value: Any, notes: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    description, extra = notes.get(path, ("", {}))
    node = _infer(value)
    if description:
        node["description"] = description
    # A mapping annotated open (`additionalProperties` other than false, e.g. resource requests or
    # labels) takes any keys: its defaults are examples, not the list of allowed keys.
    if isinstance(value, dict) and value and extra.get("additionalProperties", False) is False:
        node["properties"] = {
            key: _node(f"{path}.{key}" if path else key, child, notes)
            for key, child in value.items()
        }
        node["additionalProperties"] = False
    return _merge(node, extra)


GLOBAL = {"type": "object", "description": "Helm's global values (for use as a subchart)."}
"""Helm passes `global` to every chart; the closed root object must admit it."""


def generate(values_yaml: str) -> dict[str, Any]:
    """The JSON schema of a commented values.yaml."""
    values = yaml.safe_load(values_yaml) or {}
    notes = _comments(values_yaml.splitlines())
    root = _node("", values, notes)
    root["properties"] = {**root["properties"], "global": GLOBAL}
    return {**HEADER, **root}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/chart_schema.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument("--check", action="store_true", help="fail when the schema is stale")
    args = parser.parse_args(argv)
    target = args.chart / "values.schema.json"
    text = render(generate((args.chart / "values.yaml").read_text()))
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run `make chart-schema`", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
