"""Small S3 helpers over boto3.

boto3 (>= 1.28) honours `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` by itself, so the same code
reaches AWS, a local emulator or moto's server in tests.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<key>.*)$")


def is_s3_uri(value: str) -> bool:
    """True for `s3://...` locations."""
    return value.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> (`bucket`, `some/key`)."""
    match = _S3_URI.match(uri)
    if not match:
        raise ValueError(f"{uri!r} is not an S3 URI; expected s3://bucket/key")
    return match["bucket"], match["key"]


def client() -> Any:
    """An S3 client configured from the environment."""
    # Imported here: boto3 takes a noticeable part of a second to import, and most runs read local files.
    import boto3

    return boto3.client("s3")


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
