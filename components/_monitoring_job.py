"""The Model Monitor job definition both monitoring schedules run (the drift job and the live-quality job):
the serving image's `mlops-monitor` entry point, bring-your-own-container, on one endpoint's input.

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
                   role_arn: pulumi.Input[str], network: Network | None, baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `monitoring_job_definition` (pulumi-aws's MonitoringSchedule takes one input and one output
    object, the API's lists of one). Not network-isolated: the job publishes its own CloudWatch metrics
    and may read S3 (in a VPC, through the subnets' route or VPC endpoints); traffic between instances
    is encrypted; volumes and outputs use the stack's key."""
    network_config: dict[str, Any] = {"enable_network_isolation": False, "enable_inter_container_traffic_encryption": True}
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
