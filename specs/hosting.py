"""SageMaker hosting as plain data: Models and EndpointConfigs in CreateModel/CreateEndpointConfig's
shape, with content-hashed names. Pure, so it is tested without Pulumi and checked against botocore.

Why content hashes: Models and EndpointConfigs are immutable in SageMaker. Naming each after a hash
of its content means a new model version yields a new Model and a new EndpointConfig, and the
Endpoint rolls to it through its deployment guardrails, while an unchanged stack keeps its names
(no churn). Variant names are config keys and never change: guardrails and alarms rely on them.
Every input to a hash is known at plan time (ARNs are derived from names, the KMS key is referenced
by alias), so a preview shows the real names.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: computed without a Pulumi runtime; the layers above build on
specifications, never the reverse).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from specs.config.schema import ABTraffic, EndpointConfig, FeatureGroupConfig, Network, ShadowTraffic
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


def feature_lookup_environment(
    *, namer: Namer, region: str, endpoint: EndpointConfig, feature_group: FeatureGroupConfig
) -> dict[str, str]:
    """The serving container's feature-lookup settings (docs/contracts.md), for an endpoint with
    `feature_lookup`; `feature_group` is the group it names."""
    lookup = endpoint.feature_lookup
    if lookup is None:
        raise ValueError("the endpoint has no feature_lookup; allowed only for endpoints that set one")
    return {
        "MLOPS_FEATURE_GROUP": namer.feature_group(lookup.feature_group),
        "MLOPS_RECORD_ID_FIELD": lookup.record_identifier_field or feature_group.record_identifier,
        "MLOPS_FEATURE_LOOKUP_TIMEOUT_MS": str(lookup.timeout_ms),
        # boto3 in the container finds its region here (SageMaker does not promise one to hosted containers).
        "AWS_DEFAULT_REGION": region,
    }


def model_specs(
    *, namer: Namer, region: str, key: str, endpoint: EndpointConfig, image: str, network: Network | None,
    feature_group: FeatureGroupConfig | None = None,
) -> dict[str, ModelSpec]:
    """The Model of each variant, by variant name. `feature_group` is the group the endpoint's
    `feature_lookup` names, required when it has one."""
    if (endpoint.feature_lookup is None) != (feature_group is None):
        raise ValueError(
            f"feature_group is {'missing' if feature_group is None else 'given'} but the endpoint's feature_lookup is "
            f"{'set' if endpoint.feature_lookup else 'not set'}; allowed: the group feature_lookup names, only when it is set"
        )
    lookup_env = {} if feature_group is None else feature_lookup_environment(
        namer=namer, region=region, endpoint=endpoint, feature_group=feature_group)
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
                    **lookup_env,
                },
            },
            "ExecutionRoleArn": role_arn(namer, "sagemaker-hosting"),
            # The serving container needs no outbound network (captures go through SageMaker), unless it
            # reads the online feature store: network isolation would also withhold its AWS credentials.
            "EnableNetworkIsolation": not lookup_env,
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
