"""The Model Monitor job definition both monitoring schedules run (the drift job and the live-quality job):
the serving image's `mlops-monitor` entry point, bring-your-own-container, on one endpoint's input.

Network isolation is the caller's explicit choice (`isolated`), because the two jobs differ:
- the drift job (DriftMonitor) is isolated: its captures arrive through the endpoint input channel
  (`dataset_source`) and its baseline through the definition's baseline (`baseline_statistics`)
  (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-contract-inputs.html), and it
  writes its metric records to a file that SageMaker publishes
  (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-cloudwatch.html);
- the live-quality job (QualityMonitor) is not: it reads the ground truth and a 24-hour capture
  window from S3 itself. A MonitoringJobDefinition's inputs are only EndpointInput or
  BatchTransformInput (botocore's SageMaker model, shape `MonitoringInput`); the ground-truth input
  (`GroundTruthS3Input`) exists only in a ModelQualityJobDefinition, which pulumi-aws does not offer
  (pulumi-aws-native's `sagemaker.ModelQualityJobDefinition` does). See quality_monitor.py.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

from typing import Any

import pulumi

from specs.config.schema import Network

INPUT_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH = "/opt/ml/processing/resultdata"
MAX_RUNTIME_S = 3600
VOLUME_GB = 20


def job_definition(*, image: str, entrypoint: list[str], endpoint_name: pulumi.Input[str], output_uri: pulumi.Input[str],
                   kms_key_arn: pulumi.Input[str], instance_type: str, environment: pulumi.Input[dict[str, str]],
                   role_arn: pulumi.Input[str], network: Network | None, isolated: bool,
                   baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `monitoring_job_definition` (pulumi-aws's MonitoringSchedule takes one input and one output
    object, the API's lists of one). `isolated`: no network calls from the container (it reads only
    its channels; SageMaker still copies the inputs in and the outputs out); else the job may call S3
    and CloudWatch with its role (in a VPC, through the subnets' route or VPC endpoints). Traffic
    between instances is encrypted; volumes and outputs use the stack's key."""
    network_config: dict[str, Any] = {"enable_network_isolation": isolated, "enable_inter_container_traffic_encryption": True}
    if network is not None:
        network_config["vpc_config"] = {"security_group_ids": list(network.security_group_ids), "subnets": list(network.subnet_ids)}
    definition: dict[str, Any] = {
        "monitoring_app_specification": {"image_uri": image, "container_entrypoints": entrypoint},
        "monitoring_inputs": {"endpoint_input": {"endpoint_name": endpoint_name, "local_path": INPUT_PATH}},
        "monitoring_output_config": {
            "monitoring_outputs": {"s3_output": {"s3_uri": output_uri, "local_path": OUTPUT_PATH, "s3_upload_mode": "EndOfJob"}},
            "kms_key_id": kms_key_arn,
        },
        "monitoring_resources": {"cluster_config": {
            "instance_count": 1, "instance_type": instance_type, "volume_size_in_gb": VOLUME_GB, "volume_kms_key_id": kms_key_arn,
        }},
        "environment": environment,
        "network_config": network_config,
        "role_arn": role_arn,
        "stopping_conditions": [{"max_runtime_in_seconds": MAX_RUNTIME_S}],
    }
    if baseline is not None:
        definition["baseline"] = baseline
    return definition
