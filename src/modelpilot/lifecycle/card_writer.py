"""Writing a model card for a registered version: gather from the registry, evaluate, plot, log.

Design decision: the card is computed from what the registry holds, not from the training process:
the version's run (params, provenance tags, dataset digests) and the held-out split that the run
logged as `data/test.csv`, scored with the registered model itself, so a card can be written (and
re-written) long after training, by anyone with access to the server. The PNGs and both card files
are logged back to the run under `model_card/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: CI runners and pods have no display

import matplotlib.pyplot as plt
import numpy as np

from modelpilot import errors
from modelpilot.lifecycle import card, metrics
from modelpilot.registry import client as registry_client
from modelpilot.registry import models, runs

CONFIDENCE = 0.95


@dataclass(frozen=True)
class WrittenCard:
    markdown: Path
    json: Path
    plots: tuple[Path, ...]
    card: dict[str, Any]


def _plot_confusion(labels: list[str], matrix: list[list[int]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    arr = np.asarray(matrix)
    ax.imshow(arr, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(arr):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > arr.max() / 2 else "black",
        )
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_importance(importance: dict[str, float], path: Path) -> None:
    items = sorted(importance.items(), key=lambda kv: kv[1])[-15:]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(items) + 1.2))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_xlabel("mean drop in accuracy when shuffled")
    ax.set_title("Permutation importance (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_card(
    *,
    tracking_uri: str | None,
    name: str,
    version: str,
    intended_use: dict[str, Any],
    out: Path,
    n_resamples: int = 1000,
) -> WrittenCard:
    c = registry_client.make_client(tracking_uri)
    mv = models.get_version(c, name=name, version=version)
    if not mv.run_id:
        raise errors.InputError(
            f"--version: {name} version {version} has no training run to describe"
        )
    run = runs.get_run(mv.run_id)
    try:
        described = runs.read_json_artifact(mv.run_id, "data/datasets.json")
        test = runs.read_csv_artifact(mv.run_id, "data/test.csv")
    except (registry_client.RunNotFound, registry_client.ModelNotFound) as exc:
        raise errors.InputError(
            f"--version: run {mv.run_id} of {name} v{version} logged no data/test.csv; log the "
            "held-out split with tracking.Run.log_dataset(name='test', ...)"
        ) from exc
    target = described.get("target")
    if not target or target not in test.columns:
        raise errors.InputError(
            f"--version: run {mv.run_id} does not say which column is the label"
        )
    x, y = test.drop(columns=[target]), test[target].to_numpy()
    model = runs.load_pyfunc(f"models:/{name}/{version}")

    def predict(frame: Any) -> np.ndarray[Any, Any]:
        return np.asarray(model.predict(frame)).ravel()

    predicted = predict(x)
    estimates = metrics.bootstrap(y, predicted, n_resamples=n_resamples, confidence=CONFIDENCE)
    labels, matrix = metrics.confusion(y, predicted)
    importance = metrics.permutation_importance(predict, x, y, repeats=3)

    out.mkdir(parents=True, exist_ok=True)
    plots = (out / "confusion_matrix.png", out / "feature_importance.png")
    _plot_confusion(labels, matrix, plots[0])
    _plot_importance(importance, plots[1])
    datasets = list(described.get("datasets", {}).values()) or [
        {"name": d["name"], "digest": d["digest"], "context": d["context"]}
        for d in run.dataset_inputs
    ]
    built = card.build_card(
        model={
            "name": name,
            "version": version,
            "aliases": list(mv.aliases),
            "description": mv.description,
            "source": mv.source,
            "flavor": "sklearn",
        },
        run={
            "run_id": run.run_id,
            "params": run.params,
            "git_commit": run.tags.get("mlflow.source.git.commit"),
            "git_dirty": run.tags.get("modelpilot.git.dirty"),
            "command": run.tags.get("modelpilot.command"),
        },
        datasets=datasets,
        estimates=estimates,
        per_class_f1=metrics.per_class_f1(y, predicted),
        confusion=(labels, matrix),
        importance=importance,
        intended_use=intended_use,
        confidence=CONFIDENCE,
        n_test=len(y),
        plots=[p.name for p in plots],
    )
    md = out / "model_card.md"
    js = out / "model_card.json"
    md.write_text(card.render_markdown(built))
    js.write_text(card.render_json(built))
    for path in (*plots, md, js):
        runs.log_artifact(path, "model_card", run_id=mv.run_id)
    with registry_client.mapped_errors(f"model {name} version {version}"):
        c.set_model_version_tag(
            name, version, "modelpilot.model_card", f"runs:/{mv.run_id}/model_card/model_card.md"
        )
    return WrittenCard(markdown=md, json=js, plots=plots, card=json.loads(card.render_json(built)))
