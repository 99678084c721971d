"""GPU paths (NCCL-ready device placement, mixed precision). Opt-in: MLOPS_TEST_GPU=1 on a CUDA machine."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mlops_training.artifact import load_artifact
from mlops_training.train import resolve_precision

from .helpers import FAST, Export, new_run, run_in_process

gpu = pytest.mark.skipif(
    os.environ.get("MLOPS_TEST_GPU") != "1" or not torch.cuda.is_available(),
    reason="GPU tests are opt-in: set MLOPS_TEST_GPU=1 on a machine with CUDA",
)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def test_cpu_falls_back_to_fp32_whatever_precision_is_asked_for() -> None:
    for requested in ("auto", "bf16", "fp16", "off"):
        assert resolve_precision(requested, device=torch.device("cpu")) == "off"


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_on_cuda_reaches_quality_and_exports_a_cpu_model(
    precision: str, binary_export: Export, tmp_path: Path
) -> None:
    assert resolve_precision("auto", device=torch.device("cuda")) in ("bf16", "fp16")
    run = new_run(tmp_path)
    assert run_in_process(run, export=binary_export, hp=FAST | {"mixed_precision": precision}) == 0
    assert run.metrics()["auc"] >= 0.85
    artifact = load_artifact(run.archive)
    with torch.no_grad():
        out = artifact.module(torch.zeros(3, len(artifact.schema.features)))
    assert out.device.type == "cpu" and out.dtype == torch.float32


@pytest.mark.gpu
@gpu
def test_fp16_checkpoints_carry_the_grad_scaler_state_for_resume(binary_export: Export, tmp_path: Path) -> None:
    run = new_run(tmp_path)
    hp = FAST | {"epochs": "2", "checkpoint_every_steps": "30", "mixed_precision": "fp16"}
    assert run_in_process(run, export=binary_export, hp=hp) == 0
    assert sorted(p.name for p in run.checkpoint_dir.glob("checkpoint-*.pt"))[-1] == "checkpoint-0000000100.pt"
    state = torch.load(run.checkpoint_dir / "checkpoint-0000000100.pt", weights_only=True)
    assert state["global_step"] == 100 and "scale" in state["scaler"]
    assert run_in_process(run, export=binary_export, hp=hp) == 0  # resumes at the final checkpoint and re-exports
