"""Checkpoints for spot interruptions: atomic writes, newest-first resume, bounded retention.

Two stores with one interface (`Checkpoints`), picked by `open_store` from the checkpoint location:

- `CheckpointStore`, a local directory (SageMaker's `/opt/ml/checkpoints`, which SageMaker itself
  syncs with S3, or a laptop's). A checkpoint is written to a temporary file in the same directory,
  flushed to disk and renamed over its final name, so a process killed at any instant leaves either
  the old set of checkpoints or the new one, never a torn file under a checkpoint name.
- `S3CheckpointStore`, an `s3://bucket/prefix` written and read by the trainer itself (Kubernetes,
  where nothing syncs a directory and the ranks of a multi-node job share no file system). A
  checkpoint is written completely to a private temporary file first and only then uploaded; an
  object appears in S3 only when its upload (single or multipart) has completed, so a reader sees
  the whole checkpoint or none of it. Every rank lists the prefix and downloads the newest one.

Both name a checkpoint `checkpoint-<global step, 10 digits>.pt`, ignore anything else beside them and
prune only their own names, after the new checkpoint is in place.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Protocol

import torch

from mlops_training import s3
from mlops_training.s3 import S3Prefix

CHECKPOINT_FORMAT_VERSION = 1
_NAME = re.compile(r"^checkpoint-(\d{10})\.pt$")


class Checkpoints(Protocol):
    """What the training loop needs from a checkpoint store."""

    def save(self, payload: dict[str, Any], *, global_step: int) -> Path | str:
        """Write `payload` as the checkpoint of `global_step`, prune old ones; returns where it went."""
        ...

    def latest(self) -> tuple[Path | str, dict[str, Any]] | None:
        """The newest checkpoint's location and payload, or None when there is none."""
        ...


def checkpoint_name(global_step: int) -> str:
    """The file name (or last key segment) of the checkpoint of `global_step`."""
    return f"checkpoint-{global_step:010d}.pt"


def _serialize(payload: dict[str, Any], fh: IO[bytes]) -> None:
    torch.save({"format_version": CHECKPOINT_FORMAT_VERSION, **payload}, fh)


def _load(path: Path, *, source: Path | str) -> dict[str, Any]:
    # weights_only: a checkpoint synced from or stored in S3 is not trusted to run pickled code.
    payload = torch.load(path, map_location="cpu", weights_only=True)
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{source}: checkpoint format_version {version!r}; this trainer reads {CHECKPOINT_FORMAT_VERSION}"
        )
    return payload


def _check_keep(keep: int) -> None:
    if keep < 1:
        raise ValueError(f"keep={keep}: allowed: an integer >= 1")


class CheckpointStore:
    """The checkpoints of one run in one local directory (`checkpoint-<global step>.pt`)."""

    def __init__(self, directory: Path, *, keep: int) -> None:
        _check_keep(keep)
        self.directory = directory
        self.keep = keep

    def _steps(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(m[1]) for p in self.directory.iterdir() if (m := _NAME.match(p.name)))

    def path_for(self, global_step: int) -> Path:
        """Where the checkpoint of `global_step` lives."""
        return self.directory / checkpoint_name(global_step)

    def save(self, payload: dict[str, Any], *, global_step: int) -> Path:
        """Write `payload` atomically as the checkpoint of `global_step`, then prune old ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path_for(global_step)
        tmp = self.directory / f".{final.name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            _serialize(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        # Make the rename itself durable before older checkpoints are deleted.
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        for step in self._steps()[: -self.keep]:
            self.path_for(step).unlink(missing_ok=True)
        return final

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint and its payload, or None when there is none."""
        steps = self._steps()
        if not steps:
            return None
        path = self.path_for(steps[-1])
        return path, _load(path, source=path)


class S3CheckpointStore:
    """The checkpoints of one run under one S3 prefix (`<prefix>/checkpoint-<global step>.pt`).

    Objects are uploaded without encryption parameters, so they get the bucket's default encryption
    (SSE-KMS with the stack's key on the platform's buckets). Needs s3:ListBucket on the bucket and
    s3:GetObject, s3:PutObject and s3:DeleteObject on the prefix; a writable temporary directory
    (`TMPDIR`) holds one checkpoint at a time while it is uploaded or loaded.
    """

    def __init__(self, location: S3Prefix, *, keep: int, client: Any | None = None) -> None:
        _check_keep(keep)
        self.location = location
        self.keep = keep
        self._client = client

    @property
    def client(self) -> Any:
        """The boto3 S3 client (created from the environment on first use)."""
        if self._client is None:
            self._client = s3.client()
        return self._client

    def _steps(self) -> list[int]:
        listed = self.location.list_prefix()
        keys = s3.list_keys(bucket=self.location.bucket, prefix=listed, s3=self.client)
        # Only names directly in the folder: nested keys and other objects belong to someone else.
        return sorted(int(m[1]) for k in keys if (m := _NAME.match(k[len(listed):])))

    def uri_for(self, global_step: int) -> str:
        """The S3 URI of the checkpoint of `global_step`."""
        return self.location.uri(checkpoint_name(global_step))

    def save(self, payload: dict[str, Any], *, global_step: int) -> str:
        """Upload `payload` as the checkpoint of `global_step`, then delete all but the newest `keep`."""
        name = checkpoint_name(global_step)
        with tempfile.TemporaryDirectory(prefix="mlops-checkpoint-") as tmp:
            local = Path(tmp) / name
            with open(local, "wb") as fh:
                _serialize(payload, fh)
            # Reached only when torch.save returned and the file is closed: a failed write uploads nothing.
            self.client.upload_file(str(local), self.location.bucket, self.location.key(name))
        for step in self._steps()[: -self.keep]:
            self.client.delete_object(Bucket=self.location.bucket, Key=self.location.key(checkpoint_name(step)))
        return self.uri_for(global_step)

    def latest(self) -> tuple[str, dict[str, Any]] | None:
        """The newest checkpoint's URI and payload (downloaded to a temporary file), or None."""
        steps = self._steps()
        if not steps:
            return None
        name = checkpoint_name(steps[-1])
        uri = self.location.uri(name)
        with tempfile.TemporaryDirectory(prefix="mlops-checkpoint-") as tmp:
            local = Path(tmp) / name
            self.client.download_file(self.location.bucket, self.location.key(name), str(local))
            return uri, _load(local, source=uri)


def open_store(location: Path | S3Prefix, *, keep: int) -> CheckpointStore | S3CheckpointStore:
    """The store for a checkpoint location: a local directory or an S3 prefix."""
    if isinstance(location, S3Prefix):
        return S3CheckpointStore(location, keep=keep)
    return CheckpointStore(location, keep=keep)
