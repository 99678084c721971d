"""AWS access for promotion: one boto3 session per environment, its Model Package Group, S3 URLs.

Access per environment: `MLOPS_AWS_PROFILE_<ENV>` (a named profile) or `MLOPS_AWS_ROLE_ARN_<ENV>` (a
role assumed from the ambient credentials); neither means the ambient credentials. boto3 and botocore
are imported inside the functions that use them, so importing this module needs neither.

Must not import: pulumi or ruamel, nor the package's gates, pins, files, audit, policy or flow modules
(tests/promotion/test_promote_layout.py checks it), nor `mlops_training`, `mlops_serving` or `torch` (the
CLI runs the containers as processes).
"""
from __future__ import annotations

import os
from typing import Any

from mlops.promote.errors import PromotionError

APPROVED = "Approved"
"""SageMaker's ModelApprovalStatus of a package that may be promoted."""
SOURCE_ARN_KEY = "source_package_arn"
"""CustomerMetadataProperties key of a promoted package: the package it was promoted from."""
PROFILE_ENV = "MLOPS_AWS_PROFILE_{env}"
ROLE_ENV = "MLOPS_AWS_ROLE_ARN_{env}"


def access_for(environment: str) -> tuple[str | None, str | None]:
    """The profile name and the role ARN set for `environment` (at most one; neither: ambient credentials)."""
    profile = os.environ.get(PROFILE_ENV.format(env=environment.upper()))
    role = os.environ.get(ROLE_ENV.format(env=environment.upper()))
    if profile and role:
        raise PromotionError(
            f"both {PROFILE_ENV.format(env=environment.upper())} and {ROLE_ENV.format(env=environment.upper())} are set; "
            f"set one: a profile name or a role ARN to assume for {environment}"
        )
    return profile, role


def session_for(environment: str, region: str) -> Any:
    """A boto3 session for `environment`: its profile, a role assumed for it, or the ambient credentials."""
    import boto3

    profile, role = access_for(environment)
    if profile:
        return boto3.Session(profile_name=profile, region_name=region)
    if role:
        sts = boto3.Session(region_name=region).client("sts")
        creds = sts.assume_role(RoleArn=role, RoleSessionName=f"mlops-promote-{environment}")["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"], region_name=region,
        )
    return boto3.Session(region_name=region)


def _client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


class Registry:
    """One environment's Model Package Group for one model."""

    def __init__(self, *, session: Any, group: str, environment: str):
        self.session = session
        """The environment's boto3 session (its S3 reads the environment's artifacts)."""
        self.sagemaker = session.client("sagemaker")
        self.group = group
        self.environment = environment

    def require_group(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=self.group)
        except ClientError as exc:
            raise PromotionError(
                f"model package group {self.group!r} not found in the {self.environment} registry "
                f"({_client_error_code(exc)}); deploy that stack first (`pulumi up`) so the group exists"
            ) from None

    def summaries(self) -> list[dict[str, Any]]:
        """Every version in the group, oldest first."""
        pages = self.sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=self.group)
        found = [s for page in pages for s in page["ModelPackageSummaryList"]]
        return sorted(found, key=lambda s: s["ModelPackageVersion"])

    def describe(self, version: int) -> dict[str, Any] | None:
        """The package of `version`, or None when the group has no such version."""
        for summary in self.summaries():
            if summary["ModelPackageVersion"] == version:
                return self.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        return None

    def latest_approved(self) -> int | None:
        approved = [s["ModelPackageVersion"] for s in self.summaries() if s.get("ModelApprovalStatus") == APPROVED]
        return max(approved) if approved else None

    def promoted_from(self, source_arn: str) -> dict[str, Any] | None:
        """The package an earlier promotion of `source_arn` registered here, newest first."""
        for summary in reversed(self.summaries()):
            package = self.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if (package.get("CustomerMetadataProperties") or {}).get(SOURCE_ARN_KEY) == source_arn:
                return package
        return None


def split_s3(url: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key); ValueError naming the URL otherwise."""
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValueError(f"{url!r} is not an s3://bucket/key URL")
    bucket, key = url[5:].split("/", 1)
    return bucket, key

