"""Helpers for the training container's tests: runs of the CLI in-process or as subprocesses."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_training import main as train_main

# Small enough for CI on 2 shared cores, large enough to learn the signal.
N_ROWS = 4000
# One thread: results are bit-reproducible and the suite does not fight other jobs for 2 cores.
FAST = {"epochs": "5", "batch_size": "64", "learning_rate": "0.003", "num_threads": "1"}


@dataclass(frozen=True)
class Export:
    """A synthetic feature-store export on disk."""

    data: Path
    schema: Path


@dataclass(frozen=True, kw_only=True)
class Run:
    """Where one training run writes."""

    model_dir: Path
    output_dir: Path
    checkpoint_dir: Path | str
    """A local directory, or an `s3://bucket/prefix` string."""
    archive: Path

    def argv(self, export: Export, hyperparameters: dict[str, Any]) -> list[str]:
        return [
            "train", "--train", str(export.data), "--schema", str(export.schema),
            "--model-dir", str(self.model_dir), "--output-dir", str(self.output_dir),
            "--checkpoint-dir", str(self.checkpoint_dir), "--archive", str(self.archive),
            "--hyperparameters", json.dumps(hyperparameters),
        ]

    def metrics(self) -> dict[str, Any]:
        return json.loads((self.output_dir / "metrics.json").read_text())


def new_run(root: Path, *, checkpoint_dir: str | None = None) -> Run:
    """A run writing under `root`; its checkpoints go to `root/checkpoints` unless `checkpoint_dir` is given."""
    return Run(
        model_dir=root / "model", output_dir=root / "output" / "data",
        checkpoint_dir=checkpoint_dir or root / "checkpoints", archive=root / "model.tar.gz",
    )


TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def clean_environment(mp: Any) -> None:
    """Hide the caller's SageMaker/torchrun variables and code version from main() (a MonkeyPatch)."""
    for key in list(os.environ):
        if key.startswith("SM_") or key in TORCHRUN_VARIABLES or key == "MLOPS_CODE_VERSION":
            mp.delenv(key)


def run_in_process(run: Run, *, export: Export, hp: dict[str, Any]) -> int:
    """main() in this process; returns its exit code."""
    return train_main.main(run.argv(export, hp))


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k not in TORCHRUN_VARIABLES}
    env.update(extra)
    return env


def start_subprocess(run: Run, *, export: Export, hp: dict[str, Any]) -> subprocess.Popen[str]:
    """`python -m mlops_training.main ...` as a child process; stdout and stderr together, as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_training.main", *run.argv(export, hp)],
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def kill_mid_run_and_resume(interrupted: Run, uninterrupted: Run, *, export: Export, hp: dict[str, Any],
                            newest_step: Callable[[], int], kill_after: int, total_steps: int) -> tuple[int, str]:
    """A spot interruption: start `interrupted` as a child process, SIGKILL it once `newest_step()` (its
    newest checkpoint) reaches `kill_after`, restart it, and train `uninterrupted` in this process
    meanwhile. Returns the step it was killed at and the restarted run's log; asserts both runs ended."""
    victim = start_subprocess(interrupted, export=export, hp=hp)
    # A ceiling only a bug reaches: the child imports torch first, which is slow on a loaded machine.
    deadline = time.monotonic() + 180
    while newest_step() < kill_after:
        assert victim.poll() is None, victim.communicate()[0]
        assert time.monotonic() < deadline, f"no checkpoint of step {kill_after} appeared within 180 s"
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)  # what a reclaimed spot instance or node does
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    killed_at = newest_step()
    assert kill_after <= killed_at < total_steps, "the kill must land before training ended"
    assert not interrupted.model_dir.exists()

    restarted = start_subprocess(interrupted, export=export, hp=hp)
    # The reference trains in this process while the restarted one imports torch: same code, one thread each.
    assert run_in_process(uninterrupted, export=export, hp=hp) == 0
    log, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, log
    return killed_at, log


def resumed_from_step(log: str, checkpoint: str = r".*checkpoint-\d+\.pt") -> int | None:
    """The global step a run's log says it resumed from (`checkpoint`: a regex for the file it names)."""
    match = re.search(rf"resumed from {checkpoint}: epoch \d+, step \d+ of the epoch, global step (\d+)", log)
    return int(match[1]) if match else None


def assert_same_model(expected: Run, actual: Run) -> None:
    """Bit for bit the same weights, and the same metrics."""
    import torch

    want = torch.load(expected.model_dir / "state_dict.pt", weights_only=True)
    got = torch.load(actual.model_dir / "state_dict.pt", weights_only=True)
    assert want.keys() == got.keys()
    for name, tensor in want.items():
        assert torch.equal(tensor, got[name]), name
    assert actual.metrics() == expected.metrics()
