"""The shadow analysis: the champion and the shadow variant compared on the same requests.

Pairs are the requests both captured (same key: the caller's InferenceId). For each pair the
difference is shadow - champion, prediction by prediction. Checks, each against the endpoint's
`experiment.shadow` thresholds (specs.config.schema.ShadowAnalysis):

- `requests`: at least `min_requests` pairs, else the verdict is `insufficient` (wait for more);
- `agreement` (classification): the share of predictions whose decisions at `decision_threshold`
  agree, at least `min_agreement`;
- `difference`: the 99th percentile of |difference| at most `max_difference_p99` (when set);
- `latency`: the shadow's p99 model latency at most `max_latency_p99_increase_ms` above the
  champion's (from CloudWatch; where CloudWatch has no percentiles the check says so and does not decide);
- `errors`: the shadow's 5XX error rate at most `max_error_rate_increase` above the champion's.

The verdict is `passed` when every deciding check passes, `failed` naming each failed check and its
figures otherwise. The document also carries the difference's quantiles and histogram.

Must not import: boto3, botocore, pulumi, nor `mlops_training`, `mlops_serving` or `torch` (pure).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specs.config.schema import ShadowAnalysis
from mlops.experiment.captures import Captured

FORMAT_VERSION = 1
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class VariantFigures:
    """CloudWatch's figures for one variant over the analysis window."""

    invocations: int
    errors_5xx: int
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.invocations if self.invocations else 0.0


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` with linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def histogram(values: list[float], bins: int = HISTOGRAM_BINS) -> dict[str, list[float]]:
    """Equal-width bins over [min, max] (numpy.histogram's edges and counts; the last bin is closed)."""
    low, high = min(values), max(values)
    if high == low:
        high = low + 1e-9
    width = (high - low) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / width))] += 1
    return {"edges": [low + i * width for i in range(bins + 1)], "counts": [float(c) for c in counts]}


def _check(name: str, passed: bool | None, detail: str) -> dict[str, Any]:
    return {"check": name, "passed": passed, "detail": detail}


def analyze(champion: Mapping[str, Captured], shadow: Mapping[str, Captured], *, task: str, thresholds: ShadowAnalysis,
            figures: Mapping[str, VariantFigures], names: tuple[str, str]) -> dict[str, Any]:
    """The analysis document of `shadow` against `champion` (key -> capture); `names` are (champion, shadow)."""
    keys = sorted(set(champion) & set(shadow))
    pairs = [(c, s) for k in keys for c, s in zip(champion[k].predictions, shadow[k].predictions)]
    doc: dict[str, Any] = {"format_version": FORMAT_VERSION, "champion": names[0], "shadow": names[1], "task": task,
                           "requests": {"champion": len(champion), "shadow": len(shadow), "paired": len(keys)},
                           "thresholds": thresholds.model_dump(mode="json")}
    if len(keys) < thresholds.min_requests:
        reason = (f"{len(keys)} of {thresholds.min_requests} requests answered by both {names[0]} and {names[1]} so far "
                  "(pairs are matched by InferenceId)")
        return {**doc, "verdict": "insufficient", "reason": reason, "checks": [_check("requests", None, reason)]}
    differences = [s - c for c, s in pairs]
    doc["difference"] = {"mean": sum(differences) / len(differences),
                         "quantiles": {str(q): quantile(differences, q) for q in QUANTILES},
                         "abs_p99": quantile([abs(d) for d in differences], 0.99), "histogram": histogram(differences)}
    checks = [_check("requests", True, f"{len(keys)} paired requests >= {thresholds.min_requests}")]
    if task == "binary_classification":
        t = thresholds.decision_threshold
        agreement = sum((c >= t) == (s >= t) for c, s in pairs) / len(pairs)
        doc["agreement"] = agreement
        checks.append(_check("agreement", agreement >= thresholds.min_agreement,
                             f"decisions at {t:g} agree on {agreement:.4f} of predictions (at least {thresholds.min_agreement:g})"))
    if thresholds.max_difference_p99 is not None:
        p99 = doc["difference"]["abs_p99"]
        checks.append(_check("difference", p99 <= thresholds.max_difference_p99,
                             f"p99 |shadow - champion| {p99:.4f} (at most {thresholds.max_difference_p99:g})"))
    checks += _operational_checks(figures, names, thresholds)
    doc["figures"] = {name: vars(f) | {"error_rate": f.error_rate} for name, f in figures.items()}
    failed = [c for c in checks if c["passed"] is False]
    verdict = "failed" if failed else "passed"
    reason = "; ".join(f"{c['check']}: {c['detail']}" for c in (failed or [c for c in checks if c["passed"]]))
    return {**doc, "verdict": verdict, "reason": reason, "checks": checks}


def _operational_checks(figures: Mapping[str, VariantFigures], names: tuple[str, str], thresholds: ShadowAnalysis) -> list[dict[str, Any]]:
    champion, shadow = figures.get(names[0]), figures.get(names[1])
    if champion is None or shadow is None:
        missing = [n for n in names if n not in figures]
        return [_check("latency", None, f"no CloudWatch figures for {', '.join(missing)}"),
                _check("errors", None, f"no CloudWatch figures for {', '.join(missing)}")]
    checks = []
    if champion.latency_p99_ms is None or shadow.latency_p99_ms is None:
        checks.append(_check("latency", None, "CloudWatch returned no p99 ModelLatency for the window: not decided"))
    else:
        increase = shadow.latency_p99_ms - champion.latency_p99_ms
        checks.append(_check("latency", increase <= thresholds.max_latency_p99_increase_ms,
                             f"p99 latency {shadow.latency_p99_ms:.1f} ms vs {champion.latency_p99_ms:.1f} ms: "
                             f"{increase:+.1f} ms (at most +{thresholds.max_latency_p99_increase_ms:g})"))
    increase = shadow.error_rate - champion.error_rate
    checks.append(_check("errors", increase <= thresholds.max_error_rate_increase,
                         f"5XX rate {shadow.error_rate:.4f} ({shadow.errors_5xx}/{shadow.invocations}) vs {champion.error_rate:.4f} "
                         f"({champion.errors_5xx}/{champion.invocations}): {increase:+.4f} (at most +{thresholds.max_error_rate_increase:g})"))
    return checks
