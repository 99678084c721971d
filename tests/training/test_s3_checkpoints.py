"""Checkpoints in S3 (Kubernetes, where nothing syncs /opt/ml/checkpoints), against moto's HTTP server."""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import pytest
import torch

from mlops_training import s3
from mlops_training.checkpoint import S3CheckpointStore
from mlops_training.main import main
from mlops_training.s3 import S3Prefix

from .helpers import FAST, Export, assert_same_model, kill_mid_run_and_resume, new_run, resumed_from_step, subprocess_env

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

BUCKET = "artifacts"
PREFIX = "checkpoints/fraud"
CHECKPOINTS = f"s3://{BUCKET}/{PREFIX}"
# 3200 training rows / 64 = 50 steps per epoch; 6 epochs = 300 steps, long enough to be killed mid-run.
LONG = FAST | {"epochs": "6", "checkpoint_every_steps": "35", "keep_checkpoints": "3"}
TOTAL_STEPS = 300
KILL_AFTER_STEP = 105  # mid-epoch 3 (steps 100..149)


def _bucket_with_default_kms_encryption() -> str:
    """The platform's bucket shape: SSE-KMS with the stack's key as the default; returns the key's ARN."""
    key_arn = boto3.client("kms").create_key(Description="stack key")["KeyMetadata"]["Arn"]
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    client.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True,
    }]})
    return key_arn


def _keys(prefix: str = "") -> list[str]:
    return sorted(s3.list_keys(bucket=BUCKET, prefix=prefix, s3=boto3.client("s3")))


def _steps_in_s3(client: object) -> list[int]:
    keys = s3.list_keys(bucket=BUCKET, prefix=f"{PREFIX}/", s3=client)
    return sorted(int(m[1]) for k in keys if (m := re.fullmatch(rf"{PREFIX}/checkpoint-(\d{{10}})\.pt", k)))


@pytest.fixture
def private_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stores' temporary files go here, so a test can see that none is left behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_s3_store_keeps_the_newest_checkpoints_encrypted_with_the_bucket_key_and_ignores_foreign_keys(
    aws: str, private_tmpdir: Path
) -> None:
    key_arn = _bucket_with_default_kms_encryption()
    client = boto3.client("s3")
    foreign = [
        f"{PREFIX}/.checkpoint-0000000040.pt.123.tmp",  # a local store's temp name, synced by someone
        f"{PREFIX}/checkpoint-0000000050.pt.partial",
        f"{PREFIX}/notes.txt",
        f"{PREFIX}/old/checkpoint-0000000090.pt",  # nested: another folder's checkpoint
        f"{PREFIX}-old/checkpoint-0000000080.pt",  # sibling prefix sharing the first characters
        "checkpoints/checkpoint-0000000070.pt",  # the parent folder
    ]
    for key in foreign:
        client.put_object(Bucket=BUCKET, Key=key, Body=b"not a checkpoint")
    store = S3CheckpointStore(S3Prefix.parse(f"{CHECKPOINTS}/"), keep=2)
    assert store.latest() is None

    for step in (10, 20, 30):
        uri = store.save({"global_step": step, "weights": torch.full((3,), float(step))}, global_step=step)
        assert uri == f"{CHECKPOINTS}/checkpoint-{step:010d}.pt"
    assert _keys() == sorted([
        *foreign, f"{PREFIX}/checkpoint-0000000020.pt", f"{PREFIX}/checkpoint-0000000030.pt"])

    # Another rank on another node: its own store and client, nothing local.
    found = S3CheckpointStore(S3Prefix.parse(CHECKPOINTS), keep=2).latest()
    assert found is not None
    uri, payload = found
    assert uri == f"{CHECKPOINTS}/checkpoint-0000000030.pt"
    assert payload["format_version"] == 1 and payload["global_step"] == 30
    assert torch.equal(payload["weights"], torch.full((3,), 30.0))

    # No encryption parameters are sent: the bucket's default SSE-KMS key applies.
    head = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/checkpoint-0000000030.pt")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn
    assert list(private_tmpdir.iterdir()) == []


def test_a_checkpoint_whose_write_fails_is_never_uploaded(aws: str, private_tmpdir: Path) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    store = S3CheckpointStore(S3Prefix.parse(CHECKPOINTS), keep=1)
    store.save({"global_step": 10}, global_step=10)
    # torch.save has written part of the file when it meets the unpicklable value.
    with pytest.raises(Exception, match="Can't pickle"):
        store.save({"global_step": 20, "weights": torch.ones(1000), "bad": lambda: None}, global_step=20)
    assert _keys() == [f"{PREFIX}/checkpoint-0000000010.pt"]  # not replaced, not pruned
    found = store.latest()
    assert found is not None and found[1]["global_step"] == 10
    assert list(private_tmpdir.iterdir()) == []


def test_a_checkpoint_of_another_format_version_is_refused_naming_its_uri(aws: str, tmp_path: Path) -> None:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    torch.save({"format_version": 99}, tmp_path / "old.pt")
    client.upload_file(str(tmp_path / "old.pt"), BUCKET, f"{PREFIX}/checkpoint-0000000005.pt")
    with pytest.raises(ValueError, match=re.escape(
            f"{CHECKPOINTS}/checkpoint-0000000005.pt: checkpoint format_version 99; this trainer reads 1")):
        S3CheckpointStore(S3Prefix.parse(CHECKPOINTS), keep=1).latest()


def test_run_killed_mid_training_and_resumed_from_s3_equals_the_uninterrupted_run_bit_for_bit(
    aws: str, binary_export: Export, tmp_path: Path
) -> None:
    _bucket_with_default_kms_encryption()
    client = boto3.client("s3")
    uninterrupted = new_run(tmp_path / "uninterrupted")
    interrupted = new_run(tmp_path / "interrupted", checkpoint_dir=CHECKPOINTS)
    killed_at, log = kill_mid_run_and_resume(
        interrupted, uninterrupted, export=binary_export, hp=LONG,
        newest_step=lambda: max(_steps_in_s3(client), default=0), kill_after=KILL_AFTER_STEP, total_steps=TOTAL_STEPS)
    # The restarted process had nothing local: it resumed from S3 alone.
    assert resumed_from_step(log, rf"{re.escape(CHECKPOINTS)}/checkpoint-\d{{10}}\.pt") == killed_at
    assert_same_model(uninterrupted, interrupted)
    # keep_checkpoints=3, the last one being the final checkpoint; nothing else was written to the prefix.
    assert _keys(f"{PREFIX}/") == [f"{PREFIX}/checkpoint-{s:010d}.pt" for s in (245, 280, 300)]


def test_two_process_torchrun_run_resumes_every_rank_from_the_s3_checkpoint(
    aws: str, binary_export: Export, tmp_path: Path
) -> None:
    _bucket_with_default_kms_encryption()
    # Each rank trains on half of the rows: 1600 / 64 = 25 steps per epoch, 2 epochs = 50 steps.
    hp = FAST | {"epochs": "2", "checkpoint_every_steps": "20", "keep_checkpoints": "3"}

    def torchrun(root: Path) -> subprocess.CompletedProcess[str]:
        run = new_run(root, checkpoint_dir=CHECKPOINTS)
        return subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
             "-m", "mlops_training.main", *run.argv(binary_export, hp)],
            env=subprocess_env(), capture_output=True, text=True, timeout=180, check=False,
        )

    first = torchrun(tmp_path / "first")
    assert first.returncode == 0, first.stderr[-5000:]
    assert _keys(f"{PREFIX}/") == [f"{PREFIX}/checkpoint-{s:010d}.pt" for s in (20, 40, 50)]
    # As if the job had died after step 40: the newest checkpoint left is mid-epoch 2.
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=f"{PREFIX}/checkpoint-0000000050.pt")

    second = torchrun(tmp_path / "second")
    assert second.returncode == 0, second.stderr[-5000:]
    logs = second.stderr
    for rank in (0, 1):
        assert (f"rank{rank} INFO mlops_training.train: resumed from {CHECKPOINTS}/checkpoint-0000000040.pt: "
                "epoch 1, step 15 of the epoch, global step 40") in logs
        assert f"rank{rank} INFO mlops_training: trained: global_step=50 (this process 10, resumed from 40)" in logs
    expected = torch.load(tmp_path / "first/model/state_dict.pt", weights_only=True)
    actual = torch.load(tmp_path / "second/model/state_dict.pt", weights_only=True)
    assert all(torch.equal(expected[k], actual[k]) for k in expected)


@pytest.mark.parametrize(("value", "problem"), [
    ("gs://bucket/ckpt", "'gs://bucket/ckpt' is a URI but not an s3:// one"),
    ("S3://bucket/ckpt", "'S3://bucket/ckpt' is a URI but not an s3:// one"),
    ("s3:/bucket/ckpt", "'s3:/bucket/ckpt' is a URI but not an s3:// one"),
    ("s3://", "'s3://' is not an S3 URI"),
    ("s3://Team_Bucket/ckpt", "'s3://Team_Bucket/ckpt': 'Team_Bucket' is not a valid S3 bucket name"),
    ("s3://bucket//ckpt", "'s3://bucket//ckpt': the prefix has an empty path segment ('//')"),
])
def test_an_unusable_checkpoint_location_exits_2_naming_the_value_and_what_is_allowed(
    value: str, problem: str, binary_export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    run = new_run(tmp_path, checkpoint_dir=value)
    assert main(run.argv(binary_export, FAST)) == 2
    err = capfd.readouterr().err
    assert f"--checkpoint-dir: {problem}" in err
    assert "s3://bucket or s3://bucket/prefix" in err and "local directory" in err
    failure = (tmp_path / "output/failure").read_text()
    assert failure.startswith(f"Invalid configuration: --checkpoint-dir: {problem}")
    assert not run.model_dir.exists()


def test_the_s3_client_takes_its_region_from_aws_region_when_aws_default_region_is_unset(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")  # what EKS pod identity / IRSA pods get
    assert s3.client().meta.region_name == "ap-southeast-2"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the variable botocore reads wins when set
    assert s3.client().meta.region_name == "eu-west-1"
