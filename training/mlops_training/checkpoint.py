"""Checkpoints for spot interruptions: atomic writes, newest-first resume, bounded retention.

A checkpoint is written to a temporary file in the same directory, flushed to disk and renamed over
its final name, so a process killed at any instant leaves either the old set of checkpoints or the
new one, never a torn file under a checkpoint name.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT_VERSION = 1
_NAME = re.compile(r"^checkpoint-(\d{10})\.pt$")


class CheckpointStore:
    """The checkpoints of one run in one directory (`checkpoint-<global step>.pt`)."""

    def __init__(self, directory: Path, *, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep={keep}: allowed: an integer >= 1")
        self.directory = directory
        self.keep = keep

    def _steps(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(m[1]) for p in self.directory.iterdir() if (m := _NAME.match(p.name)))

    def path_for(self, global_step: int) -> Path:
        """Where the checkpoint of `global_step` lives."""
        return self.directory / f"checkpoint-{global_step:010d}.pt"

    def save(self, payload: dict[str, Any], *, global_step: int) -> Path:
        """Write `payload` atomically as the checkpoint of `global_step`, then prune old ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path_for(global_step)
        tmp = self.directory / f".{final.name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            torch.save({"format_version": CHECKPOINT_FORMAT_VERSION, **payload}, fh)
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
        # weights_only: a checkpoint directory synced from S3 is not trusted to run pickled code.
        payload = torch.load(path, map_location="cpu", weights_only=True)
        version = payload.get("format_version")
        if version != CHECKPOINT_FORMAT_VERSION:
            raise ValueError(
                f"{path}: checkpoint format_version {version!r}; this trainer reads {CHECKPOINT_FORMAT_VERSION}"
            )
        return path, payload
