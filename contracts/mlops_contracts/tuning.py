"""Hyperparameter-tuning contract: what the training container lets a tuner search and what it reports.

Who uses it:
- the training container (`mlops_training`) accepts every name of `TUNABLE` as a hyperparameter and logs
  the lines that `METRIC_DEFINITIONS` parse (`epoch=... train_loss=...` per epoch, `validation auc=...`
  once at the end);
- the stack config (`specs.config.schema.TuningConfig`) allows only these names and objectives, the
  retraining pipeline's tuning step hands SageMaker these metric definitions, and the local tuner
  (`mlops.local.tuning`) applies the same regexes to a trial's log.

Must not import: anything outside the standard library, so no `pulumi` or its providers, `components`,
`specs`, `mlops`, `mlops_training` or `mlops_serving` (both container images install this package on its
own).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mlops_contracts.feature_schema import BINARY_CLASSIFICATION, REGRESSION

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


@dataclass(frozen=True)
class Tunable:
    """One hyperparameter a tuner may search: its SageMaker range kind and the smallest value allowed."""

    kind: Literal["Integer", "Continuous"]
    minimum: float
    minimum_inclusive: bool
    doc: str


TUNABLE: dict[str, Tunable] = {
    "learning_rate": Tunable("Continuous", 0.0, False, "AdamW learning rate (> 0)."),
    "weight_decay": Tunable("Continuous", 0.0, True, "AdamW weight decay (>= 0)."),
    "epochs": Tunable("Integer", 1, True, "Passes over the training split (>= 1)."),
    "hidden_width": Tunable("Integer", 1, True, "Units of every hidden layer (>= 1); with hidden_layers."),
    "hidden_layers": Tunable("Integer", 1, True, "Number of hidden layers (>= 1); with hidden_width."),
}
"""Hyperparameter name (as in hyperparameters.json) -> what may be searched."""

OBJECTIVES: dict[str, tuple[str, Literal["Maximize", "Minimize"]]] = {
    "validation:auc": (BINARY_CLASSIFICATION, "Maximize"),
    "validation:accuracy": (BINARY_CLASSIFICATION, "Maximize"),
    "validation:log_loss": (BINARY_CLASSIFICATION, "Minimize"),
    "validation:rmse": (REGRESSION, "Minimize"),
    "validation:mae": (REGRESSION, "Minimize"),
    "validation:r2": (REGRESSION, "Maximize"),
}
"""Objective metric name -> (the task whose evaluation emits it, the direction that is better)."""

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "train:loss", "Regex": rf"epoch=\d+ train_loss={_NUMBER}"},
    *(
        {"Name": name, "Regex": rf"validation (?:\S+=\S+ )*{name.split(':', 1)[1]}={_NUMBER}"}
        for name in OBJECTIVES
    ),
]
"""SageMaker `MetricDefinitions`: each regex's first group is the value, read from the container's log."""


def parse_metrics(log_text: str) -> dict[str, float]:
    """Apply `METRIC_DEFINITIONS` to a log the way SageMaker does: the last match of each metric wins."""
    found: dict[str, float] = {}
    for definition in METRIC_DEFINITIONS:
        matches = re.findall(definition["Regex"], log_text)
        if matches:
            found[definition["Name"]] = float(matches[-1])
    return found
