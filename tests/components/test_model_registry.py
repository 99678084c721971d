"""ModelRegistry under Pulumi's mock runtime: groups, cross-account read policies, approval events."""
from __future__ import annotations

import json

from specs.config.schema import ModelConfig
from components.model_registry import TOKEN, ModelRegistry, ModelRegistryArgs

TOPIC = "arn:aws:sns:eu-west-1:111111111111:t-dev-alerts"
GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
MODELS = {
    "fraud": ModelConfig(description="Fraud probability", feature_group="transactions", label="is_fraud", task="binary_classification"),
    "price": ModelConfig(feature_group="baskets", label="total", task="regression"),
}


def build(mock_pulumi, namer, readers: list[str]):
    return mock_pulumi.run(lambda: ModelRegistry("t-dev-registry", ModelRegistryArgs(
        namer=namer, region="eu-west-1", models=MODELS, notification_topic_arn=TOPIC,
        cross_account_readers=readers, tags=mock_pulumi.tags,
    )))


def test_each_model_gets_a_group_an_approval_rule_and_a_target_under_the_component(mock_pulumi, namer):
    run = build(mock_pulumi, namer, readers=[])
    children = run.children(mock_pulumi.top_urn(TOKEN, "t-dev-registry"))
    assert sorted((r.type, r.name) for r in children) == sorted([
        (GROUP, "t-dev-registry-fraud"), (RULE, "t-dev-registry-fraud-approved"), (TARGET, "t-dev-registry-fraud-approved-notify"),
        (GROUP, "t-dev-registry-price"), (RULE, "t-dev-registry-price-approved"), (TARGET, "t-dev-registry-price-approved-notify"),
    ])
    for child in children:
        assert child.urn == mock_pulumi.urn(TOKEN, child.type, child.name)


def test_groups_are_named_per_model_described_and_tagged(mock_pulumi, namer):
    run = build(mock_pulumi, namer, readers=[])
    assert run.one(GROUP, "t-dev-registry-fraud").inputs == {
        "modelPackageGroupName": "t-dev-fraud", "modelPackageGroupDescription": "Fraud probability", "tags": mock_pulumi.tags,
    }
    assert run.one(GROUP, "t-dev-registry-price").inputs["modelPackageGroupDescription"] == "price (regression)"


def test_no_resource_policy_without_cross_account_readers(mock_pulumi, namer):
    assert build(mock_pulumi, namer, readers=[]).of_type(POLICY) == []


def test_resource_policy_grants_exactly_the_reader_accounts(mock_pulumi, namer):
    run = build(mock_pulumi, namer, readers=["333333333333", "222222222222"])
    assert run.names(POLICY) == ["t-dev-registry-fraud-policy", "t-dev-registry-price-policy"]
    policy = run.one(POLICY, "t-dev-registry-fraud-policy")
    assert policy.parent == mock_pulumi.top_urn(TOKEN, "t-dev-registry")
    assert policy.inputs["modelPackageGroupName"] == "t-dev-fraud"
    group_arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/t-dev-fraud"
    readers = ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]
    assert json.loads(policy.inputs["resourcePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadGroup", "Effect": "Allow", "Principal": {"AWS": readers},
                "Action": ["sagemaker:DescribeModelPackageGroup"], "Resource": group_arn,
            },
            {
                "Sid": "ReadPackages", "Effect": "Allow", "Principal": {"AWS": readers},
                "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModel"],
                "Resource": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/t-dev-fraud/*",
            },
        ],
    }


def _refused(mock_pulumi, namer, readers: list[str]) -> list[tuple[str, str]]:
    return mock_pulumi.refused(lambda: ModelRegistry("t-dev-registry", ModelRegistryArgs(
        namer=namer, region="eu-west-1", models=MODELS, notification_topic_arn=TOPIC,
        cross_account_readers=readers, tags=mock_pulumi.tags,
    )))


def test_listing_the_stacks_own_account_as_reader_is_an_input_error(mock_pulumi, namer):
    problems = _refused(mock_pulumi, namer, readers=["222222222222", "111111111111"])
    assert problems == [("cross_account_readers", "lists the stack's own account 111111111111; it needs no grant")]


def test_own_account_and_a_malformed_account_id_are_reported_together(mock_pulumi, namer):
    problems = _refused(mock_pulumi, namer, readers=["111111111111", "2222-2222-2222"])
    assert problems == [
        ("cross_account_readers", "lists the stack's own account 111111111111; it needs no grant"),
        ("cross_account_readers[1]", "'2222-2222-2222' is not an AWS account id; allowed: 12 digits"),
    ]


def test_approval_rule_matches_approved_packages_of_its_group_only(mock_pulumi, namer):
    run = build(mock_pulumi, namer, readers=[])
    rule = run.one(RULE, "t-dev-registry-fraud-approved")
    assert rule.inputs["name"] == "t-dev-fraud-approved"
    assert rule.inputs["tags"] == mock_pulumi.tags
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["t-dev-fraud"], "ModelApprovalStatus": ["Approved"]},
    }


def test_approval_rule_notifies_the_alert_topic(mock_pulumi, namer):
    run = build(mock_pulumi, namer, readers=[])
    assert run.one(TARGET, "t-dev-registry-fraud-approved-notify").inputs == {"rule": "t-dev-fraud-approved", "arn": TOPIC}
    assert run.one(TARGET, "t-dev-registry-price-approved-notify").inputs == {"rule": "t-dev-price-approved", "arn": TOPIC}
