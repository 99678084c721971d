"""The training loop: whole dataset in tensors, seeded index shuffling, DDP sharding, resumable.

Why not a per-row `Dataset` + `DataLoader`: for tabular data the per-row Python calls and the
collation cost far more than the model's step. The data is held as one `[N, F]` tensor on the
device, each epoch shuffles indices with a `torch.Generator` seeded from (seed, epoch), and a
mini-batch is one `index_select`. Sharding across ranks follows `DistributedSampler`: pad the
permutation to a multiple of the world size, rank r takes every world-size-th index from r.

Determinism: the permutation of an epoch depends only on (seed, epoch), so a run resumed from a
checkpoint at (epoch, step) sees exactly the batches the uninterrupted run saw, and with model,
optimizer, scaler and RNG state restored it computes the same weights (bit-identical on CPU).

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
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


@dataclass
class _Position:
    """Where the run stands: the epoch, the step within it, and the optimizer steps taken in all."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    resumed_from: int | None = None


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
    position = _resume(checkpoints, key=key, model=model, optimizer=optimizer, scaler=scaler)
    if dist.is_distributed:
        _check_same_step(position.global_step, device=device)
    if task == "regression":
        target = (target - model.target_mean) / model.target_std
    net, inputs = _network_and_inputs(model, features, dist=dist, device=device)
    loop = _Loop(
        model=model, net=net, inputs=inputs, target=target, loss_fn=_loss_fn(task), optimizer=optimizer,
        scaler=scaler, config=config, device=device, dist=dist, checkpoints=checkpoints, key=key,
        steps_per_epoch=math.ceil(math.ceil(features.shape[0] / dist.world_size) / config.batch_size),
        position=position,
    )
    return loop.run()


def _resume(
    checkpoints: Checkpoints | None, *, key: str, model: TabularNet, optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> _Position:
    """Restore model, optimizer, scaler and RNG from the newest checkpoint of this run, if there is one."""
    if checkpoints is None or (found := checkpoints.latest()) is None:
        return _Position()
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
    log.info("resumed from %s: epoch %d, step %d of the epoch, global step %d",
             path, state["epoch"], state["step_in_epoch"], state["global_step"])
    return _Position(epoch=state["epoch"], step_in_epoch=state["step_in_epoch"],
                     global_step=state["global_step"], resumed_from=state["global_step"])


def _network_and_inputs(
    model: TabularNet, features: torch.Tensor, *, dist: Distributed, device: torch.device,
) -> tuple[nn.Module, torch.Tensor]:
    """The module each step runs and the tensor its batches come from."""
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
    return net, inputs


@dataclass(kw_only=True)
class _Loop:
    """The epochs of one process: steps, periodic checkpoints on rank 0, the per-epoch log line."""

    model: TabularNet
    net: nn.Module
    inputs: torch.Tensor
    target: torch.Tensor
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    config: LoopConfig
    device: torch.device
    dist: Distributed
    checkpoints: Checkpoints | None
    key: str
    steps_per_epoch: int
    position: _Position

    def run(self) -> FitResult:
        config, start = self.config, self.position
        self.net.train()
        steps_run, samples, last_loss = 0, 0, None
        last_saved = start.global_step
        started = time.perf_counter()
        for e in range(start.epoch, config.epochs):
            first = start.step_in_epoch if e == start.epoch else 0
            ran, epoch_samples, loss, saved = self._epoch(e, first)
            last_saved = saved if saved is not None else last_saved
            steps_run += ran
            samples += epoch_samples
            if ran:
                last_loss = loss
        seconds = time.perf_counter() - started
        # A final checkpoint: a kill during evaluation or upload must not repeat the training.
        if config.checkpoint_every_steps and last_saved != self.position.global_step:
            self._save(at_epoch=config.epochs, at_step=0)
        return FitResult(
            global_step=self.position.global_step, steps_this_process=steps_run, samples=samples,
            seconds=seconds, resumed_from_step=start.resumed_from, last_epoch_loss=last_loss,
        )

    def _epoch(self, e: int, first: int) -> tuple[int, int, float | None, int | None]:
        """Steps `first`.. of epoch `e`: (steps run, samples, mean loss, global step last saved or None)."""
        config, every = self.config, self.config.checkpoint_every_steps
        shard = shard_indices(
            epoch_permutation(self.inputs.shape[0], seed=config.seed, epoch=e),
            rank=self.dist.rank, world_size=self.dist.world_size,
        ).to(self.device)
        loss_sum = torch.zeros((), device=self.device)
        epoch_samples, saved = 0, None
        epoch_started = time.perf_counter()
        for s in range(first, self.steps_per_epoch):
            index = shard[s * config.batch_size: (s + 1) * config.batch_size]
            loss_sum += self._step(index)
            epoch_samples += len(index)
            if every and self.position.global_step % every == 0:
                self._save(at_epoch=e, at_step=s + 1)
                saved = self.position.global_step
        ran = self.steps_per_epoch - first
        if not ran:
            return 0, epoch_samples, None, saved
        loss = float(loss_sum) / ran
        elapsed = time.perf_counter() - epoch_started
        log.info("epoch=%d train_loss=%.6f steps=%d samples_per_s=%.0f",
                 e + 1, loss, ran, epoch_samples / max(elapsed, 1e-9))
        return ran, epoch_samples, loss, saved

    def _step(self, index: torch.Tensor) -> torch.Tensor:
        """One optimizer step on the rows `index`; returns the batch's loss, detached."""
        xb = self.inputs.index_select(0, index)
        yb = self.target.index_select(0, index)
        with _autocast(self.config.precision, self.device):
            out = self.net(xb).reshape(-1)  # the bare MLP returns [B, 1], the full model [B]
        loss = self.loss_fn(out.float(), yb)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.position.global_step += 1
        return loss.detach()

    def _save(self, *, at_epoch: int, at_step: int) -> None:
        if self.checkpoints is None or not self.dist.is_main:
            return
        if at_step == self.steps_per_epoch:  # normalise "end of epoch e" to "start of epoch e + 1"
            at_epoch, at_step = at_epoch + 1, 0
        global_step = self.position.global_step
        self.checkpoints.save({
            "run_key": self.key, "epoch": at_epoch, "step_in_epoch": at_step, "global_step": global_step,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": _rng_state(),
        }, global_step=global_step)


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
