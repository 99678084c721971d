"""MlflowTracking under Pulumi's mock runtime: the server, its own role, and client access (issue #20).
(Here rather than in tests/tracking/: it needs this directory's `mock_pulumi` fixtures.)"""
from __future__ import annotations

import json

import pytest

from components.tracking import TOKEN, MlflowTracking, MlflowTrackingArgs
from specs.config.schema import TrackingConfig

SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET_ARN = "arn:aws:s3:::t-dev-artifacts-111111111111"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/1234"
GROUP = "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/t-dev-fraud"


def build(mock_pulumi, namer, *, groups=(GROUP,), config=None, clients=None):
    return mock_pulumi.run(lambda: MlflowTracking("t-dev-tracking", MlflowTrackingArgs(
        namer=namer, config=config or TrackingConfig(enabled=True, server_size="Medium"),
        artifacts_bucket_name="t-dev-artifacts-111111111111", artifacts_bucket_arn=BUCKET_ARN, kms_key_arn=KEY,
        model_package_group_arns=list(groups),
        client_role_names=clients if clients is not None else {"training": "t-dev-sagemaker-execution"},
        tags=mock_pulumi.tags,
    )))


def test_server_role_and_policies_are_children_of_the_component(mock_pulumi, namer):
    run = build(mock_pulumi, namer)
    assert sorted((r.type, r.name) for r in run.children(mock_pulumi.top_urn(TOKEN, "t-dev-tracking"))) == sorted([
        (ROLE, "t-dev-tracking-role"), (POLICY, "t-dev-tracking-role-policy"), (SERVER, "t-dev-tracking-server"),
        (POLICY, "t-dev-tracking-training-access"),
    ])


def test_the_server_stores_artifacts_in_the_team_bucket_with_its_own_role_and_the_configured_size(mock_pulumi, namer):
    run = build(mock_pulumi, namer)
    server = run.one(SERVER, "t-dev-tracking-server").inputs
    assert server["trackingServerName"] == "t-dev-mlflow"
    assert server["artifactStoreUri"] == "s3://t-dev-artifacts-111111111111/mlflow"
    assert server["trackingServerSize"] == "Medium" and server["automaticModelRegistration"] is True
    assert server["tags"] == mock_pulumi.tags
    role = run.one(ROLE, "t-dev-tracking-role").inputs
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}


def test_the_server_role_reaches_only_its_prefix_the_key_and_the_groups(mock_pulumi, namer):
    policy = json.loads(build(mock_pulumi, namer).one(POLICY, "t-dev-tracking-role-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ArtifactObjects"]["Resource"] == [f"{BUCKET_ARN}/mlflow/*"]
    assert by_sid["ArtifactListing"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*", "mlflow"]}}
    assert by_sid["ArtifactKey"]["Resource"] == [KEY]
    assert by_sid["RegisterModels"]["Resource"] == [
        GROUP, "arn:aws:sagemaker:eu-west-1:111111111111:model-package/t-dev-fraud/*"]
    assert not any(a.endswith("*") and ":" not in a for s in policy["Statement"] for a in s["Action"])


def test_without_groups_registration_is_off_and_not_granted(mock_pulumi, namer):
    run = build(mock_pulumi, namer, groups=())
    assert run.one(SERVER, "t-dev-tracking-server").inputs["automaticModelRegistration"] is False
    policy = json.loads(run.one(POLICY, "t-dev-tracking-role-policy").inputs["policy"])
    assert "RegisterModels" not in {s["Sid"] for s in policy["Statement"]}


def test_each_client_role_may_use_this_server_only(mock_pulumi, namer):
    run = build(mock_pulumi, namer, clients={"training": "t-dev-train", "operators": "t-dev-ops"})
    assert run.names(POLICY) == ["t-dev-tracking-operators-access", "t-dev-tracking-role-policy", "t-dev-tracking-training-access"]
    access = run.one(POLICY, "t-dev-tracking-training-access").inputs
    assert access["role"] == "t-dev-train"
    use, resolve, artifacts = json.loads(access["policy"])["Statement"]
    # Named actions (the mandatory no-wildcard-iam-actions policy refuses sagemaker-mlflow:*), what a run does.
    assert {"sagemaker-mlflow:CreateRun", "sagemaker-mlflow:LogBatch", "sagemaker-mlflow:LogModel"} <= set(use["Action"])
    assert not [a for a in use["Action"] if "*" in a or "Delete" in a]
    # The mocks' ARN of this server: one server, never "*".
    server = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/t-dev-mlflow"
    assert use["Resource"] == resolve["Resource"] == [server]
    assert resolve["Action"] == ["sagemaker:DescribeMlflowTrackingServer"]
    assert artifacts["Action"] == ["s3:PutObject", "s3:GetObject"] and artifacts["Resource"][0].endswith("/mlflow/*")


@pytest.mark.parametrize(("config", "field"), [
    (TrackingConfig(), "config.enabled"),
    (TrackingConfig(enabled=True, shared_stack="acme/mlops/platform-prod"), "config.shared_stack"),
])
def test_a_disabled_or_shared_config_is_refused(mock_pulumi, namer, config, field):
    problems = mock_pulumi.refused(lambda: build(mock_pulumi, namer, config=config))
    assert field in [p[0] for p in problems]
