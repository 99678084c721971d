"""Helpers for the training container's tests: runs of the CLI in-process or as subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
