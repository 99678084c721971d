"""Running the training container's entry point with SageMaker's directory and environment contract,
as a process on this machine: one function, used by `LocalStack.train` and by the local pipeline
executor's Training steps (mlops.local.pipeline_exec).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def script(name: str) -> str:
    """A console script of this environment (the containers' entry points)."""
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        raise FileNotFoundError(f"{candidate} not found: install the containers (make bootstrap)")
    return str(candidate)


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_training(run: Path, *, hyperparameters: dict[str, str], channels: dict[str, Path], archive: Path, label: str,
                 aws_env: dict[str, str], log: Path) -> None:
    """`mlops-train train` in `run` (model/, output/, checkpoints/, config/hyperparameters.json), the
    channels as SM_CHANNEL_<NAME>, writing the model archive to `archive` and its output to `log`.
    RuntimeError naming `label`, the exit status and the log's tail when it fails."""
    for sub in ("model", "output", "checkpoints", "config"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    (run / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    env = {
        **aws_env,
        **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
        "SM_MODEL_DIR": str(run / "model"),
        "SM_OUTPUT_DATA_DIR": str(run / "output"),
        "SM_CHECKPOINT_DIR": str(run / "checkpoints"),
        "SM_INPUT_CONFIG_DIR": str(run / "config"),
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
    }
    archive.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        result = subprocess.run(
            [script("mlops-train"), "train", "--hyperparameters", str(run / "config" / "hyperparameters.json"), "--archive", str(archive)],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=run,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{label} failed (exit {result.returncode}); see {log}:\n{tail(log)}")
