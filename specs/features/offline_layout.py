"""Where and how SageMaker Feature Store's offline store (Glue table format) keeps records.

From the SageMaker developer guide ("offline store data format"): Parquet files under the group's
`OfflineStoreConfig.S3StorageConfig.ResolvedOutputS3Uri`, partitioned by the record's event time into
hourly partitions that cannot be configured:

    <ResolvedOutputS3Uri>/year=YYYY/month=MM/day=DD/hour=HH/<latest event time in file>_<16 alphanumerics>.parquet

with the latest event time written `YYYYMMDDTHHMMSSZ`, and three columns added to every record:
`write_time` and `api_invocation_time` (timestamps) and `is_deleted` (boolean, False for a put).
The Glue table SageMaker creates types the features bigint (Integral), double (Fractional) and string.

Writing the same layout ourselves keeps Athena queries on that Glue table working unchanged. Our 16
characters are a content hash, not random: ingesting the same rows again produces the same object key,
so a re-run overwrites its files instead of adding duplicates.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure), nor `boto3`, `botocore` or `pyarrow` (no I/O: the readers and
writers live in `mlops/features/`).
"""
from __future__ import annotations

import datetime as dt

WRITE_TIME = "write_time"
API_INVOCATION_TIME = "api_invocation_time"
IS_DELETED = "is_deleted"
EXTRA_COLUMNS = (WRITE_TIME, API_INVOCATION_TIME, IS_DELETED)
GLUE_TYPES = {"Integral": "bigint", "Fractional": "double", "String": "string"}
"""Glue column type of each feature type in the table SageMaker creates."""
SUFFIX_LENGTH = 16


def partition(event_seconds: float) -> str:
    """The hourly partition (UTC) of a record with this event time."""
    when = dt.datetime.fromtimestamp(event_seconds, tz=dt.timezone.utc)
    return f"year={when:%Y}/month={when:%m}/day={when:%d}/hour={when:%H}"


def file_name(*, latest_event_seconds: float, digest: str) -> str:
    """`<latest event time>_<16 alphanumerics>.parquet`; `digest` is the file content's hex hash."""
    if len(digest) < SUFFIX_LENGTH or not digest.isalnum():
        raise ValueError(f"digest {digest!r}: need at least {SUFFIX_LENGTH} alphanumeric characters")
    latest = dt.datetime.fromtimestamp(latest_event_seconds, tz=dt.timezone.utc)
    return f"{latest:%Y%m%dT%H%M%SZ}_{digest[:SUFFIX_LENGTH]}.parquet"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix") (no trailing slash)."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI (s3://bucket/prefix)")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket (s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def object_key(*, resolved_prefix: str, partition_path: str, name: str) -> str:
    """The object key of one offline-store file under the group's resolved prefix."""
    return "/".join(p for p in (resolved_prefix, partition_path, name) if p)
