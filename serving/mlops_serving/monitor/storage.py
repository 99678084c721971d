"""Files on local disk or in S3 behind one small interface: list, stream lines, read, write.

A location is a local path or an `s3://bucket/key` URI. boto3 is imported only when an S3
location is used, and its clients follow the usual environment (credentials, `AWS_REGION`,
`AWS_ENDPOINT_URL`), so the same code runs against AWS, a VPC endpoint or moto.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LINE_CHUNK = 1 << 20


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); the key may be empty."""
    if not is_s3(uri):
        raise ValueError(f"{uri!r} is not an S3 URI; allowed s3://bucket/key")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket; allowed s3://bucket/key")
    return bucket, key


def client(service: str) -> Any:
    """A boto3 client, reused while the environment that configures it is unchanged."""
    env = os.environ
    return _client(service, env.get("AWS_ENDPOINT_URL"), env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
                   env.get("AWS_ACCESS_KEY_ID"))


@functools.lru_cache(maxsize=16)
def _client(service: str, endpoint_url: str | None, region: str | None, access_key: str | None) -> Any:
    # Clients are thread-safe and slow to build (~50 ms); the arguments only key the cache.
    import boto3

    return boto3.client(service)


@dataclass(frozen=True)
class Entry:
    """A file found under a root: its location and its path parts below the root."""

    location: str
    parts: tuple[str, ...]


def list_files(root: str, *, suffix: str, prefixes: list[tuple[str, ...]] | None = None) -> list[Entry]:
    """Files ending in `suffix` under `root`, sorted by location.

    `prefixes` (path parts below the root) restricts the listing to those subtrees, which in S3 is
    what keeps a listing of one window from paging through months of objects.
    """
    subtrees = prefixes if prefixes is not None else [()]
    found: dict[str, Entry] = {}
    for sub in subtrees:
        if is_s3(root):
            bucket, key = split_s3(root)
            base = key.rstrip("/")
            prefix = "/".join([base, *sub]) if base else "/".join(sub)
            if prefix:
                prefix += "/"
            paginator = client("s3").get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    name = obj["Key"]
                    if name.endswith(suffix):
                        rel = name[len(base) + 1:] if base else name
                        found[f"s3://{bucket}/{name}"] = Entry(f"s3://{bucket}/{name}", tuple(rel.split("/")))
        else:
            top = Path(root)
            start = top.joinpath(*sub)
            if not start.is_dir():
                continue
            for path in start.rglob(f"*{suffix}"):
                if path.is_file():
                    found[str(path)] = Entry(str(path), path.relative_to(top).parts)
    return [found[k] for k in sorted(found)]


def exists_dir(root: str) -> bool:
    """Whether a local directory exists; an S3 prefix always counts as existing."""
    return is_s3(root) or Path(root).is_dir()


def list_dirs(root: str, parts: tuple[str, ...]) -> list[str]:
    """Names of the immediate subdirectories (S3: common prefixes) of `root/parts`."""
    if is_s3(root):
        bucket, key = split_s3(root)
        prefix = "/".join([p for p in [key.rstrip("/"), *parts] if p]) + "/"
        paginator = client("s3").get_paginator("list_objects_v2")
        names = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", ()):
                names.append(common["Prefix"][len(prefix):].rstrip("/"))
        return sorted(names)
    directory = Path(root).joinpath(*parts)
    return sorted(p.name for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []


def iter_lines(location: str) -> Iterator[bytes]:
    """The lines of a file (without line ends), streamed: never the whole object in memory."""
    if is_s3(location):
        bucket, key = split_s3(location)
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from body.iter_lines(chunk_size=_LINE_CHUNK)
        finally:
            body.close()
        return
    with open(location, "rb") as handle:
        for line in handle:
            yield line.rstrip(b"\r\n")


def read_bytes(location: str) -> bytes:
    """The whole file (for small ones: baselines, schemas); FileNotFoundError when there is none."""
    if is_s3(location):
        bucket, key = split_s3(location)
        s3 = client("s3")
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise FileNotFoundError(f"{location} does not exist") from None
    path = Path(location)
    if not path.is_file():
        raise FileNotFoundError(f"{location} does not exist")
    return path.read_bytes()


def write_bytes(location: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
    if is_s3(location):
        bucket, key = split_s3(location)
        client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Whole files only: whatever uploads output_path never sees a half-written report.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def join(location: str, *names: str) -> str:
    """`location/names...` for either kind of location."""
    if is_s3(location):
        return "/".join([location.rstrip("/"), *names])
    return str(Path(location).joinpath(*names))
