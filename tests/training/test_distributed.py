"""Distributed data parallel: a real 2-process torchrun run on CPU (gloo)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mlops_training.artifact import load_artifact
from mlops_training.train import epoch_permutation, shard_indices

from .helpers import FAST, Export, new_run, subprocess_env

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def test_two_process_torchrun_run_trains_and_rank_0_alone_writes_the_artifact(
    binary_export: Export, tmp_path: Path
) -> None:
    run = new_run(tmp_path)
    hp = FAST | {"checkpoint_every_steps": "20"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "mlops_training.main", *run.argv(binary_export, hp)],
        env=subprocess_env(), capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    logs = result.stderr
    assert "rank0 INFO mlops_training: process group up: backend=gloo rank=0 world_size=2" in logs
    assert "rank1 INFO mlops_training: process group up: backend=gloo rank=1 world_size=2" in logs
    # Each rank trains on half of the rows: 1600 / 64 = 25 steps per epoch, 5 epochs.
    assert "rank1 INFO mlops_training: trained: global_step=125 (this process 125" in logs
    assert "rank1 INFO mlops_training: validation" not in logs  # only rank 0 evaluates
    assert logs.count("wrote " + str(run.archive)) == 1
    artifact = load_artifact(run.archive)
    assert artifact.metadata["metrics"]["auc"] >= 0.85
    assert run.metrics() == artifact.metadata["metrics"]


def test_shards_cover_every_row_once_per_rank_set_and_are_equal_in_length() -> None:
    perm = epoch_permutation(11, seed=3, epoch=2)
    shards = [shard_indices(perm, rank=r, world_size=3) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # padded from 11 to 12
    together = torch.cat(shards).tolist()
    assert set(together) == set(range(11))
    assert together.count(int(perm[0])) == 2  # the one padding row repeats the epoch's first
    assert torch.equal(perm, epoch_permutation(11, seed=3, epoch=2))
    assert not torch.equal(perm, epoch_permutation(11, seed=3, epoch=3))
