"""Reading prediction capture (docs/contracts.md §3), a batch of records at a time.

Files are found where the serving container and SageMaker's data capture put them,
`{root}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl`, locally or in S3; `.partial` files (still being
written) are never read. With a time window only the hour directories that can hold records of the
window are listed (one hour of margin on each side: a record is filed under the hour it was
written, which can be after its `inferenceTime`), and each record is then kept or skipped by its
own `inferenceTime`, as Model Monitor's contract asks ("we sometimes download more than what is
specified by the start and end times").

Request bodies are decoded the way the server accepts them (`mlops_serving.codec`): JSON
`{"instances": [...]}` with positional rows or records keyed by feature name (or SageMaker's
`{"features": [...]}` rows), a bare list of rows, one positional row or one record; or CSV rows in
schema order with empty fields as null. Responses are `{"predictions": [...]}`, a bare list, or CSV
with one value per line. `BASE64` encoded parts (SageMaker's capture of other content types) are
decoded first and read by their observed content type.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_contracts import capture as wire

from . import storage

try:  # orjson is a dependency of the serving image; plain json keeps the job usable without it.
    import orjson

    loads_json = orjson.loads
    JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - exercised only where orjson is missing
    loads_json = json.loads
    JSON_ERRORS = (json.JSONDecodeError, UnicodeDecodeError)

log = logging.getLogger("mlops_serving.monitor")

SUFFIX = wire.FILE_SUFFIX
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class CaptureFile:
    """One capture file and what its path says."""

    location: str
    variant: str | None
    hour: datetime | None


@dataclass
class ReadCounts:
    """What reading saw, for the report: nothing is dropped without being counted."""

    files: int = 0
    records: int = 0
    """Records in the window (the others are only counted below)."""
    outside_window: int = 0
    malformed: int = 0
    """Lines that are not capture records, and records whose body could not be decoded."""
    untimed: int = 0
    """Records without a readable `inferenceTime` while a window was set (skipped)."""
    examples: list[str] = field(default_factory=list)
    """The first few problems, verbatim, for whoever reads the report."""

    def problem(self, message: str) -> None:
        self.malformed += 1
        if len(self.examples) < 5:
            self.examples.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "records": self.records, "outside_window": self.outside_window,
                "malformed": self.malformed, "untimed": self.untimed, "problems": list(self.examples)}


@dataclass(frozen=True)
class Record:
    """A capture record in the window, bodies not yet decoded."""

    variant: str
    inference_id: str | None
    event_id: str | None
    input: Any
    output: Any


def find_files(root: str, *, endpoint: str, start: datetime | None, end: datetime | None) -> list[CaptureFile]:
    """Capture files of `endpoint` under `root` that can hold records of `[start, end)`."""
    if not storage.exists_dir(root):
        raise FileNotFoundError(f"capture root {root!r} does not exist")
    prefixes = None
    if start is not None and end is not None:
        hours = _hours(start - _HOUR, end + _HOUR)
        if storage.is_s3(root):
            variants = storage.list_dirs(root, (endpoint,))
            prefixes = [(endpoint, v, *h.strftime(wire.HOUR_FORMAT).split("/")) for v in variants for h in hours]
        else:
            prefixes = [(endpoint,)]
    else:
        prefixes = [(endpoint,)]
    files = []
    lowest = start - _HOUR if start is not None else None
    for entry in storage.list_files(root, suffix=SUFFIX, prefixes=prefixes):
        variant, hour = _path_fields(entry.parts)
        if hour is not None and ((lowest is not None and hour < _floor(lowest)) or (end is not None and hour > end + _HOUR)):
            continue
        files.append(CaptureFile(entry.location, variant, hour))
    if not files:
        log.warning("no capture files for endpoint %r under %s", endpoint, root)
    return files


def read_records(
    files: Sequence[CaptureFile],
    *,
    start: datetime | None,
    end: datetime | None,
    batch_records: int,
    counts: ReadCounts,
) -> Iterator[list[Record]]:
    """Records of the window in batches of at most `batch_records`, file by file, line by line."""
    windowed = start is not None or end is not None
    for file in files:
        counts.files += 1
        batch: list[Record] = []
        for number, line in enumerate(storage.iter_lines(file.location), start=1):
            if not line.strip():
                continue
            try:
                doc = loads_json(line)
                capture = doc[wire.CAPTURE_DATA]
            except (*JSON_ERRORS, KeyError, TypeError):
                counts.problem(f"{file.location}:{number}: not a capture record")
                continue
            metadata = doc.get(wire.EVENT_METADATA)
            if not isinstance(metadata, dict):
                metadata = {}
            if windowed:
                when = _time(metadata.get(wire.INFERENCE_TIME))
                if when is None:
                    counts.untimed += 1
                    continue
                if (start is not None and when < start) or (end is not None and when >= end):
                    counts.outside_window += 1
                    continue
            counts.records += 1
            variant = metadata.get(wire.VARIANT) or file.variant or "unknown"
            batch.append(Record(
                variant=str(variant),
                inference_id=metadata.get(wire.INFERENCE_ID),
                event_id=metadata.get(wire.EVENT_ID),
                input=capture.get(wire.ENDPOINT_INPUT) if isinstance(capture, dict) else None,
                output=capture.get(wire.ENDPOINT_OUTPUT) if isinstance(capture, dict) else None,
            ))
            if len(batch) >= batch_records:
                yield batch
                batch = []
        if batch:
            yield batch


class InputDecoder:
    """Request bodies -> positional rows (lists of raw values) in the model's column order."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.n = len(self.names)
        self._name_set = frozenset(self.names)
        self._instances_key = "instances" not in self._name_set
        self._features_key = "features" not in self._name_set

    def rows(self, part: Any) -> list[list[Any]]:
        """The rows of one request; ValueError says why a body is unusable."""
        text, fmt = wire.decode_body(part)
        if fmt == wire.ENCODING_CSV:
            return self._csv(text)
        try:
            doc = loads_json(text)
        except JSON_ERRORS as exc:
            raise ValueError(f"input is not JSON: {exc}") from None
        if type(doc) is dict:
            rows = doc["instances"] if self._instances_key and "instances" in doc else [doc]
            if type(rows) is not list:
                raise ValueError("'instances' is not a list")
        elif type(doc) is list:
            if not doc:
                return []
            rows = doc if type(doc[0]) in (list, dict) else [doc]
        else:
            raise ValueError("input is neither a JSON object nor an array")
        n = self.n
        if all(type(r) is list and len(r) == n for r in rows):
            return rows
        return [self._positional(r) for r in rows]

    def _positional(self, row: Any) -> list[Any]:
        if type(row) is list:
            if len(row) != self.n:
                raise ValueError(f"a row has {len(row)} values; the model has {self.n} features")
            return row
        if type(row) is dict:
            if self._name_set.issubset(row):
                return [row[name] for name in self.names]
            if self._features_key and len(row) == 1 and type(row.get("features")) is list:
                return self._positional(row["features"])
            missing = sorted(self._name_set.difference(row))
            raise ValueError(f"a record lacks features {missing[:5]}")
        raise ValueError(f"a row is a JSON {type(row).__name__}")

    def _csv(self, text: str) -> list[list[Any]]:
        rows = []
        try:
            for record in csv.reader(io.StringIO(text, newline=""), strict=True):
                if not record:
                    continue
                if len(record) != self.n:
                    raise ValueError(f"a CSV row has {len(record)} values; the model has {self.n} features")
                # An empty field is null, as the server reads it; String values keep their spaces.
                rows.append([value if value.strip() else None for value in record])
        except csv.Error as exc:
            raise ValueError(f"input is not CSV: {exc}") from None
        return rows


def predictions(part: Any) -> list[Any]:
    """The predictions of one response (values, not yet checked as numbers)."""
    text, fmt = wire.decode_body(part)
    if fmt == wire.ENCODING_CSV:
        return [line.split(",")[0] for line in text.splitlines() if line.strip()]
    try:
        doc = loads_json(text)
    except JSON_ERRORS as exc:
        raise ValueError(f"output is not JSON: {exc}") from None
    if type(doc) is dict:
        doc = doc.get("predictions")
    if type(doc) is not list:
        raise ValueError("output has no 'predictions' list")
    # A one-element list per row (a [N, 1] output) is the same prediction.
    return [v[0] if type(v) is list and len(v) == 1 else v for v in doc]


def _path_fields(parts: tuple[str, ...]) -> tuple[str | None, datetime | None]:
    """(variant, hour) from `endpoint/variant/yyyy/mm/dd/hh/file`; None where the path differs."""
    if len(parts) != 7:
        return None, None
    try:
        hour = datetime(int(parts[2]), int(parts[3]), int(parts[4]), int(parts[5]), tzinfo=UTC)
    except ValueError:
        return parts[1], None
    return parts[1], hour


def _time(raw: Any) -> datetime | None:
    """A record's `inferenceTime`, or None where it is missing or unreadable (the record is counted untimed)."""
    try:
        return wire.parse_time(raw, spaces=True)
    except ValueError:
        return None


def _floor(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    hours = []
    hour = _floor(start)
    while hour <= end:
        hours.append(hour)
        hour += _HOUR
    return hours
