"""Foundation under Pulumi's mock runtime: key, buckets, repositories and least-privilege roles."""
from __future__ import annotations

import json

import pytest

from specs import iam
from components.bucket import TOKEN as BUCKET_TOKEN
from components.foundation import TOKEN, Foundation, FoundationArgs

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


def build(mock_pulumi, namer, *, vpc: bool = False, force_destroy: bool = False):
    return mock_pulumi.run(lambda: Foundation("t-dev", FoundationArgs(
        namer=namer, region="eu-west-1", models=["fraud", "churn"], vpc=vpc, tags=mock_pulumi.tags,
        force_destroy_buckets=force_destroy,
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
        ("aws:iam/role:Role", "t-dev-execution-role"),
        ("aws:iam/role:Role", "t-dev-feature-store-role"),
        ("aws:iam/rolePolicy:RolePolicy", "t-dev-execution-policy"),
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


def test_both_roles_trust_only_sagemaker_acting_for_this_account(built, mock_pulumi):
    execution = built.one("aws:iam/role:Role", "t-dev-execution-role")
    feature_store = built.one("aws:iam/role:Role", "t-dev-feature-store-role")
    assert execution.inputs["name"] == "t-dev-sagemaker-execution"
    assert feature_store.inputs["name"] == "t-dev-feature-store"
    for role in (execution, feature_store):
        assert json.loads(role.inputs["assumeRolePolicy"]) == SAGEMAKER_TRUST
        assert role.inputs["tags"] == mock_pulumi.tags
    assert execution.inputs["maxSessionDuration"] == 43200


def test_role_policies_attach_to_their_own_roles(built):
    # RolePolicy.role is the role's id; for IAM roles (and PlanMocks) that is the role name.
    assert built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-execution-policy").inputs["role"] == "t-dev-sagemaker-execution"
    assert built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-feature-store-policy").inputs["role"] == "t-dev-feature-store"


@pytest.mark.parametrize("vpc", [False, True], ids=["managed-network", "vpc"])
def test_role_policies_name_every_action(mock_pulumi, namer, vpc):
    run = build(mock_pulumi, namer, vpc=vpc)
    for policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy.inputs["policy"])
        assert iam.wildcard_actions(document) == [], policy.name
        assert {s["Effect"] for s in document["Statement"]} == {"Allow"}


def test_execution_policy_resources_are_the_teams_buckets_key_repositories_groups_and_logs(built):
    statements = _statements(built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-execution-policy"))
    scoped = set()
    for statement in statements:
        resources = _as_list(statement["Resource"])
        if resources == ["*"]:
            # Only actions AWS grants on "*" alone may use it.
            assert set(_as_list(statement["Action"])) <= iam.WILDCARD_RESOURCE_ACTIONS, statement["Sid"]
        else:
            assert "*" not in resources
            scoped.update(resources)
    assert scoped == {
        BUCKET_ARNS["features"], BUCKET_ARNS["features"] + "/*",
        BUCKET_ARNS["artifacts"], BUCKET_ARNS["artifacts"] + "/*",
        BUCKET_ARNS["capture"], BUCKET_ARNS["capture"] + "/*",
        KEY_ARN,
        *REPO_ARNS,
        *GROUP_ARNS, *PACKAGE_ARNS,
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/sagemaker/*",
        # retraining pipelines' jobs, and passing only this role to SageMaker
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:training-job/pipelines-*",
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:processing-job/pipelines-*",
        f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-execution",
    }


def test_execution_role_passes_only_itself_and_only_to_sagemaker(built):
    by_sid = {s["Sid"]: s for s in _statements(built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-execution-policy"))}
    assert by_sid["PassOwnRoleToSageMaker"]["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-execution"]
    assert by_sid["PassOwnRoleToSageMaker"]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_execution_role_reads_features_but_writes_only_artifacts_and_captures(built):
    by_sid = {s["Sid"]: s for s in _statements(built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-execution-policy"))}
    assert by_sid["ReadDataObjects"]["Action"] == ["s3:GetObject"]
    assert by_sid["ReadDataObjects"]["Resource"] == [BUCKET_ARNS["features"] + "/*"]
    assert by_sid["WriteArtifactsObjects"]["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert by_sid["WriteArtifactsObjects"]["Resource"] == [BUCKET_ARNS["artifacts"] + "/*", BUCKET_ARNS["capture"] + "/*"]
    writers = [s for s in by_sid.values() if "s3:PutObject" in s["Action"]]
    assert [s["Sid"] for s in writers] == ["WriteArtifactsObjects"]


def test_execution_role_publishes_metrics_only_to_sagemaker_and_monitor_namespaces(built):
    by_sid = {s["Sid"]: s for s in _statements(built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-execution-policy"))}
    assert by_sid["PublishMetrics"]["Action"] == ["cloudwatch:PutMetricData"]
    assert by_sid["PublishMetrics"]["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "MLOps/ModelMonitor"]}}


def test_execution_role_gets_network_interface_permissions_only_in_a_vpc(mock_pulumi, namer):
    def ec2_actions(run):
        policy = run.one("aws:iam/rolePolicy:RolePolicy", "t-dev-execution-policy")
        return sorted(a for s in _statements(policy) for a in _as_list(s["Action"]) if a.startswith("ec2:"))

    assert ec2_actions(build(mock_pulumi, namer, vpc=False)) == []
    assert ec2_actions(build(mock_pulumi, namer, vpc=True)) == sorted(a for a in iam.WILDCARD_RESOURCE_ACTIONS if a.startswith("ec2:"))


def test_feature_store_policy_covers_only_the_features_bucket_the_key_and_the_feature_store_database(built):
    statements = _statements(built.one("aws:iam/rolePolicy:RolePolicy", "t-dev-feature-store-policy"))
    resources = {r for s in statements for r in _as_list(s["Resource"])}
    catalog = f"arn:aws:glue:eu-west-1:{ACCOUNT}"
    assert resources == {
        BUCKET_ARNS["features"], BUCKET_ARNS["features"] + "/*", KEY_ARN,
        f"{catalog}:catalog", f"{catalog}:database/sagemaker_featurestore", f"{catalog}:table/sagemaker_featurestore/*",
    }
