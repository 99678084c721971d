"""Metrics with paired bootstrap confidence intervals (percentile method, 95 %).

Every model is scored on the same resampled row indices, so candidate - champion is a paired
difference: the noise of which rows happen to be in the slice cancels out, and a model compared
with itself differs by exactly 0 in every resample. For binary classification the resampling is
stratified (each class resampled within itself, keeping the slice's class counts), so AUC is
defined in every resample. The metrics are `mlops_training.evaluate.compute_metrics`'s, plus
`mse` (rmse squared) for regression, the name SageMaker's model quality uses.

Must not import: anything of the project but `mlops_contracts` and `mlops_training` (runs inside the container).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from mlops_contracts.evaluation import EVALUATED_METRICS, Difference, Estimate

from mlops_training.evaluate import compute_metrics, metric_values

CONFIDENCE = 0.95


def metrics_of(task: str, y_true: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """The task's evaluated metrics on these rows (a metric undefined here, like R2 of a constant label, is absent)."""
    values = metric_values(compute_metrics(task=task, y_true=y_true, predictions=predictions))  # type: ignore[arg-type]
    if "rmse" in values:
        values["mse"] = values["rmse"] ** 2
    return {k: values[k] for k in EVALUATED_METRICS[task] if k in values}


def resamples(labels: np.ndarray, *, task: str, n: int, seed: int) -> np.ndarray:
    """`[n, rows]` row indices, drawn with replacement (within each class for binary classification)."""
    if n < 1:
        raise ValueError(f"bootstrap resamples {n}; allowed: 1 or more")
    rng = np.random.default_rng(seed)
    rows = len(labels)
    if task != "binary_classification":
        return rng.integers(0, rows, size=(n, rows))
    out = np.empty((n, rows), dtype=np.int64)
    start = 0
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        out[:, start:start + len(members)] = members[rng.integers(0, len(members), size=(n, len(members)))]
        start += len(members)
    return out


@dataclass(frozen=True, kw_only=True)
class Bootstrapped:
    """One model's metrics on the whole slice and in each resample."""

    point: dict[str, float]
    samples: dict[str, np.ndarray]
    """Metric -> `[n]` values, one per resample (same resample order for every model)."""


def bootstrap(task: str, labels: np.ndarray, predictions: Mapping[str, np.ndarray], *, n: int,
              seed: int) -> dict[str, Bootstrapped]:
    """Every model's metrics on the slice and on the same `n` resamples of it."""
    indices = resamples(labels, task=task, n=n, seed=seed)
    out = {}
    for name, pred in predictions.items():
        if pred.shape != labels.shape:
            raise AssertionError(f"{name}: {pred.shape} predictions for {labels.shape} labels")
        point = metrics_of(task, labels, pred)
        per_resample = [metrics_of(task, labels[idx], pred[idx]) for idx in indices]
        samples = {}
        for metric in point:
            values = np.array([r.get(metric, np.nan) for r in per_resample], dtype=np.float64)
            samples[metric] = values
        out[name] = Bootstrapped(point=point, samples=samples)
    return out


def _interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("no resample gave a finite value; the slice is too small to bootstrap")
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def estimates(result: Bootstrapped) -> dict[str, Estimate]:
    """Point value, 95 % percentile interval and standard deviation over the resamples, per metric."""
    out = {}
    for metric, value in result.point.items():
        samples = result.samples[metric]
        low, high = _interval(samples)
        finite = samples[np.isfinite(samples)]
        std = float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0
        out[metric] = Estimate(value=float(value), ci_low=low, ci_high=high, standard_deviation=std)
    return out


def differences(candidate: Bootstrapped, champion: Bootstrapped) -> dict[str, Difference]:
    """Candidate - champion per metric both have: the point difference and the paired 95 % interval."""
    out = {}
    for metric in candidate.point:
        if metric not in champion.point:
            continue
        low, high = _interval(candidate.samples[metric] - champion.samples[metric])
        out[metric] = Difference(value=candidate.point[metric] - champion.point[metric], ci_low=low, ci_high=high)
    return out
