"""`mlops rollout` and `mlops experiment shadow` from the command line, against the environment's AWS
(moto): the next step decided from the real registry, usage errors, and exit codes."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from mlops.cli import app

GROUP = "pricing-dev-basket-price"
URL = "s3://pricing-dev-artifacts-111111111111/models/basket-price/{}/model.tar.gz"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def registry(aws, stacks, monkeypatch):
    for name in ("MLOPS_AWS_PROFILE_DEV", "MLOPS_AWS_ROLE_ARN_DEV"):
        monkeypatch.delenv(name, raising=False)
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    for version in range(1, 5):  # v3 is the pinned champion; v4 is newer
        sagemaker.create_model_package(
            ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved",
            InferenceSpecification={"Containers": [{"Image": "serving:0.1.0", "ModelDataUrl": URL.format(version)}],
                                    "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]})
    return sagemaker


def test_a_dry_run_decides_the_shadow_step_from_the_registry_and_changes_nothing(registry, stacks, tmp_path):
    before = (stacks / "Pulumi.pricing-dev.yaml").read_text()
    result = run("rollout", "-s", "pricing-dev", "--dry-run", "--json", str(tmp_path / "out.json"))
    assert result.exit_code == 0, result.output
    assert "pricing-dev/quotes: shadow (dry run): v4 in shadow beside the champion v3" in " ".join(result.output.split())
    assert "+          mode: shadow" in result.output
    assert (stacks / "Pulumi.pricing-dev.yaml").read_text() == before
    assert not (stacks / "audit").exists()
    assert '"step": "shadow"' in (tmp_path / "out.json").read_text()


def test_an_endpoint_without_guardrails_is_off_and_a_missing_group_is_a_configuration_error(aws, stacks, monkeypatch):
    for name in ("MLOPS_AWS_PROFILE_DEV", "MLOPS_AWS_ROLE_ARN_DEV"):
        monkeypatch.delenv(name, raising=False)
    off = run("rollout", "-s", "fraud-dev", "--dry-run")
    assert off.exit_code == 0 and "fraud-dev/scoring: off" in off.output
    missing = run("rollout", "-s", "pricing-dev", "--dry-run")
    assert missing.exit_code == 2 and "model package group 'pricing-dev-basket-price' not found" in " ".join(missing.output.split())


def test_usage_errors_exit_64():
    assert run("rollout").exit_code == 64
    assert run("rollout", "-s", "pricing-dev", "--environment", "dev").exit_code == 64
    assert run("rollout", "-s", "pricing-dev", "--dry-run", "--commit").exit_code == 64
    assert run("rollout", "--environment", "qa").exit_code == 64


def test_experiment_shadow_on_an_endpoint_without_a_shadow_exits_2_naming_the_mode(aws):
    result = run("experiment", "shadow", "-s", "fraud-dev", "--endpoint", "scoring")
    assert result.exit_code == 2 and "has no shadow variant (traffic mode single)" in " ".join(result.output.split())
    assert run("experiment", "shadow", "-s", "fraud-dev", "--endpoint", "scoring", "--since", "yesterday").exit_code == 64
