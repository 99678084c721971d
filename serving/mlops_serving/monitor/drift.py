"""The drift job: captured inputs and predictions against the training baseline.

Per feature: PSI over the baseline's bins (numeric: the training deciles; String: the training
categories plus one bin for unseen ones), the exact two-sample KS statistic against the baseline's
sample (numeric), the null rate now and in training, new and missing categories. The same PSI and
KS for the predictions. Outputs, in `out`: `drift_report.json`, `drift_report.html`, and Model
Monitor's `statistics.json` and `constraint_violations.json`; metrics per `publish`.

Memory: the records of one batch (`batch_records`, their bodies still JSON text), at most about
`FLUSH_ROWS` decoded rows, and fixed per-feature state (see `stats`).

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from . import baseline as baseline_mod
from . import captures, publish, storage
from .baseline import Baseline, CategoricalBaseline, NumericBaseline
from .settings import DriftSettings, iso
from .stats import CategoricalAccumulator, NumericAccumulator, psi, to_float

log = logging.getLogger("mlops_serving.monitor")

REPORT_FORMAT_VERSION = 1
PREDICTION = "prediction"
"""The name the predictions go by in the report and in violations."""
TOP_NEW_CATEGORIES = 20
FLUSH_ROWS = 20_000
"""Decoded rows (Python objects, ~1 KB for 30 features) handed on before more are decoded."""


class DriftAccumulator:
    """Per-feature and prediction state of one run, fed with rows or columns in chunks."""

    def __init__(self, baseline: Baseline, *, max_new_categories: int = 1000) -> None:
        self.baseline = baseline
        self.names = baseline.names
        self.features: dict[str, NumericAccumulator | CategoricalAccumulator] = {}
        for name, base in baseline.features.items():
            if isinstance(base, CategoricalBaseline):
                self.features[name] = CategoricalAccumulator(categories=base.frequencies,
                                                             max_new_categories=max_new_categories)
            else:
                self.features[name] = NumericAccumulator(edges=base.edges, sample=base.sample)
        prediction = baseline.prediction
        self.prediction = NumericAccumulator(edges=prediction.edges if prediction else (),
                                             sample=prediction.sample if prediction else ())
        self.rows = 0

    def update_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add positional rows (model column order; None for null)."""
        if not rows:
            return
        self.update_columns(dict(zip(self.names, zip(*rows))))

    def update_columns(self, columns: dict[str, Sequence[Any] | np.ndarray]) -> None:
        """Add one chunk of columns, all of the same length, keyed by feature name."""
        lengths = {len(c) for c in columns.values()}
        assert len(lengths) <= 1, "columns of one chunk have one length"
        self.rows += lengths.pop() if lengths else 0
        for name, values in columns.items():
            acc = self.features[name]
            if isinstance(acc, CategoricalAccumulator):
                acc.update(values)
            else:
                numbers, invalid = to_float(values)
                acc.update(numbers, invalid=invalid)

    def update_predictions(self, values: Sequence[Any] | np.ndarray) -> None:
        if len(values):
            numbers, invalid = to_float(values)
            self.prediction.update(numbers, invalid=invalid)


@dataclass(frozen=True)
class DriftResult:
    report: dict[str, Any]
    violations: list[dict[str, str]]
    metrics: list[dict[str, Any]]
    statistics: dict[str, Any]


def run(settings: DriftSettings, *, now: datetime | None = None) -> DriftResult:
    """Read the captures of the window, compare with the baseline, write reports, publish."""
    now = now or datetime.now(UTC)
    baseline = baseline_mod.load(settings.baseline, schema_location=settings.schema)
    files = captures.find_files(settings.captures, endpoint=settings.endpoint, start=settings.start, end=settings.end)
    counts = captures.ReadCounts()
    acc = DriftAccumulator(baseline)
    decoder = captures.InputDecoder(baseline.names)
    for batch in captures.read_records(files, start=settings.start, end=settings.end,
                                       batch_records=settings.batch_records, counts=counts):
        rows: list[list[Any]] = []
        preds: list[Any] = []
        for record in batch:
            # Input and output are read independently: a capture may hold only one of them.
            if record.input is not None:
                try:
                    rows.extend(decoder.rows(record.input))
                except (ValueError, TypeError, KeyError) as exc:
                    counts.problem(f"record {record.event_id or record.inference_id}: input: {exc}")
            if record.output is not None:
                try:
                    preds.extend(captures.predictions(record.output))
                except (ValueError, TypeError) as exc:
                    counts.problem(f"record {record.event_id or record.inference_id}: output: {exc}")
            if len(rows) >= FLUSH_ROWS:  # many-row requests: bound the decoded rows too
                acc.update_rows(rows)
                acc.update_predictions(preds)
                rows, preds = [], []
        acc.update_rows(rows)
        acc.update_predictions(preds)
    result = summarise(acc, settings=settings, counts=counts.as_dict(), now=now)
    write_outputs(result, settings=settings)
    publish.publish(result.metrics, targets=settings.publish, namespace=settings.names.namespace,
                    metrics_dir=settings.metrics_dir)
    return result


def summarise(acc: DriftAccumulator, *, settings: DriftSettings, counts: dict[str, Any], now: datetime) -> DriftResult:
    """The report, violations, metrics and statistics of an accumulated run."""
    base = acc.baseline
    features: dict[str, dict[str, Any]] = {}
    violations: list[dict[str, str]] = []
    for name, feature_acc in acc.features.items():
        feature_base = base.features[name]
        if isinstance(feature_acc, CategoricalAccumulator):
            assert isinstance(feature_base, CategoricalBaseline)
            entry = _categorical_entry(feature_acc, feature_base)
        else:
            assert isinstance(feature_base, NumericBaseline)
            entry = _numeric_entry(feature_acc, feature_base)
        entry["drifted"] = entry["psi"] is not None and entry["psi"] > settings.psi_threshold
        features[name] = entry
        violations.extend(_violations(name, entry, settings))
    prediction = None
    if base.prediction is not None:
        prediction = _numeric_entry(acc.prediction, base.prediction)
        prediction["drifted"] = prediction["psi"] is not None and prediction["psi"] > settings.psi_threshold
        if prediction["drifted"]:
            violations.append(_violation(PREDICTION, "baseline_drift_check",
                                         f"prediction PSI {prediction['psi']:.4f} is above {settings.psi_threshold:g}"))
    psis = [f["psi"] for f in features.values() if f["psi"] is not None]
    drifted = [name for name, f in features.items() if f["drifted"]]
    report = {
        "format_version": REPORT_FORMAT_VERSION,
        "endpoint": settings.endpoint,
        "monitoring_schedule": settings.monitoring_schedule,
        "generated_at": iso(now),
        "window": {"start": iso(settings.start), "end": iso(settings.end)},
        "rows": acc.rows,
        "predictions": acc.prediction.rows,
        "capture": counts,
        "baseline": {"location": settings.baseline, "n_rows": base.n_rows, "column_order_from": base.order_source},
        "thresholds": {"psi": settings.psi_threshold, "null_rate_increase": settings.null_rate_tolerance,
                       "new_category_share": settings.new_category_tolerance},
        "max_feature_psi": max(psis) if psis else None,
        "drifted_features": drifted,
        "features": features,
        "prediction": prediction,
        "violations": violations,
    }
    return DriftResult(report=report, violations=violations, metrics=_metrics(report, settings, now),
                       statistics=_statistics(acc, base))


def _numeric_entry(acc: NumericAccumulator, base: NumericBaseline) -> dict[str, Any]:
    shares = acc.shares()
    value = psi(base.frequencies, shares) if shares is not None and base.frequencies else None
    moments = acc.moments
    return {
        "type": base.type,
        "psi": value,
        "ks": acc.ks.statistic(),
        "rows": acc.rows,
        "present": acc.present,
        "null_rate": acc.nulls / acc.rows if acc.rows else None,
        "baseline_null_rate": base.null_rate,
        "invalid": acc.invalid,
        "mean": moments.mean if moments.count else None,
        "baseline_mean": base.mean,
        "std": moments.std,
        "baseline_std": base.std,
        "min": moments.minimum if moments.count else None,
        "max": moments.maximum if moments.count else None,
        "bins": {
            "edges": list(base.edges),
            "baseline": list(base.frequencies),
            "current": shares.tolist() if shares is not None else None,
            "counts": acc.counts.tolist(),
        },
    }


def _categorical_entry(acc: CategoricalAccumulator, base: CategoricalBaseline) -> dict[str, Any]:
    shares = acc.shares()
    expected = [base.frequencies[c] for c in acc.categories] + [0.0]
    value = psi(expected, shares) if shares is not None and any(expected) else None
    return {
        "type": "String",
        "psi": value,
        "ks": None,
        "rows": acc.rows,
        "present": acc.present,
        "null_rate": acc.nulls / acc.rows if acc.rows else None,
        "baseline_null_rate": base.null_rate,
        "invalid": acc.invalid,
        "new_categories": dict(acc.new.most_common(TOP_NEW_CATEGORIES)),
        "new_category_count": len(acc.new) + (1 if acc.new_untracked else 0),
        "new_category_share": acc.new_total / acc.present if acc.present else None,
        "missing_categories": acc.missing(base.frequencies),
        "bins": {
            "labels": [*acc.categories, "(unseen in training)"],
            "baseline": expected,
            "current": shares.tolist() if shares is not None else None,
            "counts": [*acc.counts.tolist(), acc.new_total],
        },
    }


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    # The shape of Model Monitor's constraint_violations.json entries.
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def _violations(name: str, entry: dict[str, Any], settings: DriftSettings) -> list[dict[str, str]]:
    out = []
    if entry["drifted"]:
        out.append(_violation(name, "baseline_drift_check",
                              f"PSI {entry['psi']:.4f} is above {settings.psi_threshold:g}"))
    if entry["null_rate"] is not None and entry["null_rate"] - entry["baseline_null_rate"] > settings.null_rate_tolerance:
        out.append(_violation(name, "completeness_check",
                              f"null rate {entry['null_rate']:.4f} against {entry['baseline_null_rate']:.4f} in training"))
    if entry["invalid"]:
        out.append(_violation(name, "data_type_check", f"{entry['invalid']} values of the wrong type"))
    share = entry.get("new_category_share")
    if share is not None and share > settings.new_category_tolerance:
        shown = ", ".join(list(entry["new_categories"])[:5])
        out.append(_violation(name, "categorical_values_check",
                              f"{share:.2%} of values are categories unseen in training ({shown})"))
    return out


def _metrics(report: dict[str, Any], settings: DriftSettings, now: datetime) -> list[dict[str, Any]]:
    names = settings.names
    # Every metric names its endpoint and, under a schedule, the schedule (AWS's recommendation for
    # Model Monitor's metric files; the drift alarms match both, mlops_contracts.metrics.DRIFT_DIMENSIONS).
    endpoint = {names.endpoint_dimension: settings.endpoint}
    if settings.monitoring_schedule:
        endpoint[names.schedule_dimension] = settings.monitoring_schedule
    when = settings.end or now
    out = []
    for name, entry in report["features"].items():
        dims = {**endpoint, names.feature_dimension: name}
        out.append(publish.datum(names.feature_psi, entry["psi"], dims, timestamp=when))
        out.append(publish.datum(names.feature_ks, entry["ks"], dims, timestamp=when))
    out.append(publish.datum(names.max_feature_psi, report["max_feature_psi"], endpoint, timestamp=when))
    if report["max_feature_psi"] is not None:
        out.append(publish.datum(names.drifted_features, len(report["drifted_features"]), endpoint,
                                 timestamp=when, unit="Count"))
    if report["prediction"] is not None:
        out.append(publish.datum(names.prediction_psi, report["prediction"]["psi"], endpoint, timestamp=when))
    return [m for m in out if m is not None]


def _statistics(acc: DriftAccumulator, base: Baseline) -> dict[str, Any]:
    """Model Monitor's statistics.json (version 0) for what was captured (no KLL sketches)."""
    features = []
    for name, feature_acc in acc.features.items():
        if isinstance(feature_acc, CategoricalAccumulator):
            buckets = [{"value": c, "count": int(n)} for c, n in zip(feature_acc.categories, feature_acc.counts) if n]
            buckets += [{"value": c, "count": n} for c, n in feature_acc.new.items()]
            features.append({
                "name": name, "inferred_type": "String",
                "string_statistics": {
                    "common": {"num_present": feature_acc.present, "num_missing": feature_acc.nulls},
                    "distinct_count": len(buckets) + (1 if feature_acc.new_untracked else 0),
                    "distribution": {"categorical": {"buckets": buckets}},
                },
            })
        else:
            m = feature_acc.moments
            features.append({
                "name": name, "inferred_type": base.features[name].type,
                "numerical_statistics": {
                    "common": {"num_present": m.count, "num_missing": feature_acc.nulls},
                    "mean": m.mean if m.count else None, "sum": m.total,
                    "std_dev": m.std, "min": m.minimum if m.count else None, "max": m.maximum if m.count else None,
                },
            })
    return {"version": 0, "dataset": {"item_count": acc.rows}, "features": features}


def status_message(violations: list[dict[str, str]]) -> str:
    """The line SageMaker shows as the execution's status (`/opt/ml/output/message`)."""
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        return f"CompletedWithViolations: {first['feature_name']}: {first['description']}{more}"
    return "Completed: Job completed successfully with no violations."


def write_outputs(result: DriftResult, *, settings: DriftSettings) -> None:
    out = settings.out

    def dump(doc: Any) -> bytes:
        return (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode()

    storage.write_bytes(storage.join(out, "drift_report.json"), dump(result.report), content_type="application/json")
    storage.write_bytes(storage.join(out, "statistics.json"), dump(result.statistics), content_type="application/json")
    storage.write_bytes(storage.join(out, "constraint_violations.json"), dump({"violations": result.violations}),
                        content_type="application/json")
    if settings.html:
        from .report import render_drift  # jinja2 only when an HTML report is wanted

        storage.write_bytes(storage.join(out, "drift_report.html"), render_drift(result.report).encode(),
                            content_type="text/html; charset=utf-8")
    if settings.message_file:
        storage.write_bytes(settings.message_file, status_message(result.violations).encode())
    log.info("drift report for %s: %d rows, max feature PSI %s, drifted %s, %d violations -> %s",
             settings.endpoint, result.report["rows"], result.report["max_feature_psi"],
             result.report["drifted_features"] or "none", len(result.violations), out)
