"""Files under the stacks directory: the per-stack lock, atomic writes, and how a path is shown.

Every write promotion makes goes through `atomic_write` (temp file in the same directory, fsync,
`os.replace`) under `stack_lock` (an exclusive `flock` per target stack), so concurrent promotions
serialize and never leave a torn file.

Must not import: boto3, botocore, pulumi or ruamel, nor the package's other modules
(tests/promotion/test_promote_layout.py checks it), nor `mlops_training`, `mlops_serving` or `torch` (the
CLI runs the containers as processes).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from specs.config import stack_files

@contextlib.contextmanager
def stack_lock(stack: str) -> Iterator[None]:
    """Exclusive lock on one stack's read-modify-write (a lock file beside the stack files).

    flock locks an open file description, so two processes, or two threads opening it separately,
    exclude each other; the kernel drops the lock if the holder dies.
    """
    directory = stack_files.stacks_dir() / ".locks"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{stack}.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` so readers see the old or the new content, never a mix."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def display_path(path: Path) -> str:
    """`stacks/...` as a reviewer sees it, wherever the stacks directory is."""
    try:
        return str(path.resolve().relative_to(stack_files.stacks_dir().resolve().parent))
    except ValueError:
        return str(path)

