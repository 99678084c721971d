"""Live model quality: delayed ground truth joined to captured predictions, metrics per variant.

Ground truth is SageMaker's merge format, JSON lines of

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<inference id>"}, "eventVersion": "0"}

`data` holds one label per row of the request (CSV `1` or `1,0`; JSON `1` or `[1, 0]`). A label joins
the capture whose `eventMetadata.inferenceId` equals its `eventId` (the capture's own `eventId` when
it has no inference id), in every variant that answered that request (a shadow variant gets the same
inference id), when the numbers of labels and predictions agree. If an id is labelled twice the
later record wins (files in path order, lines in file order).

The join is vectorised and compact: labels become a sorted array of fixed-width byte strings plus
their values (about `len(id) + 8` bytes each), and every batch of captures is matched with one
`searchsorted`. Memory is that index plus 16 bytes per matched prediction; captures are streamed.
Label files are read when their hour directory (`.../yyyy/mm/dd/hh/file.jsonl`, where SageMaker
and our writers put them) is not older than the window (labels come after predictions); files in
other layouts are always read.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from mlops_contracts import capture as wire
from mlops_contracts import metrics as contract
from mlops_contracts.feature_schema import BINARY_CLASSIFICATION

from . import captures, publish, storage
from .settings import QualitySettings, iso
from .stats import to_float

log = logging.getLogger("mlops_serving.monitor")

REPORT_FORMAT_VERSION = 1
_DIRECTION = {"auc": ("min_auc", "below"), "accuracy": ("min_accuracy", "below"), "log_loss": ("max_log_loss", "above"),
              "rmse": ("max_rmse", "above"), "mae": ("max_mae", "above")}


# ---------------------------------------------------------------------------------------- labels

@dataclass
class LabelCounts:
    files: int = 0
    records: int = 0
    malformed: int = 0
    duplicates: int = 0
    examples: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        self.malformed += 1
        if len(self.examples) < 5:
            self.examples.append(message)


class LabelIndex:
    """Ground truth by id: sorted ids, and for each id its slice of the flat label values."""

    def __init__(self, ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> None:
        self.ids = ids
        self.starts = starts
        self.lengths = lengths
        self.values = values
        self.width = ids.dtype.itemsize if ids.size else 0
        self.used = np.zeros(ids.size, dtype=bool)

    def __len__(self) -> int:
        return int(self.ids.size)

    @classmethod
    def build(cls, id_chunks: list[np.ndarray], length_chunks: list[np.ndarray], value_chunks: list[np.ndarray],
              counts: LabelCounts) -> LabelIndex:
        if not id_chunks:
            return cls(np.array([], dtype="S1"), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        width = max(c.dtype.itemsize for c in id_chunks)
        ids = np.concatenate([c.astype(f"S{width}") for c in id_chunks])
        lengths = np.concatenate(length_chunks)
        values = np.concatenate(value_chunks)
        starts = np.cumsum(lengths) - lengths
        order = np.argsort(ids, kind="stable")
        ordered = ids[order]
        # Equal ids sit together in read order; the last of each run is the latest label.
        last = np.ones(ordered.size, dtype=bool)
        last[:-1] = ordered[:-1] != ordered[1:]
        counts.duplicates = int(ordered.size - last.sum())
        keep = order[last]
        return cls(ordered[last], starts[keep], lengths[keep], values)

    def lookup(self, ids: list[str]) -> np.ndarray:
        """Index into this index for each id, or -1 where there is no label."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(self) or not ids:
            return out
        encoded = [i.encode() if isinstance(i, str) else b"" for i in ids]
        fits = np.fromiter((0 < len(e) <= self.width for e in encoded), dtype=bool, count=len(encoded))
        keys = np.array([e if f else b"" for e, f in zip(encoded, fits)], dtype=f"S{self.width}")
        pos = np.minimum(np.searchsorted(self.ids, keys), len(self) - 1)
        hit = fits & (self.ids[pos] == keys)
        out[hit] = pos[hit]
        return out


def read_labels(location: str, *, since: datetime | None, batch_records: int, counts: LabelCounts) -> LabelIndex:
    """Every ground-truth record under `location` (file, directory or S3 prefix) into an index."""
    single = location.endswith(wire.FILE_SUFFIX) if storage.is_s3(location) else not storage.exists_dir(location)
    if not single:
        entries = storage.list_files(location, suffix=wire.FILE_SUFFIX)
        oldest = (since - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0) if since else None
        files = [e.location for e in entries if oldest is None or (_hour(e.parts) or oldest) >= oldest]
    else:
        files = [location]
    id_chunks, length_chunks, value_chunks = [], [], []
    for batch in _label_batches(files, batch_records, counts):
        ids, lengths, values = [], [], []
        for record_id, labels in batch:
            ids.append(record_id.encode())
            lengths.append(len(labels))
            values.extend(labels)
        numbers, _ = to_float(values)
        id_chunks.append(np.array(ids, dtype=f"S{max(map(len, ids))}"))
        length_chunks.append(np.array(lengths, dtype=np.int64))
        value_chunks.append(numbers)
    return LabelIndex.build(id_chunks, length_chunks, value_chunks, counts)


def _label_batches(files: list[str], batch_records: int, counts: LabelCounts) -> Iterator[list[tuple[str, list[Any]]]]:
    batch: list[tuple[str, list[Any]]] = []
    for location in files:
        counts.files += 1
        lines = ((location, number, line) for number, line in enumerate(storage.iter_lines(location), start=1))
        for record_id, labels in wire.ground_truth_records(lines, problem=counts.problem, loads=captures.loads_json):
            counts.records += 1
            batch.append((record_id, labels))
            if len(batch) >= batch_records:
                yield batch
                batch = []
    if batch:
        yield batch


def _hour(parts: tuple[str, ...]) -> datetime | None:
    if len(parts) < 5:
        return None
    try:
        return datetime(int(parts[-5]), int(parts[-4]), int(parts[-3]), int(parts[-2]), tzinfo=UTC)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------- metrics

def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties count one half); None without both classes.

    The same definition as the training container's `evaluate.roc_auc`.
    """
    y = np.asarray(y_true, dtype=np.float64)
    positives = int((y == 1).sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0
    rank_sum = average_rank[inverse][y == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def classification_metrics(y: np.ndarray, p: np.ndarray, *, threshold: float) -> dict[str, float | None]:
    """AUC, accuracy and log-loss as training's metrics.json defines them."""
    eps = np.finfo(np.float64).eps
    clipped = np.clip(p, eps, 1 - eps)
    return {
        "auc": roc_auc(y, p),
        "accuracy": float(np.mean((p >= threshold) == (y == 1))),
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log1p(-clipped))),
    }


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    error = p - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else None,
    }


# ---------------------------------------------------------------------------------------- the job

@dataclass
class VariantJoin:
    """Join state of one variant."""

    records: int = 0
    predictions: int = 0
    matched_records: int = 0
    unmatched_records: int = 0
    shape_mismatch: int = 0
    invalid: int = 0
    """Matched rows dropped: a prediction that is not a number, or a label that is not valid for the task."""
    scores: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class QualityResult:
    report: dict[str, Any]
    metrics: list[dict[str, Any]]
    degraded: list[dict[str, Any]]


def run(settings: QualitySettings, *, now: datetime | None = None) -> QualityResult:
    """Join labels to the window's predictions, compute and publish metrics, write the report."""
    now = now or datetime.now(UTC)
    end = settings.end or now
    start = settings.start or end - timedelta(hours=settings.window_hours)
    label_counts = LabelCounts()
    index = read_labels(settings.labels, since=start, batch_records=settings.batch_records, counts=label_counts)
    files = captures.find_files(settings.captures, endpoint=settings.endpoint, start=start, end=end)
    counts = captures.ReadCounts()
    variants: dict[str, VariantJoin] = {}
    for batch in captures.read_records(files, start=start, end=end, batch_records=settings.batch_records, counts=counts):
        _join_batch(batch, index, variants, counts, task=settings.task)
    report = _report(settings, variants, index, counts, label_counts, start=start, end=end, now=now)
    metrics = _metrics(report, settings, end)
    degraded = [d for v in report["variants"].values() for d in v["degraded"]]
    report["degraded"] = bool(degraded)
    storage.write_bytes(storage.join(settings.out, "quality_report.json"),
                        (json.dumps(report, indent=2, allow_nan=False) + "\n").encode(), content_type="application/json")
    publish.publish(metrics, targets=settings.publish, namespace=settings.names.namespace, metrics_dir=settings.metrics_dir)
    log.info("quality of %s: %s", settings.endpoint,
             {k: {m: v["metrics"].get(m) for m in v["metrics"]} for k, v in report["variants"].items()})
    return QualityResult(report=report, metrics=metrics, degraded=degraded)


def _join_batch(batch: list[captures.Record], index: LabelIndex, variants: dict[str, VariantJoin],
                counts: captures.ReadCounts, *, task: str) -> None:
    ids: list[str] = []
    preds: list[list[Any]] = []
    names: list[str] = []
    for record in batch:
        state = variants.setdefault(record.variant, VariantJoin())
        state.records += 1
        if record.output is None:
            continue
        try:
            values = captures.predictions(record.output)
        except (ValueError, TypeError) as exc:
            counts.problem(f"record {record.event_id or record.inference_id}: output: {exc}")
            continue
        state.predictions += len(values)
        ids.append(record.inference_id or record.event_id or "")
        preds.append(values)
        names.append(record.variant)
    found = index.lookup(ids)
    for variant in set(names):
        rows = [i for i, name in enumerate(names) if name == variant]
        state = variants[variant]
        hits = [i for i in rows if found[i] >= 0]
        state.unmatched_records += len(rows) - len(hits)
        if not hits:
            continue
        positions = found[hits]
        index.used[positions] = True
        label_lengths = index.lengths[positions]
        pred_lengths = np.fromiter((len(preds[i]) for i in hits), dtype=np.int64, count=len(hits))
        same = label_lengths == pred_lengths
        state.shape_mismatch += int((~same).sum())
        state.matched_records += int(same.sum())
        flat_preds = [v for i, ok in zip(hits, same) if ok for v in preds[i]]
        starts = index.starts[positions][same]
        lengths = label_lengths[same]
        # Each matched record's labels are values[start:start + length]; gather them in one go.
        take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        y = index.values[take]
        p, invalid = to_float(flat_preds)
        valid = ~np.isnan(p) & ~np.isnan(y)
        if task == BINARY_CLASSIFICATION:
            valid &= (y == 0) | (y == 1)
        state.invalid += int((~valid).sum())
        state.scores.append(p[valid])
        state.labels.append(y[valid])


def _report(settings: QualitySettings, variants: dict[str, VariantJoin], index: LabelIndex,
            counts: captures.ReadCounts, label_counts: LabelCounts, *, start: datetime, end: datetime,
            now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(variants):
        state = variants[name]
        y = np.concatenate(state.labels) if state.labels else np.zeros(0)
        p = np.concatenate(state.scores) if state.scores else np.zeros(0)
        metrics: dict[str, float | None] = {}
        if y.size:
            metrics = (classification_metrics(y, p, threshold=settings.classification_threshold)
                       if settings.task == BINARY_CLASSIFICATION else regression_metrics(y, p))
        judged = y.size >= settings.min_labeled
        degraded = []
        for key, value in metrics.items():
            if key not in _DIRECTION or value is None or not judged:
                continue
            limit_name, direction = _DIRECTION[key]
            limit = getattr(settings, limit_name)
            if limit is not None and (value < limit if direction == "below" else value > limit):
                degraded.append({"variant": name, "metric": key, "value": value, "threshold": limit,
                                 "description": f"{key} {value:.4f} is {direction} {limit:g}"})
        out[name] = {
            "records": state.records, "predictions": state.predictions,
            "matched_records": state.matched_records, "unmatched_records": state.unmatched_records,
            "shape_mismatch": state.shape_mismatch, "invalid_rows": state.invalid,
            "labeled_rows": int(y.size), "judged": judged,
            "positive_rate": float(np.mean(y == 1)) if y.size and settings.task == BINARY_CLASSIFICATION else None,
            "metrics": metrics, "degraded": degraded,
        }
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "endpoint": settings.endpoint,
        "task": settings.task,
        "generated_at": iso(now),
        "window": {"start": iso(start), "end": iso(end)},
        "min_labeled": settings.min_labeled,
        "capture": counts.as_dict(),
        "labels": {"files": label_counts.files, "records": label_counts.records, "malformed": label_counts.malformed,
                   "duplicates": label_counts.duplicates, "ids": len(index),
                   "without_capture_in_window": int(len(index) - index.used.sum()),
                   "problems": label_counts.examples},
        "variants": out,
    }


def _metrics(report: dict[str, Any], settings: QualitySettings, when: datetime) -> list[dict[str, Any]]:
    names = settings.names
    keys = contract.LIVE_METRICS_BY_TASK[settings.task]
    out = []
    for variant, entry in report["variants"].items():
        if not entry["judged"]:
            continue
        dims = {names.endpoint_dimension: settings.endpoint, names.variant_dimension: variant}
        for key in keys:
            name = contract.live_metric(key, prefix=names.live_prefix)
            out.append(publish.datum(name, entry["metrics"].get(key), dims, timestamp=when))
    return [m for m in out if m is not None]
