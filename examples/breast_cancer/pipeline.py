"""Breast cancer (Wisconsin diagnostic), end to end: load, validate, split, train, evaluate, log,
register, card.

    python examples/breast_cancer/pipeline.py --tracking-uri http://127.0.0.1:5000

A random forest on 30 numeric features (569 rows). Leaves an MLflow run with its datasets, params,
metrics and model; a version of `breast-cancer-classifier` with the alias `challenger` and the
training data's reference profile; and a model card. `--n-estimators 1 --max-depth 1` trains a
deliberately weak model (useful to watch the CI gate fail).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

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
TARGET = "diagnosis"  # 0 = malignant, 1 = benign (scikit-learn's encoding)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="breast cancer pipeline")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")
    parser.add_argument("--model-name", default="breast-cancer-classifier")
    parser.add_argument("--experiment", default="breast-cancer")
    parser.add_argument("--alias", default="challenger")
    parser.add_argument("--n-estimators", type=int, default=50)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("model_card/breast_cancer"))
    parser.add_argument(
        "--no-register",
        action="store_true",
        help="stop after logging the run (CI registers only after the gate passed)",
    )
    args = parser.parse_args(argv)

    # 1. load, with column names that survive CSV, YAML and MLflow schemas
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame = frame.rename(columns={"target": TARGET})

    # 2. validate
    schema = datavalidate.parse_schema(yamlio.load_mapping(HERE / "schema.yaml", option="schema"))
    found = datavalidate.validate(frame, schema)
    if checks.failed(found):
        print(checks.render_table(found), file=sys.stderr)
        return 1

    # 3. split
    train, test = train_test_split(
        frame, test_size=0.25, stratify=frame[TARGET], random_state=args.seed
    )
    x_train, y_train = train.drop(columns=[TARGET]), train[TARGET]
    x_test, y_test = test.drop(columns=[TARGET]), test[TARGET]

    # 4-6. train, evaluate, log
    with tracking.run(
        experiment=args.experiment, tracking_uri=args.tracking_uri, run_name="breast-cancer-rf"
    ) as run:
        run.log_params(
            {
                "model": "random_forest",
                "n_estimators": args.n_estimators,
                "max_depth": args.max_depth,
                "seed": args.seed,
                "test_size": 0.25,
            }
        )
        run.log_dataset(train, name="train", context="training", targets=TARGET)
        run.log_dataset(test, name="test", context="evaluation", targets=TARGET)
        model = RandomForestClassifier(
            n_estimators=args.n_estimators,
            max_depth=args.max_depth,
            random_state=args.seed,
            n_jobs=1,
        ).fit(x_train, y_train)
        predicted = model.predict(x_test)
        scores = {name: fn(y_test.to_numpy(), predicted) for name, fn in metrics.METRICS.items()}
        run.log_metrics({f"test_{k}": v for k, v in scores.items()})
        run.log_model(model, input_example=x_train)

    if args.no_register:
        print(f"run {run.run_id}: test accuracy {scores['accuracy']:.4f}, f1 {scores['f1']:.4f}")
        return 0

    # 7. register
    registered = registration.register(
        tracking_uri=args.tracking_uri,
        name=args.model_name,
        run_id=run.run_id,
        alias=args.alias,
        reason=f"breast cancer pipeline: test f1 {scores['f1']:.3f}",
        description=f"Random forest, {args.n_estimators} trees of depth <= {args.max_depth}.",
    )

    # 8. card
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
