"""Foundation under Pulumi's mock runtime: key, buckets, repositories and least-privilege roles."""
from __future__ import annotations

import json

import pytest

from specs import iam
from components.bucket import TOKEN as BUCKET_TOKEN
from components.foundation import TOKEN, Foundation, FoundationArgs
from specs.config.schema import Network

ACCOUNT = "111111111111"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/t-dev-key"  # PlanMocks: the key's ARN ends in its resource name
BUCKET_ARNS = {p: f"arn:aws:s3:::t-dev-{p}-{ACCOUNT}" for p in ("features", "artifacts", "capture")}
REPO_ARNS = [f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/t/dev/{image}" for image in ("training", "serving")]
GROUPS = ["t-dev-fraud", "t-dev-churn"]
GROUP_ARNS = [f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package-group/{g}" for g in GROUPS]
PACKAGE_ARNS = [f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/{g}/*" for g in GROUPS]
SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "sagemaker.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }],
}


VPC = Network(vpc_id="vpc-0123456789abcdef0", subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
              security_group_ids=["sg-0123456789abcdef0"])


def build(mock_pulumi, namer, *, vpc: bool = False, force_destroy: bool = False):
    return mock_pulumi.run(lambda: Foundation("t-dev", FoundationArgs(
        namer=namer, region="eu-west-1", models=["fraud", "churn"], network=VPC if vpc else None, tags=mock_pulumi.tags,
        force_destroy_buckets=force_destroy, ground_truth_uris=[f"s3://t-dev-features-{ACCOUNT}/ground-truth/fraud/"],
    )))


@pytest.fixture
def built(mock_pulumi, namer):
    return build(mock_pulumi, namer)


def test_empty_region_and_an_empty_model_name_are_reported_together(mock_pulumi, namer):
    problems = mock_pulumi.refused(lambda: Foundation("t-dev", FoundationArgs(namer=namer, region="", models=["fraud", ""], tags={})))
    assert problems == [("region", "must not be empty, got ''"), ("models[1]", "must not be empty, got ''")]


def _statements(policy_resource) -> list[dict]:
    return json.loads(policy_resource.inputs["policy"])["Statement"]


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_foundation_children_are_exactly_key_buckets_repositories_and_roles(built, mock_pulumi):
    children = built.children(mock_pulumi.top_urn(TOKEN, "t-dev"))
    assert sorted((r.type, r.name) for r in children) == sorted([
        ("aws:kms/key:Key", "t-dev-key"),
        ("aws:kms/alias:Alias", "t-dev-key-alias"),
        (BUCKET_TOKEN, "t-dev-features"),
        (BUCKET_TOKEN, "t-dev-artifacts"),
        (BUCKET_TOKEN, "t-dev-capture"),
        ("aws:ecr/repository:Repository", "t-dev-training-repo"),
        ("aws:ecr/repository:Repository", "t-dev-serving-repo"),
        ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "t-dev-training-lifecycle"),
        ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "t-dev-serving-lifecycle"),
        *(("aws:iam/role:Role", f"t-dev-{job}-role") for job in iam.JOB_ROLES),
        ("aws:iam/role:Role", "t-dev-feature-store-role"),
        *(("aws:iam/rolePolicy:RolePolicy", f"t-dev-{job}-policy") for job in iam.JOB_ROLES),
        ("aws:iam/rolePolicy:RolePolicy", "t-dev-feature-store-policy"),
    ])
    for child in children:
        assert child.urn == mock_pulumi.urn(TOKEN, child.type, child.name)
    # Each SecureBucket's own children hang under it, not under Foundation.
    for purpose in BUCKET_ARNS:
        bucket = built.one("aws:s3/bucket:Bucket", f"t-dev-{purpose}")
        assert bucket.parent == mock_pulumi.urn(TOKEN, BUCKET_TOKEN, f"t-dev-{purpose}")


def test_kms_key_rotates_and_is_kept_thirty_days_after_deletion(built, mock_pulumi):
    key = built.one("aws:kms/key:Key", "t-dev-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.inputs["tags"] == mock_pulumi.tags
    alias = built.one("aws:kms/alias:Alias", "t-dev-key-alias")
    assert alias.inputs == {"name": "alias/t-dev-mlops", "targetKeyId": "mock-key-t-dev-key"}


def test_kms_key_policy_lets_services_use_the_key_only_for_this_account(built):
    statements = json.loads(built.one("aws:kms/key:Key", "t-dev-key").inputs["policy"])["Statement"]
    assert [s["Sid"] for s in statements] == [
        "AccountAdministersThroughIam", "AlarmsAndEventsPublishToEncryptedTopic", "CloudWatchLogsEncryptsSageMakerLogs",
    ]
    admin, publish, logs = statements
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert publish["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:*"}}


def test_buckets_are_named_per_purpose_encrypted_with_the_stack_key_and_tagged(built, mock_pulumi):
    for purpose, arn in BUCKET_ARNS.items():
        name = arn.removeprefix("arn:aws:s3:::")
        assert built.one("aws:s3/bucket:Bucket", f"t-dev-{purpose}").inputs == {
            "bucket": name, "forceDestroy": False, "tags": mock_pulumi.tags,
        }
        sse = built.one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", f"t-dev-{purpose}-encryption"
        )
        assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}


def test_force_destroy_buckets_reaches_every_bucket(mock_pulumi, namer):
    run = build(mock_pulumi, namer, force_destroy=True)
    assert [b.inputs["forceDestroy"] for b in run.of_type("aws:s3/bucket:Bucket")] == [True, True, True]


def test_ecr_repositories_are_immutable_scanned_on_push_and_kms_encrypted(built, mock_pulumi):
    for image in ("training", "serving"):
        repo = built.one("aws:ecr/repository:Repository", f"t-dev-{image}-repo")
        assert repo.inputs == {
            "name": f"t/dev/{image}",
            "imageTagMutability": "IMMUTABLE",
            "imageScanningConfiguration": {"scanOnPush": True},
            "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}],
            "tags": mock_pulumi.tags,
        }


def test_ecr_lifecycle_drops_untagged_layers_after_a_week_and_keeps_fifty_images(built):
    for image in ("training", "serving"):
        lifecycle = built.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", f"t-dev-{image}-lifecycle")
        assert lifecycle.inputs["repository"] == f"t/dev/{image}"
        rules = json.loads(lifecycle.inputs["policy"])["rules"]
        assert [(r["rulePriority"], r["selection"]["tagStatus"], r["selection"]["countType"], r["selection"]["countNumber"]) for r in rules] == [
            (1, "untagged", "sinceImagePushed", 7),
            (2, "any", "imageCountMoreThan", 50),
        ]
        assert {r["action"]["type"] for r in rules} == {"expire"}


JOBS = iam.JOB_ROLES


def _document(run, job: str) -> dict:
    return json.loads(run.one("aws:iam/rolePolicy:RolePolicy", f"t-dev-{job}-policy").inputs["policy"])


def test_every_role_trusts_only_sagemaker_acting_for_this_account(built, mock_pulumi):
    feature_store = built.one("aws:iam/role:Role", "t-dev-feature-store-role")
    assert feature_store.inputs["name"] == "t-dev-feature-store"
    roles = [built.one("aws:iam/role:Role", f"t-dev-{job}-role") for job in JOBS]
    assert [r.inputs["name"] for r in roles] == [f"t-dev-sagemaker-{job}" for job in JOBS]
    for role in (*roles, feature_store):
        assert json.loads(role.inputs["assumeRolePolicy"]) == SAGEMAKER_TRUST
        assert role.inputs["tags"] == mock_pulumi.tags
    assert {r.inputs["maxSessionDuration"] for r in roles} == {43200}


def test_role_policies_attach_to_their_own_roles(built):
    # RolePolicy.role is the role's id; for IAM roles (and PlanMocks) that is the role name.
    for job in JOBS:
        assert built.one("aws:iam/rolePolicy:RolePolicy", f"t-dev-{job}-policy").inputs["role"] == f"t-dev-sagemaker-{job}"
    assert built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-feature-store-policy").inputs["role"] == "t-dev-feature-store"


@pytest.mark.parametrize("vpc", [False, True], ids=["managed-network", "vpc"])
def test_role_policies_name_every_action_and_write_nothing_on_star_unconditioned(mock_pulumi, namer, vpc):
    run = build(mock_pulumi, namer, vpc=vpc)
    for policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy.inputs["policy"])
        assert iam.wildcard_actions(document) == [], policy.name
        assert iam.unconditioned_wildcard_writes(document) == [], policy.name
        assert {s["Effect"] for s in document["Statement"]} == {"Allow"}


def test_job_policies_name_only_the_teams_resources_or_star_for_star_only_actions(built):
    for job in JOBS:
        for statement in _document(built, job)["Statement"]:
            resources = _as_list(statement["Resource"])
            if resources == ["*"]:
                assert set(_as_list(statement["Action"])) <= iam.WILDCARD_RESOURCE_ACTIONS, (job, statement["Sid"])
            else:
                assert all(r.startswith(("arn:aws:s3:::t-dev-", f"arn:aws:kms:eu-west-1:{ACCOUNT}:", f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/t/dev/",
                                         f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/sagemaker/", f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:",
                                         f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-")) for r in resources), (job, resources)


MODEL = BUCKET_ARNS["artifacts"] + "/models/fraud/v1/model.tar.gz"
CAPTURE = BUCKET_ARNS["capture"] + "/datacapture/t-dev-fraud/2026/01/01/00/x.jsonl"
REPORT = BUCKET_ARNS["capture"] + "/monitoring/t-dev-fraud/report.json"
FEATURES = BUCKET_ARNS["features"] + "/offline-store/x.parquet"
TRUTH = BUCKET_ARNS["features"] + "/ground-truth/fraud/labels.jsonl"
DATASET = BUCKET_ARNS["artifacts"] + "/datasets/fraud/run/train.parquet"
PACKAGE = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/t-dev-fraud/3"
# (action, resource) -> the jobs whose role may do it; every other role must not.
ACCESS = {
    ("s3:PutObject", MODEL): {"training"},
    ("s3:GetObject", MODEL): {"training", "hosting", "monitoring", "pipeline"},
    ("s3:PutObject", CAPTURE): {"hosting"},
    ("s3:GetObject", CAPTURE): {"monitoring", "pipeline"},
    ("s3:PutObject", REPORT): {"monitoring"},
    ("s3:GetObject", FEATURES): {"training", "pipeline"},
    ("s3:GetObject", TRUTH): {"training", "monitoring", "pipeline"},
    ("s3:PutObject", TRUTH): set(),
    ("s3:PutObject", DATASET): {"pipeline"},
    ("sagemaker:CreateModelPackage", PACKAGE): {"pipeline"},
    ("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:training-job/pipelines-abc-Train-1"): {"pipeline"},
    ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-training"): {"pipeline"},
    ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-hosting"): set(),
    ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-monitoring"): set(),
    ("ecr:BatchGetImage", REPO_ARNS[0]): {"training", "pipeline"},
    ("ecr:BatchGetImage", REPO_ARNS[1]): {"hosting", "monitoring"},
}


@pytest.mark.parametrize(("action", "resource"), list(ACCESS), ids=[f"{a}-{r.rsplit(':', 1)[-1]}" for a, r in ACCESS])
def test_each_job_role_has_its_own_access_and_none_of_the_others(built, action, resource):
    allowed = {job for job in JOBS if iam.allows(_document(built, job), action, resource)}
    assert allowed == ACCESS[(action, resource)]


def test_the_pipeline_passes_roles_only_to_sagemaker(built):
    (passing,) = [s for s in _document(built, "pipeline")["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert passing["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-{job}" for job in ("pipeline", "training")]


def test_job_roles_publish_metrics_only_to_sagemaker_and_monitor_namespaces(built):
    for job in JOBS:
        by_sid = {s["Sid"]: s for s in _document(built, job)["Statement"]}
        assert by_sid["PublishMetrics"]["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "MLOps/ModelMonitor"]}}


def test_network_interfaces_only_in_the_stacks_vpc_subnets_and_groups(mock_pulumi, namer):
    for job in JOBS:
        assert not [s for s in _document(build(mock_pulumi, namer, vpc=False), job)["Statement"] if any(a.startswith("ec2:") for a in _as_list(s["Action"]))]
    by_sid = {s["Sid"]: s for s in _document(build(mock_pulumi, namer, vpc=True), "hosting")["Statement"]}
    ec2 = f"arn:aws:ec2:eu-west-1:{ACCOUNT}"
    assert by_sid["CreateInterfacesInStackSubnets"]["Resource"] == [f"{ec2}:network-interface/*"]
    assert by_sid["CreateInterfacesInStackSubnets"]["Condition"] == {"ArnEquals": {
        "ec2:Vpc": f"{ec2}:vpc/{VPC.vpc_id}", "ec2:Subnet": [f"{ec2}:subnet/{s}" for s in VPC.subnet_ids]}}
    assert by_sid["UseStackSubnetsAndGroups"]["Resource"] == [
        *(f"{ec2}:subnet/{s}" for s in VPC.subnet_ids), *(f"{ec2}:security-group/{g}" for g in VPC.security_group_ids)]
    assert by_sid["ManageInterfacesInStackVpc"]["Condition"] == {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/{VPC.vpc_id}"}}
    assert by_sid["DescribeNetwork"]["Resource"] == ["*"]
    assert not [a for a in by_sid["DescribeNetwork"]["Action"] if iam.is_write_action(a)]


def test_feature_store_policy_covers_only_the_features_bucket_the_key_and_the_feature_store_database(built):
    statements = _statements(built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-feature-store-policy"))
    resources = {r for s in statements for r in _as_list(s["Resource"])}
    catalog = f"arn:aws:glue:eu-west-1:{ACCOUNT}"
    assert resources == {
        BUCKET_ARNS["features"], BUCKET_ARNS["features"] + "/*", KEY_ARN,
        f"{catalog}:catalog", f"{catalog}:database/sagemaker_featurestore", f"{catalog}:table/sagemaker_featurestore/*",
    }
