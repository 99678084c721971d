"""Online feature lookup: complete request rows from a SageMaker Feature Store online store.

With `Settings.feature_group` set, a JSON record may carry the record identifier (in the field
`Settings.record_id_field`) instead of some or all of the model's features. The app hands such
requests to `FeatureLookup`, which groups every request submitted in one event-loop iteration (as
the batcher does), fetches the records of all their identifiers with `BatchGetRecord` (one call per
100 distinct identifiers, the API's limit) on a small thread pool, and gives each request back to
the loop, completed or with its error:

- features the request supplies take precedence over fetched ones;
- fetched values (the store answers strings, `ValueAsString`) are typed by the model's schema, whose
  types the stack config requires to be the feature group's: `Integral` -> int, `Fractional` ->
  float, `String` -> str. The completed rows then go through the same validation and encoding as
  inline rows (`RequestDecoder.decode_rows`), so a request by id and the same request inline give
  the same model input and the same prediction;
- a feature the record lacks (the store omits null values) is null when the schema allows it;
- an identifier the store does not hold -> `RecordNotFoundError` (422) naming it; a record that
  cannot complete the row -> `InvalidRecordError` (422); no answer within the timeout ->
  `FeatureLookupTimeoutError` (504); the store refusing or failing -> `FeatureStoreError` (502).

The blocking boto3 call never runs on the event loop, and the loop stops waiting at the timeout
even if the call is still on its way (botocore's own socket timeouts end it shortly after).

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from mlops_contracts.feature_schema import FRACTIONAL, INTEGRAL

from .errors import (
    FeatureLookupTimeoutError,
    FeatureStoreError,
    InvalidInputError,
    InvalidRecordError,
    RecordNotFoundError,
    ServingError,
)
from .schema import FeatureSchema

log = logging.getLogger("mlops_serving")

SERVICE = "sagemaker-featurestore-runtime"
MAX_IDS_PER_CALL = 100
"""BatchGetRecordIdentifier.RecordIdentifiersValueAsString holds at most 100 values (botocore's model)."""
_NOT_FOUND = "NotFound"
"""An error code with this in it (ResourceNotFound...) means the record is absent, not that the store failed."""
WORKERS = 8
"""Lookups in flight at once; a slow store holds a worker for at most the timeout plus a second."""

Found = dict[str, "dict[str, Any] | ServingError"]
"""Record id -> the model features the record holds, typed (or why the record is unusable)."""


@dataclass
class Pending:
    """One request's rows while its lookup runs."""

    req: Any
    rows: list
    """Parsed rows; records that named an id have it removed (it is no model feature)."""
    ids: dict[int, str]
    """Row index -> record id, for every row that named one."""
    wanted: list[int]
    """Rows that lack features and so need their record."""


def connect(feature_group: str, *, timeout_s: float) -> OnlineStore:
    """An `OnlineStore` on boto3's client, configured the usual way (credentials, region,
    `AWS_ENDPOINT_URL`), with socket timeouts just above the lookup timeout and no retries: one
    lookup never outlives its request by much."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_s + 1.0, read_timeout=timeout_s + 1.0,
        retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=WORKERS,
    )
    return OnlineStore(boto3.client(SERVICE, config=config), feature_group)


class OnlineStore:
    """BatchGetRecord over one feature group, returning the model's features typed."""

    def __init__(self, client: Any, feature_group: str) -> None:
        self.client = client
        self.feature_group = feature_group

    def fetch(self, ids: list[str], *, schema: FeatureSchema, deadline: float) -> Found:
        """The records of `ids` (distinct) that the store holds; absent ids are not in the result."""
        found: Found = {}
        names = list(schema.names)
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            todo = ids[start:start + MAX_IDS_PER_CALL]
            while todo:
                answer = self._call(todo, names)
                for record in answer["Records"]:
                    rid = record["RecordIdentifierValueAsString"]
                    found[rid] = _typed(rid, record["Record"], schema, self.feature_group)
                for error in answer["Errors"]:
                    rid = error["RecordIdentifierValueAsString"]
                    if _NOT_FOUND in error["ErrorCode"]:
                        continue  # reported as absent, like an id the answer leaves out
                    found[rid] = FeatureStoreError(
                        f"feature store failed record {rid!r}: {error['ErrorCode']}: {error['ErrorMessage']}",
                        received=rid,
                    )
                # Throttled or otherwise skipped identifiers: asked again while time is left.
                todo = [rid for ident in answer["UnprocessedIdentifiers"] for rid in ident["RecordIdentifiersValueAsString"]]
                if todo and time.monotonic() >= deadline:
                    raise FeatureLookupTimeoutError(f"feature store left {len(todo)} record(s) unprocessed within the timeout")
        return found

    def _call(self, ids: list[str], names: list[str]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        try:
            return self.client.batch_get_record(Identifiers=[{
                "FeatureGroupName": self.feature_group, "RecordIdentifiersValueAsString": ids, "FeatureNames": names,
            }])
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise FeatureLookupTimeoutError(f"feature store did not answer: {exc}") from exc
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise FeatureStoreError(
                f"feature store refused BatchGetRecord on {self.feature_group!r}: {err.get('Code')}: {err.get('Message')}"
            ) from exc
        except BotoCoreError as exc:
            raise FeatureStoreError(f"feature store unreachable: {exc}") from exc


def _typed(rid: str, record: list[dict[str, Any]], schema: FeatureSchema, group: str) -> dict[str, Any] | ServingError:
    """A record's model features as the values a JSON request would carry."""
    types = {f.name: f.type for f in schema.features}
    out: dict[str, Any] = {}
    for value in record:
        name = value["FeatureName"]
        ftype = types.get(name)
        if ftype is None:
            continue  # not asked for; the store may still answer it
        text = value.get("ValueAsString")
        try:
            if text is None:
                raise ValueError("a list value (ValueAsStringList)")
            out[name] = _parse(text, ftype)
        except ValueError as exc:
            return InvalidRecordError(
                f"record {rid!r} of feature group {group!r}: feature {name!r} is not {ftype} ({exc})",
                field=name, allowed=ftype, received=rid,
            )
    return out


def _parse(text: str, ftype: str) -> Any:
    if ftype == INTEGRAL:
        try:
            return int(text)
        except ValueError:
            number = float(text)  # "3.0" is how some writers store an integer
            if not number.is_integer():
                raise ValueError(f"{text!r} is not a whole number") from None
            return int(number)
    if ftype == FRACTIONAL:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not finite")
        return number
    return text


class FeatureLookup:
    """Groups requests that need records, looks them up off the loop, and hands each back."""

    def __init__(
        self,
        *,
        store: OnlineStore,
        schema: FeatureSchema,
        record_id_field: str,
        timeout_s: float,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[Pending, Found | None, BaseException | None], None],
    ) -> None:
        self.store = store
        self.schema = schema
        self.field = record_id_field
        self.timeout_s = timeout_s
        self._loop = loop
        self._on_done = on_done
        self._names = frozenset(schema.names)
        self._nullable = {f.name for f in schema.features if f.nullable}
        # How the field's name appears in a body; without it (or a \u escape) no row names an id.
        self._token = orjson.dumps(record_id_field)
        self._pending: list[Pending] = []
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="feature-lookup")
        self.calls = 0
        """Lookups started (one per group of requests), for tests and metrics."""

    def mentions_id(self, body: bytes) -> bool:
        """Whether some row of `body` may carry a record id (cheap: inline bodies skip the lookup path)."""
        return self._token in body or b"\\u" in body

    def prepare(self, req: Any, rows: list) -> Pending:
        """Take the record ids out of the rows; note which rows lack features."""
        ids: dict[int, str] = {}
        wanted: list[int] = []
        field = self.field
        for i, row in enumerate(rows):
            if type(row) is not dict or field not in row:
                continue  # inline row: validated as ever
            ids[i] = _record_id(i, row.pop(field), field)
            if not self._names.issubset(row):
                wanted.append(i)
        return Pending(req=req, rows=rows, ids=ids, wanted=wanted)

    def submit(self, pending: Pending) -> None:
        """Queue a request for the next lookup (loop thread only; never blocks)."""
        self._pending.append(pending)
        if len(self._pending) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        self.calls += 1
        self._loop.create_task(self._lookup(group))

    async def _lookup(self, group: list[Pending]) -> None:
        ids = list(dict.fromkeys(p.ids[i] for p in group for i in p.wanted))
        deadline = time.monotonic() + self.timeout_s
        found: Found | None = None
        error: BaseException | None = None
        fetch = self._loop.run_in_executor(
            self._executor, lambda: self.store.fetch(ids, schema=self.schema, deadline=deadline))
        try:
            found = await asyncio.wait_for(fetch, self.timeout_s)
        except TimeoutError:
            error = FeatureLookupTimeoutError(
                f"feature store did not answer within {self.timeout_s * 1000:g} ms "
                f"({len(ids)} record(s) of feature group {self.store.feature_group!r})",
                allowed=f"<= {self.timeout_s * 1000:g} ms",
            )
        except Exception as exc:  # answered per request by on_done; domain errors as 5xx/4xx, bugs as a logged 500
            error = exc
        if isinstance(error, (FeatureStoreError, FeatureLookupTimeoutError)):
            log.warning("feature lookup of %d record(s) failed for %d request(s): %s", len(ids), len(group), error)
        for pending in group:
            self._on_done(pending, found, error)

    def complete(self, pending: Pending, found: Found) -> list:
        """Fill the rows of `pending` that lack features from their records; supplied values win.
        Raises the request's error: every id the store lacks, or the first unusable record."""
        missing = list(dict.fromkeys(pending.ids[i] for i in pending.wanted if pending.ids[i] not in found))
        if missing:
            raise RecordNotFoundError(
                f"no record in feature group {self.store.feature_group!r} for {self.field} "
                f"{', '.join(repr(m) for m in missing)}",
                field=self.field, received=missing,
            )
        for i in pending.wanted:
            rid = pending.ids[i]
            record = found[rid]
            if isinstance(record, ServingError):
                # One error per request: several requests may name the same record.
                raise type(record)(record.message, row=i, field=record.field, allowed=record.allowed, received=record.received)
            row = pending.rows[i]
            for name in self.schema.names:
                if name in row:
                    continue
                if name in record:
                    row[name] = record[name]
                elif name in self._nullable:
                    row[name] = None
                else:
                    raise InvalidRecordError(
                        f"row {i}: record {rid!r} of feature group {self.store.feature_group!r} has no value for "
                        f"feature {name!r}, which is not nullable; send it in the request",
                        row=i, field=name, received=rid,
                    )
        return pending.rows

    def captured(self, pending: Pending) -> bytes:
        """The request as the model saw it, for the capture: each row with its record id and every feature."""
        rows = [{self.field: pending.ids[i], **row} if i in pending.ids else row for i, row in enumerate(pending.rows)]
        return orjson.dumps({"instances": rows})

    def close(self) -> None:
        """Stop the worker threads (lookups still running finish on their own and are discarded)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _record_id(i: int, value: Any, field: str) -> str:
    # The store compares identifiers as strings (ValueAsString); an Integral identifier may come as a number.
    if type(value) is str and value:
        return value
    if type(value) is int:
        return str(value)
    raise InvalidInputError(
        f"row {i}: {field!r} must be a non-empty string or an integer (the record identifier)",
        row=i, field=field, allowed="non-empty string or integer", received=repr(value)[:64],
    )
