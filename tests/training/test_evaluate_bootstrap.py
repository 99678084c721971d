"""The paired bootstrap's maths on synthetic scores (no model): intervals, pairing, stratification."""
from __future__ import annotations

import numpy as np
import pytest

from mlops_training.evaluate import roc_auc
from mlops_training.evaluation import bootstrap as bs


def _scores(n: int, *, seed: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.float64)
    p = 1.0 / (1.0 + np.exp(-(signal * (y - 0.5) + rng.normal(0.0, 1.0, n))))
    return y, p


def test_the_interval_contains_the_point_estimate_and_narrows_with_more_rows() -> None:
    widths = []
    for n in (300, 3000):
        y, p = _scores(n, seed=n, signal=1.5)
        result = bs.bootstrap("binary_classification", y, {"m": p}, n=400, seed=0)
        for name, e in bs.estimates(result["m"]).items():
            assert e.ci_low <= e.value <= e.ci_high, name
            assert e.standard_deviation > 0, name
        auc = bs.estimates(result["m"])["auc"]
        assert auc.value == roc_auc(y, p)  # the point estimate is the metric on the whole slice
        widths.append(auc.ci_high - auc.ci_low)
    # Ten times the rows: the interval shrinks by about sqrt(10).
    assert widths[1] < widths[0] / 2


def test_a_model_compared_with_itself_differs_by_exactly_zero() -> None:
    y, p = _scores(500, seed=1, signal=1.0)
    result = bs.bootstrap("binary_classification", y, {"a": p, "b": p.copy()}, n=200, seed=3)
    for name, d in bs.differences(result["a"], result["b"]).items():
        assert (d.value, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0), name


def test_resamples_are_paired_and_keep_the_class_counts() -> None:
    y, better = _scores(400, seed=2, signal=2.5)
    _, worse = _scores(400, seed=2, signal=0.5)
    idx = bs.resamples(y, task="binary_classification", n=50, seed=9)
    assert idx.shape == (50, 400)
    assert all(int(y[row].sum()) == int(y.sum()) for row in idx)
    assert np.array_equal(idx, bs.resamples(y, task="binary_classification", n=50, seed=9))
    result = bs.bootstrap("binary_classification", y, {"better": better, "worse": worse}, n=300, seed=0)
    diff = bs.differences(result["better"], result["worse"])["auc"]
    # Paired: the difference's interval is narrower than the two intervals' spread would suggest.
    e_better, e_worse = bs.estimates(result["better"])["auc"], bs.estimates(result["worse"])["auc"]
    assert diff.ci_low > 0
    assert diff.ci_high - diff.ci_low < (e_better.ci_high - e_better.ci_low) + (e_worse.ci_high - e_worse.ci_low)


def test_regression_metrics_include_mse_as_rmse_squared() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    p = y + rng.normal(scale=0.5, size=300)
    estimates = bs.estimates(bs.bootstrap("regression", y, {"m": p}, n=100, seed=0)["m"])
    assert set(estimates) == {"rmse", "mse", "mae", "r2"}
    assert estimates["mse"].value == pytest.approx(estimates["rmse"].value ** 2)


def test_zero_resamples_are_refused() -> None:
    with pytest.raises(ValueError, match="bootstrap resamples 0; allowed: 1 or more"):
        bs.resamples(np.zeros(3), task="regression", n=0, seed=0)
