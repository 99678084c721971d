"""Experiment tracking (issue #20): names and IAM documents of a stack's SageMaker managed MLflow
tracking server, pure.

- the server's own role (trusted by sagemaker.amazonaws.com): read and write its artifact prefix in the
  team's artifacts bucket, use the stack's KMS key for it, and register models into the team's Model
  Package Groups when automatic model registration is on;
- the clients' policy (training roles, operators): `sagemaker-mlflow:*` on that one server, plus the
  presigned-URL call the MLflow UI needs.
Kept apart from specs.iam (one role per job, rewritten separately): these roles exist only with
`tracking.enabled`.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure layer).
"""
from __future__ import annotations

from typing import Any

Document = dict[str, Any]

ARTIFACT_PREFIX = "mlflow"
"""Key prefix of the tracking server's artifact store in the team's artifacts bucket."""
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
"""The variable the training container reads (MLflow's own): a server ARN in the cloud (with the
`sagemaker-mlflow` plugin), an http:// URL locally."""


def server_name(prefix: str) -> str:
    """The tracking server's name: `<team>-<env>-mlflow` (AWS: letters, digits, hyphens, up to 256)."""
    return f"{prefix}-mlflow"


def server_arn(*, prefix: str, region: str, account_id: str) -> str:
    """The ARN SageMaker gives the stack's own server (`arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>`)."""
    return f"arn:aws:sagemaker:{region}:{account_id}:mlflow-tracking-server/{server_name(prefix)}"


def artifact_store_uri(artifacts_bucket: str) -> str:
    return f"s3://{artifacts_bucket}/{ARTIFACT_PREFIX}"


def server_trust(account_id: str) -> Document:
    """sagemaker.amazonaws.com may assume the server's role, for this account only (confused deputy)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "SageMakerAssume", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
        "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }]}


def server_policy(*, bucket_arn: str, key_arn: str, model_package_group_arns: list[str]) -> Document:
    """The server's role: its artifact prefix (objects and listing of that prefix only), the KMS key,
    and model registration into the given groups (none: no registration statement)."""
    statements: list[Document] = [
        {"Sid": "ArtifactObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": [f"{bucket_arn}/{ARTIFACT_PREFIX}/*"]},
        {"Sid": "ArtifactListing", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": [bucket_arn], "Condition": {"StringLike": {"s3:prefix": [f"{ARTIFACT_PREFIX}/*", ARTIFACT_PREFIX]}}},
        {"Sid": "ArtifactKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
         "Resource": [key_arn]},
    ]
    if model_package_group_arns:
        packages = [arn.replace(":model-package-group/", ":model-package/", 1) + "/*" for arn in model_package_group_arns]
        statements.append({
            "Sid": "RegisterModels", "Effect": "Allow",
            "Action": ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags"],
            "Resource": sorted(model_package_group_arns) + sorted(packages),
        })
    return {"Version": "2012-10-17", "Statement": statements}


def client_policy(server_arn: str) -> Document:
    """What a role that logs to (or browses) the server needs: the MLflow data plane on this server only."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "UseTrackingServer", "Effect": "Allow",
        "Action": ["sagemaker-mlflow:*", "sagemaker:DescribeMlflowTrackingServer",
                   "sagemaker:CreatePresignedMlflowTrackingServerUrl"],
        "Resource": [server_arn],
    }]}
