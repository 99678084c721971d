"""The training loop: whole dataset in tensors, seeded index shuffling, DDP sharding, resumable.

Why not a per-row `Dataset` + `DataLoader`: for tabular data the per-row Python calls and the
collation cost far more than the model's step. The data is held as one `[N, F]` tensor on the
device, each epoch shuffles indices with a `torch.Generator` seeded from (seed, epoch), and a
mini-batch is one `index_select`. Sharding across ranks follows `DistributedSampler`: pad the
permutation to a multiple of the world size, rank r takes every world-size-th index from r.

Determinism: the permutation of an epoch depends only on (seed, epoch), so a run resumed from a
checkpoint at (epoch, step) sees exactly the batches the uninterrupted run saw, and with model,
optimizer, scaler and RNG state restored it computes the same weights (bit-identical on CPU).
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mlops_training.checkpoint import Checkpoints
from mlops_training.env import Distributed
from mlops_training.model import Predictor, TabularNet
from mlops_training.schema import Task

log = logging.getLogger(__name__)

PRECOMPUTE_BYTES = 2 << 30


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """What the loop needs from the hyperparameters."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    seed: int
    checkpoint_every_steps: int
    precision: str
    """`off`, `bf16` or `fp16` (already resolved for the device by `resolve_precision`)."""


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """What happened in `fit` on this process."""

    global_step: int
    """Optimizer steps taken in the whole run, resumed ones included."""
    steps_this_process: int
    """Steps this process ran (after a resume, fewer than `global_step`)."""
    samples: int
    """Rows this process fed through the model."""
    seconds: float
    """Wall time of those steps (data shuffling included, setup excluded)."""
    resumed_from_step: int | None
    """The checkpoint's global step, or None for a fresh start."""
    last_epoch_loss: float | None
    """Mean training loss over the last epoch this process ran, or None if it ran none."""

    @property
    def samples_per_second(self) -> float:
        """Throughput of this process."""
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def resolve_precision(requested: str, *, device: torch.device) -> str:
    """Mixed precision for `device`: bf16/fp16 only on CUDA; CPU falls back to fp32 (`off`)."""
    if device.type != "cuda":
        if requested in ("bf16", "fp16"):
            log.warning("mixed_precision=%s needs CUDA; training in fp32 on %s", requested, device)
        return "off"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


def run_key(*, fingerprint: str, training: dict[str, Any], world_size: int) -> str:
    """Identifies the computation a checkpoint belongs to: same data, same hyperparameters, same sharding."""
    doc = json.dumps({"data": fingerprint, "hp": training, "world_size": world_size}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def epoch_permutation(n: int, *, seed: int, epoch: int) -> torch.Tensor:
    """The row order of one epoch; a function of (seed, epoch) only."""
    # SeedSequence mixes the pair so that nearby (seed, epoch) pairs give unrelated streams.
    mixed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])
    return torch.randperm(n, generator=torch.Generator().manual_seed(mixed))


def shard_indices(perm: torch.Tensor, *, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of an epoch, `DistributedSampler`-style (padded so every rank gets as many)."""
    if world_size == 1:
        return perm
    total = math.ceil(len(perm) / world_size) * world_size
    padded = torch.cat([perm, perm[: total - len(perm)]]) if total > len(perm) else perm
    return padded[rank::world_size]


def make_optimizer(params: Any, *, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW, fused: one kernel for all parameters instead of a dozen small ops each (CPU since torch 2.4)."""
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, fused=True)


def _loss_fn(task: Task) -> nn.Module:
    return nn.BCEWithLogitsLoss() if task == "binary_classification" else nn.MSELoss()


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if precision == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(
    *,
    model: TabularNet,
    features: torch.Tensor,
    target: torch.Tensor,
    task: Task,
    config: LoopConfig,
    device: torch.device,
    dist: Distributed,
    checkpoints: Checkpoints | None,
    key: str,
) -> FitResult:
    """Train `model` in place on (`features`, `target`), resuming from the newest checkpoint if any.

    `features` is the contract's float32 `[N, F]` tensor, `target` float32 `[N]` (0/1, or the raw
    regression target; it is standardised with the model's target statistics here). Only rank 0
    writes checkpoints; every rank reads the newest one itself (from a shared directory or S3) and all
    must resume from the same step or the run stops with an error.
    """
    model.to(device)
    features = features.to(device)
    target = target.to(device)
    optimizer = make_optimizer(model.parameters(), learning_rate=config.learning_rate,
                               weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")

    epoch, step_in_epoch, global_step, resumed_from = 0, 0, 0, None
    if checkpoints is not None and (found := checkpoints.latest()) is not None:
        path, state = found
        if state["run_key"] != key:
            raise ValueError(
                f"{path} belongs to another run (different data, schema, hyperparameters or world size); "
                f"point the checkpoint directory at an empty location or remove it"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        resumed_from = global_step
        log.info("resumed from %s: epoch %d, step %d of the epoch, global step %d",
                 path, epoch, step_in_epoch, global_step)
    if dist.is_distributed:
        _check_same_step(global_step, device=device)
    if task == "regression":
        target = (target - model.target_mean) / model.target_std

    # The preprocessing has no parameters and works row by row: encoding every row once gives the very
    # numbers per-batch encoding would, and each step then runs only the MLP. Skipped when the encoded
    # matrix (one-hot columns included) would take more memory than PRECOMPUTE_BYTES.
    net: nn.Module = model
    inputs = features
    if features.shape[0] * model.mlp_input_width * 4 <= PRECOMPUTE_BYTES:
        with torch.no_grad():
            inputs = model.encode_inputs(features)
        net = model.mlp
    if dist.is_distributed:
        # Buffers are fitted statistics, identical on every rank: no need to sync them each step.
        # torch 2.13 renamed broadcast_buffers to forward_sync_buffers; older versions know only the first.
        no_sync = (
            {"forward_sync_buffers": False}
            if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
            else {"broadcast_buffers": False}
        )
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)
    loss_fn = _loss_fn(task)
    n = features.shape[0]
    steps_per_epoch = math.ceil(math.ceil(n / dist.world_size) / config.batch_size)
    every = config.checkpoint_every_steps

    def save(*, at_epoch: int, at_step: int) -> None:
        if checkpoints is None or not dist.is_main:
            return
        if at_step == steps_per_epoch:  # normalise "end of epoch e" to "start of epoch e + 1"
            at_epoch, at_step = at_epoch + 1, 0
        checkpoints.save({
            "run_key": key, "epoch": at_epoch, "step_in_epoch": at_step, "global_step": global_step,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "rng": _rng_state(),
        }, global_step=global_step)

    net.train()
    steps_run, samples, last_loss = 0, 0, None
    last_saved = global_step
    started = time.perf_counter()
    for e in range(epoch, config.epochs):
        shard = shard_indices(
            epoch_permutation(n, seed=config.seed, epoch=e), rank=dist.rank, world_size=dist.world_size
        ).to(device)
        loss_sum = torch.zeros((), device=device)
        epoch_samples = 0
        first = step_in_epoch if e == epoch else 0
        epoch_started = time.perf_counter()
        for s in range(first, steps_per_epoch):
            index = shard[s * config.batch_size: (s + 1) * config.batch_size]
            xb = inputs.index_select(0, index)
            yb = target.index_select(0, index)
            with _autocast(config.precision, device):
                out = net(xb).reshape(-1)  # the bare MLP returns [B, 1], the full model [B]
            loss = loss_fn(out.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach()
            global_step += 1
            steps_run += 1
            epoch_samples += len(index)
            if every and global_step % every == 0:
                save(at_epoch=e, at_step=s + 1)
                last_saved = global_step
        ran = steps_per_epoch - first
        samples += epoch_samples
        if ran:
            last_loss = float(loss_sum) / ran
            elapsed = time.perf_counter() - epoch_started
            log.info("epoch=%d train_loss=%.6f steps=%d samples_per_s=%.0f",
                     e + 1, last_loss, ran, epoch_samples / max(elapsed, 1e-9))
    seconds = time.perf_counter() - started
    # A final checkpoint: a kill during evaluation or upload must not repeat the training.
    if every and last_saved != global_step:
        save(at_epoch=config.epochs, at_step=0)
    return FitResult(
        global_step=global_step, steps_this_process=steps_run, samples=samples, seconds=seconds,
        resumed_from_step=resumed_from, last_epoch_loss=last_loss,
    )


def _check_same_step(global_step: int, *, device: torch.device) -> None:
    value = torch.tensor([global_step, -global_step], dtype=torch.long, device=device)
    torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
    if int(value[0]) != -int(value[1]):
        raise RuntimeError(
            f"ranks resumed from different checkpoints (global steps {-int(value[1])} to {int(value[0])}); "
            "every host must see the same checkpoints: a directory shared by all hosts, or an s3:// prefix"
        )


@torch.no_grad()
def predict(predictor: Predictor, features: torch.Tensor, *, chunk: int = 65536) -> np.ndarray:
    """The contract's output for every row, computed in chunks, as float64 numpy."""
    predictor.eval()
    device = next(predictor.parameters()).device
    outs = [predictor(features[i: i + chunk].to(device)).float().cpu() for i in range(0, len(features), chunk)]
    return torch.cat(outs).double().numpy() if outs else np.zeros(0)
