"""The promotion gates' maths: metric thresholds, regression against the champion, schema compatibility.

Pure functions over plain data (package descriptions, metric mappings, evaluation documents, schema
documents, a local model.tar.gz) that return a `GateResult`. The regression gate that decides a
promotion reads a shared evaluation (`evaluation_regression_gate`: candidate and champion scored on the
same rows, mlops_contracts.evaluation); `regression_gate` over two packages' self-reported metrics is
kept for callers that compare figures of one split.

Must not import: boto3, botocore, pulumi or ruamel, nor the package's aws, files, audit, policy or flow
modules: a gate never reaches the network or the disk it does not name
(tests/promotion/test_promote_layout.py checks it); nor `mlops_training`, `mlops_serving` or `torch` (the
CLI runs the containers as processes).
"""
from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_contracts.evaluation import Evaluation
from specs.config.schema import LOWER_IS_BETTER, TASK_METRICS

METRIC_PREFIX = "metric_"
"""CustomerMetadataProperties keys that carry a metric: `metric_<name>` (training's register.py)."""
SCHEMA_MEMBER = "schema.json"
"""The model.tar.gz member that describes the model's inputs (docs/contracts.md section 2)."""
SCHEMA_FORMAT_VERSION = 1
# Regression and threshold comparisons forgive float noise from repr() round trips, nothing more.
_EPSILON = 1e-9


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict."""

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def package_metrics(package: Mapping[str, Any]) -> dict[str, float]:
    """Metrics a package carries as CustomerMetadataProperties `metric_<name>` (training's register.py)."""
    metrics = {}
    for key, value in (package.get("CustomerMetadataProperties") or {}).items():
        if key.startswith(METRIC_PREFIX):
            try:
                metrics[key[len(METRIC_PREFIX):]] = float(value)
            except ValueError:
                continue  # not a number: no gate can use it, and a gate on it reports it as missing
    return metrics


def _meets(metric: str, value: float, threshold: float) -> bool:
    return value <= threshold + _EPSILON if metric in LOWER_IS_BETTER else value >= threshold - _EPSILON


def threshold_gate(metrics: Mapping[str, float], gates: Mapping[str, float], *, where: str) -> GateResult:
    """Every gated metric present and on the right side of its threshold (a maximum for LOWER_IS_BETTER)."""
    if not gates:
        return GateResult("metrics", True, f"no metric gates configured in {where}")
    parts, ok = [], True
    for metric, threshold in gates.items():
        op = "<=" if metric in LOWER_IS_BETTER else ">="
        if metric not in metrics:
            ok = False
            parts.append(f"{metric} missing from the package (needs {op} {threshold:g})")
        elif not _meets(metric, metrics[metric], threshold):
            ok = False
            parts.append(f"{metric} {metrics[metric]:.4g} misses {op} {threshold:g}")
        else:
            parts.append(f"{metric} {metrics[metric]:.4g} {op} {threshold:g}")
    return GateResult("metrics", ok, f"{where}: " + "; ".join(parts))


def regression_gate(
    metrics: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    compared: list[str],
    margin: float,
    champion_label: str,
) -> GateResult:
    """No compared metric worse than the champion's by more than `margin` (absolute)."""
    if champion is None:
        return GateResult("regression", True, f"no champion to compare with ({champion_label})")
    parts, ok = [], True
    for metric in compared:
        if metric not in champion:
            parts.append(f"{metric}: champion has none, not compared")
            continue
        if metric not in metrics:
            ok = False
            parts.append(f"{metric} missing from the package")
            continue
        worse_by = metrics[metric] - champion[metric] if metric in LOWER_IS_BETTER else champion[metric] - metrics[metric]
        if worse_by > margin + _EPSILON:
            ok = False
            parts.append(f"{metric} {metrics[metric]:.4g} is {worse_by:.4g} worse than the champion's {champion[metric]:.4g} (allowed {margin:g})")
        else:
            parts.append(f"{metric} {metrics[metric]:.4g} vs champion {champion[metric]:.4g}")
    if not parts:
        parts.append("no metric to compare")
    return GateResult("regression", ok, f"against {champion_label}: " + "; ".join(parts))


def evaluation_metrics(evaluation: Evaluation) -> dict[str, float]:
    """The candidate's figures (point estimates) on the evaluation's slice, for the thresholds gate."""
    return {name: estimate.value for name, estimate in evaluation.candidate.metrics.items()}


def evaluation_regression_gate(
    evaluation: Evaluation, champion: str, *, compared: list[str], margin: float, evidence: str, champion_label: str,
) -> GateResult:
    """No compared metric worse than the champion's by more than `margin` (absolute), both models scored on
    the evaluation's shared slice: the paired difference (candidate - champion) decides. The detail names the
    evidence, the slice (rows, time range, hash) and every figure with its 95 % interval."""
    entry = evaluation.champion(champion)
    assert entry is not None, f"the caller matched champion {champion!r} in the evaluation"
    s = evaluation.slice
    head = (f"against {champion_label}, evidence {evidence} (champion entry {champion!r}; slice {s.split}: {s.rows} rows "
            f"labelled {s.start} .. {s.end}, {s.hash})")
    failed_validation = [g for g in evaluation.gates if g.gate == "validation" and not g.passed]
    if failed_validation:
        return GateResult("regression", False, f"{head}: the evaluation's data checks failed, nothing was scored: {failed_validation[0].detail}")
    parts, ok = [], True
    for metric in compared:
        mine, theirs, diff = evaluation.candidate.metrics.get(metric), entry.metrics.get(metric), entry.difference.get(metric)
        if mine is None or theirs is None or diff is None:
            ok = False
            parts.append(f"{metric}: not in the evaluation for both models (candidate has {sorted(evaluation.candidate.metrics)}, "
                         f"champion has {sorted(entry.metrics)})")
            continue
        worse_by = diff.value if metric in LOWER_IS_BETTER else -diff.value
        passed = worse_by <= margin + _EPSILON
        ok &= passed
        parts.append(
            f"{metric} candidate {mine.value:.4f} (95% CI {mine.ci_low:.4f}..{mine.ci_high:.4f}) vs champion "
            f"{theirs.value:.4f} (95% CI {theirs.ci_low:.4f}..{theirs.ci_high:.4f}): paired difference {diff.value:+.4f} "
            f"(95% CI {diff.ci_low:+.4f}..{diff.ci_high:+.4f}), worse by {max(worse_by, 0.0):.4f} "
            f"{'within' if passed else 'exceeds'} max_regression {margin:g}"
        )
    if not parts:
        parts.append("no metric to compare")
    return GateResult("regression", ok, f"{head}: " + "; ".join(parts))


def missing_evidence_gate(*, champion_label: str, tried: list[str], flag: str) -> GateResult:
    """The target has a champion but no shared evaluation could be had: the gate fails, saying what was
    tried, why each failed, and how to supply the evidence."""
    return GateResult(
        "regression", False,
        f"no shared evaluation against {champion_label}: " + "; ".join(tried)
        + f"; supply labelled data with {flag} PATH|s3://PREFIX (a directory written by `mlops-train dataset`), "
        "or register the candidate with an evaluation against this champion (mlops:evaluation)",
    )


def compared_metrics(gates: Mapping[str, float], task: str) -> list[str]:
    """The metrics regression compares: the gated ones, else every metric of the task."""
    return list(gates) if gates else sorted(TASK_METRICS[task])


def schema_mismatches(model_schema: Mapping[str, Any], target_schema: Mapping[str, Any], *, group: str) -> list[str]:
    """Why a model trained on `model_schema` cannot be served from the target's feature group.

    Every model input must exist in the target with the same type, and the target must not allow
    nulls where the model was trained without them. Extra target features are fine (not inputs).
    """
    problems = []
    if model_schema.get("format_version") != SCHEMA_FORMAT_VERSION:
        return [f"schema.json format_version {model_schema.get('format_version')!r}; this reader knows {SCHEMA_FORMAT_VERSION}"]
    if model_schema.get("task") != target_schema["task"]:
        problems.append(f"task {model_schema.get('task')!r} in the model, {target_schema['task']!r} in the target")
    target = {f["name"]: f for f in target_schema["features"]}
    for feature in model_schema.get("features") or []:
        name = feature.get("name")
        mine = target.get(name)
        if mine is None:
            problems.append(f"input {name!r} is not a feature of the target's feature group {group!r}")
            continue
        if feature.get("type") != mine["type"]:
            problems.append(f"input {name!r} is {feature.get('type')} in the model, {mine['type']} in the target")
        if mine["nullable"] and not feature.get("nullable", False):
            problems.append(f"input {name!r} may be null in the target but the model was trained without nulls")
    return problems


def read_schema(archive: Path) -> dict[str, Any]:
    """schema.json from a model.tar.gz (docs/contracts.md section 2)."""
    with tarfile.open(archive, mode="r:gz") as tar:
        try:
            member = tar.getmember(SCHEMA_MEMBER)
        except KeyError:
            raise ValueError(f"the artifact has no {SCHEMA_MEMBER} (members: {', '.join(tar.getnames()) or 'none'})") from None
        fh = tar.extractfile(member)
        if fh is None:
            raise ValueError(f"{SCHEMA_MEMBER} in the artifact is not a regular file")
        return json.loads(fh.read())

