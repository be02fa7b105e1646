"""Aliases, promotion, rollback and history round-trip through the real MLflow server."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import mlflow.pyfunc
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from modelpilot.cli import main as cli_main
from modelpilot.lifecycle import registration
from modelpilot.registry import client as registry_client
from modelpilot.registry import models, profiles

from .conftest import iris_split, log_iris_model

pytestmark = pytest.mark.mlflow
NAME = "alias-roundtrip"


@pytest.fixture(scope="module")
def three_versions(uri: str) -> list[str]:
    estimators = [
        LogisticRegression(max_iter=300),
        DecisionTreeClassifier(max_depth=2),
        LogisticRegression(C=0.05, max_iter=300),
    ]
    versions = []
    for i, estimator in enumerate(estimators):
        run_id = log_iris_model(uri=uri, experiment="alias-roundtrip", model=estimator)
        if i < 2:
            done = registration.register(
                tracking_uri=uri,
                name=NAME,
                run_id=run_id,
                reason=f"test {type(estimator).__name__}",
            )
            versions.append(done.version.version)
            continue
        # the third through the command line, as a user registers
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cli_main.main(
                [
                    "models",
                    "register",
                    "--run",
                    run_id,
                    "--name",
                    NAME,
                    "--json",
                    "--tracking-uri",
                    uri,
                ]
            )
        registered = json.loads(out.getvalue())
        assert registered["run_id"] == run_id
        assert registered["profile"].endswith("reference_profile.json")
        versions.append(registered["version"])
    return versions


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        cli_main.main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_registration_stores_the_reference_profile_of_the_training_split(
    uri: str, three_versions: list[str]
) -> None:
    c = registry_client.make_client(uri)
    profile = profiles.load_reference_profile(c, name=NAME, version=three_versions[0])
    assert set(profile.feature_names) == {
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    }
    # 105 training rows (70% of 150), none null: the profile counts exactly those.
    assert all(col.row_count == 105 and col.null_count == 0 for col in profile.columns.values())


def test_promote_rollback_and_history_round_trip_with_who_when_and_why(
    uri: str,
    three_versions: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1, v2, v3 = three_versions
    monkeypatch.setenv("MODELPILOT_ACTOR", "alice")
    base = ["--tracking-uri", uri]
    assert (
        run_cli(
            [
                "models",
                "alias",
                "--name",
                NAME,
                "--alias",
                "challenger",
                "--version",
                v2,
                "-m",
                "candidate from CI",
                *base,
            ],
            capsys,
        )[0]
        == 0
    )
    assert (
        run_cli(
            ["models", "promote", "--name", NAME, "--version", v1, "-m", "first", *base], capsys
        )[0]
        == 0
    )
    # promote without --version takes the challenger and releases that alias
    assert (
        run_cli(["models", "promote", "--name", NAME, "-m", "challenger won", *base], capsys)[0]
        == 0
    )
    assert (
        run_cli(
            ["models", "promote", "--name", NAME, "--version", v3, "-m", "third", *base], capsys
        )[0]
        == 0
    )
    c = registry_client.make_client(uri)
    assert models.alias_holder(c, name=NAME, alias="champion") == v3
    assert models.alias_holder(c, name=NAME, alias="challenger") is None

    monkeypatch.setenv("MODELPILOT_ACTOR", "bob")
    assert (
        run_cli(["models", "rollback", "--name", NAME, "-m", "v3 regressed", *base], capsys)[0] == 0
    )
    assert models.alias_holder(c, name=NAME, alias="champion") == v2
    assert run_cli(["models", "rollback", "--name", NAME, "-m", "v2 too", *base], capsys)[0] == 0
    assert models.alias_holder(c, name=NAME, alias="champion") == v1
    code, _, err = run_cli(["models", "rollback", "--name", NAME, "-m", "no more", *base], capsys)
    assert code == 2
    assert "no previous champion" in err
    assert len(err.strip().splitlines()) == 1

    code, out, _ = run_cli(["models", "history", "--name", NAME, "--json", *base], capsys)
    assert code == 0
    events = [e for e in json.loads(out) if e["action"] != "register"]
    assert [(e["action"], e["version"], e.get("previous")) for e in events] == [
        ("alias", v2, None),
        ("promote", v1, None),
        ("promote", v2, v1),
        ("promote", v3, v2),
        ("rollback", v2, v3),
        ("rollback", v1, v2),
    ]
    assert [e["who"] for e in events] == ["alice"] * 4 + ["bob"] * 2
    assert events[4]["why"] == "v3 regressed"
    assert [e["when"] for e in events] == sorted(e["when"] for e in events)


def test_loading_the_champion_alias_gives_the_promoted_version(
    uri: str, three_versions: list[str]
) -> None:
    c = registry_client.make_client(uri)
    v2 = three_versions[1]
    current = models.alias_holder(c, name=NAME, alias="champion")
    if current != v2:
        models.promote(c, name=NAME, version=v2, reason="test: load champion")
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    expected = models.get_version(c, name=NAME, version=v2)
    assert loaded.metadata.run_id == expected.run_id
    assert loaded.metadata.model_id == expected.source.removeprefix("models:/")


def test_list_shows_versions_with_their_aliases(
    uri: str, three_versions: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        ["models", "list", "--name", NAME, "--json", "--tracking-uri", uri], capsys
    )
    assert code == 0
    listed = {v["version"]: v["aliases"] for v in json.loads(out)}
    assert set(three_versions) <= set(listed)
    c = registry_client.make_client(uri)
    assert listed[models.alias_holder(c, name=NAME, alias="champion") or ""] == ["champion"]


def test_an_alias_can_be_removed_and_the_removal_is_in_the_history(
    uri: str, three_versions: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--name", NAME, "--tracking-uri", uri]
    assert (
        run_cli(
            [
                "models",
                "alias",
                "--alias",
                "shadow",
                "--version",
                three_versions[2],
                "-m",
                "shadow traffic",
                *base,
            ],
            capsys,
        )[0]
        == 0
    )
    assert (
        run_cli(["models", "alias", "--alias", "shadow", "--delete", "-m", "done", *base], capsys)[
            0
        ]
        == 0
    )
    c = registry_client.make_client(uri)
    assert models.alias_holder(c, name=NAME, alias="shadow") is None
    assert models.history(c, name=NAME)[-1]["action"] == "unalias"


def test_data_is_validated_against_the_profile_stored_with_a_version(
    uri: str, three_versions: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, test = iris_split()
    features = test.drop(columns=["species"])
    same = tmp_path / "same.csv"
    features.to_csv(same, index=False)
    shifted = tmp_path / "shifted.csv"
    features.assign(petal_length=features["petal_length"] + 20).to_csv(shifted, index=False)
    ref = f"models:/{NAME}/{three_versions[0]}"
    base = ["data", "validate", "--profile", ref, "--tracking-uri", uri]
    code, out, err = run_cli([*base, "--data", str(same)], capsys)
    assert code == 0, err
    assert "petal_length.range" in out
    code, out, err = run_cli([*base, "--data", str(shifted)], capsys)
    assert code == 1
    assert "petal_length.range" in err
    assert "sepal_length" not in err


def test_the_model_card_command_writes_the_card_of_a_version(
    uri: str, three_versions: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use = tmp_path / "use.yaml"
    use.write_text("primary_uses: testing\nlicense: mit\n")
    out_dir = tmp_path / "card"
    code, _, err = run_cli(
        [
            "model-card",
            "--name",
            NAME,
            "--version",
            three_versions[1],
            "--intended-use",
            str(use),
            "--out",
            str(out_dir),
            "--resamples",
            "200",
            "--tracking-uri",
            uri,
        ],
        capsys,
    )
    assert code == 0, err
    card = json.loads((out_dir / "model_card.json").read_text())
    assert card["model"]["version"] == three_versions[1]
    assert card["evaluation"]["n_test"] == 45
    assert set(card["evaluation"]["per_class_f1"]) == {"0", "1", "2"}
    c = registry_client.make_client(uri)
    run_id = models.get_version(c, name=NAME, version=three_versions[1]).run_id
    logged = {a.path for a in c.list_artifacts(run_id, "model_card")}
    assert logged == {
        f"model_card/{f}"
        for f in (
            "model_card.md",
            "model_card.json",
            "confusion_matrix.png",
            "feature_importance.png",
        )
    }
