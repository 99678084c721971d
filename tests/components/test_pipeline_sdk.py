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
from specs.pipelines.sources import RetrainingSources

REPO = Path(__file__).resolve().parents[2]
INPUTS: dict[str, Any] = {
    "pipeline_name": "t-dev-fraud-train", "region": "eu-west-1", "model": "fraud",
    "spec": {"feature_group": "transactions", "label": "is_fraud", "task": "binary_classification", "approval": "auto"},
    "training": {"instance_type": "ml.g5.xlarge", "instance_count": 2, "use_spot": True, "max_wait_hours": 48, "hyperparameters": {"epochs": 3, "hidden_units": [64, 32]}},
    "image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/training:0.1.0",
    "role_arn": "arn:aws:iam::111111111111:role/t-dev-sagemaker-pipeline",
    "training_role_arn": "arn:aws:iam::111111111111:role/t-dev-sagemaker-training",
    "features_uri": "s3://t-dev-features-111111111111/offline-store/x", "artifacts_bucket": "t-dev-artifacts-111111111111",
    "kms_key": "arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops", "model_package_group": "t-dev-fraud",
    "serving_image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0",
    "network": {"vpc_id": "vpc-0a1b2c3d4e5f60718", "subnet_ids": ["subnet-0a1b2c3d4e5f60719"], "security_group_ids": ["sg-0a1b2c3d4e5f6071b"]},
    "sources": {
        "feature_group": "t-dev-transactions",
        "captures": ["s3://t-dev-capture-111111111111/datacapture/t-dev-scoring"],
        "ground_truth_uri": "s3://t-dev-features-111111111111/ground-truth/fraud/",
        "champions": [["scoring/champion", "s3://t-dev-artifacts-111111111111/models/fraud/3/model.tar.gz"]],
        "config_hash": "sha256:" + "0" * 64,
    },
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
    from specs.pipelines.sources import RetrainingSources
    raw = json.loads(sys.argv[1])
    definition = pd.pipeline_definition(**{**raw, "spec": ModelConfig.model_validate(raw["spec"]),
        "training": TrainingConfig.model_validate(raw["training"]), "network": Network.model_validate(raw["network"]),
        "sources": RetrainingSources.model_validate(raw["sources"])})
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
                                     "training": TrainingConfig.model_validate(raw["training"]), "network": Network.model_validate(raw["network"]),
                                     "sources": RetrainingSources.model_validate(raw["sources"])})


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
    # Per-step roles: the Train step's job runs as the training role, the processing steps as the pipeline's.
    assert pd.training_step_arguments(offline_run["definition"])["RoleArn"] == INPUTS["training_role_arn"]
    steps = {step["Name"]: step for step in json.loads(offline_run["definition"])["Steps"]}
    assert {steps[name]["Arguments"]["RoleArn"] for name in ("Dataset", "Evaluate")} == {INPUTS["role_arn"]}


def test_the_same_inputs_give_byte_identical_definitions_across_calls_and_processes(generated, offline_run):
    assert _generate() == generated
    assert offline_run["definition"] == generated  # another interpreter, another hash seed


def test_the_definition_is_the_sdks_pipeline_with_its_steps_in_order_and_both_parameters(generated):
    document = json.loads(generated)
    assert document["Version"] == "2020-12-01"
    assert document["Parameters"] == [{"Name": "Trigger", "Type": "String", "DefaultValue": "manual"},
                                      {"Name": "ShuffleLabels", "Type": "String", "DefaultValue": "false"}]
    assert document["PipelineExperimentConfig"] == {"ExperimentName": {"Get": "Execution.PipelineName"}, "TrialName": {"Get": "Execution.PipelineExecutionId"}}
    assert [(s["Name"], s["Type"]) for s in pd.all_steps(document)] == [
        ("Dataset", "Processing"), ("Train", "Training"), ("Evaluate", "Processing"), ("Condition", "Condition"),
        ("Register", "RegisterModel"), ("Fail", "Fail"),
    ]
    assert tuple(s["Name"] for s in pd.all_steps(document)) == pd.STEP_ORDER
    arguments = pd.training_step_arguments(generated)
    assert "TrainingJobName" not in arguments  # SageMaker Pipelines names each run's job
    assert arguments["HyperParameters"]["model_version"] == pd.EXECUTION_ID
    assert arguments["HyperParameters"]["shuffle_labels"] == {"Get": "Parameters.ShuffleLabels"}
    # The container registers nothing: the Register step does, after the evaluation.
    assert not set(pd.REGISTRATION_HYPERPARAMETERS) & set(arguments["HyperParameters"])


def test_the_train_step_reads_the_dataset_steps_output_and_the_evaluate_step_scores_its_artifact(generated):
    dataset_uri = {"Get": "Steps.Dataset.ProcessingOutputConfig.Outputs['dataset'].S3Output.S3Uri"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in pd.training_step_arguments(generated)["InputDataConfig"]}
    assert channels == {"train": dataset_uri, "config": "s3://t-dev-artifacts-111111111111/config/fraud/feature_schema.json"}
    dataset = pd.step_arguments(generated, "Dataset")
    assert dataset["AppSpecification"]["ContainerEntrypoint"] == ["mlops-train", "dataset"]
    args = dataset["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--window-days") + 1] == "30"
    assert args[args.index("--as-of") + 1] == {"Get": "Execution.StartDateTime"}
    assert args[args.index("--captures") + 1] == "/opt/ml/processing/input/captures"
    inputs = {i["InputName"]: (i["S3Input"]["S3Uri"], i["S3Input"]["LocalPath"]) for i in dataset["ProcessingInputs"]}
    assert inputs["captures-t-dev-scoring"] == ("s3://t-dev-capture-111111111111/datacapture/t-dev-scoring",
                                                "/opt/ml/processing/input/captures/t-dev-scoring")
    assert inputs["ground-truth"][0] == "s3://t-dev-features-111111111111/ground-truth/fraud/"
    assert inputs["offline-store"][0] == INPUTS["features_uri"]
    assert dataset["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == {"Std:Join": {
        "On": "/", "Values": ["s3://t-dev-artifacts-111111111111/datasets/fraud", {"Get": "Execution.PipelineExecutionId"}]}}
    evaluate = pd.step_arguments(generated, "Evaluate")["AppSpecification"]["ContainerArguments"]
    assert evaluate[evaluate.index("--candidate") + 1] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert evaluate[evaluate.index("--champion") + 1] == "scoring/champion=s3://t-dev-artifacts-111111111111/models/fraud/3/model.tar.gz"
    assert {"Get": "Execution.PipelineExecutionArn"} in evaluate[evaluate.index("--lineage") + 1]["Std:Join"]["Values"]


def test_the_condition_registers_on_a_passed_decision_and_fails_with_the_reason_otherwise(generated):
    document = json.loads(generated)
    (condition,) = [s for s in document["Steps"] if s["Name"] == "Condition"]
    evaluation = {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}
    assert condition["Arguments"]["Conditions"] == [
        {"Type": "Equals", "LeftValue": {"Std:JsonGet": {"PropertyFile": evaluation, "Path": "decision.passed"}}, "RightValue": True}]
    assert [s["Name"] for s in condition["Arguments"]["IfSteps"]] == ["Register"]
    assert [s["Name"] for s in condition["Arguments"]["ElseSteps"]] == ["Fail"]
    assert pd.step_arguments(document, "Fail")["ErrorMessage"] == {"Std:Join": {"On": " ", "Values": [
        "Evaluation refused the candidate:", {"Std:JsonGet": {"PropertyFile": evaluation, "Path": "decision.reason"}}]}}
    (evaluate,) = [s for s in document["Steps"] if s["Name"] == "Evaluate"]
    assert evaluate["PropertyFiles"] == [{"PropertyFileName": "Evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    register = pd.step_arguments(document, "Register")
    assert register["ModelApprovalStatus"] == "Approved"  # INPUTS' model approves automatically
    assert register["ModelPackageGroupName"] == "t-dev-fraud"
    assert register["CustomerMetadataProperties"]["mlops:config_hash"] == INPUTS["sources"]["config_hash"]
    manual = pd.step_arguments(_generate(spec={**INPUTS["spec"], "approval": "manual"}), "Register")
    assert manual["ModelApprovalStatus"] == "PendingManualApproval"


def _sample_context(document: dict[str, Any]) -> Any:
    """What a run knows after Train and Evaluate, with sample values (as the local executor records them)."""
    from specs.pipelines import expressions

    context = expressions.Context(
        execution={"PipelineExecutionId": "abc123", "PipelineName": "t-dev-fraud-train", "StartDateTime": "2026-12-03T20:00:00Z",
                   "PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/t-dev-fraud-train/execution/abc123"},
        parameters={p["Name"]: p["DefaultValue"] for p in document["Parameters"]},
    )
    context.steps["Dataset"] = expressions.resolve(pd.step_arguments(document, "Dataset"), context)
    context.steps["Train"] = {"TrainingJobName": "pipelines-abc123-Train", "ModelArtifacts": {"S3ModelArtifacts": "s3://a/m/model.tar.gz"},
                              "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:111111111111:training-job/pipelines-abc123-train"}
    context.steps["Evaluate"] = expressions.resolve(pd.step_arguments(document, "Evaluate"), context)
    context.property_files[("Evaluate", "Evaluation")] = {"decision": {"passed": False, "reason": "auc gate failed"}}
    return context


@pytest.mark.parametrize(("step", "operation", "extra"), [
    ("Dataset", "CreateProcessingJob", {"ProcessingJobName": "pipelines-abc123-Dataset"}),
    ("Train", "CreateTrainingJob", {"TrainingJobName": "pipelines-abc123-Train"}),
    ("Evaluate", "CreateProcessingJob", {"ProcessingJobName": "pipelines-abc123-Evaluate"}),
    ("Register", "CreateModelPackage", {}),
])
def test_each_steps_request_with_its_expressions_resolved_is_valid_for_botocore(generated, step, operation, extra):
    from botocore.session import get_session
    from botocore.validate import validate_parameters

    from specs.pipelines import expressions

    document = json.loads(generated)
    request = {**expressions.resolve(pd.step_arguments(document, step), _sample_context(document)), **extra}
    assert not expressions.step_references(request), "an expression is left unresolved"
    validate_parameters(request, get_session().get_service_model("sagemaker").operation_model(operation).input_shape)


def test_the_register_request_carries_the_evaluation_and_lineage_resolved(generated):
    from specs.pipelines import expressions

    document = json.loads(generated)
    request = expressions.resolve(pd.step_arguments(document, "Register"), _sample_context(document))
    evaluation = "s3://t-dev-artifacts-111111111111/evaluations/fraud/abc123"
    assert request["InferenceSpecification"]["Containers"] == [{"Image": INPUTS["serving_image"], "ModelDataUrl": "s3://a/m/model.tar.gz"}]
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"] == {"ContentType": "application/json", "S3Uri": f"{evaluation}/model_quality/candidate.json"}
    assert request["CustomerMetadataProperties"] == {
        "mlops:evaluation": f"{evaluation}/evaluation.json",
        "mlops:pipeline_execution": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/t-dev-fraud-train/execution/abc123",
        "mlops:training_job": "arn:aws:sagemaker:eu-west-1:111111111111:training-job/pipelines-abc123-train",
        "mlops:dataset_manifest": "s3://t-dev-artifacts-111111111111/datasets/fraud/abc123/manifest.json",
        "mlops:config_hash": INPUTS["sources"]["config_hash"],
        "mlops:image": INPUTS["image"],
    }
    message = expressions.resolve(pd.step_arguments(document, "Fail")["ErrorMessage"], _sample_context(document))
    assert message == "Evaluation refused the candidate: auc gate failed"


def test_a_model_no_endpoint_serves_reads_its_label_events_object(generated):
    sources = {"feature_group": "t-dev-transactions", "label_events_uri": "s3://t-dev-features-111111111111/labels/fraud/label_events.parquet",
               "config_hash": "sha256:" + "1" * 64}
    dataset = pd.step_arguments(_generate(sources=sources), "Dataset")
    args = dataset["AppSpecification"]["ContainerArguments"]
    assert "--captures" not in args and args[args.index("--label-events") + 1] == "/opt/ml/processing/input/labels/label_events.parquet"
    assert {i["InputName"]: i["S3Input"]["S3Uri"] for i in dataset["ProcessingInputs"]}["label-events"] == sources["label_events_uri"]


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
