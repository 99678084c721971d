"""Building a point-in-time dataset: label events in, the SQL run by an engine, Parquet + manifest out.

The engine (DuckDB locally, Athena in the cloud) only runs the SQL text of `query.render`; everything
around it (label event preparation, the default cutoff, the checks on the result, the files and the
manifest) is here, so both engines produce the same dataset from the same rows.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops_training.data import fingerprint
from mlops_training.dataset import manifest as manifest_mod
from mlops_training.dataset import query

LABEL_EVENTS_SCHEMA = pa.schema([
    ("record_id", pa.string()),
    ("label", pa.float64()),
    ("label_time", pa.timestamp("ms", tz="UTC")),
])
"""What callers give: one row per label event; `label_time` in UTC (millisecond precision is kept)."""
DEFAULT_VALIDATION_FRACTION = 0.2
PART_NAME = "part-00000.parquet"


class Engine(Protocol):
    """Runs the point-in-time SQL over the feature table and a label events table."""

    name: str
    """`duckdb` or `athena` (recorded in the manifest)."""
    feature_table: str
    """The name the SQL uses for the feature table."""

    def sources(self) -> list[str]:
        """What the feature rows were read from (Parquet file URIs, or the Glue table)."""

    def event_time_type(self, column: str) -> str:
        """`String` or `Fractional`: the type of the feature group's event time."""

    def run(self, sql: str, *, labels: pa.Table, labels_table: str) -> pa.Table:
        """Make `labels` available as `labels_table`, run `sql`, return its result."""


def label_events_table(record_id: Sequence[str], label: Sequence[float], label_time: Sequence[datetime]) -> pa.Table:
    """Label events as a table of `LABEL_EVENTS_SCHEMA` from three equally long sequences."""
    return pa.table({"record_id": record_id, "label": label, "label_time": label_time}, schema=LABEL_EVENTS_SCHEMA)


def prepare_labels_input(events: pa.Table) -> pa.Table:
    """Label events checked and cast to `LABEL_EVENTS_SCHEMA` (columns, types, no nulls)."""
    missing = [f.name for f in LABEL_EVENTS_SCHEMA if f.name not in events.column_names]
    if missing:
        raise ValueError(
            f"label events lack column(s) {', '.join(missing)}; expected {', '.join(LABEL_EVENTS_SCHEMA.names)}"
        )
    try:
        events = events.select(LABEL_EVENTS_SCHEMA.names).cast(LABEL_EVENTS_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"label events do not convert to {LABEL_EVENTS_SCHEMA}: {exc}") from None
    for name in LABEL_EVENTS_SCHEMA.names:
        nulls = events.column(name).null_count
        if nulls:
            raise ValueError(f"label events: {nulls} null value(s) in {name}; every event needs all three")
    return events


def prepare_labels(events: pa.Table) -> pa.Table:
    """The label events table the SQL reads: sorted, numbered (`label_id`), times as ISO-8601 text.

    Sorted by (label_time, record_id, label) so that the ids, and with them the dataset's row order,
    depend only on the events, not on the order they were read in.
    """
    events = prepare_labels_input(events)
    events = events.sort_by([("label_time", "ascending"), ("record_id", "ascending"), ("label", "ascending")])
    # %S of a millisecond timestamp prints the fraction too: 2026-01-02T03:04:05.678Z.
    text = pc.strftime(events.column("label_time"), format="%Y-%m-%dT%H:%M:%SZ")
    return pa.table({
        "label_id": pa.array(np.arange(events.num_rows, dtype=np.int64)),
        "record_id": events.column("record_id"),
        "label": events.column("label"),
        "label_time": text,
    })


def labels_table_name(labels: pa.Table) -> str:
    """A name for the label events table that depends only on its content (Athena needs a fresh one per set)."""
    sink = io.BytesIO()
    pq.write_table(labels, sink)
    return f"pit_labels_{hashlib.sha256(sink.getvalue()).hexdigest()[:16]}"


def default_cutoff(labels: pa.Table, *, validation_fraction: float = DEFAULT_VALIDATION_FRACTION) -> datetime:
    """The label time that leaves the most recent `validation_fraction` of label events for validation.

    Events at exactly the cutoff go to validation, so ties can make the share a little larger.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction={validation_fraction}; allowed: strictly between 0 and 1")
    n = labels.num_rows
    if n < 2:
        raise ValueError(f"{n} label event(s); a time split needs at least 2")
    n_val = min(max(1, round(validation_fraction * n)), n - 1)
    text = labels.column("label_time")[n - n_val].as_py()
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    """What to build."""

    feature_group: str
    """The feature group's name (recorded in the manifest)."""
    record_identifier: str
    event_time: str
    features: tuple[str, ...]
    label: str
    """Name of the label column in the dataset (the feature schema's `label`)."""
    label_source: str
    """Where the label events came from (recorded in the manifest)."""
    cutoff: datetime | None = None
    """Split time; default: `default_cutoff` with `validation_fraction`."""
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    event_time_type: str | None = None
    """`String` or `Fractional`; default: what the engine finds in the feature table."""
    window: LabelWindow | None = None
    """Only label events inside this window are used; default: all of them."""


@dataclass(frozen=True, kw_only=True)
class LabelWindow:
    """The model config's training window: label events with `as_of - days < label_time <= as_of`."""

    as_of: datetime
    """The window's end (inclusive), an aware datetime."""
    days: float | None = None
    """The window's length in days; None: every event up to `as_of`."""

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError(f"as_of {self.as_of.isoformat()} has no time zone; give an aware datetime (UTC)")
        if self.days is not None and not self.days > 0:
            raise ValueError(f"window days {self.days}; allowed: a number > 0")

    @property
    def start(self) -> datetime | None:
        """The window's exclusive start, or None when it has no length."""
        return None if self.days is None else self.as_of - timedelta(days=self.days)

    def describe(self) -> str:
        """`(start, as_of]` as text, for messages."""
        start = "-inf" if self.start is None else _iso_ms(self.start)
        return f"({start}, {_iso_ms(self.as_of)}]"

    def to_dict(self) -> dict[str, object]:
        """What the manifest records."""
        return {"as_of": _iso_ms(self.as_of), "days": self.days,
                "from_exclusive": None if self.start is None else _iso_ms(self.start)}


def _iso_ms(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def in_window(events: pa.Table, window: LabelWindow) -> pa.Table:
    """The label events whose `label_time` lies in `window`; ValueError naming the window when none does."""
    times = events.column("label_time").cast(pa.timestamp("ms", tz="UTC"))
    keep = pc.less_equal(times, pa.scalar(window.as_of, pa.timestamp("ms", tz="UTC")))
    if window.start is not None:
        keep = pc.and_(keep, pc.greater(times, pa.scalar(window.start, pa.timestamp("ms", tz="UTC"))))
    selected = events.filter(keep)
    if selected.num_rows == 0:
        raise ValueError(
            f"the training window {window.describe()} holds none of the {events.num_rows} label event(s); "
            "widen --window-days or move --as-of"
        )
    return selected


@dataclass(frozen=True, kw_only=True)
class Built:
    """A built dataset: where it is, its manifest and the SQL that made it."""

    directory: Path
    manifest: manifest_mod.Manifest
    sql: str


def render_for(request: BuildRequest, *, engine: Engine, labels: pa.Table) -> tuple[str, str, datetime]:
    """(SQL text, labels table name, cutoff) for `request` on `engine`, given prepared labels."""
    cutoff = request.cutoff or default_cutoff(labels, validation_fraction=request.validation_fraction)
    labels_table = labels_table_name(labels)
    sql = query.render(query.QuerySpec(
        feature_table=engine.feature_table, labels_table=labels_table,
        record_identifier=request.record_identifier, event_time=request.event_time,
        event_time_type=request.event_time_type or engine.event_time_type(request.event_time),
        features=request.features, label=request.label, cutoff=cutoff,
    ))
    return sql, labels_table, cutoff


def build(request: BuildRequest, *, engine: Engine, events: pa.Table, out: Path) -> Built:
    """Run the point-in-time query on `engine` and write the dataset and its manifest into `out`."""
    if request.window is not None:
        events = in_window(prepare_labels_input(events), request.window)
    labels = prepare_labels(events)
    sql, labels_table, cutoff = render_for(request, engine=engine, labels=labels)
    result = engine.run(sql, labels=labels, labels_table=labels_table)
    result = _one_row_per_label(result, request=request)
    counts = _counts(result, labels_in=labels.num_rows)
    files = _write_splits(result, request=request, out=out)
    doc = {
        "format_version": manifest_mod.FORMAT_VERSION,
        "split": "time",
        "feature_group": request.feature_group,
        "engine": engine.name,
        "sources": engine.sources(),
        "label_source": request.label_source,
        "record_identifier": request.record_identifier,
        "event_time": request.event_time,
        "label": request.label,
        "features": list(request.features),
        "cutoff": cutoff.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "counts": counts,
        "files": [name for name, _ in files],
        "content_hash": fingerprint(files),
        "sql_sha256": query.sql_hash(sql),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if request.window is not None:
        doc["window"] = request.window.to_dict()
    manifest_mod.write(out, doc)
    return Built(directory=out, manifest=manifest_mod.Manifest(doc), sql=sql)


def _one_row_per_label(result: pa.Table, *, request: BuildRequest) -> pa.Table:
    """Refuse a result with two different winners for a label; drop exact duplicate rows.

    The offline store is written at least once, so a record can appear twice with identical content:
    either copy is the same answer. Two rows that tie on (event_time, write_time,
    api_invocation_time) but differ otherwise have no defined winner.
    """
    ids = result.column(query.LABEL_ID_COLUMN).to_numpy()
    if ids.size and np.all(ids[1:] > ids[:-1]):
        return result
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    result = result.take(pa.array(order))
    keep = np.ones(ids.size, dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    for index in np.flatnonzero(~keep):
        if result.slice(index, 1).to_pylist() != result.slice(index - 1, 1).to_pylist():
            row = result.slice(index, 1).to_pylist()[0]
            raise ValueError(
                f"record {row[request.record_identifier]!r}: two different feature rows share event_time "
                f"{row[request.event_time]!r}, write_time and api_invocation_time; no latest row is defined"
            )
    return result.filter(pa.array(keep))


def _counts(result: pa.Table, *, labels_in: int) -> dict[str, int]:
    status = result.column(query.STATUS_COLUMN).to_numpy(zero_copy_only=False)
    split = result.column(query.SPLIT_COLUMN).to_numpy(zero_copy_only=False)
    matched = status == "matched"
    if result.num_rows != labels_in:
        raise AssertionError(f"the query returned {result.num_rows} rows for {labels_in} label events")
    return {
        "labels_in": labels_in,
        "matched": int(matched.sum()),
        "excluded_no_feature": int((status == "no_feature").sum()),
        "excluded_deleted": int((status == "deleted").sum()),
        "train": int((matched & (split == "train")).sum()),
        "validation": int((matched & (split == "validation")).sum()),
    }


def _write_splits(result: pa.Table, *, request: BuildRequest, out: Path) -> list[tuple[str, bytes]]:
    """Write `train/` and `validation/` (only those with rows); returns (relative path, bytes) per file."""
    columns = [request.record_identifier, request.event_time, *request.features, request.label,
               query.LABEL_TIME_COLUMN]
    matched = result.filter(pc.equal(result.column(query.STATUS_COLUMN), "matched"))
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for split in manifest_mod.SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
        rows = matched.filter(pc.equal(matched.column(query.SPLIT_COLUMN), split)).select(columns)
        if rows.num_rows == 0:
            continue
        sink = io.BytesIO()
        pq.write_table(rows, sink)
        name = f"{split}/{PART_NAME}"
        (out / split).mkdir()
        (out / name).write_bytes(sink.getvalue())
        files.append((name, sink.getvalue()))
    return files
