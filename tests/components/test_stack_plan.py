"""The whole composition: the real program (`__main__.py`) planned offline for shipped stacks, and
`components.stack.build` under the recording monitor for the wiring between components."""
from __future__ import annotations

import functools
import importlib
import json

import pytest

from components import stack
from specs.config import stack_files

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FRAUD_PROD_COUNTS = {
    "mlops:foundation:Foundation": 1,
    "mlops:bucket:SecureBucket": 3,
    "mlops:feature_store:FeatureStore": 1,
    "mlops:monitoring:Monitoring": 1,
    "mlops:model_registry:ModelRegistry": 1,
    "mlops:endpoint:Endpoint": 1,
    "aws:kms/key:Key": 1,
    "aws:kms/alias:Alias": 1,
    "aws:s3/bucket:Bucket": 3,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 3,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 3,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 3,
    "aws:s3/bucketVersioning:BucketVersioning": 3,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 3,
    "aws:s3/bucketPolicy:BucketPolicy": 3,
    "aws:ecr/repository:Repository": 2,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": 2,
    "aws:iam/role:Role": 6,
    "aws:iam/rolePolicy:RolePolicy": 6,
    "aws:sagemaker/featureGroup:FeatureGroup": 1,
    "aws:sns/topic:Topic": 1,
    "aws:sns/topicPolicy:TopicPolicy": 1,
    "aws:sns/topicSubscription:TopicSubscription": 2,  # two e-mails
    ALARM: 14,  # 2 production variants x (4 health + live AUC + live log-loss) + 2 drift
    "aws:cloudwatch/dashboard:Dashboard": 1,
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": 1,  # no cross-account readers in prod: no group policy
    "aws:cloudwatch/eventRule:EventRule": 2,
    "aws:cloudwatch/eventTarget:EventTarget": 2,
    "aws:sagemaker/model:Model": 2,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": 1,
    "aws:sagemaker/endpoint:Endpoint": 1,
    "aws:appautoscaling/target:Target": 2,
    "aws:appautoscaling/policy:Policy": 2,
    # retraining: the pipeline, its feature schema object, and what starts it
    "mlops:retraining:Retraining": 1,
    # drift monitoring of the endpoint's captures
    "mlops:drift_monitor:DriftMonitor": 1,
    # live quality: labels joined with the captures, feeding the live-quality alarms
    "mlops:quality_monitor:QualityMonitor": 1,
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": 2,
    "aws:sagemaker/pipeline:Pipeline": 1,
    "aws:s3/bucketObjectv2:BucketObjectv2": 1,
    # the retraining starter the alarm rule invokes (one run per event), its log group and dead-letter queue
    "aws:lambda/function:Function": 1,
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": 1,
    "aws:lambda/permission:Permission": 1,
    "aws:cloudwatch/logGroup:LogGroup": 1,
    "aws:sqs/queue:Queue": 1,
}


@functools.cache
def taggable(type_: str) -> bool:
    """Whether the pulumi-aws resource takes a `tags` input (its Args class has a `tags` property).
    Kubernetes objects carry labels instead, and provider instances nothing."""
    if not type_.startswith("aws:"):
        return False
    _, module, name = type_.split(":")
    package = module.split("/")[0]
    package = {"lambda": "lambda_"}.get(package, package)  # a Python keyword: pulumi_aws.lambda_
    args = getattr(importlib.import_module(f"pulumi_aws.{package}"), f"{name}Args")
    return isinstance(getattr(args, "tags", None), property)


def test_fraud_prod_plans_exactly_these_resources(shipped_plan):
    assert dict(shipped_plan("fraud-prod").by_type()) == FRAUD_PROD_COUNTS


def test_fraud_dev_adds_a_group_policy_for_its_cross_account_readers(shipped_plan):
    (policy,) = shipped_plan("fraud-dev").of_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
    principals = json.loads(policy.inputs["resourcePolicy"])["Statement"][0]["Principal"]["AWS"]
    assert principals == ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]


def test_taggability_comes_from_pulumi_aws():
    # The rule the tag test relies on, checked on types whose answer is known.
    assert taggable("aws:s3/bucket:Bucket") and taggable("aws:sagemaker/model:Model") and taggable("aws:appautoscaling/target:Target")
    assert not taggable("aws:s3/bucketPolicy:BucketPolicy") and not taggable("aws:kms/alias:Alias") and not taggable("aws:appautoscaling/policy:Policy")


@pytest.mark.parametrize("name", stack_files.list_stacks())
def test_every_taggable_resource_carries_the_stacks_tags(name, shipped_plan):
    plan = shipped_plan(name)
    expected = plan.config.all_tags()
    assert {"CostCenter", "Owner", "mlops:team", "mlops:environment", "mlops:managed-by"} <= set(expected)
    wrong = [(r.type, r.name, r.inputs.get("tags")) for r in plan.resources if r.custom and taggable(r.type) and r.inputs.get("tags") != expected]
    assert wrong == []
    assert sum(1 for r in plan.resources if r.custom and taggable(r.type)) >= 20


def test_fraud_prod_tags_are_the_team_tags_plus_the_frameworks(shipped_plan):
    (bucket, *_) = shipped_plan("fraud-prod").of_type("aws:s3/bucket:Bucket")
    assert bucket.inputs["tags"] == {
        "CostCenter": "cc-4711", "Owner": "fraud-ml@example.com", "Project": "fraud-detection",
        "mlops:team": "fraud", "mlops:environment": "prod", "mlops:managed-by": "pulumi",
    }


def test_components_sit_under_the_stack_and_every_aws_resource_under_a_component(shipped_plan):
    plan = shipped_plan("fraud-prod")
    by_urn = {r.urn: r for r in plan.resources}
    top = sorted((r.type, r.name) for r in plan.resources if r.parent is None)
    assert top == [
        ("mlops:drift_monitor:DriftMonitor", "fraud-prod-scoring-drift"),
        ("mlops:endpoint:Endpoint", "fraud-prod-scoring"),
        ("mlops:feature_store:FeatureStore", "fraud-prod-features"),
        ("mlops:foundation:Foundation", "fraud-prod"),
        ("mlops:model_registry:ModelRegistry", "fraud-prod-registry"),
        ("mlops:monitoring:Monitoring", "fraud-prod-monitoring"),
        ("mlops:quality_monitor:QualityMonitor", "fraud-prod-scoring-quality"),
        ("mlops:retraining:Retraining", "fraud-prod-fraud-detector-retraining"),
    ]
    for r in plan.resources:
        if r.custom:
            assert r.parent in by_urn and not by_urn[r.parent].custom, r.name
            assert r.urn.split("::")[2] == f"{by_urn[r.parent].type}${r.type}"


def test_components_are_wired_to_each_others_outputs(shipped_plan):
    plan = shipped_plan("fraud-prod")
    one = lambda type_: plan.of_type(type_)[0].inputs  # noqa: E731
    (group,) = plan.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    feature_role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name == "fraud-prod-feature-store-role")
    assert group.inputs["roleArn"] == f"arn:aws:iam::333333333333:role/{feature_role.inputs['name']}"
    assert group.inputs["offlineStoreConfig"]["s3StorageConfig"]["s3Uri"] == "s3://fraud-prod-features-333333333333/offline-store"
    topic_arn = "arn:aws:sns:eu-west-1:333333333333:" + one("aws:sns/topic:Topic")["name"]
    assert one("aws:cloudwatch/eventTarget:EventTarget")["arn"] == topic_arn
    assert {a for r in plan.of_type(ALARM) for a in r.inputs["alarmActions"]} == {topic_arn}
    repo = next(r for r in plan.of_type("aws:ecr/repository:Repository") if r.name == "fraud-prod-serving-repo")
    execution_role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name == "fraud-prod-hosting-role")
    for model in plan.of_type("aws:sagemaker/model:Model"):
        assert model.inputs["primaryContainer"]["image"] == f"333333333333.dkr.ecr.eu-west-1.amazonaws.com/{repo.inputs['name']}:0.1.0"
        assert model.inputs["executionRoleArn"] == f"arn:aws:iam::333333333333:role/{execution_role.inputs['name']}"
    alias = one("aws:kms/alias:Alias")["name"]
    assert one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")["kmsKeyArn"] == f"arn:aws:kms:eu-west-1:333333333333:{alias}"


def test_endpoint_rolls_back_on_the_latency_and_5xx_alarms_monitoring_creates(shipped_plan):
    plan = shipped_plan("fraud-prod")
    (endpoint,) = plan.of_type("aws:sagemaker/endpoint:Endpoint")
    rollback = [a["alarmName"] for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]]
    alarms = {r.inputs["name"]: r.inputs for r in plan.of_type(ALARM)}
    assert rollback == [
        "fraud-prod-scoring-champion-p99-latency", "fraud-prod-scoring-champion-5xx-errors",
        "fraud-prod-scoring-challenger-p99-latency", "fraud-prod-scoring-challenger-5xx-errors",
    ]
    assert [alarms[a]["metricName"] for a in rollback] == ["ModelLatency", "Invocation5XXErrors"] * 2


def test_shadow_stack_rolls_back_only_on_production_alarms(shipped_plan):
    (endpoint,) = shipped_plan("fraud-staging").of_type("aws:sagemaker/endpoint:Endpoint")
    assert [a["alarmName"] for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]] == [
        "fraud-staging-scoring-champion-p99-latency", "fraud-staging-scoring-champion-5xx-errors",
    ]


def test_endpoint_resources_wait_for_the_foundation_and_their_alarms(mock_pulumi):
    config = stack_files.load("fraud-prod")
    run = mock_pulumi.run(lambda: stack.build(config))
    platform = run.component
    policy = run.one("aws:iam/rolePolicy:RolePolicy", "fraud-prod-hosting-policy").urn
    alias = run.one("aws:kms/alias:Alias", "fraud-prod-key-alias").urn
    rollback_alarms = {a.urn for a in run.of_type(ALARM) if a.inputs["name"].endswith(("-p99-latency", "-5xx-errors"))}
    assert len(rollback_alarms) == 4
    for type_ in ("aws:sagemaker/model:Model", "aws:sagemaker/endpointConfiguration:EndpointConfiguration", "aws:sagemaker/endpoint:Endpoint"):
        for resource in run.of_type(type_):
            deps = set(run.depends_on(resource))
            assert {policy, alias} <= deps, resource.name
            assert rollback_alarms <= deps, resource.name
    assert sorted(platform.endpoints) == ["scoring"]
    assert sorted(platform.monitoring.alarms) == sorted(a.inputs["name"] for a in run.of_type(ALARM))


def test_the_retraining_rule_of_fraud_prod_is_started_by_its_drift_and_live_quality_alarms(shipped_plan):
    """The drift alarms moved to Model Monitor's namespace: they must still start the retraining."""
    import json

    plan = shipped_plan("fraud-prod")
    patterns = [json.loads(r.inputs["eventPattern"]) for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")]
    (pattern,) = [p for p in patterns if p.get("detail-type") == ["CloudWatch Alarm State Change"]]
    names = set(pattern["detail"]["alarmName"])
    drift = {a.inputs["name"] for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
             if a.inputs.get("namespace") in ("/aws/sagemaker/Endpoint/data-metrics", "MLOps/ModelMonitor")}
    assert {"fraud-prod-scoring-drift-max-feature-psi", "fraud-prod-scoring-drift-prediction-psi"} <= drift
    assert drift <= names
