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
feature store and are counted, not guessed. The serving container accepts the record identifier in a
request record only on an endpoint with online feature lookup (`Settings.feature_group`), and then
captures each row that carried one with its record id (mlops_serving.features); without lookup a field
that is not a feature is refused (mlops_serving.codec), so that traffic never carries the id.

This duplicates the small part of `mlops_serving.monitor.quality`/`captures` that reads these two
formats: the training package may not import the serving package.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from mlops_contracts import capture as contract

from mlops_training import s3
from mlops_training.dataset.build import LABEL_EVENTS_SCHEMA

SUFFIX = contract.FILE_SUFFIX
ENCODINGS = (contract.ENCODING_JSON, contract.ENCODING_CSV)
"""The body encodings this join reads: BASE64 parts (never written by our server) are counted malformed."""


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


def read_ground_truth(location: str, counts: JoinCounts) -> dict[str, list[Any]]:
    """Inference id -> labels, the later record winning."""
    labels: dict[str, list[Any]] = {}
    for event_id, values in contract.ground_truth_records(_lines(location), problem=counts.problem, encodings=ENCODINGS):
        counts.ground_truth += 1
        counts.duplicate_ground_truth += event_id in labels
        labels[event_id] = values
    return labels


def request_rows(part: Any) -> list[Any]:
    """The rows of a captured request body: dicts (records keyed by name) or lists (positional rows)."""
    text, encoding = contract.decode_body(part, encodings=ENCODINGS)
    if encoding == contract.ENCODING_CSV:
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    doc = json.loads(text)
    if isinstance(doc, dict) and "instances" in doc:
        doc = doc["instances"]
    if isinstance(doc, dict) or (isinstance(doc, list) and doc and not isinstance(doc[0], (dict, list))):
        return [doc]
    if not isinstance(doc, list):
        raise ValueError(f"request body is a JSON {type(doc).__name__}; expected rows")
    return doc


def _time(metadata: dict[str, Any]) -> datetime:
    """The capture's `inferenceTime` (UTC); ValueError, naming the field, where it is missing or not ISO 8601."""
    try:
        return contract.parse_time(metadata.get(contract.INFERENCE_TIME))
    except ValueError as exc:
        raise ValueError(f"{contract.INFERENCE_TIME}: {exc}") from None


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
            when = _time(metadata)
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
