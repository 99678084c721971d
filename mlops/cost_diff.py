"""`mlops cost diff`: what a change to a stack's files does to its cost estimate.

The base is the stack as a git revision has it (`--base-ref`, e.g. `origin/main` in a pull request)
or as another stacks directory has it (`--base-dir`); the change is the working tree. Both are planned
offline (mlops.plan) and estimated with the same price file (the working tree's `stacks/prices.json`),
so the difference is the change's, not the prices'.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from specs import cost
from specs.config import stack_files


class BaseError(ValueError):
    """A base that cannot be read (unknown revision, no such stack there)."""


@contextmanager
def stacks_at(directory: Path) -> Iterator[None]:
    """Plan from `directory` as the stacks directory while inside."""
    previous = os.environ.get(stack_files.STACKS_ENV)
    os.environ[stack_files.STACKS_ENV] = str(directory)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(stack_files.STACKS_ENV, None)
        else:
            os.environ[stack_files.STACKS_ENV] = previous


def base_from_git(ref: str, into: Path) -> Path:
    """The stacks directory as revision `ref` has it, written under `into`."""
    stacks = stack_files.stacks_dir()
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=stacks, capture_output=True, text=True)
    if top.returncode != 0:
        raise BaseError(f"{stacks} is not in a git checkout: use --base-dir")
    root = Path(top.stdout.strip())
    prefix = stacks.resolve().relative_to(root.resolve()).as_posix()
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref, "--", prefix], cwd=root, capture_output=True, text=True)
    if listed.returncode != 0:
        raise BaseError(f"git cannot read revision {ref!r}: {listed.stderr.strip()}")
    target = into / "stacks"
    for path in listed.stdout.split():
        shown = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=root, capture_output=True, check=True)
        out = target / Path(path).relative_to(prefix)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(shown.stdout)
    return target


def diff(stack: str, *, base_ref: str | None = None, base_dir: Path | None = None) -> dict[str, Any]:
    """The cost diff of `stack` between the base (a git revision or a stacks directory) and the working tree."""
    from mlops.plan import plan_stack

    prices = cost.load_prices(stack_files.stacks_dir() / "prices.json")
    new = plan_stack(stack)
    with tempfile.TemporaryDirectory(prefix="mlops-cost-") as tmp:
        base_stacks = base_dir if base_dir is not None else base_from_git(base_ref or "HEAD", Path(tmp))
        if stack_files.stack_file(stack, base_stacks).exists():
            with stacks_at(base_stacks):
                old = plan_stack(stack)
            before = cost.estimate(stack, old.config.aws.region, old.resources, prices)
        else:  # a new stack: its whole estimate is the change
            before = cost.estimate(stack, new.config.aws.region, [], prices)
    return cost.diff_estimates(before, cost.estimate(stack, new.config.aws.region, new.resources, prices))
