"""Label events from captured requests and SageMaker ground truth (issue #15 item 4).

Ground truth is Model Monitor's format, JSON lines under `.../yyyy/mm/dd/hh/*.jsonl`:

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<inference id>"},
     "eventVersion": "0"}

`data` holds one label per row of the request (CSV `1` or `1,0`; JSON `1`, `[1, 0]` or `{"label": ...}`).
A ground-truth record joins the capture (docs/contracts.md section 3) whose `eventMetadata.inferenceId`
equals its `eventId` (the capture's own `eventId` when it has no inference id). Each row of that
request becomes one label event: record id = the row's record-identifier field, label = the row's
label, label time = the capture's `inferenceTime`. If an id is labelled twice the later record wins
(files in path order, lines in file order); if several variants captured the same request (shadow),
the first capture in path order is used, since they carry the same request.

Rows without the record-identifier field (positional JSON rows, CSV bodies) cannot be joined to the
feature store and are counted, not guessed. Today the serving container refuses a request record with
a field that is not a feature (mlops_serving.codec), so callers that want their traffic to become
training data must be allowed to send the record identifier: see the report of issue #15.

This duplicates the small part of `mlops_serving.monitor.quality`/`captures` that reads these two
formats: the training package may not import the serving package.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from mlops_contracts import capture as contract

from mlops_training import s3
from mlops_training.dataset.build import LABEL_EVENTS_SCHEMA

SUFFIX = contract.FILE_SUFFIX


@dataclass
class JoinCounts:
    """What the join saw; nothing is dropped without being counted."""

    captures: int = 0
    ground_truth: int = 0
    labelled_requests: int = 0
    unlabelled_requests: int = 0
    label_events: int = 0
    rows_without_record_id: int = 0
    label_count_mismatch: int = 0
    """Requests whose number of labels differs from their number of rows."""
    malformed: int = 0
    duplicate_ground_truth: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        self.malformed += 1
        if len(self.problems) < 5:
            self.problems.append(message)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (for the CLI's summary)."""
        return asdict(self)


def _lines(location: str) -> Iterator[tuple[str, int, str]]:
    """(file, line number, line) of every `*.jsonl` under a directory or S3 prefix, files in path order."""
    if s3.is_s3_uri(location):
        bucket, prefix = s3.split_s3_uri(location)
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        client = s3.client()
        keys = sorted(k for k in s3.list_keys(bucket=bucket, prefix=prefix, s3=client) if k.endswith(SUFFIX))
        files = [(f"s3://{bucket}/{k}", lambda k=k: s3.get_bytes(bucket=bucket, key=k, s3=client)) for k in keys]
    else:
        root = Path(location)
        if not root.is_dir():
            raise ValueError(f"{location} is not a directory or s3:// prefix of {SUFFIX} files")
        paths = sorted((p for p in root.rglob(f"*{SUFFIX}") if p.is_file()),
                       key=lambda p: p.relative_to(root).as_posix())
        files = [(str(p), p.read_bytes) for p in paths]
    for name, read in files:
        for number, line in enumerate(read().decode("utf-8").splitlines(), start=1):
            if line.strip():
                yield name, number, line


def _body(part: Any) -> tuple[str, str]:
    if not isinstance(part, dict) or not isinstance(part.get("data"), str):
        raise ValueError("no data")
    encoding = str(part.get("encoding", "JSON")).upper()
    if encoding not in ("JSON", "CSV"):
        raise ValueError(f"encoding {encoding!r}; allowed JSON, CSV")
    return part["data"], encoding


def ground_truth_values(part: Any) -> list[Any]:
    """The labels of one ground-truth record's `groundTruthData`."""
    text, encoding = _body(part)
    if encoding == "CSV":
        return [v for row in csv.reader(io.StringIO(text, newline="")) for v in row]
    doc = json.loads(text)
    if isinstance(doc, dict) and "label" in doc:
        doc = doc["label"]
    return doc if isinstance(doc, list) else [doc]


def read_ground_truth(location: str, counts: JoinCounts) -> dict[str, list[Any]]:
    """Inference id -> labels, the later record winning."""
    labels: dict[str, list[Any]] = {}
    for name, number, line in _lines(location):
        try:
            doc = json.loads(line)
            event_id = doc[contract.EVENT_METADATA][contract.EVENT_ID]
            values = ground_truth_values(doc[contract.GROUND_TRUTH_DATA])
            if not isinstance(event_id, str) or not event_id or not values:
                raise ValueError("no eventId or no labels")
        except (ValueError, KeyError, TypeError) as exc:
            counts.problem(f"{name}:{number}: {exc}")
            continue
        counts.ground_truth += 1
        counts.duplicate_ground_truth += event_id in labels
        labels[event_id] = values
    return labels


def request_rows(part: Any) -> list[Any]:
    """The rows of a captured request body: dicts (records keyed by name) or lists (positional rows)."""
    text, encoding = _body(part)
    if encoding == "CSV":
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    doc = json.loads(text)
    if isinstance(doc, dict) and "instances" in doc:
        doc = doc["instances"]
    if isinstance(doc, dict) or (isinstance(doc, list) and doc and not isinstance(doc[0], (dict, list))):
        return [doc]
    if not isinstance(doc, list):
        raise ValueError(f"request body is a JSON {type(doc).__name__}; expected rows")
    return doc


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"inferenceTime {value!r} is not an ISO-8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def label_events(*, captures: str, ground_truth: str, record_identifier: str) -> tuple[pa.Table, JoinCounts]:
    """Join captured requests with their ground truth into label events (`build.LABEL_EVENTS_SCHEMA`)."""
    counts = JoinCounts()
    truth = read_ground_truth(ground_truth, counts)
    seen: set[str] = set()
    record_ids, values, times = [], [], []
    for name, number, line in _lines(captures):
        try:
            doc = json.loads(line)
            metadata = doc.get(contract.EVENT_METADATA) or {}
            inference_id = metadata.get(contract.INFERENCE_ID) or metadata.get(contract.EVENT_ID)
            rows = request_rows(doc[contract.CAPTURE_DATA][contract.ENDPOINT_INPUT])
            when = _time(metadata.get(contract.INFERENCE_TIME))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            counts.problem(f"{name}:{number}: {exc}")
            continue
        counts.captures += 1
        if inference_id in seen:
            continue  # another variant's capture of the same request
        seen.add(inference_id)
        labels = truth.get(inference_id)
        if labels is None:
            counts.unlabelled_requests += 1
            continue
        counts.labelled_requests += 1
        if len(labels) != len(rows):
            counts.label_count_mismatch += 1
            continue
        for row, label in zip(rows, labels):
            record_id = row.get(record_identifier) if isinstance(row, dict) else None
            if record_id is None or isinstance(record_id, (dict, list, bool)):
                counts.rows_without_record_id += 1
                continue
            try:
                value = float(label)
            except (TypeError, ValueError):
                counts.problem(f"{name}:{number}: label {label!r} is not a number")
                continue
            record_ids.append(str(record_id))
            values.append(value)
            times.append(when)
    counts.label_events = len(record_ids)
    table = pa.table({"record_id": record_ids, "label": values, "label_time": times}, schema=LABEL_EVENTS_SCHEMA)
    return table, counts
