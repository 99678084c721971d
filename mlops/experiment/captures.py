"""Reading what the readouts need from the stack's AWS: captures, ground truth, per-variant CloudWatch figures.

Captures are SageMaker's data-capture JSON lines (mlops_contracts.capture) under the endpoint's capture
root (specs.pipelines.sources.capture_root) in `{variant}/yyyy/mm/dd/hh/` folders; a request is keyed by
its `eventMetadata.inferenceId`, else its `eventId` (the key ground truth and the shadow join use). The
predictions of a response are `{"predictions": [...]}`, a bare list or CSV (first field per line), as
the serving container's monitor reads them. Ground truth is Model Monitor's merge format under the
model's ground-truth location; when an id is labelled twice the later record (path order) wins.

Captures hold neither latency nor failed requests, so both come from CloudWatch's AWS/SageMaker
metrics of each variant (the local router publishes the same ones): Invocations, Invocation4XXErrors,
Invocation5XXErrors and ModelLatency p50/p99. Moto computes no percentiles: where the response has no
extended statistics, p50 falls back to the Average and p99 to the Maximum, and `source` says so.

Must not import: `pulumi` or its providers, `components`, `mlops_training`, `mlops_serving` (the CLI
reads through boto3 clients it is given).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_contracts import capture as wire
from mlops_contracts import metrics as contract

Client = Callable[[str], Any]
"""service name -> boto3 client of the stack's AWS."""


@dataclass
class Request:
    """One captured request of one variant."""

    key: str
    time: datetime
    predictions: list[float]


@dataclass
class VariantCaptures:
    """A variant's captured requests by join key (the last capture of a key wins) and what was skipped."""

    variant: str
    requests: dict[str, Request] = field(default_factory=dict)
    files: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        self.problems.append(message)


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def _hour_of(key: str) -> datetime | None:
    parts = key.split("/")
    try:
        return datetime.strptime("/".join(parts[-5:-1]), wire.HOUR_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _objects(s3: Any, uri: str, since: datetime | None) -> Iterator[tuple[str, str]]:
    """(key, text) of each completed JSON-lines object under `uri`, in key order; with `since`, objects
    in an hour folder before since's hour are skipped (their records are older)."""
    bucket, prefix = split_s3(uri.rstrip("/") + "/")
    floor = since.replace(minute=0, second=0, microsecond=0) if since else None
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    for key in sorted(keys):
        if not key.endswith(wire.FILE_SUFFIX):
            continue  # `.partial` files are still being written
        hour = _hour_of(key)
        if floor is not None and hour is not None and hour < floor:
            continue
        yield key, s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


def predictions(part: Any) -> list[float]:
    """The numeric predictions of one captured response; ValueError naming what is wrong."""
    text, encoding = wire.decode_body(part)
    if encoding == wire.ENCODING_CSV:
        raw: list[Any] = [line.split(",")[0] for line in text.splitlines() if line.strip()]
    else:
        doc = json.loads(text)
        raw = doc.get("predictions") if isinstance(doc, dict) else doc
        if not isinstance(raw, list):
            raise ValueError("output has no 'predictions' list")
        raw = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in raw]
    values = []
    for value in raw:
        number = float(value) if not isinstance(value, bool) else math.nan
        if not math.isfinite(number):
            raise ValueError(f"prediction {value!r} is not a finite number")
        values.append(number)
    return values


def _request(doc: Any, since: datetime | None) -> Request | None:
    meta = doc[wire.EVENT_METADATA]
    key = meta.get(wire.INFERENCE_ID) or meta.get(wire.EVENT_ID)
    if not isinstance(key, str) or not key:
        raise ValueError("neither inferenceId nor eventId")
    when = wire.parse_time(meta.get(wire.INFERENCE_TIME))
    if since is not None and when < since:
        return None
    return Request(key=key, time=when, predictions=predictions(doc[wire.CAPTURE_DATA][wire.ENDPOINT_OUTPUT]))


def read_variant(s3: Any, *, root: str, variant: str, since: datetime | None) -> VariantCaptures:
    """Every capture of `variant` under the endpoint's capture `root` at or after `since`."""
    found = VariantCaptures(variant)
    for key, text in _objects(s3, f"{root.rstrip('/')}/{variant}/", since):
        found.files += 1
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                request = _request(json.loads(line), since)
            except (ValueError, KeyError, TypeError) as exc:
                found.problem(f"{key}:{number}: {exc}")
                continue
            if request is not None:
                found.requests[request.key] = request
    return found


def read_labels(s3: Any, *, uri: str, since: datetime | None, problem: Callable[[str], None]) -> dict[str, list[float]]:
    """Ground truth under `uri`: event id -> one numeric label per row. Labels come after their
    predictions, so files in hour folders before `since` are skipped."""
    labels: dict[str, list[float]] = {}

    def lines() -> Iterator[tuple[str, int, str]]:
        for key, text in _objects(s3, uri, since):
            for number, line in enumerate(text.splitlines(), 1):
                yield key, number, line

    for event_id, values in wire.ground_truth_records(lines(), problem=problem):
        try:
            labels[event_id] = [float(v) for v in values]
        except (TypeError, ValueError):
            problem(f"{event_id}: labels {values!r} are not numbers")
    return labels


@dataclass(frozen=True)
class Serving:
    """A variant's CloudWatch figures over the window."""

    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    percentiles: bool
    """True when p50/p99 are CloudWatch's percentiles; False when the service computed none (moto)."""


def _sum(cloudwatch: Any, metric: str, dims: list[dict[str, str]], start: datetime, end: datetime) -> int:
    points = cloudwatch.get_metric_statistics(Namespace=contract.SAGEMAKER_NAMESPACE, MetricName=metric, Dimensions=dims,
                                              StartTime=start, EndTime=end, Period=_period(start, end), Statistics=["Sum"])["Datapoints"]
    return int(sum(p["Sum"] for p in points))


def _period(start: datetime, end: datetime) -> int:
    """One period over the whole window (a multiple of 60 s, as CloudWatch requires)."""
    return max(60, math.ceil((end - start).total_seconds() / 60) * 60)


def serving_figures(cloudwatch: Any, *, endpoint: str, variant: str, since: datetime | None, until: datetime) -> Serving:
    """Requests, 4XX+5XX errors and ModelLatency p50/p99 (ms) of `endpoint`'s `variant` (AWS names)."""
    # Whole minutes (CloudWatch's resolution here), the end exclusive: round it up so `until` is in.
    until = (until + timedelta(minutes=1)).replace(second=0, microsecond=0)
    start = (since or until - timedelta(days=14)).replace(second=0, microsecond=0)  # one-minute data is kept 15 days
    if start >= until:  # a window that has not begun yet holds nothing
        return Serving(0, 0, None, None, True)
    dims = [{"Name": contract.ENDPOINT_DIMENSION, "Value": endpoint}, {"Name": contract.VARIANT_DIMENSION, "Value": variant}]
    requests = _sum(cloudwatch, contract.INVOCATIONS, dims, start, until)
    errors = _sum(cloudwatch, contract.INVOCATION_4XX_ERRORS, dims, start, until) + _sum(cloudwatch, contract.INVOCATION_5XX_ERRORS, dims, start, until)
    points = cloudwatch.get_metric_statistics(
        Namespace=contract.SAGEMAKER_NAMESPACE, MetricName=contract.MODEL_LATENCY, Dimensions=dims, StartTime=start, EndTime=until,
        Period=_period(start, until), ExtendedStatistics=["p50", "p99"])["Datapoints"]
    extended = [p["ExtendedStatistics"] for p in points if p.get("ExtendedStatistics")]
    if extended or not points:
        p50 = max((e["p50"] for e in extended), default=None)
        p99 = max((e["p99"] for e in extended), default=None)
        return Serving(requests, errors, _ms(p50), _ms(p99), True)
    plain = cloudwatch.get_metric_statistics(
        Namespace=contract.SAGEMAKER_NAMESPACE, MetricName=contract.MODEL_LATENCY, Dimensions=dims, StartTime=start, EndTime=until,
        Period=_period(start, until), Statistics=["Average", "Maximum", "SampleCount"])["Datapoints"]
    count = sum(p["SampleCount"] for p in plain)
    average = sum(p["Average"] * p["SampleCount"] for p in plain) / count if count else None
    return Serving(requests, errors, _ms(average), _ms(max((p["Maximum"] for p in plain), default=None)), False)


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else microseconds / 1000.0
