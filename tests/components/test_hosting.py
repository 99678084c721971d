"""specs.hosting: CreateModel/CreateEndpointConfig requests as pure data, content-hashed names."""
from __future__ import annotations

from typing import Any

import pytest

from specs import hosting
from specs.config import rules
from specs.config.schema import EndpointConfig, StackConfig
from components.foundation import image_uri
from specs.naming import Namer
from components.stack import namer_for
from specs.config.stack_files import load

NAMER = Namer(team="t", environment="dev", account_id="111111111111")
URL = "s3://t-dev-artifacts-111111111111/m/{}/model.tar.gz"


def endpoint(traffic: dict[str, Any], **extra: Any) -> EndpointConfig:
    return EndpointConfig.model_validate({"model": "m", "traffic": traffic, **extra})


def variant(version: int, **extra: Any) -> dict[str, Any]:
    return {"model_version": version, "model_data_url": URL.format(version), **extra}


SINGLE = {"mode": "single", "variants": {"main": variant(1)}}
AB = {"mode": "ab", "variants": {"a": variant(1, weight=3), "b": variant(2, weight=1)}}
SHADOW = {"mode": "shadow", "production": {"prod": variant(1)}, "shadow": {"shade": variant(2)}, "shadow_sampling_percent": 40}


def hosted(config: StackConfig, key: str = "scoring"):
    namer = namer_for(config)
    image = image_uri(account_id=config.aws.account_id, region=config.aws.region, repository=namer.ecr_repository("serving"), tag=config.images.serving_tag)
    endpoint = config.endpoints[key]
    models = hosting.model_specs(namer=namer, region=config.aws.region, key=key, endpoint=endpoint, image=image, network=config.network)
    return models, hosting.endpoint_config_spec(namer=namer, region=config.aws.region, key=key, endpoint=endpoint, models=models)


def with_challenger(config: StackConfig, *, version: int) -> StackConfig:
    doc = config.model_dump()
    challenger = doc["endpoints"]["scoring"]["traffic"]["variants"]["challenger"]
    challenger["model_version"] = version
    challenger["model_data_url"] = f"s3://fraud-prod-artifacts-333333333333/models/fraud-detector/{version}/model.tar.gz"
    changed = StackConfig.model_validate(doc)
    assert rules.check(changed) == []
    return changed


@pytest.fixture(scope="module")
def fraud_prod() -> StackConfig:
    return load("fraud-prod")


def test_single_variant_weight_is_one():
    assert hosting.variant_weights(endpoint(SINGLE)) == {"main": 1.0}


def test_ab_weights_are_the_configured_weights_as_floats():
    weights = hosting.variant_weights(endpoint(AB))
    assert weights == {"a": 3.0, "b": 1.0}
    assert all(type(w) is float for w in weights.values())


def test_shadow_weights_are_one_for_production_and_the_sampling_share_for_shadow():
    assert hosting.variant_weights(endpoint(SHADOW)) == {"prod": 1.0, "shade": 0.4}


def test_model_request_pins_image_artifact_version_variant_and_isolation():
    (spec,) = hosting.model_specs(namer=NAMER, region="eu-west-1", key="e", endpoint=endpoint(SINGLE), image="img:1", network=None).values()
    assert spec.variant == "main"
    assert spec.request == {
        "ModelName": spec.name,
        "PrimaryContainer": {
            "Image": "img:1",
            "ModelDataUrl": URL.format(1),
            "Environment": {"MLOPS_MODEL_NAME": "m", "MLOPS_MODEL_VERSION": "1", "MLOPS_VARIANT": "main", "MLOPS_ENDPOINT_NAME": "t-dev-e"},
        },
        "ExecutionRoleArn": "arn:aws:iam::111111111111:role/t-dev-sagemaker-hosting",
        "EnableNetworkIsolation": True,
    }
    assert spec.name.startswith("t-dev-e-main-") and len(spec.name) == len("t-dev-e-main-") + 8


def test_shadow_config_request_has_one_production_and_one_shadow_variant():
    models = hosting.model_specs(namer=NAMER, region="eu-west-1", key="e", endpoint=endpoint(SHADOW), image="img:1", network=None)
    request = hosting.endpoint_config_spec(namer=NAMER, region="eu-west-1", key="e", endpoint=endpoint(SHADOW), models=models).request
    assert request["ProductionVariants"] == [{
        "VariantName": "prod", "ModelName": models["prod"].name, "InstanceType": "ml.c6i.large", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0,
    }]
    assert request["ShadowProductionVariants"] == [{
        "VariantName": "shade", "ModelName": models["shade"].name, "InstanceType": "ml.c6i.large", "InitialInstanceCount": 1, "InitialVariantWeight": 0.4,
    }]


def test_config_request_encrypts_with_the_alias_and_captures_both_directions():
    cfg = endpoint(AB, data_capture={"sampling_percent": 30})
    models = hosting.model_specs(namer=NAMER, region="eu-west-1", key="e", endpoint=cfg, image="img:1", network=None)
    request = hosting.endpoint_config_spec(namer=NAMER, region="eu-west-1", key="e", endpoint=cfg, models=models).request
    assert request["KmsKeyId"] == "arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops"
    assert request["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 30,
        "DestinationS3Uri": "s3://t-dev-capture-111111111111/datacapture",
        "KmsKeyId": "arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]},
    }
    assert "ShadowProductionVariants" not in request


@pytest.mark.parametrize(("rollout", "routing"), [
    ({"strategy": "canary", "canary_percent": 5, "wait_minutes": 2},
     {"Type": "CANARY", "WaitIntervalInSeconds": 120, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 5}}),
    ({"strategy": "linear", "step_percent": 10, "wait_minutes": 3},
     {"Type": "LINEAR", "WaitIntervalInSeconds": 180, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10}}),
    ({"strategy": "all_at_once", "wait_minutes": 4}, {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 240}),
], ids=["canary", "linear", "all_at_once"])
def test_deployment_config_per_strategy(rollout, routing):
    config = hosting.deployment_config(endpoint(SINGLE, rollout={**rollout, "termination_wait_minutes": 2, "max_execution_minutes": 30}), ["a1", "a2"])
    assert config == {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 1800},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a1"}, {"AlarmName": "a2"}]},
    }


def test_deployment_config_is_none_without_a_rollout_strategy():
    assert hosting.deployment_config(endpoint(SINGLE, rollout={"strategy": "none"}), ["a1"]) is None


def test_snake_converts_api_keys_but_keeps_environment_variable_names():
    assert hosting.snake({
        "DestinationS3Uri": "s3://b", "CaptureOptions": [{"CaptureMode": "Input"}],
        "PrimaryContainer": {"ModelDataUrl": "u", "Environment": {"MLOPS_VARIANT": "a", "lowerCase": "b"}},
    }) == {
        "destination_s3_uri": "s3://b", "capture_options": [{"capture_mode": "Input"}],
        "primary_container": {"model_data_url": "u", "environment": {"MLOPS_VARIANT": "a", "lowerCase": "b"}},
    }


def test_fraud_prod_hosting_names_are_pinned(fraud_prod):
    # Names are public surface: a change to what is hashed, or how, replaces every endpoint in every stack.
    models, config = hosted(fraud_prod)
    assert {v: m.name for v, m in models.items()} == {
        "champion": "fraud-prod-scoring-champion-6bbfe829",
        "challenger": "fraud-prod-scoring-challenger-4dc9f5ad",
    }
    # The hosting role (was the shared execution role) is in the Models' requests: new names, new Models.
    assert config.name == "fraud-prod-scoring-6a938572"


def test_new_challenger_version_yields_new_config_name_with_same_variant_names(fraud_prod):
    models_before, config_before = hosted(fraud_prod)
    models_after, config_after = hosted(with_challenger(fraud_prod, version=3))
    assert config_after.name != config_before.name
    assert config_after.name.startswith("fraud-prod-scoring-")
    variant_names = lambda spec: [v["VariantName"] for v in spec.request["ProductionVariants"]]  # noqa: E731
    assert variant_names(config_after) == variant_names(config_before) == ["champion", "challenger"]
    assert models_after["champion"].name == models_before["champion"].name
    assert models_after["challenger"].name != models_before["challenger"].name
    assert models_after["challenger"].request["PrimaryContainer"]["Environment"]["MLOPS_MODEL_VERSION"] == "3"
    assert [v["ModelName"] for v in config_after.request["ProductionVariants"]] == [models_after["champion"].name, models_after["challenger"].name]


def test_revalidated_identical_config_yields_identical_names(fraud_prod):
    models_before, config_before = hosted(fraud_prod)
    models_again, config_again = hosted(StackConfig.model_validate(fraud_prod.model_dump()))
    assert config_again.name == config_before.name
    assert {v: m.name for v, m in models_again.items()} == {v: m.name for v, m in models_before.items()}


def test_changing_back_to_the_original_version_restores_the_original_names(fraud_prod):
    _, config_before = hosted(fraud_prod)
    _, config_round_trip = hosted(with_challenger(with_challenger(fraud_prod, version=3), version=2))
    assert config_round_trip.name == config_before.name


def test_weight_change_alone_changes_the_config_name_but_not_the_model_names(fraud_prod):
    doc = fraud_prod.model_dump()
    doc["endpoints"]["scoring"]["traffic"]["variants"]["challenger"]["weight"] = 20
    models_before, config_before = hosted(fraud_prod)
    models_after, config_after = hosted(StackConfig.model_validate(doc))
    assert config_after.name != config_before.name
    assert {v: m.name for v, m in models_after.items()} == {v: m.name for v, m in models_before.items()}
