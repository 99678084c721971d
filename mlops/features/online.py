"""Writing validated rows to the online store: PutRecord, concurrent, with retries and backoff.

`TargetStores=["OnlineStore"]` only: the offline store is written as Parquet by `offline.py`, and
letting PutRecord write it too would put every row there twice. PutRecord is an upsert by record id,
so a re-run leaves the same records. Within a batch only the latest row of each record id is sent
(latest event time, the later row on a tie): the online store keeps one record per id, and sending
several rows of one id concurrently would leave whichever arrived last.

Throttling is retried twice over: botocore's own retry mode (adaptive, client-side rate limiting) and,
for a ThrottlingException or 5xx that survives it, a bounded exponential backoff with full jitter here.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from specs.features.validate import BatchCheck, GroupSpec

RETRYABLE_CODES = frozenset({"ThrottlingException", "ServiceUnavailable", "InternalFailure", "ServiceUnavailableException"})


class OnlineWriteError(RuntimeError):
    """A PutRecord that failed for good (not retryable, or still failing after the backoff)."""


def client_config(*, workers: int, total_attempts: int = 8, mode: str = "adaptive") -> Any:
    """botocore config for the feature-store runtime client: retries in `mode` (adaptive adds
    client-side rate limiting after throttling; `total_attempts` counts the first call too), and a
    connection per worker."""
    from botocore.config import Config

    return Config(retries={"mode": mode, "total_max_attempts": total_attempts}, max_pool_connections=workers)


def latest_per_record(group: GroupSpec, check: BatchCheck) -> list[int]:
    """Indices of the rows to send: the latest one of each record id, in source order."""
    ids = check.values[group.record_identifier]
    seconds = check.event_seconds
    chosen: dict[Any, int] = {}
    for index, record_id in enumerate(ids):
        kept = chosen.get(record_id)
        if kept is None or seconds[index] >= seconds[kept]:
            chosen[record_id] = index
    return sorted(chosen.values())


def _as_text(value: Any) -> str:
    # repr() is the shortest text that reads back as the same float
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(kw_only=True)
class OnlineWriter:
    """Sends a validated batch's rows to one feature group's online store."""

    client: Any
    """boto3 `sagemaker-featurestore-runtime` client (thread-safe)."""
    feature_group_name: str
    workers: int = 16
    chunk_rows: int = 256
    backoff_attempts: int = 6
    """Extra tries of a throttled/5xx PutRecord after botocore's own retries."""
    base_delay: float = 0.1
    max_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def put_batch(self, group: GroupSpec, check: BatchCheck, *, progress: Callable[[int], None] = lambda n: None) -> int:
        """PutRecord each record of the batch; returns how many records were put."""
        indices = latest_per_record(group, check)
        progress(check.rows - len(indices))  # superseded rows count as done: their record is written
        names = [f.name for f in group.features]
        columns = [check.values[n] for n in names]
        stop = threading.Event()

        def run(chunk: Sequence[int]) -> int:
            for index in chunk:
                if stop.is_set():
                    return 0
                record = [{"FeatureName": n, "ValueAsString": _as_text(col[index])} for n, col in zip(names, columns) if col[index] is not None]
                self._put(record, row=check.row_numbers[index])
            progress(len(chunk))
            return len(chunk)

        chunks = [indices[i:i + self.chunk_rows] for i in range(0, len(indices), self.chunk_rows)]
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="put-record") as pool:
            futures = [pool.submit(run, c) for c in chunks]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                stop.set()
                for f in futures:
                    f.cancel()
                raise failed.exception()
        return len(indices)

    def _put(self, record: list[dict[str, str]], *, row: int) -> None:
        from botocore.exceptions import ClientError

        for attempt in range(self.backoff_attempts + 1):
            try:
                self.client.put_record(FeatureGroupName=self.feature_group_name, Record=record, TargetStores=["OnlineStore"])
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                retryable = code in RETRYABLE_CODES or status >= 500
                if not retryable or attempt == self.backoff_attempts:
                    message = exc.response.get("Error", {}).get("Message", str(exc))
                    tries = f" after {attempt + 1} tries" if retryable else ""
                    raise OnlineWriteError(f"PutRecord to {self.feature_group_name} failed for row {row}{tries}: {code or status}: {message}") from None
            self.sleep(random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt)))
