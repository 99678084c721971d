"""Builders of small offline-store exports and label events for the dataset tests."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_training.dataset import build

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    """T0 plus some hours."""
    return T0 + timedelta(hours=hours)


def iso(when: datetime) -> str:
    """SageMaker's String event time form, with milliseconds."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def feature_row(record: str, *, event: float, value: float, written: float | None = None,
                deleted: bool = False, event_type: str = "String") -> dict[str, Any]:
    """One offline-store row: event time `event` hours after T0, written `written` hours after T0."""
    when = at(event)
    return {
        "transaction_id": record,
        "event_time": iso(when) if event_type == "String" else when.timestamp(),
        "amount": value,
        "write_time": at(written if written is not None else event + 0.25),
        "api_invocation_time": at(written if written is not None else event + 0.25) - timedelta(seconds=1),
        "is_deleted": deleted,
    }


def write_offline_store(root: Path, rows: Sequence[dict[str, Any]], *, event_type: str = "String") -> Path:
    """Write rows as SageMaker does: Parquet under year=/month=/day=/hour= of their event time."""
    event_type_arrow = pa.string() if event_type == "String" else pa.float64()
    schema = pa.schema([
        ("transaction_id", pa.string()), ("event_time", event_type_arrow), ("amount", pa.float64()),
        ("write_time", pa.timestamp("ms", tz="UTC")), ("api_invocation_time", pa.timestamp("ms", tz="UTC")),
        ("is_deleted", pa.bool_()),
    ])
    by_hour: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        when = row["write_time"]
        by_hour.setdefault(when.strftime("year=%Y/month=%m/day=%d/hour=%H"), []).append(row)
    for index, (folder, part) in enumerate(sorted(by_hour.items())):
        (root / folder).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(part, schema=schema), root / folder / f"part-{index}.parquet")
    return root


def events(*triples: tuple[str, float, float]) -> pa.Table:
    """Label events from (record id, label, hours after T0)."""
    return build.label_events_table([t[0] for t in triples], [t[1] for t in triples], [at(t[2]) for t in triples])


def request(**overrides: Any) -> build.BuildRequest:
    """A build request for the rows above (feature `amount`, label `is_fraud`)."""
    fields: dict[str, Any] = dict(
        feature_group="transactions", record_identifier="transaction_id", event_time="event_time",
        features=("amount",), label="is_fraud", label_source="test events",
    )
    fields.update(overrides)
    return build.BuildRequest(**fields)


def rows_of(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """The dataset's rows per split."""
    out = {}
    for split in ("train", "validation"):
        path = directory / split / build.PART_NAME
        out[split] = pq.read_table(path).to_pylist() if path.exists() else []
    return out
