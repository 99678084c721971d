"""SageMaker's container contract, torchrun's variables and local flags, resolved in that precedence."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlops_training.env import resolve_distributed, resolve_paths, torchrun_argv
from mlops_training.s3 import S3Prefix


def test_paths_default_to_opt_ml_when_nothing_is_set(tmp_path: Path) -> None:
    opt_ml = tmp_path / "opt_ml"
    paths = resolve_paths(env={}, opt_ml=opt_ml)
    assert paths.train == str(opt_ml / "input/data/train")
    assert paths.schema_file == opt_ml / "input/data/config/feature_schema.json"
    assert paths.model_dir == opt_ml / "model"
    assert paths.output_data_dir == opt_ml / "output/data"
    assert paths.hyperparameters_file == opt_ml / "input/config/hyperparameters.json"
    # Not inside SageMaker: nobody reads a failure file, and no checkpoint config exists.
    assert paths.failure_file is None and paths.checkpoint_dir is None


def test_paths_inside_a_sagemaker_container_use_its_checkpoint_and_failure_locations(tmp_path: Path) -> None:
    opt_ml = tmp_path / "opt_ml"
    (opt_ml / "output").mkdir(parents=True)
    (opt_ml / "checkpoints").mkdir()
    paths = resolve_paths(env={}, opt_ml=opt_ml)
    assert paths.failure_file == opt_ml / "output/failure"
    assert paths.checkpoint_dir == opt_ml / "checkpoints"


def test_sm_variables_override_defaults_and_flags_override_sm_variables(tmp_path: Path) -> None:
    env = {
        "SM_CHANNEL_TRAIN": "/data/train", "SM_CHANNEL_CONFIG": "/data/config", "SM_MODEL_DIR": "/m",
        "SM_OUTPUT_DATA_DIR": "/o/data", "SM_OUTPUT_DIR": "/o", "SM_CHECKPOINT_DIR": "/c",
    }
    paths = resolve_paths(env=env, opt_ml=tmp_path)
    assert (paths.train, paths.schema_file, paths.model_dir) == (
        "/data/train", Path("/data/config/feature_schema.json"), Path("/m"))
    assert (paths.output_data_dir, paths.failure_file, paths.checkpoint_dir) == (
        Path("/o/data"), Path("/o/failure"), Path("/c"))
    flagged = resolve_paths(env=env, train="s3://b/p", model_dir="/x", checkpoint_dir="/y", opt_ml=tmp_path)
    assert (flagged.train, flagged.model_dir, flagged.checkpoint_dir) == ("s3://b/p", Path("/x"), Path("/y"))


def test_torchrun_variables_give_rank_world_and_rendezvous() -> None:
    dist = resolve_distributed(env={
        "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "29400",
    })
    assert (dist.rank, dist.world_size, dist.local_rank, dist.local_world_size) == (3, 4, 1, 2)
    assert (dist.master_addr, dist.master_port, dist.source) == ("10.0.0.5", 29400, "torchrun")
    assert dist.is_distributed and not dist.is_main


def test_sagemaker_hosts_give_one_rank_per_host_with_the_first_host_as_master() -> None:
    dist = resolve_distributed(env={"SM_HOSTS": '["algo-2", "algo-1", "algo-3"]', "SM_CURRENT_HOST": "algo-2"})
    assert (dist.rank, dist.world_size, dist.master_addr, dist.source) == (1, 3, "algo-1", "sagemaker")


def test_resourceconfig_json_is_read_when_sm_hosts_is_absent(tmp_path: Path) -> None:
    config = tmp_path / "input/config/resourceconfig.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}))
    dist = resolve_distributed(env={}, opt_ml=tmp_path)
    assert (dist.rank, dist.world_size, dist.master_addr) == (1, 2, "algo-1")


def test_a_single_host_or_plain_process_is_not_distributed(tmp_path: Path) -> None:
    assert not resolve_distributed(env={}, opt_ml=tmp_path).is_distributed
    dist = resolve_distributed(env={"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"}, opt_ml=tmp_path)
    assert (dist.world_size, dist.source) == (1, "single")


def test_current_host_missing_from_the_host_list_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"SM_CURRENT_HOST='algo-9' is not in SM_HOSTS"):
        resolve_distributed(env={"SM_HOSTS": '["algo-1", "algo-2"]', "SM_CURRENT_HOST": "algo-9"})


def test_a_multi_gpu_sagemaker_host_is_relaunched_under_torchrun_with_its_node_rank() -> None:
    dist = resolve_distributed(env={"SM_HOSTS": '["algo-1", "algo-2"]', "SM_CURRENT_HOST": "algo-2"})
    argv = torchrun_argv(dist=dist, nproc_per_node=8, module="mlops_training.main", args=["train"], python="py")
    assert argv == [
        "py", "-m", "torch.distributed.run", "--nnodes=2", "--node_rank=1", "--nproc_per_node=8",
        "--master_addr=algo-1", "--master_port=29500", "-m", "mlops_training.main", "train",
    ]


def test_an_s3_checkpoint_location_is_accepted_from_the_flag_or_sm_checkpoint_dir(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()  # a SageMaker-style default exists, but an explicit location wins
    flagged = resolve_paths(env={}, checkpoint_dir="s3://team-artifacts/checkpoints/fraud/", opt_ml=tmp_path)
    assert flagged.checkpoint_dir == S3Prefix(bucket="team-artifacts", prefix="checkpoints/fraud")
    assert str(flagged.checkpoint_dir) == "s3://team-artifacts/checkpoints/fraud"
    from_env = resolve_paths(env={"SM_CHECKPOINT_DIR": "s3://team-artifacts"}, opt_ml=tmp_path)
    assert from_env.checkpoint_dir == S3Prefix(bucket="team-artifacts", prefix="")
    assert str(from_env.checkpoint_dir) == "s3://team-artifacts"
    assert from_env.checkpoint_dir.uri("checkpoint-0000000001.pt") == "s3://team-artifacts/checkpoint-0000000001.pt"
    both = resolve_paths(env={"SM_CHECKPOINT_DIR": "s3://team-artifacts/x"}, checkpoint_dir="/local", opt_ml=tmp_path)
    assert both.checkpoint_dir == Path("/local")
    assert resolve_paths(env={}, opt_ml=tmp_path).checkpoint_dir == tmp_path / "checkpoints"


def test_an_invalid_checkpoint_uri_names_its_source_the_value_and_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(
        "SM_CHECKPOINT_DIR: 's3://ab/ckpt': 'ab' is not a valid S3 bucket name (3 to 63 lowercase letters, "
        "digits, dots and hyphens, starting and ending with a letter or digit); allowed: s3://bucket or "
        "s3://bucket/prefix (or a local directory)"
    )):
        resolve_paths(env={"SM_CHECKPOINT_DIR": "s3://ab/ckpt"}, opt_ml=tmp_path)
    with pytest.raises(ValueError, match=re.escape(
        "--checkpoint-dir: 'https://bucket.s3.amazonaws.com/ckpt' is a URI but not an s3:// one; allowed: "
        "a local directory, s3://bucket or s3://bucket/prefix"
    )):
        resolve_paths(env={}, checkpoint_dir="https://bucket.s3.amazonaws.com/ckpt", opt_ml=tmp_path)
    # A relative directory whose name merely contains a colon is still a directory.
    assert resolve_paths(env={}, checkpoint_dir="run:1/ckpt", opt_ml=tmp_path).checkpoint_dir == Path("run:1/ckpt")
