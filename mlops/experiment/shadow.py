"""Shadow analysis: a shadow variant against its champion on the same mirrored requests (pure).

Requests are joined by key (inference id, else event id; the local router gives a mirrored request
one shared id) and compared row by row when both answered with the same number of predictions.
Checks, each against `endpoints.<e>.experiment.shadow` (specs.config.schema.ShadowAnalysis):

- agreement (binary classification): share of rows whose decisions (score >= decision_threshold) are
  equal, at least `min_agreement`; regression has no decision, its differences are reported instead;
- difference_p99: the 99th percentile of |shadow - champion| at most `max_difference_p99` (when set);
- latency_p99: shadow p99 ModelLatency minus the champion's at most `max_latency_p99_increase_ms`;
- error_rate: shadow (4XX+5XX)/Invocations minus the champion's at most `max_error_rate_increase`.

A check without figures (no latency or invocations published) fails: the shadow is not shown to be
safe. Verdict: `insufficient` while fewer than `min_requests` requests are joined (whatever the
checks say), else `failed` if any check failed, else `passed`.

Must not import: `pulumi` or its providers, `components`, `mlops_training`, `mlops_serving`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from mlops_contracts import experiment as contract
from specs.config.schema import ShadowAnalysis

from .captures import Serving

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default method) of already sorted values."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def histogram(values: Sequence[float], bins: int = HISTOGRAM_BINS) -> dict[str, list[float]]:
    """Equal-width bins from min to max (numpy.histogram's edges and counts; the last bin is closed)."""
    if not values:
        return {"edges": [], "counts": []}
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 0.5, high + 0.5
    width = (high - low) / bins
    edges = [low + i * width for i in range(bins)] + [high]
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / width), bins - 1)] += 1
    return {"edges": edges, "counts": counts}


def join(champion: Mapping[str, Sequence[float]], shadow: Mapping[str, Sequence[float]]) -> tuple[int, list[float], list[float]]:
    """(joined requests, champion rows, shadow rows) of the keys both answered with as many rows."""
    keys = sorted(k for k in champion.keys() & shadow.keys() if len(champion[k]) == len(shadow[k]))
    return len(keys), [v for k in keys for v in champion[k]], [v for k in keys for v in shadow[k]]


def _check(name: str, value: float | None, threshold: float, what: str, unit: str = "") -> contract.Check:
    if value is None:
        return contract.Check(name, False, None, threshold, f"no figures for {what}: not shown to be within {threshold}{unit}")
    passed = value >= threshold if name == "agreement" else value <= threshold
    relation = (">=" if passed else "<") if name == "agreement" else ("<=" if passed else ">")
    return contract.Check(name, passed, value, threshold, f"{what} {value:.4g}{unit} {relation} {threshold:g}{unit}")


def _delta(shadow: float | None, champion: float | None) -> float | None:
    return None if shadow is None or champion is None else shadow - champion


def _rate(serving: Serving) -> float | None:
    return serving.errors / serving.requests if serving.requests else None


def checks(*, task: str, settings: ShadowAnalysis, champion_rows: Sequence[float], shadow_rows: Sequence[float],
           champion: Serving, shadow: Serving) -> list[contract.Check]:
    """The analysis's checks (see the module docstring)."""
    found = []
    if task == "binary_classification":
        t = settings.decision_threshold
        agree = sum((c >= t) == (s >= t) for c, s in zip(champion_rows, shadow_rows))
        found.append(_check("agreement", agree / len(champion_rows) if champion_rows else None, settings.min_agreement,
                            f"equal decisions at {t:g}"))
    if settings.max_difference_p99 is not None:
        absolute = sorted(abs(s - c) for c, s in zip(champion_rows, shadow_rows))
        found.append(_check("difference_p99", quantile(absolute, 0.99) if absolute else None, settings.max_difference_p99,
                            "p99 of |shadow - champion|"))
    found.append(_check("latency_p99", _delta(shadow.p99_ms, champion.p99_ms), settings.max_latency_p99_increase_ms,
                        "shadow p99 latency increase", " ms"))
    found.append(_check("error_rate", _delta(_rate(shadow), _rate(champion)), settings.max_error_rate_increase,
                        "shadow error-rate increase"))
    return found


def analyse(
    *, stack: str, endpoint: str, task: str, settings: ShadowAnalysis, champion: str, shadow: str,
    champion_captures: Mapping[str, Sequence[float]], shadow_captures: Mapping[str, Sequence[float]],
    serving: Mapping[str, Serving], since: datetime | None, now: datetime | None = None,
) -> contract.ShadowReadout:
    """The shadow readout of `shadow` against `champion` (captures: join key -> predictions)."""
    joined, champion_rows, shadow_rows = join(champion_captures, shadow_captures)
    found = checks(task=task, settings=settings, champion_rows=champion_rows, shadow_rows=shadow_rows,
                   champion=serving[champion], shadow=serving[shadow])
    differences = [s - c for c, s in zip(champion_rows, shadow_rows)]
    ordered = sorted(differences)
    failed = [c.name for c in found if not c.passed]
    if joined < settings.min_requests:
        verdict = contract.VERDICT_INSUFFICIENT
        reason = f"{joined} joined requests of the {settings.min_requests} needed (experiment.shadow.min_requests): mirror more traffic"
    elif failed:
        verdict, reason = contract.VERDICT_FAILED, "failed: " + "; ".join(c.detail for c in found if not c.passed)
    else:
        verdict, reason = contract.VERDICT_PASSED, f"all {len(found)} checks passed on {joined} joined requests"
    latency_source = ("CloudWatch ModelLatency percentiles" if all(s.percentiles for s in serving.values())
                      else "CloudWatch ModelLatency: no percentiles from this service (the local emulator); p50 is the average, p99 the maximum")
    return contract.ShadowReadout(
        stack=stack, endpoint=endpoint, champion=champion, shadow=shadow, task=task,
        since=since.isoformat() if since else None, generated=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        requests={"champion": len(champion_captures), "shadow": len(shadow_captures), "joined": joined, "min_requests": settings.min_requests},
        checks=tuple(found),
        differences={"rows": len(differences), "quantiles": {f"p{round(q * 100):02d}": quantile(ordered, q) for q in QUANTILES} if ordered else {},
                     "histogram": histogram(differences)},
        latency={"source": latency_source, **{name: {"p50_ms": s.p50_ms, "p99_ms": s.p99_ms} for name, s in serving.items()}},
        errors={name: {"requests": s.requests, "errors": s.errors, "rate": _rate(s)} for name, s in serving.items()},
        verdict=verdict, reason=reason,
    )
