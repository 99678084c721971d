"""Endpoint under Pulumi's mock runtime: Models, the content-named EndpointConfiguration, guardrails,
autoscaling."""
from __future__ import annotations

from typing import Any

import pulumi_aws as aws
import pytest

from specs import hosting
from specs.config.schema import EndpointConfig, Network
from components.endpoint import TOKEN, Endpoint, EndpointArgs

IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0"
URL = "s3://t-dev-artifacts-111111111111/models/fraud/{}/model.tar.gz"
ALIAS_ARN = "arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops"
ROLE_ARN = "arn:aws:iam::111111111111:role/t-dev-sagemaker-hosting"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
NETWORK = Network(vpc_id="vpc-0a1b2c3d", subnet_ids=["subnet-0a1b2c3d", "subnet-0a1b2c3e"], security_group_ids=["sg-0a1b2c3d"])
ROLLBACK = [f"t-dev-scoring-{v}-{m}" for v in ("champion", "challenger") for m in ("p99-latency", "5xx-errors")]


def ab(**overrides: Any) -> dict[str, Any]:
    doc = {
        "model": "fraud",
        "traffic": {"mode": "ab", "variants": {
            "champion": {"model_version": 1, "model_data_url": URL.format(1), "weight": 90, "instance_type": "ml.c6i.xlarge", "instance_count": 2},
            "challenger": {"model_version": 2, "model_data_url": URL.format(2), "weight": 10, "instance_type": "ml.c6i.xlarge", "instance_count": 2},
        }},
        "rollout": {"strategy": "canary", "canary_percent": 10, "wait_minutes": 15, "termination_wait_minutes": 10},
        "autoscaling": {"min_capacity": 2, "max_capacity": 8, "target_invocations_per_instance": 2000},
    }
    doc.update(overrides)
    return doc


SHADOW = {
    "model": "fraud",
    "traffic": {
        "mode": "shadow",
        "production": {"champion": {"model_version": 1, "model_data_url": URL.format(1)}},
        "shadow": {"candidate": {"model_version": 2, "model_data_url": URL.format(2)}},
        "shadow_sampling_percent": 25,
    },
    "autoscaling": {"min_capacity": 1, "max_capacity": 3},
}


def build(mock_pulumi, namer, config: dict[str, Any], *, rollback=ROLLBACK, network=NETWORK, with_dependency=False,
          key="scoring", image=IMAGE, refused=False):
    endpoint = EndpointConfig.model_validate(config)

    def make() -> Endpoint:
        depends = [aws.s3.Bucket("prerequisite")] if with_dependency else []
        return Endpoint("t-dev-scoring", EndpointArgs(
            namer=namer, region="eu-west-1", key=key, config=endpoint, image=image, network=network,
            rollback_alarms=list(rollback), depends_on=depends, tags=mock_pulumi.tags,
        ))

    return mock_pulumi.refused(make) if refused else mock_pulumi.run(make)


def specs(namer, config: dict[str, Any], network=NETWORK):
    endpoint = EndpointConfig.model_validate(config)
    models = hosting.model_specs(namer=namer, region="eu-west-1", key="scoring", endpoint=endpoint, image=IMAGE, network=network)
    return models, hosting.endpoint_config_spec(namer=namer, region="eu-west-1", key="scoring", endpoint=endpoint, models=models)


@pytest.fixture
def built(mock_pulumi, namer):
    return build(mock_pulumi, namer, ab())


def test_endpoint_children_are_models_config_endpoint_and_scaling_per_production_variant(built, mock_pulumi):
    children = built.children(mock_pulumi.top_urn(TOKEN, "t-dev-scoring"))
    assert sorted((r.type, r.name) for r in children) == sorted([
        (MODEL, "t-dev-scoring-champion"), (MODEL, "t-dev-scoring-challenger"),
        (CONFIG, "t-dev-scoring-config"), (ENDPOINT, "t-dev-scoring-endpoint"),
        (TARGET, "t-dev-scoring-champion-scaling"), (TARGET, "t-dev-scoring-challenger-scaling"),
        (POLICY, "t-dev-scoring-champion-invocations"), (POLICY, "t-dev-scoring-challenger-invocations"),
    ])
    for child in children:
        assert child.urn == mock_pulumi.urn(TOKEN, child.type, child.name)


def test_one_model_per_variant_with_its_artifact_version_and_network_isolation(built, namer, mock_pulumi):
    models, _ = specs(namer, ab())
    for variant, version in (("champion", 1), ("challenger", 2)):
        assert built.one(MODEL, f"t-dev-scoring-{variant}").inputs == {
            "name": models[variant].name,
            "primaryContainer": {
                "image": IMAGE,
                "modelDataUrl": URL.format(version),
                "environment": {
                    "MLOPS_MODEL_NAME": "fraud",
                    "MLOPS_MODEL_VERSION": str(version),
                    "MLOPS_VARIANT": variant,
                    "MLOPS_ENDPOINT_NAME": "t-dev-scoring",
                },
            },
            "executionRoleArn": ROLE_ARN,
            "enableNetworkIsolation": True,
            "vpcConfig": {"subnets": ["subnet-0a1b2c3d", "subnet-0a1b2c3e"], "securityGroupIds": ["sg-0a1b2c3d"]},
            "tags": mock_pulumi.tags,
        }
        assert models[variant].name.startswith(f"t-dev-scoring-{variant}-")


def test_models_have_no_vpc_config_on_the_managed_network(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(), network=None)
    assert [m.inputs.get("vpcConfig") for m in run.of_type(MODEL)] == [None, None]


def test_ab_weights_are_the_configured_weights_of_production_variants(built, namer):
    _, config_spec = specs(namer, ab())
    config = built.one(CONFIG, "t-dev-scoring-config").inputs
    assert config["name"] == config_spec.name
    assert config["productionVariants"] == [
        {"variantName": "champion", "modelName": built.one(MODEL, "t-dev-scoring-champion").inputs["name"],
         "instanceType": "ml.c6i.xlarge", "initialInstanceCount": 2, "initialVariantWeight": 90},
        {"variantName": "challenger", "modelName": built.one(MODEL, "t-dev-scoring-challenger").inputs["name"],
         "instanceType": "ml.c6i.xlarge", "initialInstanceCount": 2, "initialVariantWeight": 10},
    ]
    assert "shadowProductionVariants" not in config


def test_endpoint_configuration_encrypts_storage_and_captures_with_the_stack_key(built, mock_pulumi):
    config = built.one(CONFIG, "t-dev-scoring-config").inputs
    assert config["kmsKeyArn"] == ALIAS_ARN
    assert config["dataCaptureConfig"] == {
        "enableCapture": True,
        "initialSamplingPercentage": 100,
        "destinationS3Uri": "s3://t-dev-capture-111111111111/datacapture",
        "kmsKeyId": ALIAS_ARN,
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
        "captureContentTypeHeader": {"jsonContentTypes": ["application/json"], "csvContentTypes": ["text/csv"]},
    }
    assert config["tags"] == mock_pulumi.tags


def test_data_capture_disabled_sends_no_capture_config(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(data_capture={"enabled": False}))
    assert "dataCaptureConfig" not in run.one(CONFIG, "t-dev-scoring-config").inputs


def test_data_capture_sampling_percent_reaches_the_config(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(data_capture={"sampling_percent": 20}))
    assert run.one(CONFIG, "t-dev-scoring-config").inputs["dataCaptureConfig"]["initialSamplingPercentage"] == 20


def test_shadow_mode_puts_one_variant_in_shadow_production_variants(mock_pulumi, namer):
    run = build(mock_pulumi, namer, SHADOW)
    config = run.one(CONFIG, "t-dev-scoring-config").inputs
    candidate = run.one(MODEL, "t-dev-scoring-candidate").inputs["name"]
    champion = run.one(MODEL, "t-dev-scoring-champion").inputs["name"]
    assert config["productionVariants"] == [{
        "variantName": "champion", "modelName": champion, "instanceType": "ml.c6i.large",
        "initialInstanceCount": 1, "initialVariantWeight": 1.0,
    }]
    assert config["shadowProductionVariants"] == [{
        "variantName": "candidate", "modelName": candidate, "instanceType": "ml.c6i.large",
        "initialInstanceCount": 1, "initialVariantWeight": 0.25,
    }]


def test_shadow_variant_is_not_autoscaled(mock_pulumi, namer):
    run = build(mock_pulumi, namer, SHADOW, rollback=["a", "b"])
    assert [t.inputs["resourceId"] for t in run.of_type(TARGET)] == ["endpoint/t-dev-scoring/variant/champion"]


def test_endpoint_points_at_the_config_and_rolls_out_canary_with_rollback_alarms(built, mock_pulumi):
    endpoint = built.one(ENDPOINT, "t-dev-scoring-endpoint").inputs
    assert endpoint["name"] == "t-dev-scoring"
    assert endpoint["endpointConfigName"] == built.one(CONFIG, "t-dev-scoring-config").inputs["name"]
    assert endpoint["tags"] == mock_pulumi.tags
    assert endpoint["deploymentConfig"] == {
        "blueGreenUpdatePolicy": {
            "trafficRoutingConfiguration": {
                "type": "CANARY", "waitIntervalInSeconds": 900, "canarySize": {"type": "CAPACITY_PERCENT", "value": 10},
            },
            "terminationWaitInSeconds": 600,
            "maximumExecutionTimeoutInSeconds": 7200,
        },
        "autoRollbackConfiguration": {"alarms": [{"alarmName": a} for a in ROLLBACK]},
    }


@pytest.mark.parametrize(("rollout", "routing"), [
    ({"strategy": "linear", "step_percent": 20, "wait_minutes": 5},
     {"type": "LINEAR", "waitIntervalInSeconds": 300, "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 20}}),
    ({"strategy": "all_at_once", "wait_minutes": 0}, {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 0}),
    ({"strategy": "canary", "canary_percent": 50, "wait_minutes": 60},
     {"type": "CANARY", "waitIntervalInSeconds": 3600, "canarySize": {"type": "CAPACITY_PERCENT", "value": 50}}),
], ids=["linear", "all_at_once", "canary"])
def test_rollout_strategy_sets_traffic_routing_sizes_and_seconds(mock_pulumi, namer, rollout, routing):
    run = build(mock_pulumi, namer, ab(rollout={**rollout, "termination_wait_minutes": 1, "max_execution_minutes": 10}))
    policy = run.one(ENDPOINT, "t-dev-scoring-endpoint").inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert policy == {"trafficRoutingConfiguration": routing, "terminationWaitInSeconds": 60, "maximumExecutionTimeoutInSeconds": 600}


def test_no_rollout_strategy_sends_no_deployment_config(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(rollout={"strategy": "none"}), rollback=[])
    assert "deploymentConfig" not in run.one(ENDPOINT, "t-dev-scoring-endpoint").inputs


def test_guarded_rollout_without_alarms_has_no_auto_rollback(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(), rollback=[])
    assert set(run.one(ENDPOINT, "t-dev-scoring-endpoint").inputs["deploymentConfig"]) == {"blueGreenUpdatePolicy"}


def test_more_than_ten_rollback_alarms_is_an_input_error(mock_pulumi, namer):
    problems = build(mock_pulumi, namer, ab(), rollback=[f"alarm-{i}" for i in range(11)], refused=True)
    assert problems == [("rollback_alarms", "11 alarms; SageMaker's auto-rollback takes 1 to 10")]


def test_empty_key_empty_image_and_too_many_alarms_are_reported_together(mock_pulumi, namer):
    problems = build(mock_pulumi, namer, ab(), key="", image="", rollback=[f"alarm-{i}" for i in range(12)], refused=True)
    assert problems == [
        ("key", "must not be empty, got ''"),
        ("image", "must not be empty, got ''"),
        ("rollback_alarms", "12 alarms; SageMaker's auto-rollback takes 1 to 10"),
    ]


def test_ten_rollback_alarms_are_accepted(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(), rollback=[f"alarm-{i}" for i in range(10)])
    assert len(run.one(ENDPOINT, "t-dev-scoring-endpoint").inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]) == 10


def test_autoscaling_targets_each_production_variants_instance_count(built, mock_pulumi):
    for variant in ("champion", "challenger"):
        assert built.one(TARGET, f"t-dev-scoring-{variant}-scaling").inputs == {
            "serviceNamespace": "sagemaker",
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "resourceId": f"endpoint/t-dev-scoring/variant/{variant}",
            "minCapacity": 2,
            "maxCapacity": 8,
            "tags": mock_pulumi.tags,
        }


def test_autoscaling_policy_tracks_invocations_per_instance(built):
    assert built.one(POLICY, "t-dev-scoring-champion-invocations").inputs == {
        "name": "t-dev-scoring-champion-invocations-per-instance",
        "policyType": "TargetTrackingScaling",
        "serviceNamespace": "sagemaker",
        "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "resourceId": "endpoint/t-dev-scoring/variant/champion",
        "targetTrackingScalingPolicyConfiguration": {
            "targetValue": 2000,
            "predefinedMetricSpecification": {"predefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "scaleInCooldown": 300,
            "scaleOutCooldown": 60,
        },
    }


def test_no_autoscaling_registers_no_scaling_resources(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(autoscaling=None))
    assert run.of_type(TARGET) == [] and run.of_type(POLICY) == []


def test_config_waits_for_the_models_and_everything_waits_for_the_prerequisites(mock_pulumi, namer):
    run = build(mock_pulumi, namer, ab(), with_dependency=True)
    prerequisite = run.one("aws:s3/bucket:Bucket", "prerequisite").urn
    models = [m.urn for m in run.of_type(MODEL)]
    config = run.one(CONFIG, "t-dev-scoring-config")
    assert set(run.depends_on(config)) >= {prerequisite, *models}
    for resource in [*run.of_type(MODEL), run.one(ENDPOINT, "t-dev-scoring-endpoint")]:
        assert prerequisite in run.depends_on(resource)
    endpoint_urn = run.one(ENDPOINT, "t-dev-scoring-endpoint").urn
    for target in run.of_type(TARGET):
        assert endpoint_urn in run.depends_on(target)


def _challenger_v3(config: dict[str, Any]) -> dict[str, Any]:
    variants = dict(config["traffic"]["variants"])
    variants["challenger"] = {**variants["challenger"], "model_version": 3, "model_data_url": URL.format(3)}
    return {**config, "traffic": {**config["traffic"], "variants": variants}}


def test_new_challenger_version_yields_a_new_config_name_with_the_same_variant_names(mock_pulumi, namer):
    before = build(mock_pulumi, namer, ab())
    after = build(mock_pulumi, namer, _challenger_v3(ab()))
    config_before = before.one(CONFIG, "t-dev-scoring-config").inputs
    config_after = after.one(CONFIG, "t-dev-scoring-config").inputs
    assert config_after["name"] != config_before["name"]
    assert config_after["name"].startswith("t-dev-scoring-") and len(config_after["name"]) == len("t-dev-scoring-") + 8
    assert [v["variantName"] for v in config_after["productionVariants"]] == ["champion", "challenger"]
    assert [v["variantName"] for v in config_before["productionVariants"]] == ["champion", "challenger"]
    model = lambda run, v: run.one(MODEL, f"t-dev-scoring-{v}").inputs  # noqa: E731
    assert model(after, "champion")["name"] == model(before, "champion")["name"]
    assert model(after, "challenger")["name"] != model(before, "challenger")["name"]
    assert model(after, "challenger")["primaryContainer"]["environment"]["MLOPS_MODEL_VERSION"] == "3"
    assert after.one(ENDPOINT, "t-dev-scoring-endpoint").inputs["endpointConfigName"] == config_after["name"]
    # Pulumi resource names do not change: the same resources are replaced, not new ones added.
    assert sorted((r.type, r.name) for r in after.resources) == sorted((r.type, r.name) for r in before.resources)


def test_identical_config_yields_identical_names(mock_pulumi, namer):
    first = build(mock_pulumi, namer, ab())
    second = build(mock_pulumi, namer, ab())
    names = lambda run: sorted(r.inputs["name"] for r in [*run.of_type(MODEL), *run.of_type(CONFIG)])  # noqa: E731
    assert names(first) == names(second)
