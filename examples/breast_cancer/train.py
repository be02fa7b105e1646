"""The sweep's training function: a linear classifier trained epoch by epoch on breast-cancer data.

`modelpilot sweep --config examples/breast_cancer/sweep.yaml` imports this file and calls
`train(params, reporter)` once per trial. Each epoch reports the validation accuracy, so the pruner
can stop a poor trial early (an over-regularised one plateaus low after an epoch or two).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def train(params: Mapping[str, Any], reporter: Any) -> dict[str, float]:
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    model = SGDClassifier(
        loss=str(params.get("loss", "log_loss")),
        alpha=float(params["alpha"]),
        learning_rate="constant",
        eta0=float(params["eta0"]),
        random_state=0,
    )
    classes = np.unique(y_train)
    rng = np.random.default_rng(0)
    accuracy = 0.0
    for epoch in range(int(params.get("epochs", 10))):
        order = rng.permutation(len(y_train))
        model.partial_fit(x_train[order], y_train[order], classes=classes)
        accuracy = float(model.score(x_val, y_val))
        reporter.report(epoch, {"val_accuracy": accuracy})
    return {"val_accuracy": accuracy, "train_accuracy": float(model.score(x_train, y_train))}
