"""The policy pack's rules (specs.policies, one module per rule) on hand-built resources, on every shipped stack's
plan, and served by the real policy pack (policypack/__main__.py) over its gRPC analyzer protocol."""
from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from specs.config import stack_files
from specs import policies
from specs.policies import Res, feature_groups_encrypted, no_wildcard_iam_actions

KEY = "arn:aws:kms:eu-west-1:111111111111:key/k"
FG = "aws:sagemaker/featureGroup:FeatureGroup"
EC = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
EP = "aws:sagemaker/endpoint:Endpoint"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
EKS = "aws:eks/cluster:Cluster"
NG = "aws:eks/nodeGroup:NodeGroup"
PROD = {"mlops:environment": "prod"}
DEV = {"mlops:environment": "dev"}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def variant(name: str, count: int) -> dict[str, Any]:
    return {"variantName": name, "modelName": f"m-{name}", "instanceType": "ml.c6i.large", "initialInstanceCount": count, "initialVariantWeight": 1}


CAPTURE = {"enableCapture": True, "kmsKeyId": KEY, "destinationS3Uri": "s3://c/d"}
GUARDRAILS = {
    "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 60}},
    "autoRollbackConfiguration": {"alarms": [{"alarmName": "a"}]},
}

PIPE = "aws:sagemaker/pipeline:Pipeline"


def pipeline_definition(*, instances: int, encrypted: bool, nested: bool = False, role: str = "arn:aws:iam::1:role/t-sagemaker-training") -> str:
    train = {"Name": "Train", "Type": "Training", "Arguments": {
        "RoleArn": role, "ResourceConfig": {"InstanceCount": instances}, "EnableInterContainerTrafficEncryption": encrypted}}
    steps = [{"Name": "Check", "Type": "Condition", "Arguments": {"IfSteps": [train], "ElseSteps": []}}] if nested else [train]
    return json.dumps({"Version": "2020-12-01", "Steps": steps})


SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
ISOLATION = "monitoringScheduleConfig.monitoringJobDefinition.networkConfig.enableNetworkIsolation"


def schedule(name: str, kind: str | None, *, isolated: bool, entrypoint: list[str] | None = None) -> tuple[str, dict]:
    job: dict[str, Any] = {"networkConfig": {"enableNetworkIsolation": isolated, "enableInterContainerTrafficEncryption": True},
                           "monitoringAppSpecification": {"imageUri": "img:serve"}}
    if entrypoint is not None:
        job["monitoringAppSpecification"]["containerEntrypoints"] = entrypoint
    config: dict[str, Any] = {"monitoringJobDefinition": job, "scheduleConfig": {"scheduleExpression": "cron(0 * ? * * *)"}}
    if kind is not None:
        config["monitoringType"] = kind
    return SCHEDULE, {"name": name, "monitoringScheduleConfig": config}


# rule -> (compliant (type, props), [(non-compliant (type, props), exact messages)])
RESOURCE_CASES: dict[str, tuple[tuple[str, dict], list[tuple[tuple[str, dict], list[str]]]]] = {
    "feature-groups-encrypted": (
        (FG, {"onlineStoreConfig": {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": KEY}},
              "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b/o", "kmsKeyId": KEY}}}),
        [
            ((FG, {"onlineStoreConfig": {"enableOnlineStore": True}}),
             ["online store is not encrypted with a KMS key (onlineStoreConfig.securityConfig.kmsKeyId)"]),
            ((FG, {"offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b/o"}}}),
             ["offline store is not encrypted with a KMS key (offlineStoreConfig.s3StorageConfig.kmsKeyId)"]),
        ],
    ),
    "endpoint-configs-encrypted": (
        (EC, {"kmsKeyArn": KEY, "dataCaptureConfig": CAPTURE}),
        [
            ((EC, {"dataCaptureConfig": CAPTURE}), ["instance storage is not encrypted with a KMS key (kmsKeyArn)"]),
            ((EC, {"kmsKeyArn": KEY, "dataCaptureConfig": {"enableCapture": True}}),
             ["captured requests are not encrypted with a KMS key (dataCaptureConfig.kmsKeyId)"]),
        ],
    ),
    "topics-encrypted": (
        ("aws:sns/topic:Topic", {"name": "t", "kmsMasterKeyId": KEY}),
        [(("aws:sns/topic:Topic", {"name": "t"}), ["topic is not encrypted with a KMS key (kmsMasterKeyId)"])],
    ),
    "no-wildcard-iam-actions": (
        ("aws:iam/rolePolicy:RolePolicy", {"policy": doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})}),
        [
            (("aws:iam/rolePolicy:RolePolicy", {"policy": doc({"Effect": "Allow", "Action": ["s3:*", "s3:GetObject"], "Resource": "*"})}),
             ["allows wildcard action(s) s3:*; name each action"]),
            (("aws:iam/policy:Policy", {"policy": doc({"Effect": "Allow", "Action": "*", "Resource": "*"})}),
             ["allows wildcard action(s) *; name each action"]),
            (("aws:iam/role:Role", {"inlinePolicies": [{"name": "p", "policy": doc({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})}]}),
             ["allows wildcard action(s) ec2:Describe*; name each action"]),
            (("aws:iam/role:Role", {"managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]}),
             ["attaches the managed policy arn:aws:iam::aws:policy/AmazonSageMakerFullAccess; broad managed policies are not least privilege"]),
            (("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
             ["attaches the managed policy arn:aws:iam::aws:policy/AdministratorAccess; broad managed policies are not least privilege"]),
        ],
    ),
    "no-unconditioned-wildcard-writes": (
        ("aws:iam/rolePolicy:RolePolicy", {"policy": doc(
            {"Sid": "Describe", "Effect": "Allow", "Action": ["ec2:DescribeSubnets"], "Resource": "*"},
            {"Sid": "Eni", "Effect": "Allow", "Action": ["ec2:DeleteNetworkInterface"], "Resource": "*",
             "Condition": {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:eu-west-1:111111111111:vpc/vpc-1"}}},
        )}),
        [
            (("aws:iam/rolePolicy:RolePolicy", {"policy": doc({"Sid": "RunInVpc", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeVpcs"], "Resource": "*"})}),
             ["allows write action(s) on Resource '*' without a Condition: RunInVpc:ec2:CreateNetworkInterface; "
              "name the resources or add a condition (ec2:Vpc, cloudwatch:namespace...)"]),
            (("aws:iam/role:Role", {"inlinePolicies": [{"name": "p", "policy": doc({"Sid": "W", "Effect": "Allow", "Action": "s3:PutObject", "Resource": ["*"]})}]}),
             ["allows write action(s) on Resource '*' without a Condition: W:s3:PutObject; "
              "name the resources or add a condition (ec2:Vpc, cloudwatch:namespace...)"]),
        ],
    ),
    "training-traffic-encrypted": (
        (PIPE, {"pipelineDefinition": pipeline_definition(instances=2, encrypted=True)}),
        [
            ((PIPE, {"pipelineDefinition": pipeline_definition(instances=2, encrypted=False)}),
             ["training step Train runs on 2 instances without EnableInterContainerTrafficEncryption"]),
            ((PIPE, {"pipelineDefinition": pipeline_definition(instances=4, encrypted=False, nested=True)}),
             ["training step Train runs on 4 instances without EnableInterContainerTrafficEncryption"]),
        ],
    ),
    "monitoring-jobs-isolated": (
        schedule("t-dev-scoring-drift", "DataQuality", isolated=True, entrypoint=["mlops-monitor"]),
        [
            (schedule("t-dev-scoring-drift", "DataQuality", isolated=False, entrypoint=["mlops-monitor"]),
             [f"DataQuality schedule t-dev-scoring-drift runs its job without network isolation; set {ISOLATION} to true "
              "(the job reads its captures and baseline from its channels, and SageMaker publishes its metric files)"]),
            (schedule("t-dev-x", None, isolated=False),
             [f"untyped schedule t-dev-x runs its job without network isolation; set {ISOLATION} to true "
              "(the job reads its captures and baseline from its channels, and SageMaker publishes its metric files)"]),
            (schedule("t-dev-scoring-quality", "ModelQuality", isolated=False, entrypoint=["python", "evaluate.py"]),
             [f"ModelQuality schedule t-dev-scoring-quality runs python evaluate.py without network isolation; set {ISOLATION} "
              "to true (only the live-quality job, mlops-monitor quality, may reach the network: it reads ground truth "
              "from S3, which a MonitoringJobDefinition has no input for)"]),
            (("aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition", {"name": "dq", "networkConfig": {}}),
             ["DataQualityJobDefinition dq runs without network isolation; set networkConfig.enableNetworkIsolation to true"]),
        ],
    ),
    "prod-data-capture": (
        (EC, {"tags": PROD, "dataCaptureConfig": CAPTURE}),
        [
            ((EC, {"tags": PROD}), ["prod endpoint does not capture requests and responses (dataCaptureConfig.enableCapture)"]),
            ((EC, {"tags": PROD, "dataCaptureConfig": {**CAPTURE, "enableCapture": False}}),
             ["prod endpoint does not capture requests and responses (dataCaptureConfig.enableCapture)"]),
        ],
    ),
    "prod-min-two-instances": (
        (EC, {"tags": PROD, "productionVariants": [variant("a", 2), variant("b", 3)]}),
        [((EC, {"tags": PROD, "productionVariants": [variant("a", 2), variant("b", 1)]}),
          ["production variant b has 1 instance(s); prod needs at least 2"])],
    ),
    "prod-deployment-guardrails": (
        (EP, {"tags": PROD, "deploymentConfig": GUARDRAILS}),
        [
            ((EP, {"tags": PROD}), [
                "prod endpoint has no deployment guardrails (deploymentConfig.blueGreenUpdatePolicy)",
                "prod endpoint has no auto-rollback alarms (deploymentConfig.autoRollbackConfiguration.alarms)",
            ]),
            ((EP, {"tags": PROD, "deploymentConfig": {"blueGreenUpdatePolicy": GUARDRAILS["blueGreenUpdatePolicy"]}}),
             ["prod endpoint has no auto-rollback alarms (deploymentConfig.autoRollbackConfiguration.alarms)"]),
        ],
    ),
    "eks-clusters-hardened": (
        (EKS, {"encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY}},
               "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}}),
        [
            ((EKS, {"vpcConfig": {"endpointPublicAccess": False}}),
             ["Kubernetes secrets are not envelope-encrypted with a KMS key (encryptionConfig)"]),
            ((EKS, {"encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY}},
                    "vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}}),
             ["the API server endpoint is open to the internet (endpointPublicAccess without narrow publicAccessCidrs)"]),
            ((EKS, {"encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY}}, "vpcConfig": {}}),
             ["the API server endpoint is open to the internet (endpointPublicAccess without narrow publicAccessCidrs)"]),
        ],
    ),
    "gpu-nodes-tainted": (
        (NG, {"amiType": "AL2023_x86_64_NVIDIA", "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]}),
        [
            ((NG, {"amiType": "AL2023_x86_64_NVIDIA"}),
             ["GPU node group has no nvidia.com/gpu NO_SCHEDULE taint: CPU pods would land on GPU nodes and keep them from scaling in"]),
            ((NG, {"amiType": "BOTTLEROCKET_x86_64_NVIDIA", "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "PREFER_NO_SCHEDULE"}]}),
             ["GPU node group has no nvidia.com/gpu NO_SCHEDULE taint: CPU pods would land on GPU nodes and keep them from scaling in"]),
        ],
    ),
    "gpu-nodes-scale-to-zero": (
        (NG, {"amiType": "AL2023_x86_64_NVIDIA", "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": 0}}),
        [((NG, {"amiType": "AL2023_x86_64_NVIDIA", "scalingConfig": {"minSize": 2, "maxSize": 4, "desiredSize": 2}}),
          ["GPU node group keeps 2 node(s) running while no training runs (scalingConfig.minSize > 0)"])],
    ),
}


def bucket_stack(*, sse: str | None = "aws:kms", block: dict[str, bool] | None = None, acl: str | None = None) -> list[Res]:
    flags = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}
    resources = [Res(BUCKET, "data", {"bucket": "data-1", **({"acl": acl} if acl else {})})]
    if sse:
        resources.append(Res(SSE, "data-sse", {"bucket": "data-1", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": sse}}]}))
    resources.append(Res(PAB, "data-pab", {"bucket": "data-1", **flags, **(block or {})}))
    return resources


def endpoint_stack(*, alarms: dict[str, list[str]]) -> list[Res]:
    resources = [
        Res(EP, "ep", {"name": "t-prod-e", "endpointConfigName": "t-prod-e-1234abcd"}),
        Res(EC, "ep-config", {"name": "t-prod-e-1234abcd", "productionVariants": [variant("a", 2), variant("b", 2)],
                              "shadowProductionVariants": [variant("s", 1)]}),
    ]
    for v, metrics in alarms.items():
        for metric in metrics:
            resources.append(Res(ALARM, f"{v}-{metric}", {"metricName": metric, "dimensions": {"EndpointName": "t-prod-e", "VariantName": v}}))
    return resources


def role_stack(*, hosting: str, monitoring: str, pipeline: str, training: str) -> list[Res]:
    return [
        Res("aws:sagemaker/model:Model", "model", {"executionRoleArn": hosting}),
        Res("aws:sagemaker/monitoringSchedule:MonitoringSchedule", "drift", {"monitoringScheduleConfig": {"monitoringJobDefinition": {"roleArn": monitoring}}}),
        Res(PIPE, "retrain", {"roleArn": pipeline, "pipelineDefinition": pipeline_definition(instances=1, encrypted=True, role=training)}),
    ]


def role(kind: str) -> str:
    return f"arn:aws:iam::111111111111:role/t-dev-sagemaker-{kind}"


NS = "kubernetes:core/v1:Namespace"
NP = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


BUDGET_PRICES = {"source": "test", "queried_at": "2026-12-01T00:00:00+00:00", "currency": "USD", "ec2": {}, "sagemaker": {"eu-west-1": {
    "ml.c6i.large": {"Hosting": {"usd_per_hour": 0.1, "usage_type": "EU-Host:ml.c6i.large", "publication_date": "2026-11-20T18:43:40Z"}}}}}


@pytest.fixture(scope="module", autouse=True)
def priced_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The shipped stacks beside a price file (the monthly-budget rule reads stacks/prices.json)."""
    import os
    import shutil

    copy = tmp_path_factory.mktemp("priced") / "stacks"
    shutil.copytree(stack_files.ROOT / "stacks", copy, ignore=shutil.ignore_patterns("audit", ".locks"))
    (copy / "prices.json").write_text(json.dumps(BUDGET_PRICES))
    previous = os.environ.get(stack_files.STACKS_ENV)
    os.environ[stack_files.STACKS_ENV] = str(copy)
    yield
    if previous is None:
        os.environ.pop(stack_files.STACKS_ENV, None)
    else:
        os.environ[stack_files.STACKS_ENV] = previous


def budget_stack(usd: float) -> list[Res]:
    # Two production variants of 2 x ml.c6i.large and a shadow of 1, at $0.10 an hour: 5 x 730 x 0.1 = $365.00 a month.
    return [*endpoint_stack(alarms={}), Res("aws:budgets/budget:Budget", "b", {
        "name": "t-prod-monthly", "limitAmount": f"{usd:.2f}", "costFilters": [{"name": "Region", "values": ["eu-west-1"]}]})]


def namespace_stack(*, deny: dict | None) -> list[Res]:
    resources = [Res(NS, "ns", {"metadata": {"name": "t-dev", "labels": {"mlops.dev/team": "t"}}}),
                 Res(NS, "other", {"metadata": {"name": "tools"}})]  # not a team's: no policy needed
    if deny is not None:
        resources.append(Res(NP, "deny", {"metadata": {"name": "default-deny", "namespace": "t-dev"}, "spec": deny}))
    return resources


BOTH = ["ModelLatency", "Invocation5XXErrors"]
# rule -> (compliant stack, [(non-compliant stack, exact (resource, message) findings)])
STACK_CASES: dict[str, tuple[list[Res], list[tuple[list[Res], list[tuple[str, str]]]]]] = {
    "buckets-encrypted": (
        bucket_stack(),
        [
            (bucket_stack(sse=None), [("data", "bucket has no SSE-KMS default encryption (BucketServerSideEncryptionConfiguration with aws:kms)")]),
            (bucket_stack(sse="AES256"), [("data", "bucket has no SSE-KMS default encryption (BucketServerSideEncryptionConfiguration with aws:kms)")]),
        ],
    ),
    "no-public-buckets": (
        bucket_stack(),
        [
            (bucket_stack(block={"restrictPublicBuckets": False}), [("data", "bucket has no public access block with all four settings true")]),
            (bucket_stack(acl="public-read"), [("data", "bucket ACL is public-read")]),
        ],
    ),
    "job-roles-not-shared": (
        role_stack(hosting=role("hosting"), monitoring=role("monitoring"), pipeline=role("pipeline"), training=role("training")),
        [
            (role_stack(hosting=role("execution"), monitoring=role("execution"), pipeline=role("pipeline"), training=role("training")),
             [("model", f"role {role('execution')} is shared by hosting, monitoring jobs; give each job kind its own role")]),
            (role_stack(hosting=role("hosting"), monitoring=role("monitoring"), pipeline=role("pipeline"), training=role("pipeline")),
             [("retrain", f"role {role('pipeline')} is shared by pipeline, training jobs; give each job kind its own role")]),
        ],
    ),
    "team-namespaces-default-deny": (
        namespace_stack(deny={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        [
            (namespace_stack(deny=None),
             [("ns", "team namespace t-dev has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")]),
            (namespace_stack(deny={"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]}),
             [("ns", "team namespace t-dev has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")]),
            (namespace_stack(deny={"podSelector": {}, "policyTypes": ["Ingress"]}),
             [("ns", "team namespace t-dev has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")]),
        ],
    ),
    "monthly-budget": (
        budget_stack(400),
        [(budget_stack(250), [("b", "estimated maximum $365.00 a month exceeds the budget $250.00 (prices queried 2026-12-01T00:00:00+00:00); "
                                   "mostly t-prod-e/a (2 x ml.c6i.large) up to $146.00, t-prod-e/b (2 x ml.c6i.large) up to $146.00, "
                                   "t-prod-e/s (1 x ml.c6i.large) up to $73.00")])],
    ),
    "variant-alarms": (
        endpoint_stack(alarms={"a": BOTH, "b": BOTH}),  # the shadow variant s needs none
        [
            (endpoint_stack(alarms={"a": BOTH, "b": ["ModelLatency"]}), [("ep", "production variant b has no alarm on Invocation5XXErrors")]),
            (endpoint_stack(alarms={"a": BOTH}), [("ep", "production variant b has no alarm on ModelLatency, Invocation5XXErrors")]),
        ],
    ),
}

RESOURCE_RULES = {r.name: r for r in policies.RESOURCE_RULES}
STACK_RULES = {r.name: r for r in policies.STACK_RULES}


def test_every_rule_has_a_compliant_and_a_non_compliant_case():
    assert sorted(RESOURCE_CASES) == sorted(RESOURCE_RULES)
    assert sorted(STACK_CASES) == sorted(STACK_RULES)


def _rule_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(policies.__path__) if m.name != "core")


def test_each_rule_lives_in_its_own_documented_module_named_after_it():
    assembled = [*policies.RESOURCE_RULES, *policies.STACK_RULES]
    for name in _rule_modules():
        module = importlib.import_module(f"specs.policies.{name}")
        assert module.RULE.name == name.replace("_", "-"), f"specs/policies/{name}.py holds rule {module.RULE.name!r}"
        assert module.RULE in assembled, f"rule {module.RULE.name!r} is not in RESOURCE_RULES or STACK_RULES"
        assert module.__doc__ and module.__doc__.startswith(f"{module.RULE.name}"), f"specs/policies/{name}.py: docstring"
    assert sorted(r.name.replace("-", "_") for r in assembled) == _rule_modules()


ADVISORY_RULES = {"gpu-nodes-scale-to-zero"}  # warm GPU nodes are a legitimate, costly, choice


def test_every_rule_is_mandatory_but_the_advisory_ones():
    levels = {r.name: r.level for r in [*policies.RESOURCE_RULES, *policies.STACK_RULES]}
    assert {name for name, level in levels.items() if level == policies.ADVISORY} == ADVISORY_RULES
    assert {level for name, level in levels.items() if name not in ADVISORY_RULES} == {policies.MANDATORY}


def test_cpu_node_groups_need_neither_taint_nor_scale_to_zero():
    props = {"amiType": "AL2023_x86_64_STANDARD", "scalingConfig": {"minSize": 2}}
    assert RESOURCE_RULES["gpu-nodes-tainted"].check(NG, props) == []
    assert RESOURCE_RULES["gpu-nodes-scale-to-zero"].check(NG, props) == []


@pytest.mark.parametrize("rule", sorted(RESOURCE_CASES))
def test_resource_rule_passes_its_compliant_case(rule):
    type_, props = RESOURCE_CASES[rule][0]
    assert RESOURCE_RULES[rule].check(type_, props) == []


@pytest.mark.parametrize(("rule", "case"), [(r, i) for r, (_, bad) in sorted(RESOURCE_CASES.items()) for i in range(len(bad))])
def test_resource_rule_reports_its_non_compliant_case(rule, case):
    (type_, props), messages = RESOURCE_CASES[rule][1][case]
    assert RESOURCE_RULES[rule].check(type_, props) == messages


@pytest.mark.parametrize("rule", sorted(STACK_CASES))
def test_stack_rule_passes_its_compliant_case(rule):
    assert STACK_RULES[rule].check(STACK_CASES[rule][0]) == []


@pytest.mark.parametrize(("rule", "case"), [(r, i) for r, (_, bad) in sorted(STACK_CASES.items()) for i in range(len(bad))])
def test_stack_rule_reports_its_non_compliant_case(rule, case):
    resources, findings = STACK_CASES[rule][1][case]
    assert STACK_RULES[rule].check(resources) == findings


@pytest.mark.parametrize("rule", ["prod-data-capture", "prod-min-two-instances", "prod-deployment-guardrails"])
def test_prod_rules_ignore_other_environments(rule):
    for (type_, props), _ in RESOURCE_CASES[rule][1]:
        assert RESOURCE_RULES[rule].check(type_, {**props, "tags": DEV}) == []
        assert RESOURCE_RULES[rule].check(type_, {k: v for k, v in props.items() if k != "tags"}) == []


def test_resource_rules_ignore_other_resource_types():
    for rule in policies.RESOURCE_RULES:
        assert rule.check("aws:s3/bucket:Bucket", {"bucket": "b", "tags": PROD}) == [], rule.name


def test_disabled_online_store_needs_no_key():
    assert feature_groups_encrypted.check(FG, {"onlineStoreConfig": {"enableOnlineStore": False}}) == []


def test_iam_policy_unknown_during_preview_is_not_a_finding():
    assert no_wildcard_iam_actions.check("aws:iam/rolePolicy:RolePolicy", {}) == []
    assert no_wildcard_iam_actions.check("aws:iam/rolePolicy:RolePolicy", {"policy": "not json"}) == []


def test_administrator_access_in_a_roles_managed_policies_is_reported():
    arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert no_wildcard_iam_actions.check("aws:iam/role:Role", {"managedPolicyArns": [arn]}) == [
        f"attaches the managed policy {arn}; broad managed policies are not least privilege"
    ]


def test_allow_with_not_action_is_reported_as_a_wildcard():
    policy = doc({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})
    assert len(no_wildcard_iam_actions.check("aws:iam/rolePolicy:RolePolicy", {"policy": policy})) == 1


def test_only_the_live_quality_entry_point_may_run_a_model_quality_schedule_unisolated():
    from components import quality_monitor
    from specs.policies import monitoring_jobs_isolated

    # the rule cannot import the component (pure layer): the exception it names is the component's
    assert monitoring_jobs_isolated.QUALITY_ENTRYPOINT == quality_monitor.ENTRYPOINT
    assert monitoring_jobs_isolated.MODEL_QUALITY == quality_monitor.MONITORING_TYPE
    rule = RESOURCE_RULES["monitoring-jobs-isolated"]
    assert rule.check(*schedule("t-dev-scoring-quality", "ModelQuality", isolated=False, entrypoint=["mlops-monitor", "quality"])) == []
    # the same entry point under another monitoring type is no exception
    assert len(rule.check(*schedule("t-dev-x", "DataQuality", isolated=False, entrypoint=["mlops-monitor", "quality"]))) == 1
    # a schedule naming a separate definition is judged on that definition's resource
    assert rule.check(SCHEDULE, {"name": "s", "monitoringScheduleConfig": {"monitoringJobDefinitionName": "dq"}}) == []


def test_shipped_drift_schedules_are_isolated_and_quality_schedules_are_the_named_exception(shipped_plan):
    plan = shipped_plan("fraud-prod")
    schedules = plan.of_type(SCHEDULE)
    network = {r.name: r.inputs["monitoringScheduleConfig"]["monitoringJobDefinition"]["networkConfig"]["enableNetworkIsolation"]
               for r in schedules}
    assert {n for n, isolated in network.items() if isolated} == {n for n in network if n.endswith("-drift-schedule")} != set()
    assert {n for n, isolated in network.items() if not isolated} == {n for n in network if n.endswith("-quality-schedule")} != set()
    assert [m for r in schedules for m in RESOURCE_RULES["monitoring-jobs-isolated"].check(r.type, r.inputs)] == []


def test_evaluate_reports_rule_level_and_resource_of_each_finding():
    resources = [Res("aws:sns/topic:Topic", "alerts", {"name": "a"}), *bucket_stack(sse=None)]
    assert [f.to_json() for f in policies.evaluate(resources)] == [
        {"policy": "topics-encrypted", "level": "mandatory", "resource": "alerts", "message": "topic is not encrypted with a KMS key (kmsMasterKeyId)"},
        {"policy": "buckets-encrypted", "level": "mandatory", "resource": "data",
         "message": "bucket has no SSE-KMS default encryption (BucketServerSideEncryptionConfiguration with aws:kms)"},
    ]


@pytest.mark.parametrize("stack", stack_files.list_stacks())
def test_shipped_stack_plans_with_no_mandatory_findings(stack, shipped_plan):
    plan = shipped_plan(stack)
    assert plan.of_type(EC), "every shipped stack has an endpoint; the endpoint rules must see one"
    assert [f.to_json() for f in policies.evaluate(plan.resources) if f.mandatory] == []


def test_rules_catch_a_prod_plan_with_capture_and_guardrails_removed(shipped_plan):
    plan = shipped_plan("fraud-prod")
    broken = []
    for r in plan.resources:
        if r.type == EC:
            r = replace(r, inputs={k: v for k, v in r.inputs.items() if k != "dataCaptureConfig"})
        elif r.type == EP:
            r = replace(r, inputs={k: v for k, v in r.inputs.items() if k != "deploymentConfig"})
        broken.append(r)
    assert sorted((f.policy, f.resource) for f in policies.evaluate(broken)) == [
        ("prod-data-capture", "fraud-prod-scoring-config"),
        ("prod-deployment-guardrails", "fraud-prod-scoring-endpoint"),
        ("prod-deployment-guardrails", "fraud-prod-scoring-endpoint"),
    ]


# ---- the policy pack itself -------------------------------------------------------------------
# PolicyPack(...) starts pulumi_policy's gRPC analyzer server, prints its port and serves forever,
# so the pack runs as the Pulumi CLI runs it: a subprocess we talk to over the Analyzer protocol.


@pytest.fixture(scope="module")
def policy_pack() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, str(stack_files.ROOT / "policypack" / "__main__.py")],
        cwd=stack_files.ROOT / "policypack", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), f"policy pack did not start: {process.stderr.read().decode() if process.poll() is not None else port!r}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=120)  # a ceiling, not a timing
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=120)


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(props)
    return message


def _analyze(stub, type_: str, props: dict[str, Any]):
    return stub.Analyze(analyzer_pb2.AnalyzeRequest(
        type=type_, properties=_struct(props), urn=f"urn:pulumi:s::mlops::{type_}::r", name="r",
    )).diagnostics


def _analyze_stack(stub, resources: list[Res]):
    return stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(type=r.type, properties=_struct(r.inputs), urn=f"urn:pulumi:s::mlops::{r.type}::{r.name}", name=r.name)
        for r in resources
    ])).diagnostics


def test_policy_pack_serves_every_rule_at_its_level(policy_pack):
    info = policy_pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlops-guardrails"
    assert [(p.name, p.description) for p in info.policies] == [
        (r.name, r.description) for r in [*policies.RESOURCE_RULES, *policies.STACK_RULES]
    ]
    levels = {policies.MANDATORY: analyzer_pb2.MANDATORY, policies.ADVISORY: analyzer_pb2.ADVISORY}
    assert [p.enforcementLevel for p in info.policies] == [
        levels[r.level] for r in [*policies.RESOURCE_RULES, *policies.STACK_RULES]
    ]
    assert analyzer_pb2.ADVISORY in {p.enforcementLevel for p in info.policies}


def test_policy_pack_reports_a_resource_violation_and_passes_the_compliant_resource(policy_pack):
    diagnostics = _analyze(policy_pack, "aws:sns/topic:Topic", {"name": "t"})
    assert [(d.policyName, d.enforcementLevel, d.message) for d in diagnostics] == [
        ("topics-encrypted", analyzer_pb2.MANDATORY, "SNS topics use KMS\ntopic is not encrypted with a KMS key (kmsMasterKeyId)"),
    ]
    assert list(_analyze(policy_pack, "aws:sns/topic:Topic", {"name": "t", "kmsMasterKeyId": KEY})) == []


def test_policy_pack_reads_nested_props_of_a_prod_endpoint_config(policy_pack):
    props = {"tags": PROD, "kmsKeyArn": KEY, "dataCaptureConfig": CAPTURE, "productionVariants": [variant("a", 1), variant("b", 2)]}
    assert [(d.policyName, d.enforcementLevel) for d in _analyze(policy_pack, EC, props)] == [
        ("prod-min-two-instances", analyzer_pb2.MANDATORY),
    ]


def test_policy_pack_message_states_the_instance_count_as_an_integer(policy_pack):
    props = {"tags": PROD, "kmsKeyArn": KEY, "dataCaptureConfig": CAPTURE, "productionVariants": [variant("a", 1)]}
    assert [d.message.splitlines()[-1] for d in _analyze(policy_pack, EC, props)] == [
        "production variant a has 1 instance(s); prod needs at least 2",
    ]


def test_policy_pack_reports_stack_violations_with_the_resource_name(policy_pack):
    diagnostics = _analyze_stack(policy_pack, bucket_stack(sse=None))
    assert [(d.policyName, d.enforcementLevel, d.message.splitlines()[-1]) for d in diagnostics] == [
        ("buckets-encrypted", analyzer_pb2.MANDATORY,
         "data: bucket has no SSE-KMS default encryption (BucketServerSideEncryptionConfiguration with aws:kms)"),
    ]
    assert list(_analyze_stack(policy_pack, bucket_stack())) == []


def test_policy_pack_defers_stack_rules_on_values_unknown_during_preview(policy_pack):
    # In a preview of a new stack the bucket id that SSE and the access block point at is unknown;
    # that must not read as "bucket not encrypted" (a mandatory failure), only as a deferred check.
    resources = [
        Res(BUCKET, "data", {"bucket": "data-1"}),
        Res(SSE, "data-sse", {"bucket": UNKNOWN_STRING_VALUE, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}),
        Res(PAB, "data-pab", {"bucket": UNKNOWN_STRING_VALUE}),
    ]
    diagnostics = _analyze_stack(policy_pack, resources)
    assert [d.enforcementLevel for d in diagnostics if d.enforcementLevel == analyzer_pb2.MANDATORY] == []
    # pulumi_policy defers every stack policy when a value of the stack is unknown.
    assert sorted(d.policyName for d in diagnostics) == sorted(STACK_RULES)
    assert all("during preview" in d.message for d in diagnostics)
