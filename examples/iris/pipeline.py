"""Iris, end to end: load, validate, split, train, evaluate, log, register, card.

    python examples/iris/pipeline.py --tracking-uri http://127.0.0.1:5000

Leaves behind an MLflow run (params, metrics, train/test datasets with digests, the model with its
signature, provenance tags), a registered version of `iris-classifier` with the alias `challenger`
and a reference profile, and a model card (Markdown + JSON + PNGs) in `--out` and on the run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelpilot import errors
from modelpilot.lifecycle import (
    card,
    card_writer,
    checks,
    datavalidate,
    metrics,
    registration,
    tracking,
    yamlio,
)

HERE = Path(__file__).resolve().parent
TARGET = "species"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow server (default: $MLFLOW_TRACKING_URI)"
    )
    parser.add_argument("--model-name", default="iris-classifier")
    parser.add_argument("--experiment", default="iris")
    parser.add_argument("--alias", default="challenger")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("model_card/iris"))
    parser.add_argument(
        "--no-register",
        action="store_true",
        help="stop after logging the run (CI registers only after the gate passed)",
    )
    args = parser.parse_args(argv)

    # 1. load: features with plain names, the label as an integer class
    frame = load_iris(as_frame=True).frame.rename(
        columns=lambda c: c.replace(" (cm)", "").replace(" ", "_")
    )
    frame = frame.rename(columns={"target": TARGET})

    # 2. validate against the schema shipped beside this file; stop before training on bad data
    schema = datavalidate.parse_schema(yamlio.load_mapping(HERE / "schema.yaml", option="schema"))
    found = datavalidate.validate(frame, schema)
    if checks.failed(found):
        print(checks.render_table(found), file=sys.stderr)
        return 1

    # 3. split, stratified so the small test set has every class
    train, test = train_test_split(
        frame, test_size=0.3, stratify=frame[TARGET], random_state=args.seed
    )
    x_train, y_train = train.drop(columns=[TARGET]), train[TARGET]
    x_test, y_test = test.drop(columns=[TARGET]), test[TARGET]

    # 4-6. train, evaluate and log inside one tracked run
    with tracking.run(
        experiment=args.experiment, tracking_uri=args.tracking_uri, run_name="iris-logreg"
    ) as run:
        params = {
            "model": "logistic_regression",
            "C": args.C,
            "max_iter": args.max_iter,
            "seed": args.seed,
            "test_size": 0.3,
        }
        run.log_params(params)
        run.log_dataset(train, name="train", context="training", targets=TARGET)
        run.log_dataset(test, name="test", context="evaluation", targets=TARGET)
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=args.C, max_iter=args.max_iter)
        )
        model.fit(x_train, y_train)
        predicted = model.predict(x_test)
        scores = {name: fn(y_test.to_numpy(), predicted) for name, fn in metrics.METRICS.items()}
        run.log_metrics({f"test_{k}": v for k, v in scores.items()})
        run.log_model(model, input_example=x_train)

    if args.no_register:
        print(f"run {run.run_id}: test accuracy {scores['accuracy']:.4f}, f1 {scores['f1']:.4f}")
        return 0

    # 7. register as the challenger, with the training data's reference profile
    registered = registration.register(
        tracking_uri=args.tracking_uri,
        name=args.model_name,
        run_id=run.run_id,
        alias=args.alias,
        reason=f"iris pipeline: test accuracy {scores['accuracy']:.3f}",
        description="Logistic regression on the four iris measurements.",
    )

    # 8. the model card
    intended = card.parse_intended_use(
        yamlio.load_mapping(HERE / "intended_use.yaml", option="--intended-use")
    )
    written = card_writer.write_card(
        tracking_uri=args.tracking_uri,
        name=args.model_name,
        version=registered.version.version,
        intended_use=intended,
        out=args.out,
    )
    print(f"run {run.run_id}: test accuracy {scores['accuracy']:.4f}, f1 {scores['f1']:.4f}")
    print(f"registered {args.model_name} version {registered.version.version} as @{args.alias}")
    print(f"model card: {written.markdown}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except errors.InputError as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        sys.exit(2)
