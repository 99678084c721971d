"""Writing validated rows to the offline store as SageMaker itself writes it (specs/features/offline_layout).

One Parquet file per hourly partition of a batch, its name derived from a hash of its rows, so that
ingesting the same rows again overwrites the same objects. The features keep their declared types
(Integral int64, Fractional double, String string; the event time as declared), then `write_time`
and `api_invocation_time` (millisecond timestamps, UTC) and `is_deleted` (False).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from specs.features import offline_layout as layout
from specs.features.validate import BatchCheck, GroupSpec


def arrow_schema(group: GroupSpec) -> Any:
    """The Parquet schema of the group's offline-store files."""
    import pyarrow as pa

    types = {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}
    fields = [pa.field(f.name, types[f.type]) for f in group.features]
    stamp = pa.timestamp("ms", tz="UTC")
    fields += [pa.field(layout.WRITE_TIME, stamp), pa.field(layout.API_INVOCATION_TIME, stamp), pa.field(layout.IS_DELETED, pa.bool_())]
    return pa.schema(fields)


def partition_files(group: GroupSpec, check: BatchCheck, *, group_name: str, written_at: dt.datetime) -> dict[str, bytes]:
    """{object key relative to the resolved URI: Parquet bytes} for one validated batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert check.ok, "a batch with rejects is never written"
    schema = arrow_schema(group)
    features = pa.table({f.name: pa.array(check.values[f.name], type=schema.field(f.name).type) for f in group.features})
    hours: dict[int, list[int]] = {}
    for index, seconds in enumerate(check.event_seconds):
        hours.setdefault(int(seconds // 3600), []).append(index)
    files = {}
    for hour, indices in sorted(hours.items()):
        rows = features.take(pa.array(indices, type=pa.int64()))
        digest = _digest(rows, group_name=group_name, hour=hour)
        latest = max(check.event_seconds[i] for i in indices)
        n = rows.num_rows
        stamps = pa.array([written_at] * n, type=pa.timestamp("ms", tz="UTC"))
        table = rows.append_column(schema.field(layout.WRITE_TIME), stamps)
        table = table.append_column(schema.field(layout.API_INVOCATION_TIME), stamps)
        table = table.append_column(schema.field(layout.IS_DELETED), pa.array([False] * n, type=pa.bool_()))
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        name = layout.file_name(latest_event_seconds=latest, digest=digest)
        files[f"{layout.partition(hour * 3600)}/{name}"] = sink.getvalue()
    return files


def _digest(rows: Any, *, group_name: str, hour: int) -> str:
    """A hash of the partition's rows (not of the write times), so the same rows get the same key."""
    import pyarrow as pa

    h = hashlib.sha256(f"{group_name}\0{hour}\0".encode())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows.combine_chunks())
    h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()


def put_files(s3: Any, *, resolved_uri: str, files: dict[str, bytes], kms_key_id: str | None = None, workers: int = 8) -> list[str]:
    """PutObject every file under the group's resolved offline-store URI; the object keys written.

    `kms_key_id`: the group's offline-store key (DescribeFeatureGroup), used as SageMaker uses it."""
    bucket, prefix = layout.split_s3_uri(resolved_uri)
    keys = {layout.object_key(resolved_prefix=prefix, partition_path=rel.rsplit("/", 1)[0], name=rel.rsplit("/", 1)[1]): body
            for rel, body in files.items()}

    def put(item: tuple[str, bytes]) -> str:
        key, body = item
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-parquet", **extra)
        return key

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys)))) as pool:
        return list(pool.map(put, keys.items()))
