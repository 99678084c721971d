"""Reading an ingestion source (CSV, JSON lines, Parquet; a local path or s3://) in batches.

A batch hands the validator plain Python lists, one column at a time, with each row's number in the
source (1-based, header excluded; for JSON lines the line number). CSV cells are read as text and
parsed by the validator, so a bad cell becomes a reject with its row instead of a failed read; an
empty CSV cell is a null.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.features.offline_layout import split_s3_uri
from specs.features.validate import Reject

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
"""Source format by file extension (--format overrides)."""


class SourceError(ValueError):
    """A source that cannot be read as a whole (missing file, malformed CSV, unknown format)."""


@dataclass
class Batch:
    """Some consecutive rows of a source."""

    row_numbers: Sequence[int]
    columns: list[str]
    _table: Any = None
    _lists: dict[str, list[Any]] | None = None
    pre_rejects: list[Reject] = field(default_factory=list)
    """Rows that could not even be parsed (a JSON line that is not an object)."""

    def column(self, name: str) -> list[Any] | None:
        """The column's values as Python objects, or None when the source has no such column."""
        if name not in self.columns:
            return None
        if self._lists is not None:
            return self._lists[name]
        return self._table.column(name).to_pylist()


def detect_format(location: str, given: str | None) -> str:
    if given is not None:
        if given not in set(FORMATS.values()):
            raise SourceError(f"format {given!r}; allowed: csv, jsonl, parquet")
        return given
    suffix = Path(location.split("?")[0]).suffix.lower()
    if suffix not in FORMATS:
        raise SourceError(f"cannot tell the format of {location!r} from its extension {suffix or '(none)'}; "
                          f"use one of {', '.join(FORMATS)} or pass --format csv|jsonl|parquet")
    return FORMATS[suffix]


def fetch(location: str, *, s3: Any, workdir: Path) -> Path:
    """A local path for `location`; an s3:// source is downloaded into `workdir` first."""
    if not location.startswith("s3://"):
        path = Path(location)
        if not path.is_file():
            raise SourceError(f"source {location!r} is not a file")
        return path
    bucket, key = split_s3_uri(location)
    if not key:
        raise SourceError(f"source {location!r} names a bucket, not an object")
    target = workdir / Path(key).name
    from botocore.exceptions import ClientError

    try:
        s3.download_file(bucket, key, str(target))
    except ClientError as exc:
        raise SourceError(f"cannot read {location}: {exc.response.get('Error', {}).get('Message') or exc}") from None
    return target


def read_batches(path: Path, fmt: str, *, batch_size: int | None) -> tuple[list[str], int | None, Iterator[Batch]]:
    """(columns, number of rows if known up front, batches). `batch_size` None: one batch."""
    if fmt == "jsonl":
        columns = _jsonl_columns(path)
        return columns, None, _jsonl_batches(path, columns, batch_size)
    table = _read_table(path, fmt)
    size = batch_size or max(table.num_rows, 1)

    def batches() -> Iterator[Batch]:
        for start in range(0, table.num_rows, size):
            part = table.slice(start, size)
            yield Batch(row_numbers=range(start + 1, start + 1 + part.num_rows), columns=table.column_names, _table=part)

    return table.column_names, table.num_rows, batches()


def _read_table(path: Path, fmt: str) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            return pq.read_table(path)
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), None)
        if not header:
            raise SourceError(f"{path}: empty CSV, expected a header row")
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise SourceError(f"{path}: duplicate CSV column(s) {', '.join(dupes)}")
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=True, null_values=[""],
        ))
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"cannot read {path} as {fmt}: {exc}") from None


def _jsonl_columns(path: Path) -> list[str]:
    """Every key any line uses, in first-seen order (a line without a key leaves that cell null)."""
    seen: dict[str, None] = {}
    with path.open() as handle:
        for line in handle:
            try:
                obj = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                seen.update(dict.fromkeys(obj))
    return list(seen)


def _jsonl_batches(path: Path, columns: list[str], batch_size: int | None) -> Iterator[Batch]:
    numbers: list[int] = []
    lists: dict[str, list[Any]] = {c: [] for c in columns}
    rejects: list[Reject] = []
    lines = 0
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue  # a blank line is not a row
            lines += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj, why = None, f"not valid JSON: {exc.msg} at column {exc.colno}"
            else:
                why = None if isinstance(obj, dict) else f"a JSON line must be an object, got {type(obj).__name__}"
            if why is not None:
                rejects.append(Reject(number, None, line.strip()[:200], why))
            else:
                numbers.append(number)
                for c in columns:
                    lists[c].append(obj.get(c))
            if batch_size and lines % batch_size == 0:
                yield Batch(row_numbers=numbers, columns=columns, _lists=lists, pre_rejects=rejects)
                numbers, lists, rejects = [], {c: [] for c in columns}, []
    if numbers or rejects or lines == 0:
        yield Batch(row_numbers=numbers, columns=columns, _lists=lists, pre_rejects=rejects)


def temporary_workdir() -> tempfile.TemporaryDirectory:
    """Where an s3:// source is downloaded (removed when the ingestion ends)."""
    return tempfile.TemporaryDirectory(prefix="mlops-ingest-")
