"""`--dry-run` sends nothing: `mlops train`, `promote` and `rollback` run in a fresh interpreter with no
AWS credentials, empty AWS config files and every socket connection refused (and recorded). They
print what they would send, placeholders for what only the cloud knows, and list those."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from specs.config import stack_files

REPO = stack_files.ROOT
GUARDED = textwrap.dedent("""
    import json, os, socket, sys
    attempts = []
    def refuse(kind):
        def call(*args, **kwargs):
            attempts.append([kind, repr(args[:2])])
            raise OSError(f"network refused in test: {kind}")
        return call
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.create_connection = refuse("create_connection")
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    from mlops.cli import app
    try:
        app(sys.argv[1:], prog_name="mlops")
        code = 0
    except SystemExit as exc:
        code = exc.code
    with open(os.environ["NETWORK_ATTEMPTS"], "w") as fh:
        json.dump(attempts, fh)
    sys.exit(code)
""")
PLACEHOLDER_URI = ("<resolved at run time: DescribeFeatureGroup(FeatureGroupName=pricing-prod-baskets)"
                   ".OfflineStoreConfig.S3StorageConfig.ResolvedOutputS3Uri>")


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    copy = tmp_path / "stacks"
    shutil.copytree(REPO / "stacks", copy, ignore=shutil.ignore_patterns("audit", ".locks"))
    return copy


def offline(tmp_path: Path, stacks: Path, *args: str, **extra_env: str) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """Run `mlops ARGS` with no credentials and no network; returns the process and the attempted connections."""
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_AWS_", "KUBECONFIG"))}
    env.update(
        HOME=str(tmp_path), AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty),
        PYTHONPATH=os.pathsep.join(str(REPO / p) for p in ("", "training", "serving", "contracts")),
        NETWORK_ATTEMPTS=str(tmp_path / "attempts.json"), MLOPS_LOG_DIR=str(tmp_path / "logs"),
        **{stack_files.STACKS_ENV: str(stacks)}, **extra_env,
    )
    proc = subprocess.run([sys.executable, "-c", GUARDED, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return proc, json.loads((tmp_path / "attempts.json").read_text())


def test_the_guard_sees_a_real_command_reach_out(tmp_path, stacks):
    # Without --dry-run, with credentials, `train` calls AWS: the guard records it and the call fails.
    proc, attempts = offline(tmp_path, stacks, "train", "-s", "fraud-dev", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    assert attempts, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert "AWS call failed" in proc.stderr


def test_train_dry_run_on_eks_prints_the_job_with_the_offline_store_as_a_placeholder(tmp_path, stacks):
    proc, attempts = offline(tmp_path, stacks, "train", "-s", "pricing-prod", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert attempts == []
    lines = proc.stdout.splitlines()
    assert lines[0] == "# dry run: nothing was sent; would send POST /apis/batch/v1/namespaces/pricing-prod/jobs -> the Kubernetes API server of --kubeconfig/--context"
    assert lines[-2:] == ["# unresolved (1): values only the cloud knows, shown as placeholders", f"#   - MLOPS_TRAIN_URI: {PLACEHOLDER_URI}"]
    job = yaml.safe_load(proc.stdout)
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "MLOPS_TRAIN_URI", "value": PLACEHOLDER_URI} in container["env"]
    kubernetes_validate.validate(job, "1.33", strict=True)


def test_train_dry_run_on_sagemaker_prints_the_start_pipeline_execution_request(tmp_path, stacks):
    proc, attempts = offline(tmp_path, stacks, "train", "-s", "fraud-dev", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert attempts == []
    assert proc.stdout.splitlines()[0] == "# dry run: nothing was sent; would send sagemaker:StartPipelineExecution -> dev account 111111111111 (ambient credentials)"
    assert proc.stdout.splitlines()[-1] == "# unresolved: none"
    request = yaml.safe_load(proc.stdout)
    assert request["PipelineName"] == "fraud-dev-fraud-detector-train"
    assert request["PipelineParameters"] == [{"Name": "Trigger", "Value": "manual"}]
    assert request["PipelineExecutionDisplayName"].startswith("manual-")


def test_promote_dry_run_lists_the_requests_the_diff_and_what_only_aws_knows(tmp_path, stacks):
    before = {p.name: p.read_bytes() for p in stacks.glob("Pulumi.*.yaml")}
    role = "arn:aws:iam::222222222222:role/deployer"
    proc, attempts = offline(tmp_path, stacks, "promote", "--team", "fraud", "--model", "fraud-detector", "--from", "dev", "--to", "staging",
                             "--dry-run", MLOPS_AWS_ROLE_ARN_STAGING=role)
    assert proc.returncode == 0, proc.stderr
    assert attempts == []  # not even the role assumption
    out = proc.stdout
    assert out.startswith("dry run: promote fraud/fraud-detector dev -> staging (fraud-staging); nothing was sent and nothing was changed\n")
    assert f"sts:AssumeRole -> staging STS (ambient credentials)  (credentials for the calls below)\n     {json.dumps({'RoleArn': role, 'RoleSessionName': 'mlops-promote-staging'})}" in out
    assert "sagemaker:ListModelPackages -> dev account 111111111111 (ambient credentials)" in out
    assert f"sagemaker:CreateModelPackage -> staging account 222222222222 (role {role})" in out
    assert "+              model_version: <target version>\n" in out
    assert "+              model_data_url: s3://fraud-staging-artifacts-222222222222/models/fraud-detector/<target version>/model.tar.gz\n" in out
    assert ("  - regression: no metric worse than champion fraud-staging-fraud-detector version 1 by more than 0.01, on one shared "
            "evaluation: the candidate's own evaluation if it faced this champion, else `mlops-train dataset` of the target's last 30 days") in out
    assert "sagemaker:DescribeFeatureGroup -> staging account 222222222222" in out
    unresolved = out[out.index("unresolved (5): values only the cloud knows, shown as placeholders\n"):]
    assert ("  - <source version>: <resolved at run time: the newest Approved ModelPackageVersion in "
            "ListModelPackages(ModelPackageGroupName=fraud-dev-fraud-detector)>\n") in unresolved
    assert "  - <target version>: <resolved at run time: 1 + the newest ModelPackageVersion in ListModelPackages(ModelPackageGroupName=fraud-staging-fraud-detector)" in unresolved
    assert {p.name: p.read_bytes() for p in stacks.glob("Pulumi.*.yaml")} == before
    assert not (stacks / "audit").exists()


def test_promote_dry_run_with_a_version_resolves_the_package_arn(tmp_path, stacks):
    proc, attempts = offline(tmp_path, stacks, "promote", "--team", "fraud", "--model", "fraud-detector", "--from", "dev", "--to", "staging",
                             "--version", "4", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert attempts == []
    assert '{"ModelPackageName": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/fraud-dev-fraud-detector/4"}' in proc.stdout
    assert "<source version>" not in proc.stdout
    assert "unresolved (4):" in proc.stdout


def test_rollback_dry_run_reads_the_audit_log_and_shows_the_exact_diff(tmp_path, stacks):
    url = "s3://fraud-staging-artifacts-222222222222/models/fraud-detector/{}/model.tar.gz"
    (stacks / "audit").mkdir()
    (stacks / "audit" / "fraud.jsonl").write_text(json.dumps({
        "action": "promote", "team": "fraud", "model": "fraud-detector", "from": "dev", "to": "staging",
        "target_version": 1, "model_data_url": url.format(1), "target_package_arn": None, "variants": ["scoring/champion"],
        "previous": {"version": 2, "model_data_url": url.format(2), "package_arn": None},
    }) + "\n")
    before = (stacks / "Pulumi.fraud-staging.yaml").read_bytes()

    proc, attempts = offline(tmp_path, stacks, "rollback", "--team", "fraud", "--env", "staging", "--dry-run")

    assert proc.returncode == 0, proc.stderr
    assert attempts == []
    out = proc.stdout
    assert out.startswith("dry run: rollback fraud-staging fraud-detector: version 1 -> 2; nothing was sent and nothing was changed\n")
    assert '{"ModelPackageName": "arn:aws:sagemaker:eu-west-1:222222222222:model-package/fraud-staging-fraud-detector/2"}' in out
    assert f"-              model_version: 1\n-              model_data_url: {url.format(1)}\n+              model_version: 2\n+              model_data_url: {url.format(2)}\n" in out
    assert "unresolved (2): values only the cloud knows, shown as placeholders\n" in out
    assert (stacks / "Pulumi.fraud-staging.yaml").read_bytes() == before


def test_rollback_dry_run_without_a_previous_champion_is_a_configuration_error(tmp_path, stacks):
    proc, attempts = offline(tmp_path, stacks, "rollback", "--team", "fraud", "--env", "prod", "--dry-run")
    assert proc.returncode == 2
    assert attempts == []
    assert "records no promotion of fraud-detector into fraud-prod; nothing to roll back to" in proc.stderr
