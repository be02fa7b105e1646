"""Model cards (Mitchell et al. 2019, "Model Cards for Model Reporting"): Markdown plus a JSON twin.

The Markdown opens with a Hugging Face style YAML header (`library_name`, `tags`, `datasets`,
`metrics`, `model-index` with results), so hubs and tools that read HF cards can index it; the body
has the sections of Mitchell et al.: details, intended use, training data, metrics (with bootstrap
confidence intervals and per-class F1), limitations, ethical considerations.

Design decision: the card is built as one JSON-able dict (`build_card`) and the Markdown is rendered
from that dict alone (`render_markdown`), so the two files can never disagree. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from modelpilot import errors
from modelpilot.lifecycle import metrics

_INTENDED_KEYS = {
    "primary_uses",
    "primary_users",
    "out_of_scope",
    "limitations",
    "ethical_considerations",
    "license",
    "caveats",
}
_UNDOCUMENTED = "Not documented. Supply it with --intended-use."


def parse_intended_use(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Normalise the intended-use file: every value a list of strings (a string is one item)."""
    data = dict(data or {})
    unknown = sorted(set(data) - _INTENDED_KEYS)
    if unknown:
        raise errors.InputError(
            f"--intended-use: unknown key {unknown[0]!r}; "
            f"allowed: {', '.join(sorted(_INTENDED_KEYS))}"
        )
    out: dict[str, Any] = {}
    for key in sorted(_INTENDED_KEYS - {"license"}):
        raw = data.get(key)
        if raw is None:
            out[key] = []
        elif isinstance(raw, str):
            out[key] = [raw]
        elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            out[key] = list(raw)
        else:
            raise errors.InputError(f"--intended-use: {key} must be a string or a list of strings")
    lic = data.get("license", "other")
    if not isinstance(lic, str):
        raise errors.InputError("--intended-use: license must be a string (an SPDX id)")
    out["license"] = lic
    return out


def build_card(
    *,
    model: Mapping[str, Any],
    run: Mapping[str, Any],
    datasets: Sequence[Mapping[str, Any]],
    estimates: Mapping[str, metrics.Estimate],
    per_class_f1: Mapping[str, float],
    confusion: tuple[list[str], list[list[int]]],
    importance: Mapping[str, float],
    intended_use: Mapping[str, Any],
    confidence: float,
    n_test: int,
    plots: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything the card says, as one JSON-able dict."""
    return {
        "schema": "modelpilot.model-card/v1",
        "model": dict(model),
        "run": dict(run),
        "intended_use": dict(intended_use),
        "training_data": [dict(d) for d in datasets],
        "evaluation": {
            "n_test": n_test,
            "confidence": confidence,
            "method": "percentile bootstrap over test rows",
            "metrics": {
                k: {"value": e.value, "ci_low": e.low, "ci_high": e.high}
                for k, e in estimates.items()
            },
            "per_class_f1": dict(per_class_f1),
            "confusion_matrix": {"labels": confusion[0], "matrix": confusion[1]},
            "permutation_importance": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
        },
        "plots": list(plots),
    }


def _header(card: Mapping[str, Any]) -> str:
    model = card["model"]
    ev = card["evaluation"]
    test_set = next((d for d in card["training_data"] if d.get("context") == "evaluation"), None)
    meta = {
        "license": card["intended_use"].get("license", "other"),
        "library_name": model.get("flavor", "sklearn"),
        "tags": ["tabular-classification", "modelpilot", "mlflow"],
        "datasets": sorted({str(d["name"]) for d in card["training_data"]}),
        "metrics": sorted(ev["metrics"]),
        "model-index": [
            {
                "name": f"{model['name']} v{model['version']}",
                "results": [
                    {
                        "task": {
                            "type": "tabular-classification",
                            "name": "Tabular classification",
                        },
                        "dataset": {
                            "name": test_set["name"] if test_set else "test",
                            "type": "tabular",
                            "split": "test",
                        },
                        "metrics": [
                            {"type": k, "name": k, "value": round(v["value"], 6)}
                            for k, v in sorted(ev["metrics"].items())
                        ],
                    }
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {x}" for x in items) if items else f"- {_UNDOCUMENTED}"


def render_markdown(card: Mapping[str, Any]) -> str:
    model = card["model"]
    run = card["run"]
    use = card["intended_use"]
    ev = card["evaluation"]
    pct = round(100 * ev["confidence"])
    params = ", ".join(f"{k}={v}" for k, v in sorted(run.get("params", {}).items()))
    lines = [
        _header(card),
        f"# Model card: {model['name']} version {model['version']}",
        "",
        "## Model details",
        "",
        f"- Registered model: `{model['name']}`, version {model['version']}"
        + (f" (aliases: {', '.join(model['aliases'])})" if model.get("aliases") else ""),
        f"- Description: {model.get('description') or 'none given'}",
        f"- Source: `{model.get('source', '')}`",
        f"- Training run: `{run.get('run_id', '')}`; "
        f"git commit `{run.get('git_commit') or 'unknown'}`"
        + (" (uncommitted changes)" if run.get("git_dirty") == "true" else ""),
        f"- Parameters: {params or 'none'}",
        "",
        "## Intended use",
        "",
        "Primary uses:",
        "",
        _bullets(use.get("primary_uses", [])),
        "",
        "Primary users:",
        "",
        _bullets(use.get("primary_users", [])),
        "",
        "Out of scope:",
        "",
        _bullets(use.get("out_of_scope", [])),
        "",
        "## Training data",
        "",
        "| dataset | context | rows | columns | digest |",
        "|---|---|---|---|---|",
        *[
            f"| {d['name']} | {d.get('context', '')} | {d.get('rows', '')} "
            f"| {d.get('columns', '')} | `{d.get('digest', '')}` |"
            for d in card["training_data"]
        ],
        "",
        "## Metrics",
        "",
        f"On {ev['n_test']} held-out rows; {pct}% intervals by {ev['method']}. "
        "Precision, recall and F1 are macro averages over classes.",
        "",
        f"| metric | value | {pct}% CI |",
        "|---|---|---|",
        *[
            f"| {k} | {v['value']:.4f} | [{v['ci_low']:.4f}, {v['ci_high']:.4f}] |"
            for k, v in ev["metrics"].items()
        ],
        "",
        "Per-class F1:",
        "",
        "| class | F1 |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in ev["per_class_f1"].items()],
        "",
        "Permutation importance (mean drop in accuracy when the feature is shuffled):",
        "",
        "| feature | importance |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in ev["permutation_importance"].items()],
        "",
        *[f"![{p}]({p})" for p in card["plots"]],
        "",
        "## Limitations",
        "",
        _bullets([*use.get("limitations", []), *use.get("caveats", [])]),
        "",
        "## Ethical considerations",
        "",
        _bullets(use.get("ethical_considerations", [])),
        "",
    ]
    return "\n".join(lines)


def render_json(card: Mapping[str, Any]) -> str:
    return json.dumps(card, indent=2, sort_keys=False) + "\n"
