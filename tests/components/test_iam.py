"""specs.iam: policy documents as pure functions, no Pulumi."""
from __future__ import annotations

import pytest

from specs import iam

ACCOUNT = "111111111111"
BUCKETS = {p: f"arn:aws:s3:::t-dev-{p}-{ACCOUNT}" for p in ("features", "artifacts", "capture")}
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k-1"
REPOS = [f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/t/dev/serving"]
GROUPS = [f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package-group/t-dev-fraud"]


VPC = iam.VpcScope(vpc_id="vpc-0123456789abcdef0", subnet_ids=("subnet-0123456789abcdef0",), security_group_ids=("sg-0123456789abcdef0",))


def scope(*, vpc: bool) -> iam.JobScope:
    return iam.JobScope(account_id=ACCOUNT, region="eu-west-1", key_arn=KEY, metric_namespaces=("/aws/sagemaker/*", "MLOps/ModelMonitor"),
                        vpc=VPC if vpc else None)


def job_policies(*, vpc: bool) -> dict[str, dict]:
    """Every job kind's policy document."""
    sc = scope(vpc=vpc)
    return {
        "training": iam.training_job_policy(scope=sc, features_bucket_arn=BUCKETS["features"], artifacts_bucket_arn=BUCKETS["artifacts"], repository_arns=REPOS),
        "hosting": iam.hosting_policy(scope=sc, artifacts_bucket_arn=BUCKETS["artifacts"], capture_bucket_arn=BUCKETS["capture"], repository_arns=REPOS),
        "monitoring": iam.monitoring_policy(scope=sc, artifacts_bucket_arn=BUCKETS["artifacts"], capture_bucket_arn=BUCKETS["capture"],
                                            ground_truth_uris=[f"s3://t-dev-features-{ACCOUNT}/ground-truth/fraud/"], repository_arns=REPOS),
        "pipeline": iam.pipeline_policy(scope=sc, features_bucket_arn=BUCKETS["features"], artifacts_bucket_arn=BUCKETS["artifacts"],
                                        capture_bucket_arn=BUCKETS["capture"], repository_arns=REPOS, model_package_group_arns=GROUPS,
                                        pipeline_role_arn=f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-pipeline",
                                        training_role_arn=f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-training"),
    }


def execution_policy(*, vpc: bool) -> dict:
    """The pipeline role's document: the one that registers models and passes roles."""
    return job_policies(vpc=vpc)["pipeline"]


def test_wildcard_actions_finds_full_service_and_prefix_wildcards_in_allow_statements():
    doc = iam.document(
        iam.allow("A", ["s3:GetObject", "s3:*", "s3:Get*"], ["*"]),
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
    )
    assert iam.wildcard_actions(doc) == ["s3:*", "s3:Get*", "*"]


def test_wildcard_actions_ignores_deny_statements():
    assert iam.wildcard_actions(iam.tls_only_bucket_policy("arn:aws:s3:::b")) == []


def test_wildcard_actions_reads_a_single_statement_object_and_a_string_action():
    assert iam.wildcard_actions({"Statement": {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}}) == ["ec2:Describe*"]


def test_wildcard_actions_is_empty_for_named_actions():
    assert iam.wildcard_actions(iam.document(iam.allow("A", ["s3:GetObject", "kms:Decrypt"], ["*"]))) == []


def test_allow_sorts_actions_and_adds_a_condition_only_when_given():
    assert iam.allow("S", ["b:Y", "a:X"], ["r"]) == {"Sid": "S", "Effect": "Allow", "Action": ["a:X", "b:Y"], "Resource": ["r"]}
    assert iam.allow("S", ["a:X"], ["r"], {"Bool": {"k": "v"}})["Condition"] == {"Bool": {"k": "v"}}


def test_service_trust_limits_assume_role_to_calls_for_this_account():
    assert iam.service_trust("sagemaker.amazonaws.com", ACCOUNT) == {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }],
    }


@pytest.mark.parametrize("vpc", [False, True])
def test_job_policies_name_every_action(vpc):
    for job, doc in job_policies(vpc=vpc).items():
        assert iam.wildcard_actions(doc) == [], job


@pytest.mark.parametrize("vpc", [False, True])
def test_job_policies_use_resource_star_only_for_actions_aws_grants_on_star_and_never_to_write_unconditioned(vpc):
    for job, doc in job_policies(vpc=vpc).items():
        assert iam.unconditioned_wildcard_writes(doc) == [], job
        for statement in doc["Statement"]:
            if "*" in statement["Resource"]:
                assert statement["Resource"] == ["*"]
                assert set(statement["Action"]) <= iam.WILDCARD_RESOURCE_ACTIONS, statement["Sid"]


def test_network_interface_statements_exist_only_in_a_vpc_and_are_scoped_to_it():
    for doc in job_policies(vpc=False).values():
        assert not [s for s in doc["Statement"] if any(a.startswith("ec2:") for a in s["Action"])]
    statements = {s["Sid"]: s for s in job_policies(vpc=True)["training"]["Statement"]}
    vpc_arn = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:vpc/{VPC.vpc_id}"
    assert statements["CreateInterfacesInStackSubnets"]["Condition"]["ArnEquals"]["ec2:Vpc"] == vpc_arn
    assert statements["ManageInterfacesInStackVpc"]["Condition"] == {"ArnEquals": {"ec2:Vpc": vpc_arn}}


def test_unconditioned_wildcard_writes_flags_writes_on_star_without_condition_only():
    doc = iam.document(
        iam.allow("Bad", ["ec2:CreateNetworkInterface", "ec2:DescribeSubnets"], ["*"]),
        iam.allow("Scoped", ["s3:PutObject"], ["arn:aws:s3:::b/*"]),
        iam.allow("Conditioned", ["cloudwatch:PutMetricData"], ["*"], {"StringLike": {"cloudwatch:namespace": ["x"]}}),
    )
    assert iam.unconditioned_wildcard_writes(doc) == ["Bad:ec2:CreateNetworkInterface"]


def test_allows_matches_actions_case_insensitively_and_resources_by_wildcard():
    doc = iam.document(iam.allow("W", ["s3:PutObject"], ["arn:aws:s3:::b/models/*"]))
    assert iam.allows(doc, "S3:putobject", "arn:aws:s3:::b/models/m/1")
    assert not iam.allows(doc, "s3:PutObject", "arn:aws:s3:::b/captures/1")
    assert not iam.allows(doc, "s3:GetObject", "arn:aws:s3:::b/models/m/1")


@pytest.mark.parametrize("job", iam.JOB_ROLES)
def test_role_purpose_names_each_job_and_refuses_others(job):
    assert iam.role_purpose(job) == f"sagemaker-{job}"
    with pytest.raises(ValueError, match="allowed: training, hosting, monitoring, pipeline"):
        iam.role_purpose("execution")


def test_execution_policy_registers_only_into_the_teams_groups_and_their_packages():
    (register,) = [s for s in execution_policy(vpc=False)["Statement"] if s["Sid"] == "RegisterModels"]
    assert register["Resource"] == [GROUPS[0], f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/t-dev-fraud/*"]


def test_execution_policy_limits_metrics_to_the_given_namespaces():
    (publish,) = [s for s in execution_policy(vpc=False)["Statement"] if s["Sid"] == "PublishMetrics"]
    assert publish["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "MLOps/ModelMonitor"]}}


def test_feature_store_policy_writes_only_its_bucket_and_glue_tables_of_its_database():
    doc = iam.feature_store_policy(account_id=ACCOUNT, region="eu-west-1", bucket_arn=BUCKETS["features"], key_arn=KEY, database="db")
    assert iam.wildcard_actions(doc) == []
    (glue,) = [s for s in doc["Statement"] if s["Sid"] == "GlueTables"]
    catalog = f"arn:aws:glue:eu-west-1:{ACCOUNT}"
    assert glue["Resource"] == [f"{catalog}:catalog", f"{catalog}:database/db", f"{catalog}:table/db/*"]


def test_tls_only_bucket_policy_denies_insecure_transport_on_bucket_and_objects():
    (deny,) = iam.tls_only_bucket_policy("arn:aws:s3:::b")["Statement"]
    assert deny == {
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def test_model_package_group_policy_names_each_reader_account_root():
    group = "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/g"
    doc = iam.model_package_group_policy(group_arn=group, reader_account_ids=["222222222222", "333333333333"])
    for statement in doc["Statement"]:
        assert statement["Principal"] == {"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]}
    assert [s["Resource"] for s in doc["Statement"]] == [group, "arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/*"]


def test_topic_policy_lets_only_this_accounts_alarms_and_rules_publish():
    (statement,) = iam.topic_policy(topic_arn="arn:aws:sns:eu-west-1:111111111111:t", account_id=ACCOUNT)["Statement"]
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_kms_key_policy_conditions_every_service_principal():
    for statement in iam.kms_key_policy(account_id=ACCOUNT, region="eu-west-1")["Statement"]:
        if "Service" in statement["Principal"]:
            assert "Condition" in statement, statement["Sid"]


# -- EKS training (IRSA) --------------------------------------------------------------------

ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123"
PROVIDER = "arn:aws:iam::111111111111:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123"


def test_irsa_trust_admits_only_one_service_account_of_one_namespace_with_the_sts_audience():
    doc = iam.irsa_trust(provider_arn=PROVIDER, issuer=ISSUER, namespace="fraud-prod", service_account="training")
    [statement] = doc["Statement"]
    assert statement["Principal"] == {"Federated": PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    # StringEquals, not StringLike: no wildcard can widen it to other namespaces or accounts.
    assert statement["Condition"] == {"StringEquals": {
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC123:sub": "system:serviceaccount:fraud-prod:training",
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC123:aud": "sts.amazonaws.com",
    }}


def test_training_pods_read_features_write_artifacts_and_checkpoints_and_register_nothing_else():
    doc = iam.training_pod_policy(
        features_bucket_arn="arn:aws:s3:::t-features", artifacts_bucket_arn="arn:aws:s3:::t-artifacts",
        key_arn="arn:aws:kms:eu-west-1:111111111111:key/k",
        model_package_group_arns=["arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/t-m"],
    )
    assert iam.wildcard_actions(doc) == []
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ReadFeatureData"]["Action"] == ["s3:GetObject"]
    assert by_sid["ReadFeatureData"]["Resource"] == ["arn:aws:s3:::t-features/*"]
    assert by_sid["WriteArtifacts"]["Resource"] == ["arn:aws:s3:::t-artifacts/models/*", "arn:aws:s3:::t-artifacts/checkpoints/*"]
    assert by_sid["PruneCheckpoints"] == {"Sid": "PruneCheckpoints", "Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::t-artifacts/checkpoints/*"]}
    writes = [s for s in doc["Statement"] if {"s3:PutObject", "s3:DeleteObject"} & set(s["Action"])]
    assert all(r.startswith("arn:aws:s3:::t-artifacts/") for s in writes for r in s["Resource"])
    assert by_sid["RegisterModels"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/t-m",
        "arn:aws:sagemaker:eu-west-1:111111111111:model-package/t-m/*",
    ]
    assert not any(a.startswith(("sagemaker:CreateTrainingJob", "iam:", "ecr:")) for s in doc["Statement"] for a in s["Action"])
