"""The retraining pipeline as plain data: a SageMaker Pipeline definition (schema version 2020-12-01)
with one Training step whose arguments are a CreateTrainingJob request.

Pure, so tests validate the step's arguments against botocore's CreateTrainingJob model. The job runs
the team's training image with SageMaker's container contract: the offline store export as the
`train` channel, the feature schema as the `config` channel, and hyperparameters that make the
container upload its artifact and register the new version in the team's Model Package Group.
"""
from __future__ import annotations

import json
from typing import Any

from components.config import ModelConfig, Network, TrainingConfig

DEFINITION_VERSION = "2020-12-01"
STEP_NAME = "Train"
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
"""Resolved by SageMaker Pipelines when a run starts: each run's artifact gets its own S3 key
(models/<model>/<execution id>/) instead of overwriting the previous run's."""


def schema_key(model: str) -> str:
    """Where the rendered feature_schema.json lives in the artifacts bucket."""
    return f"config/{model}/feature_schema.json"


def _hp(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def training_job_request(
    *,
    model: str,
    spec: ModelConfig,
    training: TrainingConfig,
    image: str,
    role_arn: str,
    features_uri: str,
    artifacts_bucket: str,
    kms_key: str,
    model_package_group: str,
    serving_image: str,
    network: Network | None,
    model_version: str | dict[str, str] = EXECUTION_ID,
) -> dict[str, Any]:
    """CreateTrainingJob's parameters (TrainingJobName excluded: the pipeline names each run).
    `model_version` keys the uploaded artifact; in a pipeline it is the execution id (the registry
    numbers the package itself)."""
    hyperparameters = {
        **{k: _hp(v) for k, v in training.hyperparameters.items()},
        "model_name": model,
        "model_version": model_version,
        "artifact_s3_uri": f"s3://{artifacts_bucket}/models",
        "model_package_group_name": model_package_group,
        "auto_approve": _hp(spec.approval == "auto"),
        "image_uri": serving_image,
    }
    request: dict[str, Any] = {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": features_uri, "S3DataDistributionType": "FullyReplicated"}},
                "ContentType": "application/x-parquet",
            },
            {
                "ChannelName": "config",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{artifacts_bucket}/{schema_key(model)}", "S3DataDistributionType": "FullyReplicated"}},
                "ContentType": "application/json",
            },
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{artifacts_bucket}/training-output/{model}", "KmsKeyId": kms_key},
        "ResourceConfig": {
            "InstanceType": training.instance_type,
            "InstanceCount": training.instance_count,
            "VolumeSizeInGB": training.volume_size_gb,
            "VolumeKmsKeyId": kms_key,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_hours * 3600},
        # Encrypt traffic between hosts when the job is distributed.
        "EnableInterContainerTrafficEncryption": training.instance_count > 1,
    }
    if training.use_spot:
        request["EnableManagedSpotTraining"] = True
        wait = training.max_wait_hours or training.max_runtime_hours * 2
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = wait * 3600
        request["CheckpointConfig"] = {"S3Uri": f"s3://{artifacts_bucket}/checkpoints/{model}", "LocalPath": "/opt/ml/checkpoints"}
    if network is not None:
        request["VpcConfig"] = {"SecurityGroupIds": list(network.security_group_ids), "Subnets": list(network.subnet_ids)}
    return request


def pipeline_definition(*, training_job: dict[str, Any], trigger_parameter: str = "Trigger") -> dict[str, Any]:
    """The pipeline definition document. `Trigger` records why a run started (schedule, an alarm)."""
    return {
        "Version": DEFINITION_VERSION,
        "Metadata": {},
        "Parameters": [{"Name": trigger_parameter, "Type": "String", "DefaultValue": "manual"}],
        "PipelineExperimentConfig": {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        },
        "Steps": [{"Name": STEP_NAME, "Type": "Training", "Arguments": training_job}],
    }


def resolve(value: Any, variables: dict[str, str]) -> Any:
    """Replace `{"Get": "Execution...."}` expressions as SageMaker Pipelines does when a run starts."""
    if isinstance(value, dict):
        if set(value) == {"Get"} and value["Get"] in variables:
            return variables[value["Get"]]
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    return value


def retrain_event_pattern(alarm_names: list[str]) -> dict[str, Any]:
    """EventBridge pattern: one of these alarms entered ALARM."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": sorted(alarm_names), "state": {"value": ["ALARM"]}},
    }
