"""A/B readout: production variants' live metrics from captures joined with ground truth (pure).

Per variant, each captured request whose key has a ground-truth record with as many labels as
predictions contributes its rows. Metrics with 95 % intervals:

- binary classification: `auc` (DeLong's variance, normal interval clipped to [0, 1]), `accuracy` at
  `experiment.shadow.decision_threshold` (Wilson interval), `log_loss` (scores clipped to
  [1e-15, 1 - 1e-15] as scikit-learn does; Student-t interval of the mean per-row loss);
- regression: `rmse` (Student-t interval of the mean squared error, square-rooted), `mae` (Student-t
  interval of the mean absolute error).

The primary metric (mlops_contracts.evaluation.PRIMARY_METRIC: auc, rmse) is tested between champion
(the production variant with the highest weight; ties by name) and challenger (the next): AUC by a
z-test on the two DeLong variances (the variants answer disjoint requests, so the estimates are
independent); RMSE by Welch's t-test on the squared errors. Also reported: accuracy by the pooled
two-proportion z-test, MAE by Welch's t-test on the absolute errors.

Labelled requests needed per variant for `min_detectable_effect` at `alpha` and `power`: the two-sided
z-test's n from each variant's per-row variance of the primary metric's estimate (AUC: n x DeLong
variance; RMSE: the squared errors' variance, the effect taken on the MSE as 2 x rmse x effect).

Recommendation: `keep` while a variant has fewer than `min_labelled_per_variant` labelled rows or the
difference is not significant before the needed sample; `promote` when the challenger is
significantly better; `stop` when it is significantly worse, or when the needed sample was reached
without a significant difference (the challenger does not beat the champion by the effect worth having).

Must not import: `pulumi` or its providers, `components`, `mlops_training`, `mlops_serving`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mlops_contracts import experiment as contract
from mlops_contracts.evaluation import PRIMARY_METRIC
from specs.config.schema import ABTest

from . import stats

EPS = 1e-15


@dataclass(frozen=True)
class Joined:
    """A variant's labelled rows."""

    name: str
    weight: float
    captured: int
    labels: list[float]
    predictions: list[float]


def join(name: str, weight: float, captures: Mapping[str, Sequence[float]], labels: Mapping[str, Sequence[float]]) -> Joined:
    ys: list[float] = []
    ps: list[float] = []
    for key in sorted(captures):
        found = labels.get(key)
        if found is not None and len(found) == len(captures[key]):
            ys.extend(found)
            ps.extend(captures[key])
    return Joined(name, weight, sum(len(v) for v in captures.values()), ys, ps)


def _estimate(value: float, low: float, high: float) -> dict[str, float]:
    return {"value": value, "ci_low": low, "ci_high": high}


def _binary(v: Joined, threshold: float) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    ys = [int(y) for y in v.labels]
    if len(ys) >= 2:
        losses = [-(y * math.log(min(max(p, EPS), 1 - EPS)) + (1 - y) * math.log(1 - min(max(p, EPS), 1 - EPS)))
                  for y, p in zip(ys, v.predictions)]
        found["log_loss"] = _estimate(*stats.mean_interval(losses))
    if ys:
        correct = sum((p >= threshold) == bool(y) for y, p in zip(ys, v.predictions))
        found["accuracy"] = _estimate(correct / len(ys), *stats.wilson(correct, len(ys)))
    try:
        auc, variance = stats.delong(v.predictions, ys)
    except ValueError:
        return found
    half = stats.z_quantile(0.975) * math.sqrt(variance)
    found["auc"] = _estimate(auc, max(0.0, auc - half), min(1.0, auc + half))
    return found


def _regression(v: Joined) -> dict[str, dict[str, float]]:
    if len(v.labels) < 2:
        return {}
    errors = [p - y for y, p in zip(v.labels, v.predictions)]
    mse, low, high = stats.mean_interval([e * e for e in errors])
    return {"rmse": _estimate(math.sqrt(mse), math.sqrt(max(low, 0.0)), math.sqrt(high)),
            "mae": _estimate(*stats.mean_interval([abs(e) for e in errors]))}


def metrics(v: Joined, *, task: str, threshold: float) -> dict[str, dict[str, float]]:
    return _binary(v, threshold) if task == "binary_classification" else _regression(v)


def _unit_variance(v: Joined, task: str) -> float:
    """Variance of one labelled row's contribution to the primary metric's estimate."""
    if task == "binary_classification":
        return len(v.labels) * stats.delong(v.predictions, [int(y) for y in v.labels])[1]
    squared = [(p - y) ** 2 for y, p in zip(v.labels, v.predictions)]
    mean = sum(squared) / len(squared)
    return sum((s - mean) ** 2 for s in squared) / (len(squared) - 1)


def primary_test(a: Joined, b: Joined, *, task: str, alpha: float) -> dict[str, object]:
    """The test of the primary metric, challenger `b` against champion `a`."""
    if task == "binary_classification":
        (auc_a, var_a), (auc_b, var_b) = (stats.delong(v.predictions, [int(y) for y in v.labels]) for v in (a, b))
        z, p = stats.two_estimates(auc_a, var_a, auc_b, var_b)
        difference, method, better = auc_b - auc_a, "DeLong z-test of two independent AUCs", auc_b > auc_a
    else:
        sq_a = [(p - y) ** 2 for y, p in zip(a.labels, a.predictions)]
        sq_b = [(p - y) ** 2 for y, p in zip(b.labels, b.predictions)]
        z, _, p = stats.welch(sq_a, sq_b)
        rmse_a, rmse_b = math.sqrt(sum(sq_a) / len(sq_a)), math.sqrt(sum(sq_b) / len(sq_b))
        difference, method, better = rmse_b - rmse_a, "Welch t-test on squared errors", rmse_b < rmse_a
    return {"metric": PRIMARY_METRIC[task], "method": method, "statistic": z, "p_value": p, "difference": difference,
            "alpha": alpha, "significant": p < alpha, "better": better}


def secondary_test(a: Joined, b: Joined, *, task: str, threshold: float) -> dict[str, object]:
    """Accuracy (two-proportion z-test) or MAE (Welch's t-test on absolute errors), challenger vs champion."""
    if task == "binary_classification":
        k = [sum((p >= threshold) == bool(int(y)) for y, p in zip(v.labels, v.predictions)) for v in (a, b)]
        z, p = stats.two_proportions(k[0], len(a.labels), k[1], len(b.labels))
        return {"metric": "accuracy", "method": "pooled two-proportion z-test", "statistic": z, "p_value": p}
    t, _, p = stats.welch(*([abs(q - y) for y, q in zip(v.labels, v.predictions)] for v in (a, b)))
    return {"metric": "mae", "method": "Welch t-test on absolute errors", "statistic": t, "p_value": p}


def needed(a: Joined, b: Joined, *, task: str, settings: ABTest) -> int:
    effect = settings.min_detectable_effect
    if task != "binary_classification":  # the effect on RMSE, as an effect on the MSE the test compares
        rmse = math.sqrt(sum((p - y) ** 2 for y, p in zip(a.labels, a.predictions)) / len(a.labels))
        effect = 2 * max(rmse, effect) * effect
    return stats.sample_size(unit_variance_a=_unit_variance(a, task), unit_variance_b=_unit_variance(b, task),
                             effect=effect, alpha=settings.alpha, power=settings.power)


def recommend(a: Joined, b: Joined, *, test: dict[str, object] | None, per_variant: int | None,
              settings: ABTest) -> tuple[str, str, int | None]:
    """(recommendation, reason, labelled rows still needed per variant) (see the module docstring)."""
    least = min(len(a.labels), len(b.labels))
    if test is None or per_variant is None:
        more = max(settings.min_labelled_per_variant - least, 0)
        return contract.KEEP, f"the primary metric cannot be estimated yet ({least} labelled rows in the smaller variant): keep, {more} more labelled rows per variant at least", more or None
    more = max(per_variant, settings.min_labelled_per_variant) - least
    if least < settings.min_labelled_per_variant:
        return contract.KEEP, f"{least} labelled rows in the smaller variant, {settings.min_labelled_per_variant} needed first (min_labelled_per_variant): keep, {more} more per variant", more
    figures = f"{test['metric']} {test['difference']:+.4f}, p = {test['p_value']:.3g} ({test['method']})"
    if test["significant"]:
        if test["better"]:
            return contract.PROMOTE, f"the challenger is significantly better: {figures}", max(more, 0)
        return contract.STOP, f"the challenger is significantly worse: {figures}", max(more, 0)
    if more > 0:
        return contract.KEEP, f"no significant difference yet ({figures}): keep, {more} more labelled rows per variant to detect {settings.min_detectable_effect:g}", more
    return contract.STOP, (f"no significant difference after {least} labelled rows per variant, enough to detect "
                           f"{settings.min_detectable_effect:g} ({figures}): the challenger does not beat the champion by that"), 0


def readout(
    *, stack: str, endpoint: str, task: str, settings: ABTest, threshold: float, variants: Sequence[tuple[str, float]],
    captures: Mapping[str, Mapping[str, Sequence[float]]], labels: Mapping[str, Sequence[float]],
    since: datetime | None, now: datetime | None = None,
) -> contract.ABReadout:
    """The A/B readout of production `variants` ((name, weight), champion first, challenger second)."""
    joined = [join(name, weight, captures[name], labels) for name, weight in variants]
    a, b = joined[0], joined[1]
    try:
        test: dict[str, object] | None = {**primary_test(a, b, task=task, alpha=settings.alpha),
                                          "secondary": secondary_test(a, b, task=task, threshold=threshold)}
        per_variant: int | None = needed(a, b, task=task, settings=settings)
    except (ValueError, ZeroDivisionError):  # too few labelled rows (or one class only) to estimate
        test, per_variant = None, None
    recommendation, reason, more = recommend(a, b, test=test, per_variant=per_variant, settings=settings)
    return contract.ABReadout(
        stack=stack, endpoint=endpoint, task=task, primary_metric=PRIMARY_METRIC[task], champion=a.name, challenger=b.name,
        since=since.isoformat() if since else None, generated=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        variants=tuple(contract.VariantReadout(v.name, v.weight, v.captured, len(v.labels), metrics(v, task=task, threshold=threshold))
                       for v in joined),
        test=test or {"metric": PRIMARY_METRIC[task], "method": None, "statistic": None, "p_value": None, "difference": None,
                      "alpha": settings.alpha, "significant": False, "better": None},
        sample_size={"min_detectable_effect": settings.min_detectable_effect, "alpha": settings.alpha, "power": settings.power,
                     "per_variant": per_variant, "more_needed": more},
        recommendation=recommendation, reason=reason,
    )
