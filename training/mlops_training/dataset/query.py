"""The ONE point-in-time SQL text, rendered identically for Athena (Trino) and DuckDB.

Semantics, for each label event (label_id, record_id, label, label_time): among the feature rows
with that record id and an event time at or before the label time, the one with the greatest event
time wins, ties broken by the greatest `write_time`, then the greatest `api_invocation_time`. A
winner with `is_deleted` gives the label no features (status `deleted`); no candidate at all gives
status `no_feature`. Label events with `label_time < cutoff` are `train`, the others `validation`.

Why the text is engine-neutral:
- Identifiers are double-quoted (both engines); no engine-specific functions (`from_iso8601_timestamp`
  and `from_unixtime` are Trino-only, `to_timestamp` and `epoch` DuckDB-only).
- Times are normalised to millisecond TIMESTAMPs with expressions both dialects accept:
  ISO-8601 strings (SageMaker's `yyyy-MM-dd'T'HH:mm:ss[.SSS]Z`, always UTC) become
  `CAST(replace(replace(s, 'T', ' '), 'Z', '') AS TIMESTAMP(3))`; fractional epoch seconds become
  `TIMESTAMP '1970-01-01 00:00:00.000' + round(x * 1000) * (INTERVAL '1' SECOND / 1000)` (whole
  milliseconds times a one-millisecond interval: exact in both, where `x * INTERVAL '1' SECOND`
  would truncate differently). Which of the two the text holds depends on the feature group's
  event-time type, never on the engine.
- The label events table stores `label_time` as the same ISO-8601 form, so both sides of the
  comparison go through the same expression.

Two passes over the feature table: the window runs over the narrow key columns only, and the
winner's full row is joined back, which keeps the ranked intermediate small (30 features wide
rows are never sorted).

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

EVENT_TIME_TYPES = ("String", "Fractional")
LABEL_COLUMNS = ("label_id", "record_id", "label", "label_time")
"""Columns of the label events table, in order: BIGINT, VARCHAR, DOUBLE, VARCHAR (ISO-8601)."""
STATUS_COLUMN = "pit_status"
SPLIT_COLUMN = "pit_split"
LABEL_ID_COLUMN = "pit_label_id"
LABEL_TIME_COLUMN = "pit_label_time"
RESERVED_FEATURE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")


def iso_to_timestamp(expr: str) -> str:
    """ISO-8601 UTC text (`2026-01-02T03:04:05Z`, `...05.123Z`) -> TIMESTAMP(3), in both dialects."""
    return f"CAST(replace(replace({expr}, 'T', ' '), 'Z', '') AS TIMESTAMP(3))"


def epoch_to_timestamp(expr: str) -> str:
    """Fractional epoch seconds -> TIMESTAMP, rounded to the millisecond, in both dialects."""
    return f"(TIMESTAMP '1970-01-01 00:00:00.000' + round({expr} * 1000) * (INTERVAL '1' SECOND / 1000))"


def quote(name: str, *, what: str) -> str:
    """A double-quoted identifier; refuses names that would need escaping."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not a usable SQL name; allowed: a letter or underscore, then letters, digits, "
            "'_' or '-' (at most 128 characters)"
        )
    return f'"{name}"'


def format_cutoff(cutoff: datetime) -> str:
    """The cutoff as the literal the SQL holds (UTC, millisecond precision)."""
    if cutoff.tzinfo is None:
        raise ValueError(f"cutoff {cutoff.isoformat()} has no time zone; give an aware datetime (UTC)")
    utc = cutoff.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


@dataclass(frozen=True, kw_only=True)
class QuerySpec:
    """Everything the SQL text depends on."""

    feature_table: str
    """Table (Glue table in Athena, view over the Parquet files in DuckDB) with the feature rows."""
    labels_table: str
    """Table with the label events (`LABEL_COLUMNS`)."""
    record_identifier: str
    """The feature group's record identifier column."""
    event_time: str
    """The feature group's event time column."""
    event_time_type: str
    """`String` (ISO-8601) or `Fractional` (epoch seconds)."""
    features: tuple[str, ...]
    """Feature columns to carry into the dataset, in order."""
    label: str
    """Name the label column gets in the dataset."""
    cutoff: datetime
    """Label events before it are train, the others validation."""


def _check(spec: QuerySpec) -> None:
    if spec.event_time_type not in EVENT_TIME_TYPES:
        raise ValueError(
            f"event_time_type {spec.event_time_type!r}; allowed: {', '.join(EVENT_TIME_TYPES)}"
        )
    if not spec.features:
        raise ValueError("features is empty; give at least one feature column")
    taken = {spec.record_identifier, spec.event_time, spec.label}
    for name in spec.features:
        if name in taken or name in RESERVED_FEATURE_COLUMNS or name.startswith("pit_"):
            raise ValueError(
                f"feature {name!r} clashes with the record identifier, event time, label, SageMaker's "
                f"{', '.join(RESERVED_FEATURE_COLUMNS)} or the pit_ prefix; give model inputs only"
            )
        taken.add(name)
    if len(set(spec.features)) != len(spec.features):
        raise ValueError(f"features {list(spec.features)} lists a column twice")


def render(spec: QuerySpec) -> str:
    """The point-in-time SQL text for `spec`; the same string is sent to Athena and run by DuckDB."""
    _check(spec)
    f_table = quote(spec.feature_table, what="feature table")
    l_table = quote(spec.labels_table, what="labels table")
    rid = quote(spec.record_identifier, what="record identifier")
    evt = quote(spec.event_time, what="event time column")
    label = quote(spec.label, what="label column")
    to_ts = iso_to_timestamp if spec.event_time_type == "String" else epoch_to_timestamp
    features = ",\n    ".join(f"f.{quote(n, what='feature')}" for n in spec.features)
    return f"""WITH pit_labels AS (
  SELECT label_id, record_id, label, {iso_to_timestamp('label_time')} AS label_ts
  FROM {l_table}
),
pit_keys AS (
  SELECT CAST({rid} AS VARCHAR) AS k_record_id, {to_ts(evt)} AS k_event_ts,
    "write_time" AS k_write_time, "api_invocation_time" AS k_api_time, "is_deleted" AS k_is_deleted
  FROM {f_table}
),
pit_ranked AS (
  SELECT l.label_id, k.k_record_id, k.k_event_ts, k.k_write_time, k.k_api_time, k.k_is_deleted,
    row_number() OVER (
      PARTITION BY l.label_id ORDER BY k.k_event_ts DESC, k.k_write_time DESC, k.k_api_time DESC
    ) AS k_rank
  FROM pit_labels l
  JOIN pit_keys k ON k.k_record_id = l.record_id AND k.k_event_ts <= l.label_ts
),
pit_chosen AS (
  SELECT * FROM pit_ranked WHERE k_rank = 1
)
SELECT
    l.label_id AS "{LABEL_ID_COLUMN}",
    l.label_ts AS "{LABEL_TIME_COLUMN}",
    CASE WHEN c.label_id IS NULL THEN 'no_feature' WHEN COALESCE(c.k_is_deleted, false) THEN 'deleted'
      ELSE 'matched' END
      AS "{STATUS_COLUMN}",
    CASE WHEN l.label_ts < TIMESTAMP '{format_cutoff(spec.cutoff)}' THEN 'train' ELSE 'validation' END
      AS "{SPLIT_COLUMN}",
    f.{rid},
    f.{evt},
    {features},
    l.label AS {label}
FROM pit_labels l
LEFT JOIN pit_chosen c ON c.label_id = l.label_id
LEFT JOIN {f_table} f
  ON COALESCE(c.k_is_deleted, false) = false
  AND CAST(f.{rid} AS VARCHAR) = c.k_record_id
  AND {to_ts('f.' + evt)} = c.k_event_ts
  AND f."write_time" = c.k_write_time
  AND f."api_invocation_time" = c.k_api_time
ORDER BY l.label_id
"""


def sql_hash(text: str) -> str:
    """`sha256:<hex>` of the SQL text, recorded in the manifest."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

