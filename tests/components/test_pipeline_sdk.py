"""The retraining pipeline definition is generated with the SageMaker SDK offline: no network call (no
STS, IAM role validation, telemetry, credential lookup or S3 upload), no region or credentials needed from
the machine, byte-identical output for the same inputs, and no process-wide setting left changed."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest

from specs.config.schema import ModelConfig, Network, TrainingConfig
from specs.pipelines import retraining as pd

REPO = Path(__file__).resolve().parents[2]
INPUTS: dict[str, Any] = {
    "pipeline_name": "t-dev-fraud-train", "region": "eu-west-1", "model": "fraud",
    "spec": {"feature_group": "transactions", "label": "is_fraud", "task": "binary_classification", "approval": "auto"},
    "training": {"instance_type": "ml.g5.xlarge", "instance_count": 2, "use_spot": True, "max_wait_hours": 48, "hyperparameters": {"epochs": 3, "hidden_units": [64, 32]}},
    "image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/training:0.1.0",
    "role_arn": "arn:aws:iam::111111111111:role/t-dev-sagemaker-execution",
    "features_uri": "s3://t-dev-features-111111111111/offline-store/x", "artifacts_bucket": "t-dev-artifacts-111111111111",
    "kms_key": "arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops", "model_package_group": "t-dev-fraud",
    "serving_image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0",
    "network": {"vpc_id": "vpc-0a1b2c3d4e5f60718", "subnet_ids": ["subnet-0a1b2c3d4e5f60719"], "security_group_ids": ["sg-0a1b2c3d4e5f6071b"]},
}

# Runs in a fresh interpreter, so the SDK's import-time work is covered too. Every way out of the
# process is recorded and refused: DNS, TCP connect, and urllib3's/botocore's connection helpers use both.
OFFLINE_SCRIPT = textwrap.dedent("""
    import json, socket, sys, threading
    attempts = []
    def refuse(kind):
        def call(*args, **kwargs):
            attempts.append([kind, repr(args[:2])])
            raise OSError(f"network refused in test: {kind} {args[:2]!r}")
        return call
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.create_connection = refuse("create_connection")
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")

    from specs.pipelines import retraining as pd
    from specs.config.schema import ModelConfig, Network, TrainingConfig
    raw = json.loads(sys.argv[1])
    definition = pd.pipeline_definition(**{**raw, "spec": ModelConfig.model_validate(raw["spec"]),
        "training": TrainingConfig.model_validate(raw["training"]), "network": Network.model_validate(raw["network"])})
    for thread in threading.enumerate():  # the SDK sends telemetry on background threads
        if thread is not threading.current_thread():
            thread.join(timeout=10)
    generation_attempts = list(attempts)

    # Canary: the guard does catch a real boto3 call.
    import boto3
    try:
        boto3.client("sts", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x").get_caller_identity()
    except Exception:
        pass
    print(json.dumps({"definition": definition, "attempts": generation_attempts, "canary": attempts[len(generation_attempts):]}))
""")


def _generate(*, cached: bool = False, **overrides: Any) -> str:
    if not cached:
        pd.clear_generated()  # run the SDK, not the process's memo of an earlier generation
    raw = {**INPUTS, **overrides}
    return pd.pipeline_definition(**{**raw, "spec": ModelConfig.model_validate(raw["spec"]),
                                     "training": TrainingConfig.model_validate(raw["training"]), "network": Network.model_validate(raw["network"])})


@pytest.fixture(scope="module")
def generated() -> str:
    return _generate()


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home")
    # No region, no credentials, no AWS config files: nothing the SDK could fall back on.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
               PYTHONPATH=str(REPO), PYTHONHASHSEED="12345")
    result = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, json.dumps(INPUTS)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_generation_makes_no_network_call_even_without_region_or_credentials(offline_run):
    assert offline_run["attempts"] == []
    assert offline_run["canary"], "the network guard did not see the canary call: the test proves nothing"
    assert pd.training_step_arguments(offline_run["definition"])["RoleArn"] == INPUTS["role_arn"]


def test_the_same_inputs_give_byte_identical_definitions_across_calls_and_processes(generated, offline_run):
    assert _generate() == generated
    assert offline_run["definition"] == generated  # another interpreter, another hash seed


def test_the_definition_is_the_sdks_pipeline_with_one_training_step_and_the_trigger_parameter(generated):
    document = json.loads(generated)
    assert document["Version"] == "2020-12-01"
    assert document["Parameters"] == [{"Name": "Trigger", "Type": "String", "DefaultValue": "manual"}]
    assert document["PipelineExperimentConfig"] == {"ExperimentName": {"Get": "Execution.PipelineName"}, "TrialName": {"Get": "Execution.PipelineExecutionId"}}
    assert [(s["Name"], s["Type"]) for s in document["Steps"]] == [("Train", "Training")]
    arguments = pd.training_step_arguments(generated)
    assert "TrainingJobName" not in arguments  # SageMaker Pipelines names each run's job
    assert arguments["HyperParameters"]["model_version"] == pd.EXECUTION_ID


def test_a_repeated_generation_is_served_from_memory_without_the_sdk(generated, monkeypatch):
    first = _generate()
    monkeypatch.setattr(pd, "_offline_sdk", lambda region: pytest.fail("the SDK ran again for the same inputs"))
    assert _generate(cached=True) is first
    monkeypatch.undo()
    assert _generate(cached=True, image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/training:0.3.0") != first


def test_inputs_change_the_definition(generated):
    other = pd.training_step_arguments(_generate(image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/training:0.2.0"))
    assert other["AlgorithmSpecification"]["TrainingImage"].endswith(":0.2.0")
    assert other != pd.training_step_arguments(generated)


def test_the_machines_sagemaker_config_files_do_not_leak_into_the_definition(generated, tmp_path, monkeypatch):
    # SDK defaults a laptop or CI runner could carry: network isolation would stop the container
    # registering its model, and tags or environment would make the definition machine-dependent.
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"SchemaVersion": "1.0", "SageMaker": {
        "TrainingJob": {"EnableNetworkIsolation": True, "Environment": {"FROM_LAPTOP": "1"}, "Tags": [{"Key": "k", "Value": "v"}]},
        "PythonSDK": {"Modules": {"ModelTrainer": {"Environment": {"FROM_LAPTOP": "1"}}}},
    }}))
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    monkeypatch.setenv("SAGEMAKER_ADMIN_CONFIG_OVERRIDE", str(config))
    assert _generate() == generated


def test_generation_leaves_no_process_wide_setting_changed(generated, monkeypatch):
    before = boto3.DEFAULT_SESSION
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "true")
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    _generate()
    assert boto3.DEFAULT_SESSION is before
    assert os.environ["SAGEMAKER_VALIDATE_ROLE"] == "true"
    assert (root.level, root.handlers) == (level, handlers)
    assert logging.getLogger("sagemaker").level == logging.NOTSET
