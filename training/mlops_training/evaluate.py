"""Held-out evaluation: the metrics of docs/contracts.md section 5. Pure numpy.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts)."""
from __future__ import annotations

from typing import Any

import numpy as np
from mlops_contracts.artifact import METRICS_FORMAT_VERSION
from mlops_contracts.feature_schema import BINARY_CLASSIFICATION

from mlops_training.schema import Task

CLASSIFICATION_THRESHOLD = 0.5


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; tied scores count one half)."""
    y = np.asarray(y_true, dtype=np.float64)
    positives = int((y == 1).sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC needs both classes; got {positives} positive and {negatives} negative rows")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct score: ties share the mean of the ranks they span.
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0
    rank_sum = average_rank[inverse][y == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy, probabilities clipped to [eps, 1 - eps]."""
    eps = np.finfo(np.float64).eps
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y_true, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def compute_metrics(*, task: Task, y_true: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """metrics.json for the validation split: AUC, accuracy, log-loss, or RMSE, MAE, R2."""
    y = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(predictions, dtype=np.float64)
    if y.shape != pred.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and predictions {pred.shape} must be 1-D of the same length")
    doc: dict[str, Any] = {
        "format_version": METRICS_FORMAT_VERSION, "task": task, "split": "validation", "n_rows": int(len(y))
    }
    if task == BINARY_CLASSIFICATION:
        doc["auc"] = roc_auc(y, pred)
        doc["accuracy"] = float(np.mean((pred >= CLASSIFICATION_THRESHOLD) == (y == 1)))
        doc["log_loss"] = log_loss(y, pred)
    else:
        error = pred - y
        total = float(np.sum((y - y.mean()) ** 2))
        doc["rmse"] = float(np.sqrt(np.mean(error**2)))
        doc["mae"] = float(np.mean(np.abs(error)))
        # R2 is undefined for a constant target; null says so instead of inventing a number.
        doc["r2"] = 1.0 - float(np.sum(error**2)) / total if total > 0 else None
    return doc


def metric_values(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics only (for the registry's metadata properties)."""
    names = ("auc", "accuracy", "log_loss", "rmse", "mae", "r2")
    return {k: float(metrics[k]) for k in names if metrics.get(k) is not None}
