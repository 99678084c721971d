"""`mlops features ingest`: validate a source against a feature group, then write the valid batches to
its online store (PutRecord) and its offline store (Parquet in SageMaker's own layout).

Each batch (default: the whole source) is validated completely before any of it is written; a batch
with a reject writes nothing, and every reject goes to the report (JSON lines, or CSV for a .csv path)
with its source row number and reason. Re-running an ingestion writes the same online records and the
same offline objects (content-hashed keys), so it adds no duplicates, as long as the batches are the
same (same source, same --batch-size).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.features import offline, online, sources
from specs.features.validate import DEFAULT_FUTURE_SKEW, BatchCheck, GroupSpec, Reject, check_columns, validate_batch

Progress = Callable[[str, int], None]
"""progress(stage, rows): `rows` more rows went through stage "validate" or "write"."""


class IngestError(RuntimeError):
    """The target cannot take the data (no such feature group, an AWS call failed for good)."""


class UsageError(ValueError):
    """A request that makes no sense (unknown group, bad batch size)."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """A stack's feature group, as ingestion needs it."""

    key: str
    name: str
    """The group's AWS name (the stack's Namer)."""
    spec: GroupSpec
    online: bool
    offline: bool


@dataclass(frozen=True, kw_only=True)
class IngestRequest:
    """What to ingest where, and how."""

    source: str
    """Local path or s3://bucket/key."""
    report: Path
    """Reject report: JSON lines, or CSV when it ends in .csv."""
    fmt: str | None = None
    batch_size: int | None = None
    ignore_extra_columns: bool = False
    dry_run: bool = False
    workers: int = 16
    future_skew: dt.timedelta = DEFAULT_FUTURE_SKEW


@dataclass(kw_only=True)
class Clients:
    """boto3 clients of the stack's account (thread-safe; the online writer shares its client)."""

    s3: Any
    sagemaker: Any
    featurestore: Any


@dataclass
class Summary:
    """What an ingestion did."""

    rows: int = 0
    written: int = 0
    """Rows written to the stores (0 in a dry run)."""
    rejected_rows: int = 0
    rejects: int = 0
    batches: int = 0
    refused_batches: int = 0
    """Batches with a reject, of which nothing was written."""
    online_records: int = 0
    offline_keys: list[str] = field(default_factory=list)
    seconds: float = 0.0
    report: Path | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def resolve_target(config: Any, key: str) -> Target:
    """The stack's feature group `key` (its AWS name from the stack's Namer)."""
    from components.stack import namer_for

    groups = config.feature_store.feature_groups
    if key not in groups:
        raise UsageError(f"unknown feature group {key!r} in stack {config.stack_name}; defined: {', '.join(groups) or 'none'}")
    group = groups[key]
    return Target(key=key, name=namer_for(config).feature_group(key), spec=GroupSpec.from_config(group),
                  online=group.online_store.enabled, offline=group.offline_store)


def describe_offline(sagemaker: Any, target: Target) -> tuple[str, str | None]:
    """(resolved offline-store URI, KMS key id) from DescribeFeatureGroup.

    AWS resolves the configured S3Uri to `.../<account>/sagemaker/<region>/offline-store/<group>-<time>/data`
    and returns it as ResolvedOutputS3Uri; moto returns both too (its resolved path lacks the
    `sagemaker/` segment). Only S3Uri is used when the resolved one is absent.
    """
    from botocore.exceptions import ClientError

    try:
        described = sagemaker.describe_feature_group(FeatureGroupName=target.name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("ResourceNotFound", "ValidationException"):
            raise
        raise IngestError(f"feature group {target.name} does not exist; deploy the stack (`pulumi up`) first") from None
    storage = (described.get("OfflineStoreConfig") or {}).get("S3StorageConfig") or {}
    uri = storage.get("ResolvedOutputS3Uri") or storage.get("S3Uri")
    if not uri:
        raise IngestError(f"feature group {target.name} has no offline store in AWS, but the stack config enables one; deploy the stack first")
    return uri, storage.get("KmsKeyId")


def ingest(request: IngestRequest, target: Target, *, clients: Clients | None, progress: Progress = lambda s, n: None,
           on_total: Callable[[int | None], None] = lambda n: None, now: Callable[[], dt.datetime] | None = None) -> Summary:
    """Validate `request.source` against `target` batch by batch, writing each clean batch (unless dry run)."""
    if request.batch_size is not None and request.batch_size < 1:
        raise UsageError(f"--batch-size {request.batch_size}: give a positive number of rows")
    if not request.dry_run and clients is None:
        raise UsageError("clients are needed unless this is a dry run")
    clock = now or (lambda: dt.datetime.now(dt.timezone.utc))
    started = time.perf_counter()
    summary = Summary(report=request.report)
    fmt = sources.detect_format(request.source, request.fmt)
    with sources.temporary_workdir() as workdir:
        path = sources.fetch(request.source, s3=clients.s3 if clients else _s3_for_dry_run(request.source), workdir=Path(workdir))
        columns, total, batches = sources.read_batches(path, fmt, batch_size=request.batch_size)
        problems = check_columns(target.spec, columns, ignore_extra=request.ignore_extra_columns)
        if problems:
            raise sources.SourceError(f"{request.source}: " + "; ".join(problems))
        on_total(total)
        writer = _Writer(target, clients, request) if not request.dry_run else None
        with _Report(request.report) as report:
            for number, batch in enumerate(batches, start=1):
                check = _validate(target.spec, batch, now=clock(), skew=request.future_skew)
                progress("validate", check.rows + len(batch.pre_rejects))
                rejects = sorted(batch.pre_rejects + check.rejects, key=lambda r: r.row)
                _count(summary, check, batch, rejects)
                if rejects:
                    report.write(number, rejects)
                elif writer is not None:
                    writer.write(check, summary, progress=progress, written_at=clock())
    summary.seconds = time.perf_counter() - started
    return summary


def _validate(spec: GroupSpec, batch: sources.Batch, *, now: dt.datetime, skew: dt.timedelta) -> BatchCheck:
    columns = {f.name: batch.column(f.name) for f in spec.features}
    return validate_batch(spec, columns, row_numbers=batch.row_numbers, now=now, future_skew=skew)


def _count(summary: Summary, check: BatchCheck, batch: sources.Batch, rejects: list[Reject]) -> None:
    summary.batches += 1
    summary.rows += check.rows + len(batch.pre_rejects)
    summary.rejects += len(rejects)
    summary.rejected_rows += len({r.row for r in rejects})
    if rejects:
        summary.refused_batches += 1


def _s3_for_dry_run(source: str) -> Any:
    # A dry run reaches the network only to read an s3:// source; a local one needs no client at all.
    if not source.startswith("s3://"):
        return None
    import boto3

    return boto3.client("s3")


class _Writer:
    """Writes clean batches: online first (the step that throttles), then the offline files."""

    def __init__(self, target: Target, clients: Clients, request: IngestRequest):
        self.target = target
        self.clients = clients
        self.online = online.OnlineWriter(client=clients.featurestore, feature_group_name=target.name, workers=request.workers) if target.online else None
        self.offline_uri, self.kms_key_id = describe_offline(clients.sagemaker, target) if target.offline else (None, None)
        self.workers = request.workers

    def write(self, check: BatchCheck, summary: Summary, *, progress: Progress, written_at: dt.datetime) -> None:
        if self.online is not None:
            try:
                summary.online_records += self.online.put_batch(self.target.spec, check, progress=lambda n: progress("write", n))
            except online.OnlineWriteError as exc:
                raise IngestError(f"{exc}; the batch may be partly in the online store: re-run the same command (PutRecord upserts)") from None
        if self.offline_uri is not None:
            files = offline.partition_files(self.target.spec, check, group_name=self.target.name, written_at=written_at)
            summary.offline_keys += offline.put_files(self.clients.s3, resolved_uri=self.offline_uri, files=files,
                                                      kms_key_id=self.kms_key_id, workers=min(self.workers, 8))
            if self.online is None:
                progress("write", check.rows)
        summary.written += check.rows


class _Report:
    """The reject report, written as batches are refused (an empty file when nothing was rejected)."""

    def __init__(self, path: Path):
        self.path = path
        self.csv = path.suffix.lower() == ".csv"

    def __enter__(self) -> _Report:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("w", newline="")
        if self.csv:
            self.writer = csv.writer(self.handle)
            self.writer.writerow(["batch", "row", "column", "value", "reason"])
        return self

    def write(self, batch: int, rejects: list[Reject]) -> None:
        for reject in rejects:
            doc = {"batch": batch, **reject.to_json()}
            if self.csv:
                self.writer.writerow([doc["batch"], doc["row"], doc["column"] or "", "" if doc["value"] is None else doc["value"], doc["reason"]])
            else:
                self.handle.write(json.dumps(doc) + "\n")

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
