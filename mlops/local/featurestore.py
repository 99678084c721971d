"""SageMaker Feature Store's runtime (PutRecord, GetRecord, BatchGetRecord, DeleteRecord) for the
local environment, which moto does not emulate. `mlops.local.aws_server` parses and validates the
HTTP requests and binds this module to moto's SageMaker and S3 backends; everything here works on
already-validated parameters and plain data, so it is tested without a server.

Semantics implemented, from AWS's API reference and developer guide:
- The online store keeps, per record identifier, the record with the latest event time: PutRecord
  replaces the stored record only when its EventTime is greater ("Otherwise, the record is a historic
  record and it is written only to the OfflineStore").
- TTL: `ExpiresAt = EventTime + TtlDuration`, the request's TtlDuration superseding the group's
  `OnlineStoreConfig.TtlDuration`. AWS hard-deletes an expired record in the background and a
  hard-deleted record "immediately becomes inaccessible"; locally an expired record is gone at once
  (no background delay). `ExpirationTimeResponse=Enabled` adds `ExpiresAt` to what is returned.
- DeleteRecord: SoftDelete (default) nulls the record so reads return nothing, HardDelete removes it;
  the delete's EventTime must be later than the stored record's, otherwise SoftDelete leaves the record
  (the offline marker is still written) and HardDelete fails with a ValidationError (no marker).
- The offline store receives every record written to it, and DeleteRecord's marker row
  (`is_deleted=true`, the delete's EventTime, other features null), as Parquet in SageMaker's Glue
  layout `<ResolvedOutputS3Uri>/year=YYYY/month=MM/day=DD/hour=HH/<timestamp>_<random>.parquet`
  (partitioned by event time), with the extra columns `write_time`, `api_invocation_time` and
  `is_deleted`. AWS buffers offline writes for up to 15 minutes; locally each call writes at once.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import io
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ONLINE, OFFLINE = "OnlineStore", "OfflineStore"
TTL_UNIT_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 604800}
_ISO_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_INTEGRAL = re.compile(r"^[+-]?\d+$")


class FeatureStoreError(Exception):
    """An error the runtime answers with: `code` is the botocore error shape, `status` its HTTP status."""

    code = "InternalFailure"
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ValidationError(FeatureStoreError):
    """The request is invalid (botocore shape `ValidationError`, HTTP 400)."""

    code = "ValidationError"
    status = 400


class ResourceNotFound(FeatureStoreError):
    """The feature group does not exist (botocore shape `ResourceNotFound`, HTTP 404)."""

    code = "ResourceNotFound"
    status = 404


@dataclass(frozen=True)
class GroupSpec:
    """What the runtime needs to know about one feature group."""

    name: str
    arn: str
    record_identifier: str
    event_time_feature: str
    definitions: dict[str, dict[str, Any]]
    """FeatureDefinitions by FeatureName (FeatureType, optional CollectionType)."""
    online: bool
    """OnlineStoreConfig.EnableOnlineStore (AWS's default is no online store)."""
    ttl: dict[str, Any] | None = None
    """OnlineStoreConfig.TtlDuration, the default TTL of the group's records."""
    offline_uri: str | None = None
    """OfflineStoreConfig.S3StorageConfig.ResolvedOutputS3Uri, None without an offline store."""

    def stores(self) -> set[str]:
        return {s for s, present in ((ONLINE, self.online), (OFFLINE, self.offline_uri is not None)) if present}


@dataclass(frozen=True)
class StoredRecord:
    """The online store's entry for one record identifier."""

    record: list[dict[str, Any]]
    event_time: datetime
    expires_at: datetime | None = None
    deleted: bool = False
    """A SoftDelete tombstone: it keeps the delete's event time but reads return nothing."""


def ttl_delta(ttl: dict[str, Any]) -> timedelta:
    """A TtlDuration (`{"Unit": ..., "Value": ...}`) as a timedelta."""
    unit, value = ttl.get("Unit"), ttl.get("Value")
    if unit not in TTL_UNIT_SECONDS:
        raise ValidationError(f"TtlDuration.Unit {unit!r} is not one of {', '.join(TTL_UNIT_SECONDS)}")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"TtlDuration.Value {value!r} must be an integer of at least 1")
    return timedelta(seconds=TTL_UNIT_SECONDS[unit] * value)


def parse_event_time(value: str, *, feature: str, feature_type: str) -> datetime:
    """An EventTime value as an aware UTC datetime: seconds since the epoch for a Fractional (or
    Integral) event-time feature, ISO 8601 UTC (`yyyy-MM-dd'T'HH:mm:ss[.SSS]Z`) for a String one."""
    if feature_type == "String":
        if not _ISO_EVENT_TIME.match(value):
            raise ValidationError(
                f"event time {feature}={value!r} is not ISO 8601 UTC (yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ)"
            )
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValidationError(f"event time {feature}={value!r} is not a number of seconds since the epoch") from None


def iso(moment: datetime) -> str:
    """The ISO 8601 UTC string AWS uses for ExpiresAt (millisecond precision)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def convert_value(value: str, *, feature: str, feature_type: str) -> Any:
    """A ValueAsString as its FeatureType says (Integral -> int, Fractional -> float, String -> str)."""
    if feature_type == "Integral":
        if not _INTEGRAL.match(value):
            raise ValidationError(f"feature {feature}={value!r} is not an Integral value (a whole number)")
        return int(value)
    if feature_type == "Fractional":
        try:
            return float(value)
        except ValueError:
            raise ValidationError(f"feature {feature}={value!r} is not a Fractional value (a number)") from None
    return value


def record_values(group: GroupSpec, record: list[dict[str, Any]]) -> dict[str, Any]:
    """Check a PutRecord Record against the group's definitions; return its typed values by name."""
    names = [fv["FeatureName"] for fv in record]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(f"feature(s) {duplicates} appear more than once in the record")
    unknown = [n for n in names if n not in group.definitions]
    if unknown:
        raise ValidationError(
            f"feature(s) {unknown} are not defined in feature group {group.name} (its features: {', '.join(group.definitions)})"
        )
    missing = [n for n in (group.record_identifier, group.event_time_feature) if n not in names]
    if missing:
        raise ValidationError(
            f"the record lacks {missing}: every record of feature group {group.name} needs its record identifier "
            f"{group.record_identifier!r} and event time {group.event_time_feature!r}"
        )
    return {fv["FeatureName"]: _typed_value(group, fv) for fv in record}


def _typed_value(group: GroupSpec, fv: dict[str, Any]) -> Any:
    name = fv["FeatureName"]
    definition = group.definitions[name]
    has_string, has_list = "ValueAsString" in fv, "ValueAsStringList" in fv
    if has_string == has_list:
        raise ValidationError(f"feature {name} needs exactly one of ValueAsString and ValueAsStringList")
    if has_list != bool(definition.get("CollectionType")):
        allowed = "ValueAsStringList (it is a collection)" if has_list is False else "ValueAsString (it is not a collection)"
        raise ValidationError(f"feature {name} takes {allowed}")
    if has_list:
        return [convert_value(v, feature=name, feature_type=definition["FeatureType"]) for v in fv["ValueAsStringList"]]
    return convert_value(fv["ValueAsString"], feature=name, feature_type=definition["FeatureType"])


def target_stores(group: GroupSpec, requested: list[str] | None) -> set[str]:
    """TargetStores, defaulting to the stores the group has; a store the group lacks is an error."""
    if requested is None:
        return group.stores()
    lacking = sorted(set(requested) - group.stores())
    if lacking:
        raise ValidationError(
            f"TargetStores {lacking} requested, but feature group {group.name} has only {sorted(group.stores()) or 'no stores'}"
        )
    return set(requested)


class OnlineStore:
    """The online store: thread-safe, in memory, the latest record per (group ARN, record identifier)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], StoredRecord] = {}

    def put(self, key: tuple[str, str], entry: StoredRecord, *, now: datetime) -> bool:
        """Store `entry` unless a live entry with an event time at least as late exists; True if stored."""
        with self._lock:
            current = self._live(key, now)
            if current is not None and entry.event_time <= current.event_time:
                return False
            self._records[key] = entry
            return True

    def get(self, key: tuple[str, str], *, now: datetime) -> StoredRecord | None:
        """The live, not deleted entry for `key`, or None."""
        with self._lock:
            entry = self._live(key, now)
        return None if entry is None or entry.deleted else entry

    def delete(self, key: tuple[str, str], *, event_time: datetime, hard: bool, now: datetime) -> bool:
        """Soft- or hard-delete `key` as of `event_time`; True if the online store changed.

        A delete not later than the stored record's event time changes nothing; HardDelete then fails."""
        with self._lock:
            current = self._live(key, now)
            if current is not None and event_time <= current.event_time:
                if hard:
                    raise ValidationError(
                        f"EventTime {iso(event_time)} of the HardDelete is not later than the stored record's {iso(current.event_time)}"
                    )
                return False
            if hard:
                return self._records.pop(key, None) is not None
            self._records[key] = StoredRecord(record=[], event_time=event_time, deleted=True)
            return True

    def drop_group(self, arn: str) -> None:
        """Forget every record of one group (it was created anew)."""
        with self._lock:
            for key in [k for k in self._records if k[0] == arn]:
                del self._records[key]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def _live(self, key: tuple[str, str], now: datetime) -> StoredRecord | None:
        entry = self._records.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
            # expiry is a hard delete: the record is gone, so any later write may take its place
            del self._records[key]
            return None
        return entry


@dataclass
class OfflineRow:
    """One row for the offline store: typed feature values plus SageMaker's extra columns."""

    values: dict[str, Any]
    event_time: datetime
    api_invocation_time: datetime
    is_deleted: bool = False
    write_time: datetime = field(default_factory=lambda: datetime.now(UTC))


def offline_object(group: GroupSpec, row: OfflineRow) -> tuple[str, str, bytes]:
    """(bucket, key, Parquet bytes) of one offline-store file in SageMaker's Glue layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_types = {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}
    columns: dict[str, Any] = {}
    fields = []
    for name, definition in group.definitions.items():
        kind = arrow_types.get(definition["FeatureType"], pa.string())
        kind = pa.list_(kind) if definition.get("CollectionType") else kind
        fields.append(pa.field(name, kind))
        columns[name] = [row.values.get(name)]
    timestamp = pa.timestamp("ms", tz="UTC")
    fields += [pa.field("write_time", timestamp), pa.field("api_invocation_time", timestamp), pa.field("is_deleted", pa.bool_())]
    columns.update(write_time=[row.write_time], api_invocation_time=[row.api_invocation_time], is_deleted=[row.is_deleted])
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns, schema=pa.schema(fields)), buffer)
    assert group.offline_uri is not None and group.offline_uri.startswith("s3://")
    bucket, _, prefix = group.offline_uri.removeprefix("s3://").partition("/")
    t = row.event_time
    partition = f"year={t:%Y}/month={t:%m}/day={t:%d}/hour={t:%H}"
    name = f"{row.write_time:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:16]}.parquet"
    return bucket, "/".join(p for p in (prefix.rstrip("/"), partition, name) if p), buffer.getvalue()


GroupResolver = Callable[[str], GroupSpec | None]
"""Finds a feature group by name or ARN in the request's account and region."""
ObjectWriter = Callable[[str, str, bytes], None]
"""Puts one object (bucket, key, body) into the local S3."""


class FeatureStoreRuntime:
    """The four operations, on parameters botocore's model has already validated."""

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.online = OnlineStore()
        self.clock = clock

    def put_record(self, params: dict[str, Any], *, groups: GroupResolver, write: ObjectWriter) -> dict[str, Any]:
        """PutRecord: the online store keeps the latest record, the offline store gets every one."""
        now = self.clock()
        group = _require_group(groups, params["FeatureGroupName"], missing=ValidationError)
        values = record_values(group, params["Record"])
        targets = target_stores(group, params.get("TargetStores"))
        if params.get("TtlDuration") is not None and not group.online:
            raise ValidationError(f"TtlDuration given, but feature group {group.name} has no online store")
        event_time = parse_event_time(
            _string_of(params["Record"], group.event_time_feature),
            feature=group.event_time_feature, feature_type=group.definitions[group.event_time_feature]["FeatureType"],
        )
        ttl = params.get("TtlDuration") or group.ttl
        if ONLINE in targets:
            expires_at = event_time + ttl_delta(ttl) if ttl else None
            key = (group.arn, _string_of(params["Record"], group.record_identifier))
            self.online.put(key, StoredRecord(record=list(params["Record"]), event_time=event_time, expires_at=expires_at), now=now)
        if OFFLINE in targets:
            write(*offline_object(group, OfflineRow(values=values, event_time=event_time, api_invocation_time=now)))
        return {}

    def get_record(self, params: dict[str, Any], *, groups: GroupResolver) -> dict[str, Any]:
        """GetRecord: the live record (optionally only some features), or an empty answer."""
        group = _require_group(groups, params["FeatureGroupName"], missing=ResourceNotFound)
        found = self._read(group, params["RecordIdentifierValueAsString"], params.get("FeatureNames"), params.get("ExpirationTimeResponse"))
        return found or {}

    def batch_get_record(self, params: dict[str, Any], *, groups: GroupResolver) -> dict[str, Any]:
        """BatchGetRecord: found records in Records, absent identifiers simply missing, group errors in Errors."""
        records: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for identifier in params["Identifiers"]:
            name, ids = identifier["FeatureGroupName"], identifier["RecordIdentifiersValueAsString"]
            try:
                group = _require_group(groups, name, missing=ResourceNotFound)
                found = [(i, self._read(group, i, identifier.get("FeatureNames"), params.get("ExpirationTimeResponse"))) for i in ids]
            except FeatureStoreError as exc:
                errors += [{"FeatureGroupName": name, "RecordIdentifierValueAsString": i, "ErrorCode": exc.code, "ErrorMessage": exc.message[:2048]} for i in ids]
                continue
            records += [{"FeatureGroupName": name, "RecordIdentifierValueAsString": i, **result} for i, result in found if result]
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}

    def delete_record(self, params: dict[str, Any], *, groups: GroupResolver, write: ObjectWriter) -> dict[str, Any]:
        """DeleteRecord: SoftDelete or HardDelete online, a deleted-record marker offline."""
        now = self.clock()
        group = _require_group(groups, params["FeatureGroupName"], missing=ValidationError)
        event_time = parse_event_time(
            params["EventTime"], feature=group.event_time_feature,
            feature_type=group.definitions[group.event_time_feature]["FeatureType"],
        )
        targets = target_stores(group, params.get("TargetStores"))
        record_id = params["RecordIdentifierValueAsString"]
        if ONLINE in targets:
            hard = params.get("DeletionMode", "SoftDelete") == "HardDelete"
            self.online.delete((group.arn, record_id), event_time=event_time, hard=hard, now=now)
        if OFFLINE in targets:
            values = {
                group.record_identifier: _typed(group, group.record_identifier, record_id),
                group.event_time_feature: _typed(group, group.event_time_feature, params["EventTime"]),
            }
            write(*offline_object(group, OfflineRow(values=values, event_time=event_time, api_invocation_time=now, is_deleted=True)))
        return {}

    def _read(self, group: GroupSpec, record_id: str, names: list[str] | None, expiration: str | None) -> dict[str, Any] | None:
        if not group.online:
            raise ValidationError(f"feature group {group.name} has no online store to read from")
        unknown = [n for n in names or [] if n not in group.definitions]
        if unknown:
            raise ValidationError(f"FeatureNames {unknown} are not defined in feature group {group.name} (its features: {', '.join(group.definitions)})")
        entry = self.online.get((group.arn, record_id), now=self.clock())
        if entry is None:
            return None
        record = [fv for fv in entry.record if names is None or fv["FeatureName"] in names]
        if not record:
            return None
        result: dict[str, Any] = {"Record": record}
        if expiration == "Enabled" and entry.expires_at is not None:
            result["ExpiresAt"] = iso(entry.expires_at)
        return result


def _require_group(groups: GroupResolver, name: str, *, missing: type[FeatureStoreError]) -> GroupSpec:
    group = groups(name)
    if group is None:
        # AWS's own wording; PutRecord and DeleteRecord report it as a ValidationError (their model
        # has no ResourceNotFound), GetRecord as ResourceNotFound
        raise missing(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {name}")
    return group


def _string_of(record: list[dict[str, Any]], name: str) -> str:
    value = next(fv for fv in record if fv["FeatureName"] == name)
    if "ValueAsString" not in value:
        raise ValidationError(f"feature {name} identifies the record, so it takes ValueAsString")
    return value["ValueAsString"]


def _typed(group: GroupSpec, name: str, value: str) -> Any:
    return convert_value(value, feature=name, feature_type=group.definitions[name]["FeatureType"])

