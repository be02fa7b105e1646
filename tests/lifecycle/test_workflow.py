"""The GitHub Actions workflow for users' model repositories stays in step with the CLI: it parses,
is reusable (`workflow_call`), runs the steps in the documented order, and every `modelpilot`
command and option it uses exists (checked against the click commands themselves)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import yaml

from modelpilot.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "model-ci.yml"
DOC = ROOT / "docs" / "lifecycle.md"


def load() -> dict[object, object]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def invocations(text: str) -> list[list[str]]:
    """Every `modelpilot ...` command line in `text`, joined over backslash continuations."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        for match in re.finditer(r"(?:^|[\s;(])modelpilot (.+)$", line):
            text = match.group(1).split("|")[0].replace('"${args[@]}"', "")
            tokens = shlex.split(text, comments=True)
            found.append(tokens)
    return found


def resolve(tokens: list[str]) -> tuple[click.Command, list[str]]:
    ctx = click.Context(cli_main.cli)
    command = cli_main.cli.get_command(ctx, tokens[0])
    assert command is not None, f"modelpilot {tokens[0]}: no such command"
    rest = tokens[1:]
    if isinstance(command, click.Group):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"modelpilot {tokens[0]} {rest[0]}: no such command"
        return sub, rest[1:]
    return command, rest


def check_options(tokens: list[str]) -> None:
    command, rest = resolve(tokens)
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    used = {t.split("=")[0] for t in rest if t.startswith("-")}
    assert used <= known, f"modelpilot {' '.join(tokens[:2])}: unknown {sorted(used - known)}"


def test_the_workflow_is_reusable_and_runs_the_documented_steps_in_order() -> None:
    data = load()
    on = data[True]  # YAML 1.1 reads the key `on` as True
    assert isinstance(on, dict)
    assert set(on) == {"workflow_call"}
    jobs = data["jobs"]
    assert isinstance(jobs, dict)
    names = [step.get("name", "") for step in jobs["model"]["steps"]]
    order = [
        "Tests",
        "Validate the training data",
        "Train",
        "Gate",
        "Register as challenger",
        "Start an online experiment",
    ]
    positions = [next(i for i, n in enumerate(names) if n.startswith(o)) for o in order]
    assert positions == sorted(positions)


def test_every_modelpilot_command_in_the_workflow_and_the_docs_exists_with_its_options() -> None:
    data = load()
    jobs = data["jobs"]
    assert isinstance(jobs, dict)
    scripts = "\n".join(str(step.get("run", "")) for step in jobs["model"]["steps"])
    fenced = "\n".join(re.findall(r"```(?:bash|sh|console)\n(.*?)```", DOC.read_text(), re.S))
    commands = invocations(scripts) + invocations(fenced)
    assert {t[0] for t in commands} >= {"data", "validate", "models", "model-card", "sweep"}
    for tokens in commands:
        check_options(tokens)
