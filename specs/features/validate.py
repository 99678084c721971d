"""Row validation against a feature group's definitions, before anything is written.

A batch is a set of columns (plain Python lists, as a reader produced them). Each value is checked
against its feature: the type (Integral = an int64-safe integer, Fractional = a finite number,
String = text), null where the feature is not nullable, the feature's min/max; the record identifier
must be present, the event time must parse (ISO-8601 with a timezone for String, epoch seconds for
Fractional) and may not lie further in the future than a small clock skew. Every problem becomes a
`Reject` with the row's 1-based number in the source (header excluded) and a reason; a batch with any
reject is written nowhere.

Values come back normalised (int, float, str) so that the writers never re-parse them.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure), nor `boto3`, `botocore` or `pyarrow` (no I/O: the readers and
writers live in `mlops/features/`).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FEATURE_TYPES = ("Integral", "Fractional", "String")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STRING_LENGTH = 358_400
"""PutRecord's `ValueAsString` limit (botocore's sagemaker-featurestore-runtime model)."""
DEFAULT_FUTURE_SKEW = dt.timedelta(minutes=5)
"""How far in the future an event time may lie (clocks disagree a little)."""

_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    """One feature's rules, as the stack config declares them."""

    name: str
    type: str
    """Integral, Fractional or String."""
    nullable: bool = False
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.type not in FEATURE_TYPES:
            raise ValueError(f"feature {self.name!r}: type {self.type!r}; allowed: {', '.join(FEATURE_TYPES)}")


@dataclass(frozen=True, kw_only=True)
class GroupSpec:
    """A feature group's rules: its features, record identifier and event time."""

    record_identifier: str
    event_time: str
    features: tuple[FeatureSpec, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        for role, name in (("record_identifier", self.record_identifier), ("event_time", self.event_time)):
            if name not in names:
                raise ValueError(f"{role} {name!r} is not one of the features ({', '.join(names)})")

    @classmethod
    def from_config(cls, group: Any) -> GroupSpec:
        """From the stack config's FeatureGroupConfig (read by attribute, so this module stays pure)."""
        return cls(
            record_identifier=group.record_identifier,
            event_time=group.event_time,
            features=tuple(
                FeatureSpec(name=f.name, type=f.type, nullable=f.nullable, min=f.min, max=f.max) for f in group.features
            ),
        )

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureSpec:
        return next(f for f in self.features if f.name == name)


@dataclass(frozen=True)
class Reject:
    """One problem in one row."""

    row: int
    """1-based row number in the source, header excluded."""
    column: str | None
    value: Any
    reason: str

    def to_json(self) -> dict[str, Any]:
        value = self.value if isinstance(self.value, (str, int, float, bool, type(None))) else repr(self.value)
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)  # JSON has no NaN/Infinity
        return {"row": self.row, "column": self.column, "value": value, "reason": self.reason}


@dataclass
class BatchCheck:
    """The outcome of validating one batch."""

    row_numbers: Sequence[int]
    """Each row's 1-based number in the source."""
    values: dict[str, list[Any]] = field(default_factory=dict)
    """Normalised values by feature (None for nulls and for rejected cells)."""
    event_seconds: list[float | None] = field(default_factory=list)
    """Each row's event time as epoch seconds (for the offline store's hourly partitions)."""
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.row_numbers)

    @property
    def ok(self) -> bool:
        return not self.rejects

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejects})


def check_columns(group: GroupSpec, columns: Sequence[str], *, ignore_extra: bool) -> list[str]:
    """Source-level problems: a required feature without a column, a column that is no feature."""
    problems = []
    present = set(columns)
    required = [f.name for f in group.features if not f.nullable or f.name in (group.record_identifier, group.event_time)]
    missing = [name for name in required if name not in present]
    if missing:
        problems.append(f"the source has no column for required feature(s) {', '.join(missing)}; its columns: {', '.join(columns) or 'none'}")
    extra = [name for name in columns if name not in set(group.names)]
    if extra and not ignore_extra:
        problems.append(
            f"column(s) {', '.join(extra)} are not features of the group (features: {', '.join(group.names)}); "
            "drop them or pass --ignore-extra-columns"
        )
    return problems


def validate_batch(
    group: GroupSpec,
    columns: Mapping[str, Sequence[Any] | None],
    *,
    row_numbers: Sequence[int],
    now: dt.datetime,
    future_skew: dt.timedelta = DEFAULT_FUTURE_SKEW,
) -> BatchCheck:
    """Check every cell of a batch; `columns[name]` is None for a nullable feature the source lacks;
    `row_numbers[i]` is the source's number of the batch's i-th row (for the reject report)."""
    rows = len(row_numbers)
    lengths = {len(v) for v in columns.values() if v is not None}
    assert lengths <= {rows}, f"columns of one batch differ in length: {sorted(lengths)} for {rows} rows"
    check = BatchCheck(row_numbers=row_numbers)
    skew = future_skew.total_seconds()
    for feature in group.features:
        values = columns.get(feature.name)
        if values is None:
            values = [None] * rows
        if feature.name == group.event_time:
            normalised, seconds = _check_event_time(
                feature, values, rows=row_numbers, now=now.timestamp(), skew=skew, rejects=check.rejects
            )
            check.event_seconds = seconds
        else:
            required = feature.name == group.record_identifier
            normalised = _check_values(feature, values, rows=row_numbers, required=required, rejects=check.rejects)
        check.values[feature.name] = normalised
    check.rejects.sort(key=lambda r: r.row)
    return check


def _check_values(feature: FeatureSpec, values: Sequence[Any], *, rows: Sequence[int], required: bool, rejects: list[Reject]) -> list[Any]:
    parse = _PARSERS[feature.type]
    nullable = feature.nullable and not required
    out: list[Any] = []
    for index, value in enumerate(values):
        if value is None:
            if not nullable:
                why = "record identifier is missing" if required else "missing value; the feature is not nullable"
                rejects.append(Reject(rows[index], feature.name, None, why))
            out.append(None)
            continue
        parsed, reason = parse(value)
        if reason is None and feature.type != "String":
            reason = _range_problem(feature, parsed)
        if reason is not None:
            rejects.append(Reject(rows[index], feature.name, value, reason))
            parsed = None
        out.append(parsed)
    return out


def _range_problem(feature: FeatureSpec, value: float) -> str | None:
    if feature.min is not None and value < feature.min:
        return f"{value} is below the feature's min {feature.min:g}"
    if feature.max is not None and value > feature.max:
        return f"{value} is above the feature's max {feature.max:g}"
    return None


def _check_event_time(
    feature: FeatureSpec, values: Sequence[Any], *, rows: Sequence[int], now: float, skew: float, rejects: list[Reject]
) -> tuple[list[Any], list[float | None]]:
    parse = _iso_event_time if feature.type == "String" else _epoch_event_time
    out: list[Any] = []
    seconds: list[float | None] = []
    for index, value in enumerate(values):
        if value is None:
            normalised, when, reason = None, None, "event time is missing"
        else:
            normalised, when, reason = parse(value)
        if reason is None and when > now + skew:
            reason = f"event time is {when - now:.0f} s in the future; at most {skew:.0f} s (clock skew) is allowed"
        if reason is not None:
            rejects.append(Reject(rows[index], feature.name, value, reason))
            normalised, when = None, None
        out.append(normalised)
        seconds.append(when)
    return out, seconds


def _iso_event_time(value: Any) -> tuple[str | None, float | None, str | None]:
    """String event time: ISO-8601 with a timezone (a tz-aware datetime from Parquet is accepted too)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return None, None, "event time has no timezone; give ISO-8601 with Z or an offset"
        when = value.astimezone(dt.timezone.utc)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), when.timestamp(), None
    if not isinstance(value, str):
        return None, None, f"event time must be an ISO-8601 string, got {type(value).__name__}"
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None, None, "event time is not ISO-8601 (e.g. 2024-05-01T12:00:00Z)"
    if parsed.tzinfo is None:
        return None, None, "event time has no timezone; give ISO-8601 with Z or an offset"
    return value, parsed.timestamp(), None


def _epoch_event_time(value: Any) -> tuple[float | None, float | None, str | None]:
    parsed, reason = _fractional(value)
    if reason is not None:
        return None, None, f"event time must be epoch seconds: {reason}"
    return parsed, parsed, None


def _integral(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, bool):
        return None, f"Integral needs an integer, got boolean {value}"
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return None, f"Integral needs an integer, got {value!r}"
        number = int(value)
    elif isinstance(value, str):
        if not _INTEGER.fullmatch(value.strip()):
            return None, f"Integral needs an integer, got {value!r}"
        number = int(value)
    else:
        return None, f"Integral needs an integer, got {type(value).__name__}"
    if not INT64_MIN <= number <= INT64_MAX:
        return None, f"{number} does not fit a 64-bit integer"
    return number, None


def _fractional(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return None, f"Fractional needs a number, got boolean {value}"
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            # float() also takes "1_000"; a CSV cell like that is a typo, not a number
            number = float(value) if "_" not in value else None
        except ValueError:
            number = None
        if number is None:
            return None, f"Fractional needs a number, got {value!r}"
    else:
        return None, f"Fractional needs a number, got {type(value).__name__}"
    if not math.isfinite(number):
        return None, f"Fractional needs a finite number, got {value!r}"
    return number, None


def _string(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, f"String needs text, got {type(value).__name__} {value!r}"
    if len(value) > MAX_STRING_LENGTH:
        return None, f"text of {len(value)} characters; PutRecord allows {MAX_STRING_LENGTH}"
    return value, None


_PARSERS: dict[str, Callable[[Any], tuple[Any, str | None]]] = {
    "Integral": _integral,
    "Fractional": _fractional,
    "String": _string,
}

