"""An endpoint with `feature_lookup`: the serving container's settings on each Model, the execution
role's read access to that one feature group, and the AWS requests both become (botocore's models)."""
from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from test_aws_requests import constraint_problems  # the same pattern/length/enum check as the shipped plans get

from components import stack
from specs import hosting
from specs.config import rules, stack_files
from specs.config.schema import EndpointConfig, FeatureGroupConfig, StackConfig
from components.endpoint import TOKEN, Endpoint, EndpointArgs
from specs import iam

IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0"
URL = "s3://t-dev-artifacts-111111111111/models/fraud/{}/model.tar.gz"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GROUP_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:feature-group/t-dev-transactions"
LOOKUP_ENV_KEYS = {"MLOPS_FEATURE_GROUP", "MLOPS_RECORD_ID_FIELD", "MLOPS_FEATURE_LOOKUP_TIMEOUT_MS", "AWS_DEFAULT_REGION"}

GROUP = FeatureGroupConfig.model_validate({
    "record_identifier": "transaction_id",
    "event_time": "event_time",
    "features": [
        {"name": "transaction_id", "type": "String"},
        {"name": "event_time", "type": "String"},
        {"name": "amount", "type": "Fractional"},
        {"name": "is_fraud", "type": "Integral"},
    ],
})
OFFLINE_ONLY = GROUP.model_copy(update={"online_store": GROUP.online_store.model_copy(update={"enabled": False})})


def endpoint_doc(lookup: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": "fraud",
        "traffic": {"mode": "ab", "variants": {
            "champion": {"model_version": 1, "model_data_url": URL.format(1), "weight": 90},
            "challenger": {"model_version": 2, "model_data_url": URL.format(2), "weight": 10},
        }},
    }
    if lookup is not None:
        doc["feature_lookup"] = lookup
    return doc


def build(mock_pulumi, namer, doc: dict[str, Any], *, group: FeatureGroupConfig | None = GROUP, refused: bool = False):
    config = EndpointConfig.model_validate(doc)

    def make() -> Endpoint:
        return Endpoint("t-dev-scoring", EndpointArgs(
            namer=namer, region="eu-west-1", key="scoring", config=config, image=IMAGE, network=None,
            rollback_alarms=["a"], feature_group=group, tags=mock_pulumi.tags,
        ))

    return mock_pulumi.refused(make) if refused else mock_pulumi.run(make)


def test_each_model_tells_the_container_the_group_the_request_field_and_the_timeout(mock_pulumi, namer):
    run = build(mock_pulumi, namer, endpoint_doc({"feature_group": "transactions"}))
    for variant, version in (("champion", 1), ("challenger", 2)):
        model = run.one(MODEL, f"t-dev-scoring-{variant}").inputs
        assert model["primaryContainer"]["environment"] == {
            "MLOPS_MODEL_NAME": "fraud",
            "MLOPS_MODEL_VERSION": str(version),
            "MLOPS_VARIANT": variant,
            "MLOPS_ENDPOINT_NAME": "t-dev-scoring",
            "MLOPS_FEATURE_GROUP": "t-dev-transactions",
            "MLOPS_RECORD_ID_FIELD": "transaction_id",  # the group's record identifier by default
            "MLOPS_FEATURE_LOOKUP_TIMEOUT_MS": "100",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
        # Network isolation would cut the container off the Feature Store runtime and its credentials.
        assert model["enableNetworkIsolation"] is False


def test_request_field_and_timeout_come_from_the_config(mock_pulumi, namer):
    run = build(mock_pulumi, namer, endpoint_doc({"feature_group": "transactions", "record_identifier_field": "txn", "timeout_ms": 250}))
    env = run.one(MODEL, "t-dev-scoring-champion").inputs["primaryContainer"]["environment"]
    assert (env["MLOPS_RECORD_ID_FIELD"], env["MLOPS_FEATURE_LOOKUP_TIMEOUT_MS"]) == ("txn", "250")


def test_execution_role_may_get_records_of_that_feature_group_only(mock_pulumi, namer):
    run = build(mock_pulumi, namer, endpoint_doc({"feature_group": "transactions"}))
    policy = run.one(ROLE_POLICY, "t-dev-scoring-feature-lookup")
    assert policy.urn == mock_pulumi.urn(TOKEN, ROLE_POLICY, "t-dev-scoring-feature-lookup")
    assert policy.inputs["role"] == "t-dev-sagemaker-hosting"
    assert policy.inputs["name"] == "t-dev-scoring-feature-lookup"
    assert json.loads(policy.inputs["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadOnlineFeatures",
            "Effect": "Allow",
            "Action": ["sagemaker:BatchGetRecord", "sagemaker:GetRecord"],
            "Resource": [GROUP_ARN],
        }],
    }


def test_models_config_and_endpoint_wait_for_the_lookup_policy(mock_pulumi, namer):
    run = build(mock_pulumi, namer, endpoint_doc({"feature_group": "transactions"}))
    policy = run.one(ROLE_POLICY, "t-dev-scoring-feature-lookup").urn
    for resource in [*run.of_type(MODEL), run.one(CONFIG, "t-dev-scoring-config"), run.one(ENDPOINT, "t-dev-scoring-endpoint")]:
        assert policy in run.depends_on(resource), resource.name


def test_endpoint_without_feature_lookup_gets_neither_the_settings_nor_the_policy(mock_pulumi, namer):
    run = build(mock_pulumi, namer, endpoint_doc(), group=None)
    assert run.of_type(ROLE_POLICY) == []
    assert run.component.feature_lookup_policy is None
    for model in run.of_type(MODEL):
        assert not LOOKUP_ENV_KEYS & set(model.inputs["primaryContainer"]["environment"])
        assert model.inputs["enableNetworkIsolation"] is True


def test_model_names_change_when_lookup_is_turned_on(namer):
    # Models are immutable: new settings must yield a new Model (and EndpointConfig) name.
    plain = EndpointConfig.model_validate(endpoint_doc())
    looked = EndpointConfig.model_validate(endpoint_doc({"feature_group": "transactions"}))
    before = hosting.model_specs(namer=namer, region="eu-west-1", key="scoring", endpoint=plain, image=IMAGE, network=None)
    after = hosting.model_specs(namer=namer, region="eu-west-1", key="scoring", endpoint=looked, image=IMAGE, network=None, feature_group=GROUP)
    assert {v: s.name for v, s in before.items()}.keys() == {v: s.name for v, s in after.items()}.keys()
    assert all(before[v].name != after[v].name for v in before)


@pytest.mark.parametrize(("lookup", "group", "expected"), [
    ({"feature_group": "transactions"}, None,
     [("feature_group", "required with config.feature_lookup (the group 'transactions''s config)")]),
    (None, GROUP, [("feature_group", "given, but config.feature_lookup is not set; allowed only with a feature_lookup")]),
    ({"feature_group": "transactions"}, OFFLINE_ONLY,
     [("feature_group", "'transactions' has no online store; the lookup reads the online store")]),
], ids=["lookup-without-group", "group-without-lookup", "group-without-online-store"])
def test_inconsistent_lookup_inputs_are_refused(mock_pulumi, namer, lookup, group, expected):
    assert build(mock_pulumi, namer, endpoint_doc(lookup), group=group, refused=True) == expected


def test_model_specs_refuse_a_lookup_endpoint_without_its_group(namer):
    looked = EndpointConfig.model_validate(endpoint_doc({"feature_group": "transactions"}))
    with pytest.raises(ValueError, match="feature_group is missing but the endpoint's feature_lookup is set"):
        hosting.model_specs(namer=namer, region="eu-west-1", key="scoring", endpoint=looked, image=IMAGE, network=None)


# ---- the AWS requests these become ----------------------------------------------------------------

_SESSION = botocore.session.get_session()


def _problems(service: str, operation: str, request: dict[str, Any]) -> list[str]:
    shape = _SESSION.get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    return ([report.generate_report()] if report.has_errors() else []) + constraint_problems(request, shape, operation)


def test_create_model_with_lookup_settings_is_a_valid_request(namer):
    looked = EndpointConfig.model_validate(endpoint_doc({"feature_group": "transactions", "record_identifier_field": "txn_id", "timeout_ms": 10000}))
    specs = hosting.model_specs(namer=namer, region="eu-west-1", key="scoring", endpoint=looked, image=IMAGE, network=None, feature_group=GROUP)
    for spec in specs.values():
        assert _problems("sagemaker", "CreateModel", spec.request) == []


def test_put_role_policy_for_the_lookup_is_a_valid_request(mock_pulumi, namer):
    run = build(mock_pulumi, namer, endpoint_doc({"feature_group": "transactions"}))
    inputs = run.one(ROLE_POLICY, "t-dev-scoring-feature-lookup").inputs
    request = {"RoleName": inputs["role"], "PolicyName": inputs["name"], "PolicyDocument": inputs["policy"]}
    assert _problems("iam", "PutRolePolicy", request) == []


def test_the_request_check_catches_a_bad_environment_name(namer):
    # The two tests above could pass by checking nothing: a variable name CreateModel refuses is caught.
    looked = EndpointConfig.model_validate(endpoint_doc({"feature_group": "transactions"}))
    (spec, _) = hosting.model_specs(namer=namer, region="eu-west-1", key="scoring", endpoint=looked, image=IMAGE, network=None, feature_group=GROUP).values()
    bad = {**spec.request, "PrimaryContainer": {**spec.request["PrimaryContainer"], "Environment": {"MLOPS-FEATURE-GROUP": "x"}}}
    assert any("MLOPS-FEATURE-GROUP" in p for p in _problems("sagemaker", "CreateModel", bad))


def test_feature_lookup_policy_names_two_actions_on_one_group():
    assert iam.feature_lookup_policy(feature_group_arn=GROUP_ARN)["Statement"] == [{
        "Sid": "ReadOnlineFeatures", "Effect": "Allow",
        "Action": ["sagemaker:BatchGetRecord", "sagemaker:GetRecord"], "Resource": [GROUP_ARN],
    }]
    assert iam.wildcard_actions(iam.feature_lookup_policy(feature_group_arn=GROUP_ARN)) == []


# ---- the whole stack ------------------------------------------------------------------------------


def _fraud_dev_with_lookup() -> StackConfig:
    doc = stack_files.load("fraud-dev").model_dump()
    doc["endpoints"]["scoring"]["feature_lookup"] = {"feature_group": "transactions"}
    config = StackConfig.model_validate(doc)
    assert rules.check(config) == []
    return config


def test_a_stack_that_opts_in_grants_its_group_and_leaves_the_shared_execution_policy_alone(mock_pulumi):
    config = _fraud_dev_with_lookup()
    with_lookup = mock_pulumi.run(lambda: stack.build(config))
    without = mock_pulumi.run(lambda: stack.build(stack_files.load("fraud-dev")))
    added = {(r.type, r.name) for r in with_lookup.resources} - {(r.type, r.name) for r in without.resources}
    assert added == {(ROLE_POLICY, "fraud-dev-scoring-feature-lookup")}
    policy = with_lookup.one(ROLE_POLICY, "fraud-dev-scoring-feature-lookup").inputs
    assert json.loads(policy["policy"])["Statement"][0]["Resource"] == [
        f"arn:aws:sagemaker:{config.aws.region}:{config.aws.account_id}:feature-group/fraud-dev-transactions"
    ]
    execution = "fraud-dev-hosting-policy"
    assert with_lookup.one(ROLE_POLICY, execution).inputs == without.one(ROLE_POLICY, execution).inputs
    env = with_lookup.one(MODEL, "fraud-dev-scoring-champion").inputs["primaryContainer"]["environment"]
    assert env["MLOPS_FEATURE_GROUP"] == "fraud-dev-transactions" and env["MLOPS_RECORD_ID_FIELD"] == "transaction_id"
