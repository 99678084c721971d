"""Experiment tracking (issue #20): names and IAM documents of a stack's SageMaker managed MLflow
tracking server, pure.

- the server's own role (trusted by sagemaker.amazonaws.com): read and write its artifact prefix in the
  team's artifacts bucket, use the stack's KMS key for it, and register models into the team's Model
  Package Groups when automatic model registration is on;
- the clients' policy (the training roles): the MLflow actions a training run takes, on that one server,
  and its artifact prefix when the stack owns the server.
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


CLIENT_ACTIONS = (
    "sagemaker-mlflow:CreateExperiment", "sagemaker-mlflow:GetExperiment", "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:SearchExperiments", "sagemaker-mlflow:CreateRun", "sagemaker-mlflow:UpdateRun", "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:LogParam", "sagemaker-mlflow:LogMetric", "sagemaker-mlflow:LogBatch", "sagemaker-mlflow:LogInputs",
    "sagemaker-mlflow:LogOutputs", "sagemaker-mlflow:LogModel", "sagemaker-mlflow:SetTag", "sagemaker-mlflow:GetMetricHistory",
    "sagemaker-mlflow:ListArtifacts", "sagemaker-mlflow:GetLoggedModel", "sagemaker-mlflow:FinalizeLoggedModel",
    "sagemaker-mlflow:SetLoggedModelTags",
)
"""What a training run does on the server (mlops_training.tracking: an experiment per model, a run with its
parameters, per-epoch metrics, the dataset manifest as an input, the evaluation and the model as
artifacts), named action by action (the mandatory no-wildcard-iam-actions policy refuses
`sagemaker-mlflow:*`). Names: AWS Service Authorization Reference, "Actions, resources, and condition keys for
Amazon SageMaker with MLflow" (https://docs.aws.amazon.com/service-authorization/latest/reference/list_sagemaker-mlflow.html).
No deletes, no model registry writes, no UI access: those belong to people, not jobs."""


def client_policy(server_arn: str, *, artifacts_bucket_arn: str | None = None) -> Document:
    """A training role's access to the server: CLIENT_ACTIONS on this server only, and DescribeMlflowTrackingServer
    (the `sagemaker-mlflow` plugin resolves the ARN with it). With `artifacts_bucket_arn` (the server's own
    artifact store, when this stack owns it) also PutObject/GetObject under its `mlflow/` prefix: MLflow
    clients upload large artifacts straight to the artifact store. A stack sharing another's server gets no
    grant on the owner's bucket from here."""
    statements: list[Document] = [
        {"Sid": "UseTrackingServer", "Effect": "Allow", "Action": list(CLIENT_ACTIONS), "Resource": [server_arn]},
        {"Sid": "ResolveTrackingServer", "Effect": "Allow", "Action": ["sagemaker:DescribeMlflowTrackingServer"], "Resource": [server_arn]},
    ]
    if artifacts_bucket_arn is not None:
        statements.append({"Sid": "TrackingArtifacts", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
                           "Resource": [f"{artifacts_bucket_arn}/{ARTIFACT_PREFIX}/*"]})
    return {"Version": "2012-10-17", "Statement": statements}
