"""The three gates of the pipeline's Condition step, each a `Gate` whose detail carries the figures.

- thresholds: every gated metric on the right side of its threshold (a minimum for higher-is-better
  metrics, a maximum for `log_loss`, `rmse`, `mae`), on the candidate's point estimate;
- regression: for each champion and each compared metric (the gated ones, else the task's primary
  metric) the candidate is not worse than the champion by more than `max_regression` (absolute, on the
  point estimate of the paired difference; its 95 % interval is reported beside it);
- validation: the schema's data checks passed on the dataset.

Must not import: anything of the project but `mlops_contracts` and `mlops_training` (runs inside the container).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlops_contracts.evaluation import (
    GATE_REGRESSION, GATE_THRESHOLDS, GATE_VALIDATION, LOWER_IS_BETTER, PRIMARY_METRIC, TASK_METRICS, Champion,
    Estimate, Gate,
)

from mlops_training.validate import ValidationReport

# Comparisons forgive float noise of a JSON round trip, nothing more (as mlops/promote/gates.py does).
EPSILON = 1e-9


def check_gates(gates: Mapping[str, float], *, task: str) -> None:
    """ValueError naming the metric when a gate names one the task does not have, or a non-number threshold."""
    allowed = TASK_METRICS[task]
    for metric, threshold in gates.items():
        if metric not in allowed:
            raise ValueError(f"--gates: unknown metric {metric!r} for {task}; allowed: {', '.join(allowed)}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ValueError(f"--gates: {metric} threshold {threshold!r}; allowed: a number")


def compared_metrics(gates: Mapping[str, float], *, task: str) -> list[str]:
    """The metrics the regression gate compares: the gated ones, else the task's primary metric."""
    return list(gates) if gates else [PRIMARY_METRIC[task]]


def threshold_gate(metrics: Mapping[str, Estimate], gates: Mapping[str, float]) -> Gate:
    """Every gated metric of the candidate meets its threshold."""
    if not gates:
        return Gate(gate=GATE_THRESHOLDS, passed=True, detail="no metric gates declared")
    parts, ok = [], True
    for metric, threshold in gates.items():
        lower = metric in LOWER_IS_BETTER
        op = "<=" if lower else ">="
        if metric not in metrics:
            ok = False
            parts.append(f"candidate {metric} could not be computed on the slice (needs {op} {threshold:g})")
            continue
        e = metrics[metric]
        met = e.value <= threshold + EPSILON if lower else e.value >= threshold - EPSILON
        ok &= met
        verdict = "meets" if met else "misses"
        parts.append(f"candidate {metric} {e.value:.4f} (95% CI {e.ci_low:.4f}..{e.ci_high:.4f}) {verdict} "
                     f"{op} {threshold:g}")
    return Gate(gate=GATE_THRESHOLDS, passed=ok, detail="; ".join(parts))


def regression_gate(candidate: Mapping[str, Estimate], champions: Sequence[Champion], *, compared: Sequence[str],
                    max_regression: float) -> Gate:
    """The candidate is not worse than any champion by more than `max_regression` on a compared metric."""
    if not champions:
        return Gate(gate=GATE_REGRESSION, passed=True, detail="no champion to compare with")
    parts, ok = [], True
    for champion in champions:
        for metric in compared:
            if metric not in candidate or metric not in champion.metrics:
                ok = False
                parts.append(f"{metric} vs {champion.name}: not computable on the slice for both models")
                continue
            diff = champion.difference[metric]
            worse_by = diff.value if metric in LOWER_IS_BETTER else -diff.value
            passed = worse_by <= max_regression + EPSILON
            ok &= passed
            how = "within" if passed else "exceeds"
            parts.append(
                f"{metric} candidate {candidate[metric].value:.4f} vs {champion.name} "
                f"{champion.metrics[metric].value:.4f}: difference {diff.value:+.4f} (95% CI {diff.ci_low:+.4f}.."
                f"{diff.ci_high:+.4f}), worse by {max(worse_by, 0.0):.4f} {how} max_regression {max_regression:g}"
            )
    return Gate(gate=GATE_REGRESSION, passed=ok, detail="; ".join(parts))


def validation_gate(report: ValidationReport) -> Gate:
    """The data checks passed; otherwise the failing checks, with their columns and row counts."""
    if report.ok:
        return Gate(gate=GATE_VALIDATION, passed=True,
                    detail=f"data checks passed on {report.n_rows} rows in {report.n_files} file(s)")
    checks = "; ".join(f"{p.column}: {p.kind} ({p.rows} rows: {p.detail})" for p in report.problems)
    return Gate(gate=GATE_VALIDATION, passed=False,
                detail=f"{len(report.problems)} data check(s) failed on {report.n_rows} rows: {checks}; "
                "the thresholds and regression gates were not evaluated (no model is scored on data that "
                "fails validation)")
