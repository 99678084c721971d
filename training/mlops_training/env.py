"""Where things are and who we are: SageMaker's container contract, torchrun's variables, local flags.

Pure logic over an environment mapping, so it is tested without SageMaker or torch.distributed.
Precedence everywhere: explicit CLI flag > environment variable > SageMaker's `/opt/ml` default.

Checkpoints may also live in S3 (`s3://bucket/prefix`): on Kubernetes nothing syncs
`/opt/ml/checkpoints` with S3 and the nodes of a multi-node job share no file system, so the trainer
reads and writes the prefix itself.

SageMaker sets `SM_*` variables only when its training toolkit is in the image; a bring-your-own
container like ours sees the files instead (`/opt/ml/input/data/<channel>`,
`/opt/ml/input/config/resourceconfig.json`). Both are honoured.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops_training.s3 import S3Prefix

OPT_ML = Path("/opt/ml")
DEFAULT_MASTER_PORT = 29500


@dataclass(frozen=True, kw_only=True)
class Paths:
    """Every location a run reads or writes."""

    train: str
    """Training data: a directory of Parquet files or an `s3://bucket/prefix`."""
    schema_file: Path
    """`feature_schema.json` in the config channel (unused when the hyperparameter carries the schema)."""
    model_dir: Path
    """Where the model artifact's members are written (SageMaker packs this into model.tar.gz)."""
    output_data_dir: Path
    """Where metrics.json, baseline.json and validation_report.json are written."""
    failure_file: Path | None
    """SageMaker's failure-reason file; None on a local run, where no one reads it."""
    checkpoint_dir: Path | S3Prefix | None
    """Where checkpoints are written and resumed from: a local directory or an S3 prefix; None disables
    checkpointing."""
    hyperparameters_file: Path
    """SageMaker's hyperparameters.json (`SM_INPUT_CONFIG_DIR`), read when `--hyperparameters` is not given."""


def _config_dir(*, env: Mapping[str, str], opt_ml: Path) -> Path:
    # SM_INPUT_CONFIG_DIR is the training toolkit's name for /opt/ml/input/config.
    return Path(env.get("SM_INPUT_CONFIG_DIR") or opt_ml / "input/config")


_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def checkpoint_location(value: str, *, source: str) -> Path | S3Prefix:
    """A checkpoint location given by `source` (a flag or variable name): `s3://bucket[/prefix]` or a
    local directory. Any other URI (`gs://...`, `s3:/bucket`, `S3://...`) is refused rather than taken
    for a relative directory name."""
    if value.startswith("s3://"):
        try:
            return S3Prefix.parse(value)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc} (or a local directory)") from None
    if _URI_SCHEME.match(value):
        raise ValueError(
            f"{source}: {value!r} is a URI but not an s3:// one; allowed: a local directory, s3://bucket "
            "or s3://bucket/prefix"
        )
    return Path(value)


def resolve_failure_file(*, env: Mapping[str, str], opt_ml: Path = OPT_ML) -> Path | None:
    """SageMaker's failure-reason file, or None where no one reads it."""
    output_root = env.get("SM_OUTPUT_DIR")
    if output_root:
        return Path(output_root) / "failure"
    if (opt_ml / "output").is_dir():
        # Inside a SageMaker container /opt/ml/output exists; elsewhere there is no one to read it.
        return opt_ml / "output/failure"
    return None


def resolve_paths(
    *,
    env: Mapping[str, str],
    train: str | None = None,
    schema_file: str | None = None,
    model_dir: str | None = None,
    output_dir: str | None = None,
    checkpoint_dir: str | None = None,
    opt_ml: Path = OPT_ML,
) -> Paths:
    """Resolve `Paths` from CLI flags (None when not given), the environment and `/opt/ml` defaults.

    Raises ValueError for a checkpoint location that is neither a local directory nor a valid
    `s3://bucket[/prefix]`.
    """
    config_channel = env.get("SM_CHANNEL_CONFIG") or str(opt_ml / "input/data/config")
    checkpoints: Path | S3Prefix | None
    if checkpoint_dir is not None:
        checkpoints = checkpoint_location(checkpoint_dir, source="--checkpoint-dir")
    elif env.get("SM_CHECKPOINT_DIR"):
        checkpoints = checkpoint_location(env["SM_CHECKPOINT_DIR"], source="SM_CHECKPOINT_DIR")
    elif (opt_ml / "checkpoints").is_dir():
        # SageMaker creates it only when the job has a checkpoint config (and syncs it with S3).
        checkpoints = opt_ml / "checkpoints"
    else:
        checkpoints = None
    return Paths(
        train=train or env.get("SM_CHANNEL_TRAIN") or str(opt_ml / "input/data/train"),
        schema_file=Path(schema_file) if schema_file else Path(config_channel) / "feature_schema.json",
        model_dir=Path(model_dir or env.get("SM_MODEL_DIR") or opt_ml / "model"),
        output_data_dir=Path(output_dir or env.get("SM_OUTPUT_DATA_DIR") or opt_ml / "output/data"),
        failure_file=resolve_failure_file(env=env, opt_ml=opt_ml),
        checkpoint_dir=checkpoints,
        hyperparameters_file=_config_dir(env=env, opt_ml=opt_ml) / "hyperparameters.json",
    )


@dataclass(frozen=True, kw_only=True)
class Distributed:
    """This process's place in the job."""

    rank: int
    """Global rank, 0 .. world_size - 1."""
    world_size: int
    """Processes in the job."""
    local_rank: int
    """Rank on this host; picks the GPU."""
    local_world_size: int
    """Processes on this host; they share its CPUs."""
    master_addr: str
    """Rendezvous host (rank 0's)."""
    master_port: int
    """Rendezvous port."""
    source: str
    """Where it came from: `torchrun`, `sagemaker` or `single`."""

    @property
    def is_distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes artifacts, metrics and checkpoints and registers the model."""
        return self.rank == 0


def _int_var(env: Mapping[str, str], key: str) -> int:
    value = env[key]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {key}={value!r}: expected an integer") from None


def resolve_distributed(*, env: Mapping[str, str], opt_ml: Path = OPT_ML) -> Distributed:
    """Rank, world size and rendezvous address.

    torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
    win. Without them, SageMaker's host list (`SM_HOSTS`/`SM_CURRENT_HOST`, else
    `resourceconfig.json`) gives one process per host: rank = position of the current host in the
    sorted list, master = the first host.
    """
    if "WORLD_SIZE" in env:
        world = _int_var(env, "WORLD_SIZE")
        rank = _int_var(env, "RANK") if "RANK" in env else 0
        local_rank = _int_var(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
        local_world = _int_var(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else world
        if not 0 <= rank < world:
            raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}; allowed: 0..{world - 1}")
        return Distributed(
            rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world,
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=_int_var(env, "MASTER_PORT") if "MASTER_PORT" in env else DEFAULT_MASTER_PORT,
            source="torchrun",
        )
    hosts, current = _sagemaker_hosts(env=env, opt_ml=opt_ml)
    if hosts and len(hosts) > 1:
        if current not in hosts:
            raise ValueError(f"SM_CURRENT_HOST={current!r} is not in SM_HOSTS={hosts}")
        return Distributed(
            rank=hosts.index(current), world_size=len(hosts), local_rank=0, local_world_size=1,
            master_addr=hosts[0],
            master_port=_int_var(env, "MASTER_PORT") if "MASTER_PORT" in env else DEFAULT_MASTER_PORT,
            source="sagemaker",
        )
    return Distributed(
        rank=0, world_size=1, local_rank=0, local_world_size=1, master_addr="127.0.0.1",
        master_port=DEFAULT_MASTER_PORT, source="single",
    )


def _sagemaker_hosts(*, env: Mapping[str, str], opt_ml: Path) -> tuple[list[str], str]:
    if env.get("SM_HOSTS"):
        try:
            hosts = json.loads(env["SM_HOSTS"])
        except json.JSONDecodeError:
            raise ValueError(f"SM_HOSTS={env['SM_HOSTS']!r}: expected a JSON list of host names") from None
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ValueError(f"SM_HOSTS={env['SM_HOSTS']!r}: expected a JSON list of host names")
        current = env.get("SM_CURRENT_HOST", "")
        return sorted(hosts), current
    resource_config = _config_dir(env=env, opt_ml=opt_ml) / "resourceconfig.json"
    if resource_config.exists():
        doc = json.loads(resource_config.read_text(encoding="utf-8"))
        return sorted(doc.get("hosts", [])), doc.get("current_host", "")
    return [], ""


def torchrun_argv(
    *, dist: Distributed, nproc_per_node: int, module: str, args: list[str], python: str
) -> list[str]:
    """The command that relaunches this entry point under torchrun, one process per GPU.

    Used on a host with several GPUs when torchrun did not start us (SageMaker starts one container
    process per host): torchrun turns it into `nproc_per_node` ranks, the host's position being the
    node rank.
    """
    assert dist.source != "torchrun", "a process started by torchrun is never relaunched"
    return [
        python, "-m", "torch.distributed.run",
        f"--nnodes={dist.world_size}", f"--node_rank={dist.rank}", f"--nproc_per_node={nproc_per_node}",
        f"--master_addr={dist.master_addr}", f"--master_port={dist.master_port}",
        "-m", module, *args,
    ]


def default_num_threads(*, requested: int, local_world_size: int) -> int:
    """Intra-op threads for this process: the request, or the usable CPUs shared among local ranks."""
    if requested > 0:
        return requested
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, local_world_size))
