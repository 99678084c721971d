"""The shared slice: the rows of a point-in-time dataset's `validation/` split, which every model is scored on.

The dataset builder splits by label time, so `validation/` holds the most recent label events, which
no model trained on that dataset has seen. The slice is identified by its row count, label-time range
and a hash of its (record id, label time) pairs, so two evaluations can tell whether they scored the
same rows. The data validation runs over the whole dataset (both splits), as training's does.

Must not import: anything of the project but `mlops_contracts` and `mlops_training` (runs inside the container).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_training import s3
from mlops_training.data import read_parquet_source
from mlops_training.dataset import manifest as dataset_manifest
from mlops_training.dataset.query import LABEL_TIME_COLUMN
from mlops_training.schema import FeatureSchema
from mlops_training.validate import DataValidationError, ValidationReport, validate

SPLIT = "validation"


@dataclass(frozen=True, kw_only=True)
class SharedSlice:
    """The slice's rows (as stored, all columns) and its identity."""

    table: pa.Table
    """The validation split's rows, in the dataset's row order."""
    labels: np.ndarray
    """The label column as float64."""
    record_ids: tuple[str, ...]
    label_times: tuple[str, ...]
    """ISO-8601 UTC (`...Z`, milliseconds), one per row."""
    start: str
    end: str
    hash: str
    """`sha256:<hex>` over the (record id, label time) pairs, see `slice_hash`."""
    manifest_uri: str
    dataset_hash: str
    validation: ValidationReport
    """The schema's data checks over every row of the dataset."""


def slice_hash(record_ids: tuple[str, ...], label_times: tuple[str, ...]) -> str:
    """SHA-256 over `record id NUL label time LF` per row, in row order."""
    digest = hashlib.sha256()
    for record_id, when in zip(record_ids, label_times, strict=True):
        digest.update(record_id.encode("utf-8") + b"\0" + when.encode("ascii") + b"\n")
    return f"sha256:{digest.hexdigest()}"


def _iso(values: pa.ChunkedArray) -> tuple[str, ...]:
    if not pa.types.is_timestamp(values.type):
        raise ValueError(f"column {LABEL_TIME_COLUMN} has type {values.type}; expected a timestamp")
    out = []
    for when in values.cast(pa.timestamp("ms")).to_pylist():
        if when is None:
            raise ValueError(f"column {LABEL_TIME_COLUMN} has a null label time")
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        out.append(when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z")
    return tuple(out)


def manifest_uri(dataset: str) -> str:
    """Where the dataset's manifest lives (a path or an s3:// URI)."""
    if s3.is_s3_uri(dataset):
        return f"{dataset.rstrip('/')}/{dataset_manifest.MANIFEST_FILE}"
    return str(Path(dataset).resolve() / dataset_manifest.MANIFEST_FILE)


def load_slice(dataset: str, *, schema: FeatureSchema, min_label_fraction: float) -> SharedSlice:
    """Read the dataset built by `mlops-train dataset`, validate it and cut out the validation split.

    ValueError (bad input) when the dataset is missing, has no manifest, was changed after it was
    built or has no validation rows; a failed data check is not an error but `validation.ok` False.
    """
    raw = read_parquet_source(dataset)
    manifest = dataset_manifest.find(dataset)
    if manifest is None:
        raise ValueError(
            f"{dataset} has no {dataset_manifest.MANIFEST_FILE}; evaluate needs a dataset built by "
            "`mlops-train dataset` (its time split names the held-back rows)"
        )
    _, val_idx = dataset_manifest.time_split(raw, manifest)
    try:
        report = validate(raw, schema, min_label_fraction=min_label_fraction).report
    except DataValidationError as exc:
        report = exc.report
    table = pa.concat_tables([p.table for p in raw.parts], promote_options="permissive").take(pa.array(val_idx))
    for column in (schema.record_identifier, LABEL_TIME_COLUMN, schema.label):
        if column not in table.column_names:
            raise ValueError(
                f"{dataset}: the {SPLIT} split has no column {column!r}; expected a dataset built by "
                "`mlops-train dataset` with this feature schema"
            )
    record_ids = tuple(str(v) for v in table.column(schema.record_identifier).to_pylist())
    label_times = _iso(table.column(LABEL_TIME_COLUMN))
    labels = pc.cast(table.column(schema.label), pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return SharedSlice(
        table=table, labels=np.asarray(labels, dtype=np.float64), record_ids=record_ids, label_times=label_times,
        start=min(label_times), end=max(label_times), hash=slice_hash(record_ids, label_times),
        manifest_uri=manifest_uri(dataset), dataset_hash=manifest.content_hash, validation=report,
    )


def now_iso() -> str:
    """The current UTC time, as evaluation.json's `generated`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
