"""Evaluation contract, Evaluate step -> Condition, Register, promotion and lineage (docs/contracts.md section 8).

`mlops-train evaluate` scores a candidate and the current champions on one shared, held-back slice
of a dataset and writes `evaluation.json` (this module's `Evaluation`) plus one SageMaker
model-quality document per model under `model_quality/`. The pipeline's Condition step reads
`decision.passed` (a JSON boolean) with JsonGet; `mlops promote` and `mlops lineage` read the whole
document through `read`/`parse`.

Must not import: anything outside the standard library (the containers and the operator CLI both use it).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
"""`format_version` of evaluation.json written today."""
EVALUATION_FILE = "evaluation.json"
"""The evaluation document, at the root of the Evaluate step's output."""
MODEL_QUALITY_DIR = "model_quality"
"""Folder of the per-model SageMaker model-quality documents: `candidate.json`, `champion-<N>.json` (N from 1)."""
CANDIDATE_QUALITY_FILE = "candidate.json"

GATE_THRESHOLDS = "thresholds"
GATE_REGRESSION = "regression"
GATE_VALIDATION = "validation"
GATES: tuple[str, ...] = (GATE_THRESHOLDS, GATE_REGRESSION, GATE_VALIDATION)
"""Gate names, in the order they appear in `gates`."""

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("auc", "accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
"""The metrics a gate may name per task (the names of metrics.json, docs/contracts.md section 5)."""
EVALUATED_METRICS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("auc", "accuracy", "log_loss"),
    "regression": ("rmse", "mse", "mae", "r2"),
}
"""The metrics evaluation.json carries per task: the gateable ones, plus `mse` for SageMaker's model quality."""
PRIMARY_METRIC: dict[str, str] = {"binary_classification": "auc", "regression": "rmse"}
"""The metric compared with the champions when the model declares no gates."""
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "rmse", "mae", "mse"})
"""Metrics where smaller is better: a gate on them is a maximum."""

QUALITY_SECTIONS: dict[str, str] = {
    "binary_classification": "binary_classification_metrics",
    "regression": "regression_metrics",
}
"""The top-level key of SageMaker's model-quality statistics document, per task."""
QUALITY_METRICS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("auc", "accuracy"),
    "regression": ("mae", "mse", "rmse", "r2"),
}
"""The metrics each model-quality document carries, under SageMaker's names."""


def champion_quality_file(index: int) -> str:
    """The model-quality file of the `index`-th champion (1-based), in the order of `champions`."""
    if index < 1:
        raise ValueError(f"champion index {index}; allowed: 1 or more")
    return f"champion-{index}.json"


def metric_better(metric: str) -> str:
    """`lower` or `higher`: which direction is better for `metric`."""
    return "lower" if metric in LOWER_IS_BETTER else "higher"


class EvaluationFormatError(ValueError):
    """evaluation.json does not follow this contract; the message names the field and the value."""


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A metric on the slice with its bootstrap confidence interval (percentile, 95 %)."""

    value: float
    ci_low: float
    ci_high: float
    standard_deviation: float
    """Standard deviation of the metric over the bootstrap resamples."""


@dataclass(frozen=True, kw_only=True)
class Difference:
    """Candidate minus champion on the same resampled rows (paired), with its 95 % interval."""

    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, kw_only=True)
class Slice:
    """The rows every model was scored on: the dataset's most recent, held-back split."""

    split: str
    rows: int
    start: str
    """ISO-8601 UTC, the earliest label time of the slice (`from` in JSON)."""
    end: str
    """ISO-8601 UTC, the latest label time of the slice (`to` in JSON)."""
    hash: str
    """`sha256:<hex>` over the slice's (record id, label time) pairs, in row order."""
    dataset_manifest: str
    dataset_hash: str


@dataclass(frozen=True, kw_only=True)
class Scored:
    """The candidate's entry: its artifact URI and its metrics on the slice."""

    uri: str
    metrics: dict[str, Estimate]


@dataclass(frozen=True, kw_only=True)
class Champion:
    """One champion's entry, with the paired difference candidate - champion per metric."""

    name: str
    uri: str
    metrics: dict[str, Estimate]
    difference: dict[str, Difference]


@dataclass(frozen=True, kw_only=True)
class Gate:
    """One gate's verdict with a sentence that carries the figures."""

    gate: str
    passed: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Decision:
    """All gates passed or not; `reason` names each failed gate and its figures."""

    passed: bool
    failed_gates: tuple[str, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """The whole evaluation.json document."""

    model: str
    task: str
    primary_metric: str
    slice: Slice
    candidate: Scored
    champions: tuple[Champion, ...]
    gates: tuple[Gate, ...]
    decision: Decision
    lineage: dict[str, str]
    generated: str
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    """Unknown top-level fields read from a newer writer of the same format version (kept, not interpreted)."""

    def champion(self, name: str) -> Champion | None:
        """The champion entry called `name`, or None."""
        return next((c for c in self.champions if c.name == name), None)


def decide(gates: tuple[Gate, ...] | list[Gate]) -> Decision:
    """The decision from the gates: passed when every gate passed; the reason joins the failed gates' details."""
    failed = [g for g in gates if not g.passed]
    if not failed:
        details = "; ".join(f"{g.gate}: {g.detail}" for g in gates)
        return Decision(passed=True, failed_gates=(), reason=f"all gates passed: {details}")
    reason = "; ".join(f"{g.gate} gate failed: {g.detail}" for g in failed)
    return Decision(passed=False, failed_gates=tuple(g.gate for g in failed), reason=reason)


def _number(value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise EvaluationFormatError(f"metric figure {value!r}; expected a finite number")
    return float(value)


def _estimate_dict(e: Estimate) -> dict[str, float]:
    return {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "standard_deviation": e.standard_deviation}


def to_dict(evaluation: Evaluation) -> dict[str, Any]:
    """The JSON document of docs/contracts.md section 8."""
    s = evaluation.slice
    doc: dict[str, Any] = dict(evaluation.extra)
    doc |= {
        "format_version": evaluation.format_version,
        "model": evaluation.model,
        "task": evaluation.task,
        "primary_metric": evaluation.primary_metric,
        "slice": {"split": s.split, "rows": s.rows, "from": s.start, "to": s.end, "hash": s.hash,
                  "dataset_manifest": s.dataset_manifest, "dataset_hash": s.dataset_hash},
        "candidate": {"uri": evaluation.candidate.uri,
                      "metrics": {k: _estimate_dict(v) for k, v in evaluation.candidate.metrics.items()}},
        "champions": [
            {"name": c.name, "uri": c.uri, "metrics": {k: _estimate_dict(v) for k, v in c.metrics.items()},
             "difference": {k: {"value": d.value, "ci_low": d.ci_low, "ci_high": d.ci_high}
                            for k, d in c.difference.items()}}
            for c in evaluation.champions
        ],
        "gates": [{"gate": g.gate, "passed": g.passed, "detail": g.detail} for g in evaluation.gates],
        "decision": {"passed": evaluation.decision.passed, "failed_gates": list(evaluation.decision.failed_gates),
                     "reason": evaluation.decision.reason},
        "lineage": dict(evaluation.lineage),
        "generated": evaluation.generated,
    }
    return doc


def dumps(evaluation: Evaluation) -> str:
    """evaluation.json's text (indented, no NaN: the readers are not all Python)."""
    return json.dumps(to_dict(evaluation), indent=2, allow_nan=False) + "\n"


def write(evaluation: Evaluation, path: str | Path) -> Path:
    """Write `evaluation` to `path` (a file; parents are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(evaluation), encoding="utf-8")
    return path


class _Reader:
    """Field access that names the path of whatever is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, value: Any, expected: str) -> EvaluationFormatError:
        return EvaluationFormatError(f"{self.source}: {where} is {value!r}; expected {expected}")

    def get(self, doc: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(doc, dict):
            raise self.fail(where.rsplit(".", 1)[0] or "the document", doc, "a JSON object")
        value = doc.get(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python, never in this document: true is not a row count.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(where, value, " or ".join(k.__name__ for k in kinds))
        return value

    def number(self, doc: Any, key: str, where: str) -> float:
        value = self.get(doc, key, (int, float), where)
        if not math.isfinite(value):
            raise self.fail(where, value, "a finite number")
        return float(value)

    def estimates(self, doc: Any, where: str) -> dict[str, Estimate]:
        if not isinstance(doc, dict):
            raise self.fail(where, doc, "an object of metric -> {value, ci_low, ci_high, standard_deviation}")
        return {
            name: Estimate(**{k: self.number(e, k, f"{where}.{name}.{k}")
                              for k in ("value", "ci_low", "ci_high", "standard_deviation")})
            for name, e in doc.items()
        }

    def differences(self, doc: Any, where: str) -> dict[str, Difference]:
        if not isinstance(doc, dict):
            raise self.fail(where, doc, "an object of metric -> {value, ci_low, ci_high}")
        return {name: Difference(**{k: self.number(d, k, f"{where}.{name}.{k}") for k in ("value", "ci_low", "ci_high")})
                for name, d in doc.items()}


_KNOWN_KEYS = {"format_version", "model", "task", "primary_metric", "slice", "candidate", "champions", "gates",
               "decision", "lineage", "generated"}


def parse(doc: Any, *, source: str = EVALUATION_FILE) -> Evaluation:
    """Validate a decoded evaluation.json; `EvaluationFormatError` names the field, the value and what is allowed."""
    r = _Reader(source)
    if not isinstance(doc, dict):
        raise r.fail("the document", type(doc).__name__, "a JSON object")
    if doc.get("format_version") != FORMAT_VERSION:
        raise r.fail("format_version", doc.get("format_version"), f"{FORMAT_VERSION} (the version this reader knows)")
    task = r.get(doc, "task", str, "task")
    if task not in TASK_METRICS:
        raise r.fail("task", task, " or ".join(TASK_METRICS))
    s = r.get(doc, "slice", dict, "slice")
    the_slice = Slice(
        split=r.get(s, "split", str, "slice.split"), rows=r.get(s, "rows", int, "slice.rows"),
        start=r.get(s, "from", str, "slice.from"), end=r.get(s, "to", str, "slice.to"),
        hash=r.get(s, "hash", str, "slice.hash"), dataset_manifest=r.get(s, "dataset_manifest", str,
                                                                         "slice.dataset_manifest"),
        dataset_hash=r.get(s, "dataset_hash", str, "slice.dataset_hash"),
    )
    c = r.get(doc, "candidate", dict, "candidate")
    candidate = Scored(uri=r.get(c, "uri", str, "candidate.uri"), metrics=r.estimates(c.get("metrics"), "candidate.metrics"))
    champions = []
    for i, ch in enumerate(r.get(doc, "champions", list, "champions")):
        where = f"champions[{i}]"
        champions.append(Champion(
            name=r.get(ch, "name", str, f"{where}.name"), uri=r.get(ch, "uri", str, f"{where}.uri"),
            metrics=r.estimates(ch.get("metrics"), f"{where}.metrics"),
            difference=r.differences(ch.get("difference"), f"{where}.difference"),
        ))
    gates = []
    for i, g in enumerate(r.get(doc, "gates", list, "gates")):
        name = r.get(g, "gate", str, f"gates[{i}].gate")
        if name not in GATES:
            raise r.fail(f"gates[{i}].gate", name, " or ".join(GATES))
        gates.append(Gate(gate=name, passed=r.get(g, "passed", bool, f"gates[{i}].passed"),
                          detail=r.get(g, "detail", str, f"gates[{i}].detail")))
    d = r.get(doc, "decision", dict, "decision")
    failed = r.get(d, "failed_gates", list, "decision.failed_gates")
    if any(name not in GATES for name in failed):
        raise r.fail("decision.failed_gates", failed, f"gate names among {', '.join(GATES)}")
    decision = Decision(passed=r.get(d, "passed", bool, "decision.passed"), failed_gates=tuple(failed),
                        reason=r.get(d, "reason", str, "decision.reason"))
    if decision.passed == bool(failed):
        raise r.fail("decision", d, "passed true with no failed_gates, or false with at least one")
    lineage = r.get(doc, "lineage", dict, "lineage")
    if any(not isinstance(v, str) for v in lineage.values()):
        raise r.fail("lineage", lineage, "an object of strings")
    return Evaluation(
        model=r.get(doc, "model", str, "model"), task=task,
        primary_metric=r.get(doc, "primary_metric", str, "primary_metric"), slice=the_slice, candidate=candidate,
        champions=tuple(champions), gates=tuple(gates), decision=decision, lineage=dict(lineage),
        generated=r.get(doc, "generated", str, "generated"), format_version=FORMAT_VERSION,
        extra={k: v for k, v in doc.items() if k not in _KNOWN_KEYS},
    )


def loads(text: str, *, source: str = EVALUATION_FILE) -> Evaluation:
    """Parse evaluation.json's text."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvaluationFormatError(f"{source}: not JSON ({exc})") from None
    return parse(doc, source=source)


def read(path: str | Path) -> Evaluation:
    """Read and validate a local evaluation.json."""
    path = Path(path)
    return loads(path.read_text(encoding="utf-8"), source=str(path))


def model_quality(task: str, metrics: dict[str, Estimate]) -> dict[str, Any]:
    """SageMaker's model-quality statistics document (`{"binary_classification_metrics": {"auc": {"value",
    "standard_deviation"}, ...}}`) from the metrics of one model; metrics SageMaker does not name are left out."""
    if task not in QUALITY_SECTIONS:
        raise ValueError(f"task {task!r}; allowed: {', '.join(QUALITY_SECTIONS)}")
    section = {name: {"value": _number(metrics[name].value), "standard_deviation": _number(metrics[name].standard_deviation)}
               for name in QUALITY_METRICS[task] if name in metrics}
    return {QUALITY_SECTIONS[task]: section}
