"""Reading the offline-store export (Parquet files in a directory or under an S3 prefix) and splitting it.

Files are read in the order of their path relative to the source, so the row order (and with it
the seeded split and shuffling) does not depend on the file system or on S3's listing.

The data fingerprint is the SHA-256 over, for each file in that order, its relative path, a NUL
byte, its size as 8 big-endian bytes and its contents. The framing makes two different file sets
never hash alike by shifting bytes across a boundary, and a directory and an S3 prefix holding the
same files give the same fingerprint.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_training import s3

PARQUET_SUFFIX = ".parquet"


@dataclass(frozen=True, kw_only=True)
class DataPart:
    """One Parquet file of the export."""

    name: str
    """Path relative to the source (a file name or an S3 key below the prefix)."""
    table: pa.Table


@dataclass(frozen=True, kw_only=True)
class RawData:
    """The export as read, before validation."""

    source: str
    """The directory or S3 prefix it came from."""
    parts: tuple[DataPart, ...]
    """The files, in relative-path order."""
    fingerprint: str
    """`sha256:<hex>` over the files (see the module docstring)."""

    @property
    def n_rows(self) -> int:
        """Rows over all files."""
        return sum(p.table.num_rows for p in self.parts)


def fingerprint(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over (relative path, size, contents) of each file, in the order given."""
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode("utf-8"))
        digest.update(b"\0")
        digest.update(len(content).to_bytes(8, "big"))
        digest.update(content)
    return f"sha256:{digest.hexdigest()}"


def read_parquet_source(source: str) -> RawData:
    """Read every `*.parquet` file under a directory or an `s3://bucket/prefix`."""
    files = _read_s3(source) if s3.is_s3_uri(source) else _read_dir(Path(source))
    if not files:
        raise ValueError(f"no {PARQUET_SUFFIX} files under {source}; expected the feature store export there")
    parts = []
    for name, content in files:
        try:
            table = pq.read_table(pa.BufferReader(content))
        except pa.ArrowException as exc:
            raise ValueError(f"{source}: {name} is not a readable Parquet file ({exc})") from None
        parts.append(DataPart(name=name, table=table))
    return RawData(source=source, parts=tuple(parts), fingerprint=fingerprint(files))


def _read_dir(root: Path) -> list[tuple[str, bytes]]:
    if not root.is_dir():
        raise ValueError(f"training data directory {root} does not exist")
    paths = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIX)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in paths]


def _read_s3(uri: str) -> list[tuple[str, bytes]]:
    bucket, prefix = s3.split_s3_uri(uri)
    # A prefix names a folder: s3://b/data must not pick up s3://b/data-old/.
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = s3.client()
    keys = sorted(
        k for k in s3.list_keys(bucket=bucket, prefix=prefix, s3=client) if k.lower().endswith(PARQUET_SUFFIX)
    )
    return [(k[len(prefix):], s3.get_bytes(bucket=bucket, key=k, s3=client)) for k in keys]


def split_rows(
    n_rows: int, *, labels: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split; (train indices, validation indices), each ascending.

    With `labels` (binary classification) the split is stratified, so the held-out rows contain
    both classes and AUC is defined whenever each class has at least two rows.
    """
    rng = np.random.default_rng(seed)
    groups = [np.arange(n_rows)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    train, validation = [], []
    for group in groups:
        if len(group) < 2:
            raise ValueError(
                f"cannot hold out a validation split from {len(group)} row(s)"
                + ("" if labels is None else " of one class")
                + "; at least 2 are needed"
            )
        shuffled = rng.permutation(group)
        n_val = min(max(1, round(fraction * len(group))), len(group) - 1)
        validation.append(shuffled[:n_val])
        train.append(shuffled[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))
