"""SageMaker hosting as plain data: Models and EndpointConfigs in CreateModel/CreateEndpointConfig's
shape, with content-hashed names. Pure, so it is tested without Pulumi and checked against botocore.

Why content hashes: Models and EndpointConfigs are immutable in SageMaker. Naming each after a hash
of its content means a new model version yields a new Model and a new EndpointConfig, and the
Endpoint rolls to it through its deployment guardrails, while an unchanged stack keeps its names
(no churn). Variant names are config keys and never change: guardrails and alarms rely on them.
Every input to a hash is known at plan time (ARNs are derived from names, the KMS key is referenced
by alias), so a preview shows the real names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from specs.config.schema import ABTraffic, EndpointConfig, Network, ShadowTraffic
from specs.naming import Namer, content_hash

CAPTURE_CONTENT_TYPES = {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]}
"""Declaring the types makes SageMaker store captures as text, not base64."""


@dataclass(frozen=True)
class ModelSpec:
    """One SageMaker Model (a variant's container)."""

    variant: str
    request: dict[str, Any]
    """CreateModel's parameters, tags excluded."""

    @property
    def name(self) -> str:
        return self.request["ModelName"]


@dataclass(frozen=True)
class EndpointConfigSpec:
    request: dict[str, Any]
    """CreateEndpointConfig's parameters, tags excluded."""

    @property
    def name(self) -> str:
        return self.request["EndpointConfigName"]


def kms_alias_arn(namer: Namer, region: str) -> str:
    return f"arn:aws:kms:{region}:{namer.account_id}:{namer.kms_alias()}"


def role_arn(namer: Namer, purpose: str) -> str:
    return f"arn:aws:iam::{namer.account_id}:role/{namer.role(purpose)}"


def variant_weights(endpoint: EndpointConfig) -> dict[str, float]:
    """InitialVariantWeight per variant. For shadow mode SageMaker copies a share of requests equal
    to the shadow weight relative to the production weight, so production is 1 and shadow the share."""
    traffic = endpoint.traffic
    if isinstance(traffic, ABTraffic):
        return {name: float(v.weight) for name, v in traffic.variants.items()}
    if isinstance(traffic, ShadowTraffic):
        (prod,), (shadow,) = traffic.production, traffic.shadow
        return {prod: 1.0, shadow: traffic.shadow_sampling_percent / 100}
    return {name: 1.0 for name in traffic.variants}


def model_specs(
    *, namer: Namer, region: str, key: str, endpoint: EndpointConfig, image: str, network: Network | None
) -> dict[str, ModelSpec]:
    """The Model of each variant, by variant name."""
    specs = {}
    for variant_name, variant in endpoint.all_variants().items():
        request: dict[str, Any] = {
            "PrimaryContainer": {
                "Image": image,
                "ModelDataUrl": variant.model_data_url,
                "Environment": {
                    "MLOPS_MODEL_NAME": endpoint.model,
                    "MLOPS_MODEL_VERSION": str(variant.model_version),
                    "MLOPS_VARIANT": variant_name,
                    "MLOPS_ENDPOINT_NAME": namer.endpoint(key),
                },
            },
            "ExecutionRoleArn": role_arn(namer, "sagemaker-execution"),
            # The serving container needs no outbound network: captures go through SageMaker.
            "EnableNetworkIsolation": True,
        }
        if network is not None:
            request["VpcConfig"] = {"SecurityGroupIds": list(network.security_group_ids), "Subnets": list(network.subnet_ids)}
        name = namer.model(key, variant_name, content_hash(request))
        specs[variant_name] = ModelSpec(variant=variant_name, request={"ModelName": name, **request})
    return specs


def endpoint_config_spec(
    *, namer: Namer, region: str, key: str, endpoint: EndpointConfig, models: dict[str, ModelSpec]
) -> EndpointConfigSpec:
    weights = variant_weights(endpoint)

    def variant(name: str) -> dict[str, Any]:
        v = endpoint.all_variants()[name]
        return {
            "VariantName": name,
            "ModelName": models[name].name,
            "InstanceType": v.instance_type,
            "InitialInstanceCount": v.instance_count,
            "InitialVariantWeight": weights[name],
        }

    request: dict[str, Any] = {
        "ProductionVariants": [variant(n) for n in endpoint.production_variants()],
        "KmsKeyId": kms_alias_arn(namer, region),
    }
    if endpoint.shadow_variants():
        request["ShadowProductionVariants"] = [variant(n) for n in endpoint.shadow_variants()]
    if endpoint.data_capture.enabled:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": endpoint.data_capture.sampling_percent,
            "DestinationS3Uri": f"s3://{namer.bucket('capture')}/datacapture",
            "KmsKeyId": kms_alias_arn(namer, region),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": CAPTURE_CONTENT_TYPES,
        }
    name = namer.endpoint_config(key, content_hash(request))
    return EndpointConfigSpec(request={"EndpointConfigName": name, **request})


def deployment_config(endpoint: EndpointConfig, rollback_alarms: list[str]) -> dict[str, Any] | None:
    """UpdateEndpoint's DeploymentConfig for the endpoint's rollout strategy, or None for "none"."""
    rollout = endpoint.rollout
    if rollout.strategy == "none":
        return None
    routing: dict[str, Any] = {"Type": rollout.strategy.upper(), "WaitIntervalInSeconds": rollout.wait_minutes * 60}
    if rollout.strategy == "canary":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent}
    elif rollout.strategy == "linear":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": rollout.step_percent}
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": rollout.termination_wait_minutes * 60,
            "MaximumExecutionTimeoutInSeconds": rollout.max_execution_minutes * 60,
        }
    }
    if rollback_alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in rollback_alarms]}
    return config


_WORD = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(value: Any) -> Any:
    """API-shaped dict (PascalCase) -> pulumi-aws argument dict (snake_case), recursively.
    `Environment` maps are user data (variable names), copied unchanged."""
    if isinstance(value, dict):
        return {
            _WORD.sub(r"_\1", k).lower(): (dict(v) if k == "Environment" else snake(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value
