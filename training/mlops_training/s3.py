"""Small S3 helpers over boto3.

boto3 (>= 1.28) honours `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` by itself, so the same code
reaches AWS, a local emulator or moto's server in tests.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<key>.*)$")
# S3's general purpose bucket naming rules (the dotted-IP and `xn--` corner cases are left to S3).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def is_s3_uri(value: str) -> bool:
    """True for `s3://...` locations."""
    return value.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> (`bucket`, `some/key`)."""
    match = _S3_URI.match(uri)
    if not match:
        raise ValueError(f"{uri!r} is not an S3 URI; expected s3://bucket/key")
    return match["bucket"], match["key"]


@dataclass(frozen=True)
class S3Prefix:
    """A validated `s3://bucket[/prefix]` location, naming a folder of keys."""

    bucket: str
    """A bucket name that follows S3's naming rules."""
    prefix: str
    """The folder below the bucket without leading or trailing slashes; empty for the bucket's root."""

    @classmethod
    def parse(cls, uri: str) -> S3Prefix:
        """Parse `s3://bucket`, `s3://bucket/prefix` or `s3://bucket/prefix/`; ValueError names the problem."""
        allowed = "allowed: s3://bucket or s3://bucket/prefix"
        match = _S3_URI.match(uri)
        if not match:
            raise ValueError(f"{uri!r} is not an S3 URI; {allowed}")
        bucket, prefix = match["bucket"], match["key"].rstrip("/")
        if not _BUCKET.match(bucket):
            raise ValueError(
                f"{uri!r}: {bucket!r} is not a valid S3 bucket name (3 to 63 lowercase letters, digits, dots "
                f"and hyphens, starting and ending with a letter or digit); {allowed}"
            )
        if prefix and "" in prefix.split("/"):
            raise ValueError(f"{uri!r}: the prefix has an empty path segment ('//'); {allowed}")
        return cls(bucket=bucket, prefix=prefix)

    def key(self, name: str) -> str:
        """The key of `name` directly inside this folder."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def list_prefix(self) -> str:
        """What to list so that a sibling folder (`prefix-old/`) is not included."""
        return f"{self.prefix}/" if self.prefix else ""

    def uri(self, name: str | None = None) -> str:
        """`s3://bucket/prefix` (`s3://bucket` for the root), or the URI of `name` inside it."""
        path = self.prefix if name is None else self.key(name)
        return f"s3://{self.bucket}/{path}" if path else f"s3://{self.bucket}"

    def __str__(self) -> str:
        return self.uri()


def client() -> Any:
    """An S3 client configured from the environment."""
    # Imported here: boto3 takes a noticeable part of a second to import, and most runs read local files.
    import boto3

    # botocore reads only AWS_DEFAULT_REGION; EKS (IRSA) and other SDKs also set or read AWS_REGION.
    region = None if os.environ.get("AWS_DEFAULT_REGION") else os.environ.get("AWS_REGION") or None
    return boto3.client("s3", region_name=region)


def list_keys(*, bucket: str, prefix: str, s3: Any) -> list[str]:
    """Every key under `prefix` (all pages)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def get_bytes(*, bucket: str, key: str, s3: Any) -> bytes:
    """The body of one object."""
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def upload_file(path: Path, uri: str, *, s3: Any) -> str:
    """Upload a local file to `uri`; returns the URI."""
    bucket, key = split_s3_uri(uri)
    s3.upload_file(str(path), bucket, key)
    return uri
