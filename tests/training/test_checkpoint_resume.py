"""Spot interruptions: a run SIGKILLed at any point and resumed ends with the uninterrupted run's weights."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from mlops_training.checkpoint import CheckpointStore

from .helpers import FAST, Export, assert_same_model, kill_mid_run_and_resume, new_run, resumed_from_step, run_in_process

# 3200 training rows / 64 = 50 steps per epoch; 10 epochs = 500 steps, long enough to be killed mid-run.
LONG = FAST | {"epochs": "10", "checkpoint_every_steps": "35", "keep_checkpoints": "3"}
TOTAL_STEPS = 500
KILL_AFTER_STEP = 105  # mid-epoch 3 (steps 100..149)


def _newest_step(directory: Path) -> int:
    steps = [int(m[1]) for p in directory.glob("checkpoint-*.pt") if (m := re.search(r"(\d{10})", p.name))]
    return max(steps, default=0)


def test_run_killed_mid_training_and_resumed_equals_the_uninterrupted_run_bit_for_bit(
    binary_export: Export, tmp_path: Path
) -> None:
    uninterrupted = new_run(tmp_path / "uninterrupted")
    interrupted = new_run(tmp_path / "interrupted")
    killed_at, log = kill_mid_run_and_resume(
        interrupted, uninterrupted, export=binary_export, hp=LONG,
        newest_step=lambda: _newest_step(interrupted.checkpoint_dir), kill_after=KILL_AFTER_STEP, total_steps=TOTAL_STEPS)
    assert resumed_from_step(log) == killed_at
    assert_same_model(uninterrupted, interrupted)


def test_a_checkpoint_from_a_different_run_is_refused(binary_export: Export, tmp_path: Path) -> None:
    first = new_run(tmp_path / "first")
    short = FAST | {"epochs": "1", "checkpoint_every_steps": "20"}
    assert run_in_process(first, export=binary_export, hp=short) == 0
    changed = dataclasses.replace(new_run(tmp_path / "changed"), checkpoint_dir=first.checkpoint_dir)
    refused = r"belongs to another run \(different data, schema, hyperparameters or world size\)"
    with pytest.raises(ValueError, match=refused):
        run_in_process(changed, export=binary_export, hp=short | {"learning_rate": "0.01"})
    assert not changed.model_dir.exists()


def test_a_finished_run_restarted_resumes_at_its_final_checkpoint_and_trains_no_further(
    binary_export: Export, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run = new_run(tmp_path)
    hp = FAST | {"epochs": "2", "checkpoint_every_steps": "30"}
    assert run_in_process(run, export=binary_export, hp=hp) == 0
    first = torch.load(run.model_dir / "state_dict.pt", weights_only=True)
    assert _newest_step(run.checkpoint_dir) == 100  # the final checkpoint, off the every-30 grid
    assert run_in_process(run, export=binary_export, hp=hp) == 0
    assert "global_step=100 (this process 0, resumed from 100)" in capfd.readouterr().err
    again = torch.load(run.model_dir / "state_dict.pt", weights_only=True)
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_checkpoint_store_keeps_the_newest_and_ignores_unfinished_temp_files(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    for step in (10, 20, 30):
        store.save({"global_step": step, "weights": torch.full((2,), float(step))}, global_step=step)
    (tmp_path / ".checkpoint-0000000040.pt.123.tmp").write_bytes(b"torn write")
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*.pt")) == [
        "checkpoint-0000000020.pt", "checkpoint-0000000030.pt"]
    path, payload = store.latest()
    assert path.name == "checkpoint-0000000030.pt" and payload["global_step"] == 30
    assert torch.equal(payload["weights"], torch.full((2,), 30.0))
    assert CheckpointStore(tmp_path / "none", keep=1).latest() is None
    with pytest.raises(ValueError, match=r"keep=0: allowed: an integer >= 1"):
        CheckpointStore(tmp_path, keep=0)
